/* SPDX-License-Identifier: MIT */
/* test_lock_death.c: Lock and RLock when their owner dies, up to 200 kills. */
#include "harness/harness.h"
#include "sync/lock_internal.h"

#include <mproc/sync.h>

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

MP_TEST_SUITE(lock_death);

struct thread_arg {
	mp_lock_t *l;
	int rv;
};

/* A child takes the lock and exits without releasing it. */
static void
die_holding(mp_lock_t *l)
{
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		_exit(mp_lock_acquire(l, MP_FOREVER) == 0 ? 0 : 1);
	}
	cr_assert_eq(mp_test_reap(pid), 0);
}

Test(lock_death, dead_owner_gives_eownerdead_then_mark_consistent)
{
	mp_lock_t *l;
	expect_ok(mp_lock_new(&l));
	die_holding(l);
	expect_err(mp_lock_acquire(l, MP_FOREVER), -EOWNERDEAD);
	cr_assert(mp_lock_is_mine(l));
	expect_ok(mp_lock_mark_consistent(l));
	expect_err(mp_lock_mark_consistent(l), -EINVAL);
	expect_ok(mp_lock_release(l));
	expect_ok(mp_lock_acquire(l, MP_FOREVER));
	expect_ok(mp_lock_release(l));
	/* NOWAIT also notices a dead owner instead of failing forever. */
	die_holding(l);
	expect_err(mp_lock_acquire(l, MP_NOWAIT), -EOWNERDEAD);
	expect_ok(mp_lock_mark_consistent(l));
	expect_ok(mp_lock_release(l));
	mp_lock_free(l);
}

Test(lock_death, dead_owner_of_an_rlock_resets_its_count)
{
	mp_rlock_t *r;
	expect_ok(mp_rlock_new(&r));
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		for (int i = 0; i < 5; i++) {
			if (mp_rlock_acquire(r, MP_FOREVER) != 0) {
				_exit(1);
			}
		}
		_exit(0);
	}
	cr_assert_eq(mp_test_reap(pid), 0);
	expect_err(mp_rlock_acquire(r, 1000), -EOWNERDEAD);
	cr_assert_eq(mp_rlock_count(r), 1);
	expect_ok(mp_rlock_acquire(r, MP_NOWAIT));
	expect_ok(mp_rlock_mark_consistent(r));
	expect_ok(mp_rlock_release(r));
	expect_ok(mp_rlock_release(r));
	cr_assert_not(mp_rlock_is_mine(r));
	mp_rlock_free(r);
}

Test(lock_death, unrepaired_lock_becomes_not_recoverable)
{
	mp_lock_t *l;
	expect_ok(mp_lock_new(&l));
	die_holding(l);
	expect_err(mp_lock_acquire(l, MP_FOREVER), -EOWNERDEAD);
	expect_ok(mp_lock_release(l));
	expect_err(mp_lock_acquire(l, MP_FOREVER), -ENOTRECOVERABLE);
	expect_err(mp_lock_acquire(l, MP_NOWAIT), -ENOTRECOVERABLE);
	expect_err(mp_lock_acquire(l, 10), -ENOTRECOVERABLE);
	expect_err(mp_lock_release(l), -EPERM);
	cr_assert_not(mp_lock_is_mine(l));
	mp_lock_free(l);
}

/* Sleepers learn at once that the lock became not recoverable. */
Test(lock_death, not_recoverable_reaches_a_blocked_waiter)
{
	mp_lock_t *l;
	expect_ok(mp_lock_new(&l));
	die_holding(l);
	expect_err(mp_lock_acquire(l, MP_FOREVER), -EOWNERDEAD);
	int up[2];
	mp_test_pipe(up);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		mp_test_send_byte(up[1], 's');
		mp_test_send_int(up[1], mp_lock_acquire(l, MP_FOREVER));
		_exit(0);
	}
	cr_assert_eq(mp_test_recv_byte(up[0]), 's');
	expect_ok(mp_lock_release(l));
	expect_err(mp_test_recv_int(up[0]), -ENOTRECOVERABLE);
	cr_assert_eq(mp_test_reap(pid), 0);
	close(up[0]);
	close(up[1]);
	mp_lock_free(l);
}

static void *
thread_report_tid(void *p)
{
	struct thread_arg *a = p;
	a->rv = (int)mp__self_tid();
	return NULL;
}

