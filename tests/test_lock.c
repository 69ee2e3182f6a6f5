/* SPDX-License-Identifier: MIT */
/* test_lock.c: Lock and RLock: semantics, ownership, contention, names. */
#include "harness/harness.h"
#include "sync/lock_internal.h"

#include <mproc/sync.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

MP_TEST_SUITE(lock);

Test(lock, acquire_release_and_ownership)
{
	mp_lock_t *l;
	expect_ok(mp_lock_new(&l));
	cr_assert_not(mp_lock_is_mine(l));
	cr_assert_eq(mp_rlock_count(l), 0);
	expect_ok(mp_lock_acquire(l, MP_FOREVER));
	cr_assert(mp_lock_is_mine(l));
	cr_assert_eq(mp_rlock_count(l), 1);
	expect_ok(mp_lock_release(l));
	cr_assert_not(mp_lock_is_mine(l));
	expect_ok(mp_lock_acquire(l, MP_NOWAIT));
	expect_ok(mp_lock_release(l));
	expect_ok(mp_lock_acquire(l, 100));
	expect_ok(mp_lock_release(l));
	mp_lock_free(l);
	mp_lock_free(NULL);
}

Test(lock, reacquire_by_owner_is_edeadlk)
{
	mp_lock_t *l;
	expect_ok(mp_lock_new(&l));
	expect_ok(mp_lock_acquire(l, MP_FOREVER));
	expect_err(mp_lock_acquire(l, MP_FOREVER), -EDEADLK);
	expect_err(mp_lock_acquire(l, MP_NOWAIT), -EDEADLK);
	expect_err(mp_lock_acquire(l, 10), -EDEADLK);
	cr_assert(mp_lock_is_mine(l), "still held after the refused acquire");
	expect_ok(mp_lock_release(l));
	mp_lock_free(l);
}

Test(lock, release_when_not_held_is_eperm)
{
	mp_lock_t *l;
	mp_rlock_t *r;
	expect_ok(mp_lock_new(&l));
	expect_ok(mp_rlock_new(&r));
	expect_err(mp_lock_release(l), -EPERM);
	expect_err(mp_rlock_release(r), -EPERM);
	expect_ok(mp_lock_acquire(l, MP_FOREVER));
	expect_ok(mp_lock_release(l));
	expect_err(mp_lock_release(l), -EPERM);
	expect_err(mp_lock_mark_consistent(l), -EPERM);
	expect_ok(mp_lock_acquire(l, MP_FOREVER));
	expect_err(mp_lock_mark_consistent(l), -EINVAL);
	expect_ok(mp_lock_release(l));
	mp_lock_free(l);
	mp_rlock_free(r);
}

/* The child holds the lock until told over the pipe; parent probes it. */
Test(lock, held_by_another_process_nowait_and_timeout)
{
	mp_lock_t *l;
	expect_ok(mp_lock_new(&l));
	int up[2], down[2];
	mp_test_pipe(up);
	mp_test_pipe(down);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int rv = mp_lock_acquire(l, MP_FOREVER);
		mp_test_send_int(up[1], rv);
		mp_test_recv_byte(down[0]);
		mp_test_send_int(up[1], mp_lock_release(l));
		_exit(0);
	}
	expect_ok(mp_test_recv_int(up[0]));
	cr_assert_not(mp_lock_is_mine(l));
	expect_err(mp_lock_acquire(l, MP_NOWAIT), -EAGAIN);
	expect_err(mp_lock_acquire(l, 1), -ETIMEDOUT);
	expect_err(mp_lock_acquire(l, 30), -ETIMEDOUT);
	/* Python lets any process release a Lock; we refuse. */
	expect_err(mp_lock_release(l), -EPERM);
	mp_test_send_byte(down[1], 'r');
	expect_ok(mp_test_recv_int(up[0]));
	expect_ok(mp_lock_acquire(l, MP_FOREVER));
	expect_ok(mp_lock_release(l));
	cr_assert_eq(mp_test_reap(pid), 0);
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
	mp_lock_free(l);
}

