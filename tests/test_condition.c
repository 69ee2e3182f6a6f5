/* SPDX-License-Identifier: MIT */
/* test_condition.c: Condition: exact notify(n), RLock depth, dead peers. */
#include "harness/harness.h"

#include <mproc/condition.h>
#include <mproc/sync.h>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

MP_TEST_SUITE(condition);

/*
 * An unrelated process: the test binary run again with
 * MP_TEST_COND_HELPER=<name> opens the named condition, takes its lock
 * (which the test releases by waiting), notifies one waiter and exits 0.
 */
__attribute__((constructor)) static void
cond_helper(void)
{
	const char *name = getenv("MP_TEST_COND_HELPER");
	if (name == NULL) {
		return;
	}
	mp_cond_t *c;
	if (mp_cond_open(name, 0, &c) != 0) {
		_exit(10);
	}
	if (mp_cond_acquire(c, 60000) != 0) {
		_exit(11);
	}
	if (mp_cond_notify(c, 1) != 0) {
		_exit(12);
	}
	if (mp_cond_release(c) != 0) {
		_exit(13);
	}
	mp_cond_close(c);
	_exit(0);
}

/* Shared counters, changed under the condition's lock. */
struct counts {
	int waiting;    /* children that called wait */
	int proceeded;  /* children that returned from it */
	int value;      /* for wait_for */
};

static struct counts *
counts_map(void)
{
	void *p = mmap(NULL, sizeof(struct counts), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert(p != MAP_FAILED);
	return p;
}

static int
reap(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		cr_assert(errno == EINTR);
	}
	if (WIFSIGNALED(status)) {
		return 100 + WTERMSIG(status);
	}
	return WEXITSTATUS(status);
}

/* Read n bytes, failing the case if they do not come within 60 s. */
static void
read_bytes(int fd, char *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int rv = poll(&p, 1, 60000);
		cr_assert(rv != 0, "nothing to read after 60 s: lost wake-up");
		if (rv < 0) {
			cr_assert(errno == EINTR);
			continue;
		}
		ssize_t r = read(fd, buf + got, n - got);
		cr_assert(r > 0 || (r < 0 && errno == EINTR));
		if (r > 0) {
			got += (size_t)r;
		}
	}
}

/* Take the lock and read the counts until want children wait. */
static void
await_waiting(mp_cond_t *c, struct counts *k, int want)
{
	for (;;) {
		expect_ok(mp_cond_acquire(c, MP_FOREVER));
		int n = k->waiting;
		expect_ok(mp_cond_release(c));
		if (n >= want) {
			return;
		}
		sched_yield();
	}
}

/*
 * A child that counts itself as waiting and waits (the count and the wait
 * are under one holding of the lock, so a parent that sees the count sees
 * the child queued), then counts itself as proceeded and writes one byte.
 */
static pid_t
fork_waiter(mp_cond_t *c, struct counts *k, int result_fd)
{
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid != 0) {
		return pid;
	}
	if (mp_cond_acquire(c, MP_FOREVER) != 0) {
		_exit(2);
	}
	k->waiting++;
	int rv = mp_cond_wait(c, MP_FOREVER);
	k->proceeded++;
	if (mp_cond_release(c) != 0) {
		_exit(3);
	}
	char b = rv == 0 ? 'w' : 'x';
	if (write(result_fd, &b, 1) != 1) {
		_exit(4);
	}
	_exit(rv == 0 ? 0 : 1);
}

Test(condition, misuse_and_timeouts)
{
	mp_cond_t *c;
	expect_ok(mp_cond_new(NULL, &c));
	expect_err(mp_cond_wait(c, 10), -EPERM);
	expect_err(mp_cond_notify(c, 1), -EPERM);
	expect_err(mp_cond_notify_all(c), -EPERM);
	expect_ok(mp_cond_acquire(c, MP_FOREVER));
	expect_err(mp_cond_wait(c, -5), -EINVAL);
	expect_err(mp_cond_wait(c, MP_NOWAIT), -EAGAIN);
	expect_err(mp_cond_wait(c, 5), -ETIMEDOUT);
	cr_assert(mp_lock_is_mine(mp_cond_lock(c)), "held after a timeout");
	expect_ok(mp_cond_notify(c, 3));
	expect_ok(mp_cond_notify_all(c));
	expect_ok(mp_cond_release(c));
	expect_err(mp_cond_release(c), -EPERM);
	mp_cond_free(c);
	mp_cond_free(NULL);
}