/* The liveness check that owner-death detection (and Barrier) rely on. */
Test(lock_death, pid_alive_treats_zombies_and_ended_threads_as_dead)
{
	cr_assert(mp__pid_alive(getpid()));
	cr_assert(mp__pid_alive(mp__self_tid()));
	cr_assert_not(mp__pid_alive(0));
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		_exit(0);
	}
	/* Wait until it has ended, without reaping: a zombie. */
	siginfo_t si;
	cr_assert(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) == 0);
	cr_assert_not(mp__pid_alive(pid), "a zombie counts as dead");
	cr_assert_eq(mp_test_reap(pid), 0);
	cr_assert_not(mp__pid_alive(pid));
	struct thread_arg a = { 0 };
	pthread_t t;
	cr_assert(pthread_create(&t, NULL, thread_report_tid, &a) == 0);
	pthread_join(t, NULL);
	cr_assert_neq(a.rv, (int)getpid());
	cr_assert_not(mp__pid_alive((pid_t)a.rv), "an ended thread is dead");
}

static void *
thread_acquire_forever(void *p)
{
	struct thread_arg *a = p;
	a->rv = mp_lock_acquire(a->l, MP_FOREVER);
	if (a->rv == -EOWNERDEAD) {
		mp_lock_mark_consistent(a->l);
	}
	if (a->rv == 0 || a->rv == -EOWNERDEAD) {
		mp_lock_release(a->l);
	}
	return NULL;
}

/* A waiter that is blocked when the owner dies gets -EOWNERDEAD. */
Test(lock_death, waiter_blocked_when_owner_is_killed)
{
	mp_lock_t *l;
	expect_ok(mp_lock_new(&l));
	int up[2];
	mp_test_pipe(up);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		mp_test_send_int(up[1], mp_lock_acquire(l, MP_FOREVER));
		for (;;) {
			pause();
		}
	}
	expect_ok(mp_test_recv_int(up[0]));
	struct thread_arg a = { .l = l };
	pthread_t t;
	cr_assert(pthread_create(&t, NULL, thread_acquire_forever, &a) == 0);
	kill(pid, SIGKILL);
	cr_assert_eq(mp_test_reap(pid), -SIGKILL);
	pthread_join(t, NULL);
	expect_err(a.rv, -EOWNERDEAD);
	expect_ok(mp_lock_acquire(l, MP_NOWAIT));
	expect_ok(mp_lock_release(l));
	close(up[0]);
	close(up[1]);
	mp_lock_free(l);
}

static void *
thread_acquire_and_exit(void *p)
{
	struct thread_arg *a = p;
	a->rv = mp_lock_acquire(a->l, MP_FOREVER);
	return NULL;
}

/* The owner is a thread: its death is noticed while its process lives. */
Test(lock_death, dead_owner_thread_in_a_live_process)
{
	mp_lock_t *l;
	expect_ok(mp_lock_new(&l));
	struct thread_arg a = { .l = l };
	pthread_t t;
	cr_assert(pthread_create(&t, NULL, thread_acquire_and_exit, &a) == 0);
	pthread_join(t, NULL);
	expect_ok(a.rv);
	expect_err(mp_lock_acquire(l, MP_FOREVER), -EOWNERDEAD);
	expect_ok(mp_lock_mark_consistent(l));
	expect_ok(mp_lock_release(l));
	mp_lock_free(l);
}

/*
 * Kill -9 a lock holder at random points, 200 times. Two survivor
 * processes and the parent contend with each victim. The counter word
 * holds all increments in its low half and the victims' in its high half;
 * a victim adds to both with one store, so each of its increments is
 * either wholly counted or not at all. The victim's phase says whether it
 * held the lock when it died: 2 (between acquire's return and the call to
 * release) certainly, 0 (release returned) certainly not, 1 and 3 (inside
 * acquire or release) either way. Children die with the test process, so
 * a failed assertion leaves none behind.
 */
struct death_shared {
	_Atomic uint64_t counter;
	_Atomic int phase;
	_Atomic int stop;
	uint64_t eod_seen;      /* under the lock */
	uint64_t survivor_incs[2];
};

#define VICTIM_INC (1 + ((uint64_t)1 << 32))

static _Noreturn void
victim_main(struct death_shared *sh, mp_lock_t *l, int fd, unsigned report)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (unsigned i = 1;; i++) {
		atomic_store(&sh->phase, 1);
		if (mp_lock_acquire(l, MP_FOREVER) != 0) {
			_exit(3);
		}
		atomic_store(&sh->phase, 2);
		uint64_t c = atomic_load_explicit(&sh->counter,
		    memory_order_relaxed);
		atomic_store_explicit(&sh->counter, c + VICTIM_INC,
		    memory_order_relaxed);
		atomic_store(&sh->phase, 3);
		if (mp_lock_release(l) != 0) {
			_exit(4);
		}
		atomic_store(&sh->phase, 0);
		if (i == report) {
			mp_test_send_byte(fd, 'k');
		}
	}
}

