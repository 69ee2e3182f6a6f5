/* SPDX-License-Identifier: MIT */
/* process/reap.c: join, exit codes, signals, and reaping children at exit. */
#include "process/process_int.h"
#include "os/proc.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * Every waitpid on a child happens here, with the lock held and WNOHANG:
 * a join blocks on the pidfd (or waitid WNOWAIT) without reaping, so two
 * threads (a join and an active_children) never race to reap one child
 * and see ECHILD.
 */
int
mp__proc_poll_locked(struct mp_process *p)
{
	if (p->state == MP__PROC_DONE) {
		return 0;
	}
	if (p->state == MP__PROC_LOST) {
		return -ECHILD;
	}
	int status;
	int rv = mp__waitpid_nohang(p->pid, &status);
	if (rv == 0) {
		return -EAGAIN;
	}
	if (rv < 0) {
		if (rv == -ECHILD) {
			p->state = MP__PROC_LOST;
		}
		return rv;
	}
	/* Python's os.waitstatus_to_exitcode. */
	p->exitcode = WIFSIGNALED(status) ? -WTERMSIG(status) :
	    WEXITSTATUS(status);
	p->state = MP__PROC_DONE;
	return 0;
}

/* 0 when p is a started child of the caller, else the caller's error. */
static int
check_child(const struct mp_process *p)
{
	if (p->creator != getpid()) {
		return -ECHILD;
	}
	if (p->state == MP__PROC_NEW) {
		return -ESRCH;
	}
	return 0;
}

/* Block until the child may have ended or the deadline passes. */
static int
wait_for_exit(pid_t pid, int pidfd, int64_t deadline_ns, int64_t *step_ns)
{
	if (pidfd >= 0) {
		int rv = mp__fd_wait(pidfd, POLLIN, deadline_ns);
		return rv < 0 ? rv : 0;
	}
	if (deadline_ns < 0) {
		return mp__waitpid_exited(pid);
	}
	mp__waitpid_backoff(deadline_ns, step_ns);
	return 0;
}

int
mp_process_join(mp_process_t *p, int64_t timeout_ms)
{
	MP_ASSERT(p != NULL);
	int64_t deadline = mp__deadline_from_timeout(timeout_ms);
	int64_t step = 0;
	for (;;) {
		mp__procs_lock();
		int rv = check_child(p);
		if (rv == 0) {
			rv = mp__proc_poll_locked(p);
		}
		pid_t pid = p->pid;
		int pidfd = p->pidfd;
		mp__procs_unlock();
		if (rv != -EAGAIN) {
			return rv;
		}
		if (timeout_ms == MP_NOWAIT) {
			return -EAGAIN;
		}
		if (mp__deadline_expired(deadline)) {
			return -ETIMEDOUT;
		}
		rv = wait_for_exit(pid, pidfd, deadline, &step);
		if (rv < 0 && rv != -ECHILD) {
			return rv;
		}
	}
}

bool
mp_process_is_alive(mp_process_t *p)
{
	MP_ASSERT(p != NULL);
	mp__procs_lock();
	bool alive;
	if (p == mp__procs.current) {
		alive = true;
	} else if (check_child(p) != 0) {
		alive = false;
	} else {
		alive = mp__proc_poll_locked(p) == -EAGAIN;
	}
	mp__procs_unlock();
	return alive;
}

int
mp_process_exitcode(mp_process_t *p, int *code)
{
	MP_ASSERT(p != NULL && code != NULL);
	mp__procs_lock();
	int rv;
	if (p == mp__procs.current) {
		rv = -EAGAIN;
	} else {
		rv = check_child(p);
		if (rv == 0) {
			rv = mp__proc_poll_locked(p);
		}
		if (rv == 0) {
			*code = p->exitcode;
		}
	}
	mp__procs_unlock();
	return rv;
}

/*
 * The signal is sent under the lock: the child cannot be reaped between
 * the state check and the kill, so its pid cannot have been reused.
 */
static int
send_signal(struct mp_process *p, int sig)
{
	MP_ASSERT(p != NULL);
	mp__procs_lock();
	int rv = check_child(p);
	if (rv == 0 && p->state == MP__PROC_RUNNING) {
		rv = mp__proc_signal(p->pid, p->pidfd, sig);
	}
	mp__procs_unlock();
	return rv;
}

int
mp_process_terminate(mp_process_t *p)
{
	return send_signal(p, SIGTERM);
}

int
mp_process_kill(mp_process_t *p)
{
	return send_signal(p, SIGKILL);
}

/* The caller's first child still running, or NULL. */
static struct mp_process *
first_running_child(pid_t self)
{
	mp__procs_lock();
	struct mp_process *p = mp__procs.head;
	while (p != NULL &&
	    (p->creator != self || p->state != MP__PROC_RUNNING)) {
		p = p->next;
	}
	mp__procs_unlock();
	return p;
}

void
mp__proc_exit_function(void)
{
	pid_t self = getpid();
	mp__procs_lock();
	if (mp__procs.exiting) {
		mp__procs_unlock();
		return;
	}
	mp__procs.exiting = true;
	for (struct mp_process *p = mp__procs.head; p != NULL; p = p->next) {
		if (p->daemon && p->creator == self &&
		    p->state == MP__PROC_RUNNING) {
			(void)mp__proc_signal(p->pid, p->pidfd, SIGTERM);
		}
	}
	mp__procs_unlock();

	/*
	 * Then join every child, daemons included, as Python does. A join
	 * only fails when the child cannot be waited for at all (its status
	 * taken elsewhere marks it lost and stops the loop for it); any
	 * other error would repeat forever, so it ends the loop.
	 */
	struct mp_process *p;
	while ((p = first_running_child(self)) != NULL) {
		int rv = mp_process_join(p, MP_FOREVER);
		if (rv != 0 && rv != -ECHILD) {
			break;
		}
	}
}