Test(condition, needs_a_lock_in_the_arena)
{
	/* A named lock lives in its own mapping, not in the arena. */
	char name[64];
	snprintf(name, sizeof(name), "test-cond-lock-%d", (int)getpid());
	mp_lock_t *named;
	expect_ok(mp_lock_open(name, MP_CREATE | MP_EXCL, &named));
	mp_cond_t *c;
	expect_err(mp_cond_new(named, &c), -EINVAL);
	mp_lock_close(named);
	expect_ok(mp_lock_unlink(name));
}

static bool
never(void *arg)
{
	(void)arg;
	return false;
}

static bool
at_least_three(void *arg)
{
	return ((struct counts *)arg)->value >= 3;
}

Test(condition, wait_for_returns_when_the_predicate_holds)
{
	struct counts *k = counts_map();
	mp_lock_t *lock;
	expect_ok(mp_lock_new(&lock));
	mp_cond_t *c;
	expect_ok(mp_cond_new(lock, &c));
	cr_assert_eq(mp_cond_lock(c), lock);
	expect_err(mp_cond_wait_for(c, never, NULL, 5), -EPERM);
	expect_ok(mp_lock_acquire(lock, MP_FOREVER));
	expect_err(mp_cond_wait_for(c, never, NULL, MP_NOWAIT), -EAGAIN);
	expect_err(mp_cond_wait_for(c, never, NULL, 10), -ETIMEDOUT);
	cr_assert(mp_lock_is_mine(lock));
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		/* Raise value one step at a time, notifying each step. */
		for (int i = 0; i < 5; i++) {
			if (mp_lock_acquire(lock, MP_FOREVER) != 0) {
				_exit(2);
			}
			k->value++;
			mp_cond_notify_all(c);
			mp_lock_release(lock);
		}
		_exit(0);
	}
	expect_ok(mp_cond_wait_for(c, at_least_three, k, 60000));
	cr_assert_geq(k->value, 3);
	expect_ok(mp_lock_release(lock));
	cr_assert_eq(reap(pid), 0);
	mp_cond_free(c);
	mp_lock_free(lock);
	munmap(k, sizeof(*k));
}

Test(condition, wait_releases_an_rlock_fully_and_restores_its_depth)
{
	mp_cond_t *c;
	expect_ok(mp_cond_new(NULL, &c));
	mp_rlock_t *lock = mp_cond_lock(c);
	for (int i = 0; i < 3; i++) {
		expect_ok(mp_cond_acquire(c, MP_FOREVER));
	}
	cr_assert_eq(mp_rlock_count(lock), 3);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		/* Only possible if the parent's wait released all 3 levels. */
		if (mp_cond_acquire(c, 60000) != 0) {
			_exit(2);
		}
		mp_cond_notify(c, 1);
		mp_cond_release(c);
		_exit(0);
	}
	expect_ok(mp_cond_wait(c, MP_FOREVER));
	cr_assert_eq(mp_rlock_count(lock), 3, "depth restored");
	cr_assert_eq(reap(pid), 0);
	for (int i = 0; i < 3; i++) {
		expect_ok(mp_cond_release(c));
	}
	expect_err(mp_cond_release(c), -EPERM);
	mp_cond_free(c);
}

