/* SPDX-License-Identifier: MIT */
/* test_event.c: Event across processes, timeouts, named events. */
#include "harness/harness.h"

#include <mproc/event.h>

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>

MP_TEST_SUITE(event);

/*
 * An unrelated process: the test binary executed again with
 * MP_TEST_EVENT_HELPER=<name> runs this instead of Criterion's main. It
 * opens the named event, waits for it (the test sets it), clears it and
 * exits 0, or exits with a code naming what failed.
 */
__attribute__((constructor)) static void
event_helper(void)
{
	const char *name = getenv("MP_TEST_EVENT_HELPER");
	if (name == NULL) {
		return;
	}
	mp_event_t *e;
	if (mp_event_open(name, 0, &e) != 0) {
		_exit(10);
	}
	printf("ready\n");
	fflush(stdout);
	int rv = mp_event_wait(e, 60000);
	if (rv != 0) {
		_exit(11);
	}
	mp_event_clear(e);
	mp_event_close(e);
	_exit(0);
}

/* Read one byte per child from fd (the children's "ready" or result). */
static void
read_bytes(int fd, char *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		cr_assert(r > 0 || (r < 0 && errno == EINTR), "read: %zd", r);
		if (r > 0) {
			got += (size_t)r;
		}
	}
}

/*
 * Wait until process pid sleeps in the kernel (state S in /proc): then it
 * has passed its spin and sits in futex_wait. Polls, no fixed sleep.
 */
static void
await_sleeping(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (;;) {
		char buf[512];
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		cr_assert(fd >= 0);
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		cr_assert(n > 0);
		buf[n] = '\0';
		char *p = strrchr(buf, ')');
		if (p != NULL && p[2] == 'S') {
			return;
		}
		sched_yield();
	}
}

static int
reap(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		cr_assert(errno == EINTR);
	}
	cr_assert(WIFEXITED(status), "child died of signal %d",
	    WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return WEXITSTATUS(status);
}

Test(event, starts_clear_and_follows_set_and_clear)
{
	mp_event_t *e;
	expect_ok(mp_event_new(&e));
	cr_assert(!mp_event_is_set(e));
	expect_err(mp_event_wait(e, MP_NOWAIT), -EAGAIN);
	expect_err(mp_event_wait(e, 5), -ETIMEDOUT);
	mp_event_set(e);
	cr_assert(mp_event_is_set(e));
	expect_ok(mp_event_wait(e, MP_NOWAIT));
	expect_ok(mp_event_wait(e, MP_FOREVER));
	mp_event_set(e);
	cr_assert(mp_event_is_set(e), "setting twice keeps it set");
	mp_event_clear(e);
	cr_assert(!mp_event_is_set(e));
	expect_err(mp_event_wait(e, 1), -ETIMEDOUT);
	mp_event_clear(e);
	cr_assert(!mp_event_is_set(e));
	mp_event_free(e);
	mp_event_free(NULL);
}

Test(event, rejects_bad_timeouts)
{
	mp_event_t *e;
	expect_ok(mp_event_new(&e));
	expect_err(mp_event_wait(e, -2), -EINVAL);
	mp_event_free(e);
}

/* Each child reports readiness, waits, and writes its result. */
static void
waiter_child(mp_event_t *e, int ready_fd, int result_fd)
{
	char c = 'r';
	if (write(ready_fd, &c, 1) != 1) {
		_exit(2);
	}
	int rv = mp_event_wait(e, MP_FOREVER);
	c = rv == 0 ? 'w' : 'x';
	if (write(result_fd, &c, 1) != 1) {
		_exit(2);
	}
	_exit(0);
}

Test(event, set_wakes_every_sleeping_waiter)
{
	enum { N = 5 };
	mp_event_t *e;
	expect_ok(mp_event_new(&e));
	int ready[2], result[2];
	cr_assert(pipe2(ready, O_CLOEXEC) == 0);
	cr_assert(pipe2(result, O_CLOEXEC) == 0);
	pid_t pids[N];
	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		cr_assert(pids[i] >= 0);
		if (pids[i] == 0) {
			waiter_child(e, ready[1], result[1]);
		}
	}
	char buf[N];
	read_bytes(ready[0], buf, N);
	for (int i = 0; i < N; i++) {
		await_sleeping(pids[i]);
	}
	mp_event_set(e);
	read_bytes(result[0], buf, N);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(buf[i], 'w', "every waiter returned 0");
		cr_assert_eq(reap(pids[i]), 0);
	}
	close(ready[0]);
	close(ready[1]);
	close(result[0]);
	close(result[1]);
	mp_event_free(e);
}