/* A waiter blocked in another process is woken by the release. */
Test(lock, release_wakes_a_sleeping_process)
{
	mp_lock_t *l;
	expect_ok(mp_lock_new(&l));
	expect_ok(mp_lock_acquire(l, MP_FOREVER));
	int up[2];
	mp_test_pipe(up);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		mp_test_send_byte(up[1], 's');
		int rv = mp_lock_acquire(l, MP_FOREVER);
		int rv2 = mp_lock_release(l);
		mp_test_send_int(up[1], rv != 0 ? rv : rv2);
		_exit(0);
	}
	cr_assert_eq(mp_test_recv_byte(up[0]), 's');
	expect_ok(mp_lock_release(l));
	expect_ok(mp_test_recv_int(up[0]));
	cr_assert_eq(mp_test_reap(pid), 0);
	close(up[0]);
	close(up[1]);
	mp_lock_free(l);
}

Test(lock, rlock_recursion_depths)
{
	mp_rlock_t *r;
	expect_ok(mp_rlock_new(&r));
	for (unsigned depth = 1; depth <= 1000; depth++) {
		for (unsigned i = 0; i < depth; i++) {
			int64_t t = i % 3 == 0 ? MP_FOREVER :
			    (i % 3 == 1 ? MP_NOWAIT : 5);
			expect_ok(mp_rlock_acquire(r, t));
		}
		cr_assert_eq(mp_rlock_count(r), depth);
		for (unsigned i = depth; i > 0; i--) {
			cr_assert(mp_rlock_is_mine(r));
			expect_ok(mp_rlock_release(r));
			cr_assert_eq(mp_rlock_count(r), i - 1);
		}
		cr_assert_not(mp_rlock_is_mine(r));
		expect_err(mp_rlock_release(r), -EPERM);
	}
	mp_rlock_free(r);
}

/* An RLock held at depth d stays held for others until d releases. */
Test(lock, rlock_is_held_until_the_last_release)
{
	mp_rlock_t *r;
	expect_ok(mp_rlock_new(&r));
	static const unsigned depths[] = { 1, 2, 7, 1000 };
	for (size_t k = 0; k < MP__ARRAY_LEN(depths); k++) {
		unsigned d = depths[k];
		for (unsigned i = 0; i < d; i++) {
			expect_ok(mp_rlock_acquire(r, MP_FOREVER));
		}
		int up[2], down[2];
		mp_test_pipe(up);
		mp_test_pipe(down);
		pid_t pid = fork();
		cr_assert(pid >= 0);
		if (pid == 0) {
			/* Not the owner: blocked, and cannot release. */
			mp_test_send_int(up[1], mp_rlock_acquire(r, MP_NOWAIT));
			mp_test_send_int(up[1], mp_rlock_release(r));
			mp_test_recv_byte(down[0]);
			mp_test_send_int(up[1], mp_rlock_acquire(r, MP_NOWAIT));
			mp_test_send_int(up[1], (int)mp_rlock_count(r));
			mp_test_send_int(up[1], mp_rlock_release(r));
			_exit(0);
		}
		expect_err(mp_test_recv_int(up[0]), -EAGAIN);
		expect_err(mp_test_recv_int(up[0]), -EPERM);
		for (unsigned i = 0; i < d; i++) {
			expect_ok(mp_rlock_release(r));
		}
		mp_test_send_byte(down[1], 'g');
		expect_ok(mp_test_recv_int(up[0]));
		cr_assert_eq(mp_test_recv_int(up[0]), 1);
		expect_ok(mp_test_recv_int(up[0]));
		cr_assert_eq(mp_test_reap(pid), 0);
		close(up[0]);
		close(up[1]);
		close(down[0]);
		close(down[1]);
	}
	mp_rlock_free(r);
}

struct thread_arg {
	mp_lock_t *l;
	uint64_t *counter;
	int n;
	int rv;
};

static void *
thread_release_other(void *p)
{
	struct thread_arg *a = p;
	a->rv = mp_lock_release(a->l);
	if (a->rv == -EPERM) {
		a->rv = mp_lock_acquire(a->l, MP_NOWAIT) == -EAGAIN ? 0 : -1;
	}
	return NULL;
}

