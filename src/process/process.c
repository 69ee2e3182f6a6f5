/* SPDX-License-Identifier: MIT */
/* process/process.c: handles, names, the table of children, current process. */
#include "process/process_int.h"

#include <string.h>
#include <unistd.h>

/* The first process's own handle: Python's _MainProcess. */
static struct mp_process main_handle = {
	.creator = 0,
	.pidfd = -1,
	.state = MP__PROC_RUNNING,
	.identity = "",
	.name = "MainProcess",
};

struct mp__procs mp__procs = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.current = &main_handle,
	.counter = 1,
};

void
mp__procs_lock(void)
{
	int rv = pthread_mutex_lock(&mp__procs.lock);
	MP_ASSERT(rv == 0);
}

void
mp__procs_unlock(void)
{
	int rv = pthread_mutex_unlock(&mp__procs.lock);
	MP_ASSERT(rv == 0);
}

void
mp__procs_add(struct mp_process *p)
{
	MP_ASSERT(!p->listed);
	p->prev = mp__procs.tail;
	p->next = NULL;
	if (mp__procs.tail != NULL) {
		mp__procs.tail->next = p;
	} else {
		mp__procs.head = p;
	}
	mp__procs.tail = p;
	p->listed = true;
}

void
mp__procs_remove(struct mp_process *p)
{
	if (!p->listed) {
		return;
	}
	if (p->prev != NULL) {
		p->prev->next = p->next;
	} else {
		mp__procs.head = p->next;
	}
	if (p->next != NULL) {
		p->next->prev = p->prev;
	} else {
		mp__procs.tail = p->prev;
	}
	p->prev = NULL;
	p->next = NULL;
	p->listed = false;
}

void
mp__procs_reset_in_child(struct mp_process *p)
{
	static const pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;

	/*
	 * The handles stay allocated (the target may still free them), but
	 * their pidfds watch the parent's children, not ours, and would
	 * otherwise stay open in every generation below.
	 */
	for (struct mp_process *q = mp__procs.head; q != NULL; q = q->next) {
		q->listed = false;
		if (q->pidfd >= 0) {
			close(q->pidfd);
			q->pidfd = -1;
		}
	}
	mp__procs.head = NULL;
	mp__procs.tail = NULL;
	mp__procs.current = p;
	mp__procs.counter = 1;
	mp__procs.exiting = false;
	p->pid = getpid();
	p->state = MP__PROC_RUNNING;
	/*
	 * The parent's forking thread held the lock; that thread does not
	 * exist here, so the lock is replaced rather than unlocked.
	 */
	memcpy(&mp__procs.lock, &fresh, sizeof(fresh));
}

int
mp_process_new(mp_target_fn fn, void *arg, const struct mp_process_opts *opts,
    mp_process_t **out)
{
	if (fn == NULL || out == NULL) {
		return -EINVAL;
	}
	/*
	 * The number is taken even when the call then fails or a name is
	 * given, as Python's next(_process_counter) is.
	 */
	mp__procs_lock();
	unsigned long number = mp__procs.counter++;
	const char *parent_id = mp__procs.current->identity;
	mp__procs_unlock();

	const char *sep = parent_id[0] != '\0' ? ":" : "";
	const char *given = opts != NULL ? opts->name : NULL;
	int id_len = snprintf(NULL, 0, "%s%s%lu", parent_id, sep, number);
	MP_ASSERT(id_len > 0);
	size_t name_len = given != NULL ? strlen(given) :
	    strlen("Process-") + (size_t)id_len;
	struct mp_process *p = mp__calloc(1,
	    sizeof(*p) + (size_t)id_len + 1 + name_len + 1);
	if (p == NULL) {
		return -ENOMEM;
	}
	char *id = p->strings;
	char *name = id + id_len + 1;
	snprintf(id, (size_t)id_len + 1, "%s%s%lu", parent_id, sep, number);
	if (given != NULL) {
		memcpy(name, given, name_len + 1);
	} else {
		memcpy(name, "Process-", strlen("Process-"));
		memcpy(name + strlen("Process-"), id, (size_t)id_len + 1);
	}
	p->fn = fn;
	p->arg = arg;
	p->creator = getpid();
	p->pidfd = -1;
	p->state = MP__PROC_NEW;
	p->daemon = opts != NULL && opts->daemon;
	p->keep_stdin = opts != NULL && opts->keep_stdin;
	p->identity = id;
	p->name = name;
	*out = p;
	return 0;
}

int
mp_process_free(mp_process_t *p)
{
	if (p == NULL) {
		return 0;
	}
	mp__procs_lock();
	if (p == mp__procs.current || p == &main_handle) {
		mp__procs_unlock();
		return -EBUSY;
	}
	if (p->creator == getpid() && p->state == MP__PROC_RUNNING &&
	    mp__proc_poll_locked(p) == -EAGAIN) {
		mp__procs_unlock();
		return -EBUSY;
	}
	mp__procs_remove(p);
	/* Closed under the lock: a fork now would copy an unlisted pidfd. */
	if (p->pidfd >= 0) {
		close(p->pidfd);
	}
	mp__procs_unlock();
	mp__free(p);
	return 0;
}

pid_t
mp_process_pid(const mp_process_t *p)
{
	MP_ASSERT(p != NULL);
	if (p == mp__procs.current) {
		return getpid();
	}
	mp__procs_lock();
	pid_t pid = p->state == MP__PROC_NEW ? 0 : p->pid;
	mp__procs_unlock();
	return pid;
}

const char *
mp_process_name(const mp_process_t *p)
{
	MP_ASSERT(p != NULL);
	return p->name;
}

bool
mp_process_is_daemon(const mp_process_t *p)
{
	MP_ASSERT(p != NULL);
	return p->daemon;
}

mp_process_t *
mp_current_process(void)
{
	return mp__procs.current;
}

pid_t
mp_parent_pid(void)
{
	return mp__procs.current->creator;
}

size_t
mp_active_children(mp_process_t **out, size_t cap)
{
	MP_ASSERT(out != NULL || cap == 0);
	pid_t self = getpid();
	size_t n = 0;
	mp__procs_lock();
	for (struct mp_process *p = mp__procs.head; p != NULL; p = p->next) {
		if (p->creator != self || p->state != MP__PROC_RUNNING ||
		    mp__proc_poll_locked(p) != -EAGAIN) {
			continue;
		}
		if (n < cap) {
			out[n] = p;
		}
		n++;
	}
	mp__procs_unlock();
	return n;
}

int
mp_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1) {
		return -ENOSYS;
	}
	return n > INT32_MAX ? INT32_MAX : (int)n;
}