Test(event, a_set_cleared_at_once_still_releases_the_waiters)
{
	enum { N = 3 };
	mp_event_t *e;
	expect_ok(mp_event_new(&e));
	int ready[2], result[2];
	cr_assert(pipe2(ready, O_CLOEXEC) == 0);
	cr_assert(pipe2(result, O_CLOEXEC) == 0);
	pid_t pids[N];
	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		cr_assert(pids[i] >= 0);
		if (pids[i] == 0) {
			waiter_child(e, ready[1], result[1]);
		}
	}
	char buf[N];
	read_bytes(ready[0], buf, N);
	for (int i = 0; i < N; i++) {
		await_sleeping(pids[i]);
	}
	mp_event_set(e);
	mp_event_clear(e);
	read_bytes(result[0], buf, N);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(buf[i], 'w', "threading.Event semantics");
		cr_assert_eq(reap(pids[i]), 0);
	}
	cr_assert(!mp_event_is_set(e));
	close(ready[0]);
	close(ready[1]);
	close(result[0]);
	close(result[1]);
	mp_event_free(e);
}

Test(event, ping_pong_between_two_processes)
{
	enum { ROUNDS = 20000 };
	mp_event_t *ping, *pong;
	expect_ok(mp_event_new(&ping));
	expect_ok(mp_event_new(&pong));
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		for (int i = 0; i < ROUNDS; i++) {
			if (mp_event_wait(ping, 60000) != 0) {
				_exit(1);
			}
			mp_event_clear(ping);
			mp_event_set(pong);
		}
		_exit(0);
	}
	for (int i = 0; i < ROUNDS; i++) {
		mp_event_set(ping);
		expect_ok(mp_event_wait(pong, 60000));
		mp_event_clear(pong);
	}
	cr_assert_eq(reap(pid), 0);
	mp_event_free(ping);
	mp_event_free(pong);
}

Test(event, a_waiter_times_out_while_another_is_released)
{
	mp_event_t *e;
	expect_ok(mp_event_new(&e));
	int ready[2], result[2];
	cr_assert(pipe2(ready, O_CLOEXEC) == 0);
	cr_assert(pipe2(result, O_CLOEXEC) == 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		waiter_child(e, ready[1], result[1]);
	}
	char c;
	read_bytes(ready[0], &c, 1);
	expect_err(mp_event_wait(e, 20), -ETIMEDOUT);
	mp_event_set(e);
	read_bytes(result[0], &c, 1);
	cr_assert_eq(c, 'w');
	cr_assert_eq(reap(pid), 0);
	close(ready[0]);
	close(ready[1]);
	close(result[0]);
	close(result[1]);
	mp_event_free(e);
}

static void
unique_name(char *buf, size_t size, const char *what)
{
	snprintf(buf, size, "test-%s-%d", what, (int)getpid());
}

Test(event, named_event_is_shared_with_an_unrelated_process)
{
	char name[64];
	unique_name(name, sizeof(name), "event");
	mp_event_t *e;
	expect_ok(mp_event_open(name, MP_CREATE | MP_EXCL, &e));
	mp_event_t *again;
	expect_err(mp_event_open(name, MP_CREATE | MP_EXCL, &again), -EEXIST);
	expect_ok(mp_event_open(name, 0, &again));
	cr_assert_neq(e, again, "a second mapping of the same event");
	mp_event_set(again);
	cr_assert(mp_event_is_set(e));
	mp_event_clear(e);
	mp_event_close(again);

	setenv("MP_TEST_EVENT_HELPER", name, 1);
	const char *argv[] = { "/proc/self/exe", NULL };
	struct mp_test_child child;
	mp_test_spawn(argv, &child);
	unsetenv("MP_TEST_EVENT_HELPER");
	char line[32];
	cr_assert_gt(mp_test_read_line(child.out_fd, line, sizeof(line),
	    60000), 0);
	cr_assert_str_eq(line, "ready");
	await_sleeping(child.pid);
	mp_event_set(e);
	cr_assert_eq(mp_test_wait(&child, 60000), 0, "the helper saw the set");
	cr_assert(!mp_event_is_set(e), "and cleared it for us");
	mp_event_close(e);
	expect_ok(mp_event_unlink(name));
	expect_err(mp_event_open(name, 0, &e), -ENOENT);
	expect_err(mp_event_unlink(name), -ENOENT);
}

Test(event, named_open_errors)
{
	mp_event_t *e;
	expect_err(mp_event_open("", MP_CREATE, &e), -EINVAL);
	expect_err(mp_event_open("a/b", MP_CREATE, &e), -EINVAL);
	expect_err(mp_event_open("x", 0x40, &e), -EINVAL);
	char name[64];
	unique_name(name, sizeof(name), "absent");
	expect_err(mp_event_open(name, 0, &e), -ENOENT);
}