/* Add one under the lock; repair after a dead owner. Returns 0 or rv. */
static int
locked_increment(struct death_shared *sh, mp_lock_t *l)
{
	int rv = mp_lock_acquire(l, MP_FOREVER);
	if (rv == -EOWNERDEAD) {
		sh->eod_seen++;
		rv = mp_lock_mark_consistent(l);
	}
	if (rv != 0) {
		return rv;
	}
	uint64_t c = atomic_load_explicit(&sh->counter, memory_order_relaxed);
	atomic_store_explicit(&sh->counter, c + 1, memory_order_relaxed);
	return mp_lock_release(l);
}

static _Noreturn void
survivor_main(struct death_shared *sh, mp_lock_t *l, int idx)
{
	uint64_t mine = 0;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	while (!atomic_load(&sh->stop)) {
		if (locked_increment(sh, l) != 0) {
			_exit(5);
		}
		mine++;
		/* Hand the CPU round, or the unfair lock starves the parent. */
		sched_yield();
	}
	sh->survivor_incs[idx] = mine;
	_exit(0);
}

Test(lock_death, owner_killed_at_random_points_200_times, .timeout = 300)
{
	mp_lock_t *l;
	expect_ok(mp_lock_new(&l));
	struct death_shared *sh = mp_test_shared_map(sizeof(*sh));
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	cr_log_info("seed %u", seed);
	pid_t surv[2];
	for (int s = 0; s < 2; s++) {
		surv[s] = fork();
		cr_assert(surv[s] >= 0);
		if (surv[s] == 0) {
			survivor_main(sh, l, s);
		}
	}
	uint64_t parent_incs = 0, victim_min = 0, eod_before = 0;
	int held_deaths = 0, free_deaths = 0;
	for (int round = 0; round < 200; round++) {
		unsigned report = 1 + (unsigned)rand_r(&seed) % 300;
		int fds[2];
		mp_test_pipe(fds);
		atomic_store(&sh->phase, 0);
		pid_t v = fork();
		cr_assert(v >= 0);
		if (v == 0) {
			victim_main(sh, l, fds[1], report);
		}
		close(fds[1]);
		cr_assert_eq(mp_test_recv_byte(fds[0]), 'k', "round %d: the victim "
		    "stopped before %u increments", round, report);
		close(fds[0]);
		/*
		 * The report's write often preempts the victim right after it,
		 * outside the lock: let it run a random number of increments
		 * more, so the kill lands anywhere in its loop.
		 */
		uint64_t more = (uint64_t)rand_r(&seed) % 64;
		uint64_t target = (atomic_load(&sh->counter) >> 32) + more;
		while ((atomic_load(&sh->counter) >> 32) < target) {
			sched_yield();
		}
		kill(v, SIGKILL);
		cr_assert_eq(mp_test_reap(v), -SIGKILL);
		victim_min += report;
		int phase = atomic_load(&sh->phase);
		/* Whoever takes the lock next inherits the victim's death. */
		expect_ok(locked_increment(sh, l));
		parent_incs++;
		expect_ok(mp_lock_acquire(l, MP_FOREVER));
		uint64_t eod = sh->eod_seen;
		expect_ok(mp_lock_release(l));
		uint64_t delta = eod - eod_before;
		eod_before = eod;
		cr_assert(delta <= 1, "round %d: %llu owner deaths for one "
		    "victim", round, (unsigned long long)delta);
		if (phase == 2) {
			cr_assert_eq(delta, 1, "round %d: the victim died "
			    "holding the lock, nobody saw EOWNERDEAD", round);
			held_deaths++;
		} else if (phase == 0) {
			cr_assert_eq(delta, 0, "round %d: EOWNERDEAD for a "
			    "victim that did not hold the lock", round);
			free_deaths++;
		}
	}
	atomic_store(&sh->stop, 1);
	for (int s = 0; s < 2; s++) {
		cr_assert_eq(mp_test_reap(surv[s]), 0, "survivor %d failed", s);
	}
	uint64_t c = atomic_load(&sh->counter);
	uint64_t total = c & 0xffffffffu, victims = c >> 32;
	cr_log_info("deaths holding the lock %d, outside %d, owner-dead seen "
	    "%llu, victim increments %llu", held_deaths, free_deaths,
	    (unsigned long long)eod_before, (unsigned long long)victims);
	cr_assert_eq(total, parent_incs + sh->survivor_incs[0] +
	    sh->survivor_incs[1] + victims, "increments were lost or doubled");
	cr_assert_geq(victims, victim_min);
	cr_assert_gt(eod_before, 0, "no victim ever died holding the lock");
	munmap(sh, sizeof(*sh));
	mp_lock_free(l);
}