Test(condition, notify_n_wakes_exactly_n)
{
	enum { N = 6 };
	struct counts *k = counts_map();
	mp_cond_t *c;
	expect_ok(mp_cond_new(NULL, &c));
	int res[2];
	cr_assert(pipe2(res, O_CLOEXEC) == 0);
	pid_t pids[N];
	for (int i = 0; i < N; i++) {
		pids[i] = fork_waiter(c, k, res[1]);
	}
	await_waiting(c, k, N);
	char buf[N];

	expect_ok(mp_cond_acquire(c, MP_FOREVER));
	expect_ok(mp_cond_notify(c, 2));
	expect_ok(mp_cond_release(c));
	read_bytes(res[0], buf, 2);
	expect_ok(mp_cond_acquire(c, MP_FOREVER));
	cr_assert_eq(k->proceeded, 2, "notify(2) woke %d", k->proceeded);
	expect_ok(mp_cond_notify(c, 1));
	expect_ok(mp_cond_release(c));
	read_bytes(res[0], buf + 2, 1);
	expect_ok(mp_cond_acquire(c, MP_FOREVER));
	cr_assert_eq(k->proceeded, 3, "notify(1) woke %d", k->proceeded - 2);
	expect_ok(mp_cond_notify(c, 0));
	expect_ok(mp_cond_notify_all(c));
	expect_ok(mp_cond_release(c));
	read_bytes(res[0], buf + 3, N - 3);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(buf[i], 'w');
		cr_assert_eq(reap(pids[i]), 0);
	}
	cr_assert_eq(k->proceeded, N);
	close(res[0]);
	close(res[1]);
	mp_cond_free(c);
	munmap(k, sizeof(*k));
}

Test(condition, notify_wakes_the_oldest_waiters_first)
{
	enum { N = 4 };
	struct counts *k = counts_map();
	mp_cond_t *c;
	expect_ok(mp_cond_new(NULL, &c));
	int res[2];
	cr_assert(pipe2(res, O_CLOEXEC) == 0);
	pid_t pids[N];
	for (int i = 0; i < N; i++) {
		pids[i] = fork_waiter(c, k, res[1]);
		await_waiting(c, k, i + 1);
	}
	for (int i = 0; i < N; i++) {
		char b;
		expect_ok(mp_cond_acquire(c, MP_FOREVER));
		expect_ok(mp_cond_notify(c, 1));
		expect_ok(mp_cond_release(c));
		read_bytes(res[0], &b, 1);
		/* The oldest waiter was pids[i]: it is the one that exits. */
		cr_assert_eq(reap(pids[i]), 0);
	}
	close(res[0]);
	close(res[1]);
	mp_cond_free(c);
	munmap(k, sizeof(*k));
}

Test(condition, a_killed_waiter_does_not_swallow_a_notification)
{
	struct counts *k = counts_map();
	mp_cond_t *c;
	expect_ok(mp_cond_new(NULL, &c));
	int res[2];
	cr_assert(pipe2(res, O_CLOEXEC) == 0);
	pid_t victim = fork_waiter(c, k, res[1]);
	await_waiting(c, k, 1);
	pid_t live = fork_waiter(c, k, res[1]);
	await_waiting(c, k, 2);
	cr_assert(kill(victim, SIGKILL) == 0);
	cr_assert_eq(reap(victim), 100 + SIGKILL);
	/* The victim is the oldest waiter: notify(1) must skip it. */
	expect_ok(mp_cond_acquire(c, MP_FOREVER));
	expect_ok(mp_cond_notify(c, 1));
	expect_ok(mp_cond_release(c));
	char b;
	read_bytes(res[0], &b, 1);
	cr_assert_eq(b, 'w');
	cr_assert_eq(reap(live), 0);
	close(res[0]);
	close(res[1]);
	mp_cond_free(c);
	munmap(k, sizeof(*k));
}

