/* SPDX-License-Identifier: MIT */
/* test_semaphore.c: Semaphore and BoundedSemaphore. */
#include "harness/harness.h"

#include <mproc/sync.h>

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

MP_TEST_SUITE(semaphore);

static int
value_of(mp_sem_t *s)
{
	int v = -1;
	expect_ok(mp_sem_get_value(s, &v));
	return v;
}

Test(semaphore, counts_down_and_up)
{
	mp_sem_t *s;
	expect_ok(mp_sem_new(3, &s));
	cr_assert_eq(value_of(s), 3);
	expect_ok(mp_sem_acquire(s, MP_NOWAIT));
	expect_ok(mp_sem_acquire(s, MP_FOREVER));
	expect_ok(mp_sem_acquire(s, 100));
	cr_assert_eq(value_of(s), 0);
	expect_err(mp_sem_acquire(s, MP_NOWAIT), -EAGAIN);
	expect_err(mp_sem_acquire(s, 1), -ETIMEDOUT);
	expect_err(mp_sem_acquire(s, 20), -ETIMEDOUT);
	cr_assert_eq(value_of(s), 0);
	expect_ok(mp_sem_release(s));
	cr_assert_eq(value_of(s), 1);
	/* An unbounded semaphore may go past its initial value. */
	for (int i = 0; i < 10; i++) {
		expect_ok(mp_sem_release(s));
	}
	cr_assert_eq(value_of(s), 11);
	for (int i = 0; i < 11; i++) {
		expect_ok(mp_sem_acquire(s, MP_NOWAIT));
	}
	expect_err(mp_sem_acquire(s, MP_NOWAIT), -EAGAIN);
	mp_sem_free(s);
	mp_sem_free(NULL);
}

Test(semaphore, zero_and_limits)
{
	mp_sem_t *s;
	expect_err(mp_sem_new((unsigned)INT32_MAX + 1, &s), -EINVAL);
	expect_err(mp_bounded_sem_new(UINT_MAX, &s), -EINVAL);
	expect_ok(mp_sem_new(0, &s));
	expect_err(mp_sem_acquire(s, MP_NOWAIT), -EAGAIN);
	mp_sem_free(s);
	expect_ok(mp_sem_new(INT32_MAX, &s));
	expect_err(mp_sem_release(s), -EOVERFLOW);
	cr_assert_eq(value_of(s), INT32_MAX);
	mp_sem_free(s);
}

/* Python: "ValueError: semaphore or lock released too many times". */
Test(semaphore, bounded_refuses_release_past_initial_value)
{
	mp_sem_t *s;
	expect_ok(mp_bounded_sem_new(2, &s));
	expect_err(mp_sem_release(s), -EOVERFLOW);
	cr_assert_eq(value_of(s), 2);
	expect_ok(mp_sem_acquire(s, MP_NOWAIT));
	expect_ok(mp_sem_acquire(s, MP_NOWAIT));
	expect_err(mp_sem_acquire(s, MP_NOWAIT), -EAGAIN);
	expect_ok(mp_sem_release(s));
	expect_ok(mp_sem_release(s));
	expect_err(mp_sem_release(s), -EOVERFLOW);
	cr_assert_eq(value_of(s), 2);
	mp_sem_free(s);
	expect_ok(mp_bounded_sem_new(0, &s));
	expect_err(mp_sem_release(s), -EOVERFLOW);
	mp_sem_free(s);
}

/* A child blocks on an empty semaphore until the parent releases it. */
Test(semaphore, release_wakes_a_process)
{
	mp_sem_t *s;
	expect_ok(mp_sem_new(0, &s));
	int up[2];
	cr_assert(pipe2(up, O_CLOEXEC) == 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		mp_test_send_int(up[1], mp_sem_acquire(s, MP_NOWAIT));
		mp_test_send_int(up[1], mp_sem_acquire(s, MP_FOREVER));
		mp_test_send_int(up[1], mp_sem_acquire(s, 60000));
		_exit(0);
	}
	expect_err(mp_test_recv_int(up[0]), -EAGAIN);
	expect_ok(mp_sem_release(s));
	expect_ok(mp_test_recv_int(up[0]));
	expect_ok(mp_sem_release(s));
	expect_ok(mp_test_recv_int(up[0]));
	cr_assert_eq(mp_test_reap(pid), 0);
	cr_assert_eq(value_of(s), 0);
	close(up[0]);
	close(up[1]);
	mp_sem_free(s);
}

/*
 * Four producers release 20,000 times each; four consumers acquire the
 * same total. Nothing is lost or created: the value ends at zero and every
 * consumer finishes.
 */
Test(semaphore, producers_and_consumers_balance)
{
	enum { NPAIRS = 4, N = 20000 };
	mp_sem_t *s;
	expect_ok(mp_sem_new(0, &s));
	pid_t pids[2 * NPAIRS];
	for (int p = 0; p < 2 * NPAIRS; p++) {
		pids[p] = fork();
		cr_assert(pids[p] >= 0);
		if (pids[p] == 0) {
			for (int i = 0; i < N; i++) {
				int64_t t = i % 2 == 0 ? MP_FOREVER : 60000;
				int rv = p % 2 == 0 ? mp_sem_release(s) :
				    mp_sem_acquire(s, t);
				if (rv != 0) {
					_exit(1);
				}
			}
			_exit(0);
		}
	}
	for (int p = 0; p < 2 * NPAIRS; p++) {
		cr_assert_eq(mp_test_reap(pids[p]), 0);
	}
	cr_assert_eq(value_of(s), 0);
	expect_err(mp_sem_acquire(s, MP_NOWAIT), -EAGAIN);
	mp_sem_free(s);
}