Test(lock, threads_are_distinct_owners)
{
	mp_lock_t *l;
	mp_rlock_t *r;
	expect_ok(mp_lock_new(&l));
	expect_ok(mp_rlock_new(&r));
	expect_ok(mp_lock_acquire(l, MP_FOREVER));
	expect_ok(mp_rlock_acquire(r, MP_FOREVER));
	expect_ok(mp_rlock_acquire(r, MP_FOREVER));
	struct thread_arg a = { .l = l }, b = { .l = r };
	pthread_t t;
	cr_assert(pthread_create(&t, NULL, thread_release_other, &a) == 0);
	pthread_join(t, NULL);
	cr_assert(pthread_create(&t, NULL, thread_release_other, &b) == 0);
	pthread_join(t, NULL);
	expect_ok(a.rv);
	expect_ok(b.rv);
	cr_assert_eq(mp_rlock_count(r), 2);
	expect_ok(mp_lock_release(l));
	expect_ok(mp_rlock_release(r));
	expect_ok(mp_rlock_release(r));
	mp_lock_free(l);
	mp_rlock_free(r);
}

static void *
thread_increment(void *p)
{
	struct thread_arg *a = p;
	a->rv = 0;
	for (int i = 0; i < a->n && a->rv == 0; i++) {
		int rv = mp_lock_acquire(a->l, i % 2 == 0 ? MP_FOREVER : 60000);
		if (rv != 0) {
			a->rv = rv;
			break;
		}
		(*a->counter)++;
		a->rv = mp_lock_release(a->l);
	}
	return NULL;
}

Test(lock, threads_contending_count_exactly)
{
	mp_lock_t *l;
	expect_ok(mp_lock_new(&l));
	uint64_t counter = 0;
	enum { NTHREADS = 4, N = 100000 };
	struct thread_arg a[NTHREADS];
	pthread_t t[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		a[i] = (struct thread_arg){
			.l = l, .counter = &counter, .n = N
		};
		cr_assert(pthread_create(&t[i], NULL, thread_increment,
		    &a[i]) == 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(t[i], NULL);
		expect_ok(a[i].rv);
	}
	cr_assert_eq(counter, (uint64_t)NTHREADS * N);
	mp_lock_free(l);
}

/*
 * Eight processes hammer one lock. The waiters' periodic owner check is
 * pushed out of reach, so a release that failed to wake a sleeper would
 * hang the case (and CTest's timeout would fail it) instead of costing 50
 * ms. unregistered_every: every how many processes one acts as if its
 * kernel had no membarrier (0: none), releasing with a full fence instead
 * of a plain store: both kinds must mix on one lock.
 */
static void
count_with_processes(int unregistered_every)
{
	enum { NPROC = 8, N = 100000 };
	mp_lock_t *l;
	expect_ok(mp_lock_new(&l));
	int64_t saved_slice = mp__lock_check_slice_ns;
	mp__lock_check_slice_ns = 3600 * 1000000000LL;
	volatile uint64_t *counter = mp_test_shared_map(4096);
	pid_t pids[NPROC];
	for (int p = 0; p < NPROC; p++) {
		pids[p] = fork();
		cr_assert(pids[p] >= 0);
		if (pids[p] == 0) {
			if (unregistered_every > 0 &&
			    p % unregistered_every == 0) {
				mp__fence_light_allowed = false;
			}
			for (int i = 0; i < N; i++) {
				if (mp_lock_acquire(l, MP_FOREVER) != 0) {
					_exit(1);
				}
				*counter = *counter + 1;
				if (mp_lock_release(l) != 0) {
					_exit(2);
				}
			}
			/* A refused process must not use the plain store. */
			_exit(mp__fence_light_ok() &&
			    !mp__fence_light_allowed ? 3 : 0);
		}
	}
	for (int p = 0; p < NPROC; p++) {
		cr_assert_eq(mp_test_reap(pids[p]), 0);
	}
	mp__lock_check_slice_ns = saved_slice;
	cr_assert_eq(*counter, (uint64_t)NPROC * N);
	munmap((void *)counter, 4096);
	mp_lock_free(l);
}

Test(lock, eight_processes_count_exactly)
{
	count_with_processes(0);
}

Test(lock, eight_processes_some_without_membarrier)
{
	count_with_processes(2);
}

Test(lock, eight_processes_none_with_membarrier)
{
	count_with_processes(1);
}

Test(lock, release_save_and_acquire_restore)
{
	mp_rlock_t *r;
	expect_ok(mp_rlock_new(&r));
	struct mp__lock_saved st;
	expect_err(mp__lock_release_save(r, &st), -EPERM);
	for (int i = 0; i < 5; i++) {
		expect_ok(mp_rlock_acquire(r, MP_FOREVER));
	}
	expect_ok(mp__lock_release_save(r, &st));
	cr_assert_not(mp_rlock_is_mine(r));
	int up[2];
	mp_test_pipe(up);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int rv = mp_rlock_acquire(r, MP_NOWAIT);
		mp_test_send_int(up[1], rv == 0 ? mp_rlock_release(r) : rv);
		_exit(0);
	}
	expect_ok(mp_test_recv_int(up[0]));
	cr_assert_eq(mp_test_reap(pid), 0);
	expect_ok(mp__lock_acquire_restore(r, &st, -1));
	cr_assert_eq(mp_rlock_count(r), 5);
	for (int i = 0; i < 5; i++) {
		expect_ok(mp_rlock_release(r));
	}
	expect_err(mp_rlock_release(r), -EPERM);
	close(up[0]);
	close(up[1]);
	mp_rlock_free(r);
}