Test(condition, a_dead_lock_holder_surfaces_as_eownerdead)
{
	mp_cond_t *c;
	expect_ok(mp_cond_new(NULL, &c));
	expect_ok(mp_cond_acquire(c, MP_FOREVER));
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		/* Take the lock the parent's wait releases, notify, die. */
		if (mp_cond_acquire(c, 60000) != 0) {
			_exit(2);
		}
		mp_cond_notify(c, 1);
		_exit(0);
	}
	expect_err(mp_cond_wait(c, MP_FOREVER), -EOWNERDEAD);
	cr_assert(mp_lock_is_mine(mp_cond_lock(c)));
	expect_ok(mp_lock_mark_consistent(mp_cond_lock(c)));
	cr_assert_eq(reap(pid), 0);
	expect_ok(mp_cond_release(c));
	expect_ok(mp_cond_acquire(c, MP_NOWAIT));
	expect_ok(mp_cond_release(c));
	mp_cond_free(c);
}

struct thread_waiter {
	mp_cond_t *c;
	struct counts *k;
	int rv;
};

static void *
thread_wait(void *arg)
{
	struct thread_waiter *t = arg;
	t->rv = mp_cond_acquire(t->c, MP_FOREVER);
	if (t->rv == 0) {
		t->k->waiting++;
		t->rv = mp_cond_wait(t->c, MP_FOREVER);
		t->k->proceeded++;
		mp_cond_release(t->c);
	}
	return NULL;
}

Test(condition, threads_are_waiters_too_up_to_the_limit)
{
	enum { N = MP_COND_MAX_WAITERS };
	struct counts *k = counts_map();
	mp_cond_t *c;
	expect_ok(mp_cond_new(NULL, &c));
	static struct thread_waiter t[N];
	static pthread_t th[N];
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (int i = 0; i < N; i++) {
		t[i] = (struct thread_waiter){ .c = c, .k = k };
		cr_assert(pthread_create(&th[i], &attr, thread_wait,
		    &t[i]) == 0);
	}
	pthread_attr_destroy(&attr);
	await_waiting(c, k, N);
	expect_ok(mp_cond_acquire(c, MP_FOREVER));
	expect_err(mp_cond_wait(c, MP_FOREVER), -ENOSPC);
	cr_assert(mp_lock_is_mine(mp_cond_lock(c)));
	expect_ok(mp_cond_notify(c, 10));
	expect_ok(mp_cond_release(c));
	for (;;) {
		expect_ok(mp_cond_acquire(c, MP_FOREVER));
		int done = k->proceeded;
		expect_ok(mp_cond_release(c));
		if (done == 10) {
			break;
		}
		cr_assert_lt(done, 10, "notify(10) woke %d threads", done);
		sched_yield();
	}
	expect_ok(mp_cond_acquire(c, MP_FOREVER));
	expect_err(mp_cond_wait(c, 1), -ETIMEDOUT);
	expect_ok(mp_cond_notify_all(c));
	expect_ok(mp_cond_release(c));
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		expect_ok(t[i].rv);
	}
	cr_assert_eq(k->proceeded, N);
	mp_cond_free(c);
	munmap(k, sizeof(*k));
}

Test(condition, named_condition_is_shared_with_an_unrelated_process)
{
	char name[64];
	snprintf(name, sizeof(name), "test-cond-%d", (int)getpid());
	mp_cond_t *c;
	expect_ok(mp_cond_open(name, MP_CREATE | MP_EXCL, &c));
	mp_cond_t *again;
	expect_err(mp_cond_open(name, MP_CREATE | MP_EXCL, &again), -EEXIST);
	expect_ok(mp_cond_acquire(c, MP_FOREVER));
	setenv("MP_TEST_COND_HELPER", name, 1);
	const char *argv[] = { "/proc/self/exe", NULL };
	struct mp_test_child child;
	mp_test_spawn(argv, &child);
	unsetenv("MP_TEST_COND_HELPER");
	/* The helper needs the lock, which only this wait releases. */
	expect_ok(mp_cond_wait(c, 60000));
	expect_ok(mp_cond_release(c));
	cr_assert_eq(mp_test_wait(&child, 60000), 0);
	mp_cond_close(c);
	expect_ok(mp_cond_unlink(name));
	expect_err(mp_cond_open(name, 0, &c), -ENOENT);
}