struct sem_thread {
	mp_sem_t *s;
	uint64_t *counter;
	int rv;
};

static void *
thread_increment(void *p)
{
	struct sem_thread *a = p;
	for (int i = 0; i < 50000; i++) {
		a->rv = mp_sem_acquire(a->s, MP_FOREVER);
		if (a->rv != 0) {
			return NULL;
		}
		(*a->counter)++;
		a->rv = mp_sem_release(a->s);
		if (a->rv != 0) {
			return NULL;
		}
	}
	return NULL;
}

/* A BoundedSemaphore(1) used as a mutex by four threads. */
Test(semaphore, bounded_one_excludes_threads)
{
	mp_sem_t *s;
	expect_ok(mp_bounded_sem_new(1, &s));
	uint64_t counter = 0;
	struct sem_thread a[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		a[i] = (struct sem_thread){ .s = s, .counter = &counter };
		cr_assert(pthread_create(&t[i], NULL, thread_increment,
		    &a[i]) == 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		expect_ok(a[i].rv);
	}
	cr_assert_eq(counter, 4 * 50000);
	cr_assert_eq(value_of(s), 1);
	mp_sem_free(s);
}

/* A forked child opens the semaphore by name, with a mapping of its own. */
Test(semaphore, named_semaphore_shared_by_name)
{
	char name[64];
	snprintf(name, sizeof(name), "test-sem-%d", (int)getpid());
	mp_sem_t *s, *other;
	expect_err(mp_sem_open(name, 0, 1, false, &s), -ENOENT);
	expect_err(mp_sem_open(name, MP_CREATE, (unsigned)INT32_MAX + 1, false,
	    &s), -EINVAL);
	expect_err(mp_sem_open("x/y", MP_CREATE, 1, false, &s), -EINVAL);
	expect_ok(mp_sem_open(name, MP_CREATE | MP_EXCL, 1, true, &s));
	expect_err(mp_sem_open(name, MP_CREATE | MP_EXCL, 1, true, &other),
	    -EEXIST);
	expect_ok(mp_sem_acquire(s, MP_NOWAIT));
	int up[2];
	cr_assert(pipe2(up, O_CLOEXEC) == 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		mp_sem_t *mine;
		/* Value and bounded-ness are ignored when it exists. */
		int rv = mp_sem_open(name, MP_CREATE, 5, false, &mine);
		mp_test_send_int(up[1], rv);
		if (rv != 0) {
			_exit(1);
		}
		mp_test_send_int(up[1], mine != s ? 0 : -1);
		mp_test_send_int(up[1], mp_sem_acquire(mine, MP_NOWAIT));
		mp_test_send_int(up[1], mp_sem_acquire(mine, MP_FOREVER));
		mp_test_send_int(up[1], mp_sem_release(mine));
		mp_test_send_int(up[1], mp_sem_release(mine));
		mp_sem_close(mine);
		_exit(0);
	}
	expect_ok(mp_test_recv_int(up[0]));
	expect_ok(mp_test_recv_int(up[0]));
	expect_err(mp_test_recv_int(up[0]), -EAGAIN);
	expect_ok(mp_sem_release(s));
	expect_ok(mp_test_recv_int(up[0]));
	expect_ok(mp_test_recv_int(up[0]));
	expect_err(mp_test_recv_int(up[0]), -EOVERFLOW);
	cr_assert_eq(mp_test_reap(pid), 0);
	cr_assert_eq(value_of(s), 1);
	expect_ok(mp_sem_unlink(name));
	expect_err(mp_sem_unlink(name), -ENOENT);
	mp_sem_close(s);
	mp_sem_close(NULL);
	close(up[0]);
	close(up[1]);
}

/* A waiter killed while it sleeps leaves the semaphore intact. */
Test(semaphore, killed_waiter_does_not_disturb_others)
{
	mp_sem_t *s;
	expect_ok(mp_sem_new(0, &s));
	int up[2];
	cr_assert(pipe2(up, O_CLOEXEC) == 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		mp_test_send_int(up[1], 0);
		mp_sem_acquire(s, MP_FOREVER);
		_exit(0);
	}
	expect_ok(mp_test_recv_int(up[0]));
	kill(pid, SIGKILL);
	cr_assert_eq(mp_test_reap(pid), -SIGKILL);
	expect_ok(mp_sem_release(s));
	cr_assert_eq(value_of(s), 1);
	expect_ok(mp_sem_acquire(s, MP_NOWAIT));
	close(up[0]);
	close(up[1]);
	mp_sem_free(s);
}

/* A name taken by a lock is not a semaphore. */
Test(semaphore, named_kinds_do_not_mix)
{
	char name[64];
	snprintf(name, sizeof(name), "test-kind-%d", (int)getpid());
	mp_lock_t *l;
	expect_ok(mp_lock_open(name, MP_CREATE | MP_EXCL, &l));
	mp_sem_t *s;
	/* Different kinds live under different names: no clash, no mix. */
	expect_err(mp_sem_open(name, 0, 1, false, &s), -ENOENT);
	expect_ok(mp_lock_unlink(name));
	mp_lock_close(l);
}