static void
lock_name(char *buf, size_t size, const char *what)
{
	snprintf(buf, size, "test-%s-%d", what, (int)getpid());
}

/* A forked child opens the lock by name: its own mapping, not the parent's. */
Test(lock, named_lock_shared_by_name)
{
	char name[64];
	lock_name(name, sizeof(name), "named");
	mp_lock_t *l;
	expect_err(mp_lock_open(name, 0, &l), -ENOENT);
	expect_ok(mp_lock_open(name, MP_CREATE | MP_EXCL, &l));
	mp_lock_t *again;
	expect_err(mp_lock_open(name, MP_CREATE | MP_EXCL, &again), -EEXIST);
	expect_err(mp_rlock_open(name, 0, &again), -EPROTO);
	expect_ok(mp_lock_acquire(l, MP_FOREVER));
	int up[2], down[2];
	mp_test_pipe(up);
	mp_test_pipe(down);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		mp_lock_t *mine;
		int rv = mp_lock_open(name, 0, &mine);
		mp_test_send_int(up[1], rv);
		if (rv != 0) {
			_exit(1);
		}
		mp_test_send_int(up[1], mine != l ? 0 : -1);
		mp_test_send_int(up[1], mp_lock_acquire(mine, MP_NOWAIT));
		mp_test_recv_byte(down[0]);
		mp_test_send_int(up[1], mp_lock_acquire(mine, MP_FOREVER));
		mp_test_send_int(up[1], mp_lock_release(mine));
		mp_lock_close(mine);
		_exit(0);
	}
	expect_ok(mp_test_recv_int(up[0]));
	expect_ok(mp_test_recv_int(up[0]));
	expect_err(mp_test_recv_int(up[0]), -EAGAIN);
	expect_ok(mp_lock_release(l));
	mp_test_send_byte(down[1], 'g');
	expect_ok(mp_test_recv_int(up[0]));
	expect_ok(mp_test_recv_int(up[0]));
	cr_assert_eq(mp_test_reap(pid), 0);
	expect_ok(mp_lock_open(name, MP_CREATE, &again));
	cr_assert_neq(again, l);
	mp_lock_close(again);
	expect_ok(mp_lock_unlink(name));
	expect_err(mp_lock_unlink(name), -ENOENT);
	mp_lock_close(l);
	mp_lock_close(NULL);
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
}

Test(lock, named_rlock_and_bad_names)
{
	char name[64];
	lock_name(name, sizeof(name), "rnamed");
	mp_rlock_t *r;
	mp_lock_t *l;
	expect_err(mp_rlock_open("", MP_CREATE, &r), -EINVAL);
	expect_err(mp_rlock_open("a/b", MP_CREATE, &r), -EINVAL);
	expect_err(mp_rlock_open(name, 0x100, &r), -EINVAL);
	expect_err(mp_lock_unlink("a/b"), -EINVAL);
	expect_ok(mp_rlock_open(name, MP_CREATE, &r));
	expect_err(mp_lock_open(name, 0, &l), -EPROTO);
	expect_ok(mp_rlock_acquire(r, MP_FOREVER));
	expect_ok(mp_rlock_acquire(r, MP_FOREVER));
	cr_assert_eq(mp_rlock_count(r), 2);
	expect_ok(mp_rlock_release(r));
	expect_ok(mp_rlock_release(r));
	expect_ok(mp_rlock_unlink(name));
	mp_rlock_close(r);
}
