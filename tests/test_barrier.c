/* SPDX-License-Identifier: MIT */
/* test_barrier.c: Barrier rounds, action, abort/reset, dead waiters. */
#include "harness/harness.h"

#include <mproc/barrier.h>

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

MP_TEST_SUITE(barrier);

/*
 * An unrelated process: the test binary run again with
 * MP_TEST_BARRIER_HELPER=<name> opens the named 2-party barrier and meets
 * the test at it 100 times, checking it sees the other index each time.
 */
__attribute__((constructor)) static void
barrier_helper(void)
{
	const char *name = getenv("MP_TEST_BARRIER_HELPER");
	if (name == NULL) {
		return;
	}
	mp_barrier_t *b;
	if (mp_barrier_open(name, 0, 2, NULL, NULL, 60000, &b) != 0) {
		_exit(10);
	}
	for (int i = 0; i < 100; i++) {
		unsigned index;
		if (mp_barrier_wait(b, MP_BARRIER_DEFAULT, &index) != 0) {
			_exit(11);
		}
		if (index > 1) {
			_exit(12);
		}
	}
	mp_barrier_close(b);
	_exit(0);
}

static void *
shared_map(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert(p != MAP_FAILED);
	return p;
}

/* Exit status of pid, or 100 + signal when it was killed. */
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

/* Spin (yielding) until n callers wait in the round being filled. */
static void
await_waiting(mp_barrier_t *b, unsigned n)
{
	while (mp_barrier_n_waiting(b) != n) {
		sched_yield();
	}
}

/*
 * Wait until process pid sleeps in the kernel (state S in /proc): a
 * barrier waiter then has recorded its pid and sits in futex_wait.
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

/* Child: one wait, exit code = 0 (ok) / 1 (MP_EBROKEN) / 2 (other). */
static pid_t
fork_waiter(mp_barrier_t *b, int64_t timeout_ms)
{
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int rv = mp_barrier_wait(b, timeout_ms, NULL);
		_exit(rv == 0 ? 0 : rv == MP_EBROKEN ? 1 : 2);
	}
	return pid;
}

Test(barrier, accessors_and_bad_arguments)
{
	mp_barrier_t *b;
	expect_err(mp_barrier_new(0, NULL, NULL, MP_FOREVER, &b), -EINVAL);
	expect_err(mp_barrier_new(MP_BARRIER_MAX_PARTIES + 1, NULL, NULL,
	    MP_FOREVER, &b), -EINVAL);
	expect_err(mp_barrier_new(2, NULL, NULL, -3, &b), -EINVAL);
	expect_ok(mp_barrier_new(3, NULL, NULL, MP_FOREVER, &b));
	cr_assert_eq(mp_barrier_parties(b), 3);
	cr_assert_eq(mp_barrier_n_waiting(b), 0);
	cr_assert(!mp_barrier_broken(b));
	expect_err(mp_barrier_wait(b, -3, NULL), -EINVAL);
	mp_barrier_free(b);
	mp_barrier_free(NULL);
}

static void
count_action(void *arg)
{
	atomic_fetch_add((_Atomic unsigned *)arg, 1);
}

Test(barrier, one_party_passes_at_once_and_runs_the_action)
{
	_Atomic unsigned *ran = shared_map(sizeof(*ran));
	mp_barrier_t *b;
	expect_ok(mp_barrier_new(1, count_action, (void *)ran, MP_FOREVER, &b));
	for (unsigned i = 0; i < 5; i++) {
		unsigned index = 99;
		expect_ok(mp_barrier_wait(b, MP_NOWAIT, &index));
		cr_assert_eq(index, 0);
		cr_assert_eq(atomic_load(ran), i + 1);
	}
	mp_barrier_free(b);
	munmap((void *)ran, sizeof(*ran));
}

/*
 * The rounds test: each process records its index of round r in seen[r]
 * (a bit per index, set once), and checks that the action already ran r+1
 * times when the round released it.
 */
struct rounds {
	_Atomic unsigned actions;
	_Atomic unsigned errors;
	_Atomic uint32_t seen[];
};

static void
rounds_action(void *arg)
{
	struct rounds *r = arg;
	atomic_fetch_add(&r->actions, 1);
}

static void
run_rounds(mp_barrier_t *b, struct rounds *r, unsigned n_rounds, bool action)
{
	for (unsigned i = 0; i < n_rounds; i++) {
		unsigned index;
		int rv = mp_barrier_wait(b, 60000, &index);
		if (rv != 0 || index >= mp_barrier_parties(b)) {
			atomic_fetch_add(&r->errors, 1);
			return;
		}
		uint32_t bit = 1u << index;
		if (atomic_fetch_or(&r->seen[i], bit) & bit) {
			atomic_fetch_add(&r->errors, 1);
		}
		if (action && atomic_load(&r->actions) != i + 1) {
			atomic_fetch_add(&r->errors, 1);
		}
	}
}

static void
rounds_test(unsigned parties, unsigned n_rounds, bool action)
{
	size_t size = sizeof(struct rounds) + n_rounds * sizeof(uint32_t);
	struct rounds *r = shared_map(size);
	mp_barrier_t *b;
	expect_ok(mp_barrier_new(parties, action ? rounds_action : NULL, r,
	    MP_FOREVER, &b));
	pid_t pids[8];
	for (unsigned p = 1; p < parties; p++) {
		pids[p] = fork();
		cr_assert(pids[p] >= 0);
		if (pids[p] == 0) {
			run_rounds(b, r, n_rounds, action);
			_exit(0);
		}
	}
	run_rounds(b, r, n_rounds, action);
	for (unsigned p = 1; p < parties; p++) {
		cr_assert_eq(reap(pids[p]), 0);
	}
	cr_assert_eq(atomic_load(&r->errors), 0);
	for (unsigned i = 0; i < n_rounds; i++) {
		cr_assert_eq(atomic_load(&r->seen[i]), (1u << parties) - 1,
		    "round %u: indices %#x", i, atomic_load(&r->seen[i]));
	}
	cr_assert_eq(atomic_load(&r->actions), action ? n_rounds : 0);
	cr_assert_eq(mp_barrier_n_waiting(b), 0);
	cr_assert(!mp_barrier_broken(b));
	mp_barrier_free(b);
	munmap(r, size);
}

Test(barrier, two_processes_10000_rounds)
{
	rounds_test(2, 10000, false);
}

Test(barrier, four_processes_10000_rounds)
{
	rounds_test(4, 10000, false);
}

Test(barrier, action_runs_once_per_round_before_the_release)
{
	rounds_test(2, 10000, true);
	rounds_test(4, 2000, true);
}

struct thread_rounds {
	mp_barrier_t *b;
	struct rounds *r;
	unsigned n_rounds;
};

static void *
thread_rounds(void *arg)
{
	struct thread_rounds *t = arg;
	run_rounds(t->b, t->r, t->n_rounds, true);
	return NULL;
}

Test(barrier, threads_of_one_process_are_parties_too)
{
	enum { THREADS = 4, N_ROUNDS = 2000 };
	size_t size = sizeof(struct rounds) + N_ROUNDS * sizeof(uint32_t);
	struct rounds *r = shared_map(size);
	mp_barrier_t *b;
	expect_ok(mp_barrier_new(THREADS, rounds_action, r, MP_FOREVER, &b));
	pthread_t th[THREADS];
	struct thread_rounds t = { .b = b, .r = r, .n_rounds = N_ROUNDS };
	for (int i = 0; i < THREADS; i++) {
		cr_assert(pthread_create(&th[i], NULL, thread_rounds, &t) == 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
	}
	cr_assert_eq(atomic_load(&r->errors), 0);
	for (unsigned i = 0; i < N_ROUNDS; i++) {
		cr_assert_eq(atomic_load(&r->seen[i]), (1u << THREADS) - 1);
	}
	cr_assert_eq(atomic_load(&r->actions), N_ROUNDS);
	mp_barrier_free(b);
	munmap(r, size);
}

/*
 * 4 processes, 2 parties, 2000 rounds. Each wait is claimed from a shared
 * counter first, so every process holds at most one claim and the last
 * claims always pair up, however the scheduler spreads them.
 */
struct crowd {
	_Atomic unsigned claimed;
	_Atomic unsigned tally[2];
	_Atomic unsigned actions;
	_Atomic unsigned errors;
};

static void
crowd_run(mp_barrier_t *b, struct crowd *c, unsigned waits)
{
	while (atomic_fetch_add(&c->claimed, 1) < waits) {
		unsigned index;
		if (mp_barrier_wait(b, 60000, &index) != 0 || index > 1) {
			atomic_fetch_add(&c->errors, 1);
			return;
		}
		atomic_fetch_add(&c->tally[index], 1);
	}
}

Test(barrier, more_processes_than_parties_share_the_rounds)
{
	enum { ROUNDS = 2000 };
	struct crowd *c = shared_map(sizeof(*c));
	mp_barrier_t *b;
	expect_ok(mp_barrier_new(2, count_action, (void *)&c->actions,
	    MP_FOREVER, &b));
	pid_t pids[3];
	for (int p = 0; p < 3; p++) {
		pids[p] = fork();
		cr_assert(pids[p] >= 0);
		if (pids[p] == 0) {
			crowd_run(b, c, 2 * ROUNDS);
			_exit(0);
		}
	}
	crowd_run(b, c, 2 * ROUNDS);
	for (int p = 0; p < 3; p++) {
		cr_assert_eq(reap(pids[p]), 0);
	}
	cr_assert_eq(atomic_load(&c->errors), 0);
	cr_assert_eq(atomic_load(&c->tally[0]), ROUNDS, "an index 0 a round");
	cr_assert_eq(atomic_load(&c->tally[1]), ROUNDS, "an index 1 a round");
	cr_assert_eq(atomic_load(&c->actions), ROUNDS, "one action per round");
	mp_barrier_free(b);
	munmap(c, sizeof(*c));
}

Test(barrier, a_timeout_breaks_the_barrier_until_reset)
{
	mp_barrier_t *b;
	expect_ok(mp_barrier_new(2, NULL, NULL, MP_FOREVER, &b));
	expect_err(mp_barrier_wait(b, 10, NULL), MP_EBROKEN);
	cr_assert(mp_barrier_broken(b));
	cr_assert_eq(mp_barrier_n_waiting(b), 0);
	expect_err(mp_barrier_wait(b, MP_FOREVER, NULL), MP_EBROKEN);
	mp_barrier_reset(b);
	cr_assert(!mp_barrier_broken(b));
	pid_t pid = fork_waiter(b, 60000);
	unsigned index;
	expect_ok(mp_barrier_wait(b, 60000, &index));
	cr_assert_eq(reap(pid), 0);
	mp_barrier_free(b);
}

Test(barrier, nowait_breaks_unless_last)
{
	mp_barrier_t *b;
	expect_ok(mp_barrier_new(2, NULL, NULL, MP_FOREVER, &b));
	expect_err(mp_barrier_wait(b, MP_NOWAIT, NULL), MP_EBROKEN);
	mp_barrier_reset(b);
	pid_t pid = fork_waiter(b, 60000);
	await_waiting(b, 1);
	unsigned index;
	expect_ok(mp_barrier_wait(b, MP_NOWAIT, &index));
	cr_assert_eq(index, 1);
	cr_assert_eq(reap(pid), 0);
	mp_barrier_free(b);
}

Test(barrier, default_timeout_applies)
{
	mp_barrier_t *b;
	expect_ok(mp_barrier_new(3, NULL, NULL, 10, &b));
	pid_t pid = fork_waiter(b, MP_FOREVER);
	await_waiting(b, 1);
	expect_err(mp_barrier_wait(b, MP_BARRIER_DEFAULT, NULL), MP_EBROKEN);
	cr_assert_eq(reap(pid), 1, "the other waiter got MP_EBROKEN");
	cr_assert(mp_barrier_broken(b));
	mp_barrier_free(b);
}

Test(barrier, a_timeout_while_the_last_round_drains_breaks_nothing)
{
	mp_barrier_t *b;
	expect_ok(mp_barrier_new(2, NULL, NULL, MP_FOREVER, &b));
	pid_t pid = fork_waiter(b, MP_FOREVER);
	await_waiting(b, 1);
	await_sleeping(pid);
	/* Stopped, the released child cannot leave: the round drains. */
	cr_assert(kill(pid, SIGSTOP) == 0);
	unsigned index;
	expect_ok(mp_barrier_wait(b, 60000, &index));
	cr_assert_eq(index, 1);
	expect_err(mp_barrier_wait(b, 20, &index), -ETIMEDOUT);
	cr_assert(!mp_barrier_broken(b));
	cr_assert(kill(pid, SIGCONT) == 0);
	cr_assert_eq(reap(pid), 0, "the stopped child was released");
	pid = fork_waiter(b, 60000);
	expect_ok(mp_barrier_wait(b, 60000, &index));
	cr_assert_eq(reap(pid), 0);
	mp_barrier_free(b);
}

Test(barrier, abort_releases_waiters_with_ebroken)
{
	mp_barrier_t *b;
	expect_ok(mp_barrier_new(3, NULL, NULL, MP_FOREVER, &b));
	pid_t p1 = fork_waiter(b, MP_FOREVER);
	pid_t p2 = fork_waiter(b, MP_FOREVER);
	await_waiting(b, 2);
	mp_barrier_abort(b);
	cr_assert(mp_barrier_broken(b));
	cr_assert_eq(reap(p1), 1);
	cr_assert_eq(reap(p2), 1);
	expect_err(mp_barrier_wait(b, MP_FOREVER, NULL), MP_EBROKEN);
	mp_barrier_abort(b);
	mp_barrier_reset(b);
	cr_assert(!mp_barrier_broken(b));
	cr_assert_eq(mp_barrier_n_waiting(b), 0);
	mp_barrier_free(b);
}

Test(barrier, reset_breaks_current_waiters_and_leaves_it_usable)
{
	mp_barrier_t *b;
	expect_ok(mp_barrier_new(2, NULL, NULL, MP_FOREVER, &b));
	pid_t pid = fork_waiter(b, MP_FOREVER);
	await_waiting(b, 1);
	mp_barrier_reset(b);
	cr_assert_eq(reap(pid), 1, "the waiter got MP_EBROKEN");
	cr_assert(!mp_barrier_broken(b));
	cr_assert_eq(mp_barrier_n_waiting(b), 0);
	pid = fork_waiter(b, 60000);
	unsigned index;
	expect_ok(mp_barrier_wait(b, 60000, &index));
	cr_assert_eq(reap(pid), 0);
	mp_barrier_free(b);
}

Test(barrier, a_killed_waiter_breaks_the_barrier)
{
	mp_barrier_t *b;
	expect_ok(mp_barrier_new(3, NULL, NULL, MP_FOREVER, &b));
	pid_t victim = fork_waiter(b, MP_FOREVER);
	await_waiting(b, 1);
	pid_t other = fork_waiter(b, MP_FOREVER);
	await_waiting(b, 2);
	await_sleeping(victim);
	cr_assert(kill(victim, SIGKILL) == 0);
	cr_assert_eq(reap(victim), 100 + SIGKILL);
	cr_assert_eq(reap(other), 1, "the survivor got MP_EBROKEN");
	cr_assert(mp_barrier_broken(b));
	expect_err(mp_barrier_wait(b, MP_FOREVER, NULL), MP_EBROKEN);
	mp_barrier_reset(b);
	cr_assert(!mp_barrier_broken(b));
	cr_assert_eq(mp_barrier_n_waiting(b), 0, "the dead one is counted out");
	mp_barrier_free(b);
}

Test(barrier, the_caller_itself_notices_a_dead_waiter)
{
	mp_barrier_t *b;
	expect_ok(mp_barrier_new(2, NULL, NULL, MP_FOREVER, &b));
	pid_t victim = fork_waiter(b, MP_FOREVER);
	await_waiting(b, 1);
	await_sleeping(victim);
	cr_assert(kill(victim, SIGKILL) == 0);
	cr_assert_eq(reap(victim), 100 + SIGKILL);
	/*
	 * The dead waiter is counted, so this arrival completes the round:
	 * a death discovered only after the round filled is not a failure.
	 */
	unsigned index;
	expect_ok(mp_barrier_wait(b, MP_FOREVER, &index));
	cr_assert_eq(index, 1);
	/* The next round cannot start before the dead one is counted out. */
	pid_t pid = fork_waiter(b, 60000);
	expect_ok(mp_barrier_wait(b, 60000, &index));
	cr_assert_eq(reap(pid), 0);
	mp_barrier_free(b);
}

static void
die_action(void *arg)
{
	(void)arg;
	raise(SIGKILL);
}

Test(barrier, the_last_arrival_dying_in_the_action_breaks_the_barrier)
{
	mp_barrier_t *b;
	expect_ok(mp_barrier_new(2, die_action, NULL, MP_FOREVER, &b));
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		while (mp_barrier_n_waiting(b) != 1) {
			sched_yield();
		}
		mp_barrier_wait(b, MP_FOREVER, NULL);
		_exit(0);
	}
	expect_err(mp_barrier_wait(b, MP_FOREVER, NULL), MP_EBROKEN);
	cr_assert_eq(reap(pid), 100 + SIGKILL);
	mp_barrier_free(b);
}

static void
abort_action(void *arg)
{
	mp_barrier_abort(*(mp_barrier_t **)arg);
}

Test(barrier, an_abort_during_the_action_breaks_the_round)
{
	static mp_barrier_t *b;
	expect_ok(mp_barrier_new(2, abort_action, &b, MP_FOREVER, &b));
	pid_t pid = fork_waiter(b, MP_FOREVER);
	await_waiting(b, 1);
	expect_err(mp_barrier_wait(b, MP_FOREVER, NULL), MP_EBROKEN);
	cr_assert_eq(reap(pid), 1, "the waiter got MP_EBROKEN");
	cr_assert(mp_barrier_broken(b));
	mp_barrier_reset(b);
	cr_assert(!mp_barrier_broken(b));
	cr_assert_eq(mp_barrier_n_waiting(b), 0);
	mp_barrier_free(b);
}

Test(barrier, named_barrier_is_shared_with_an_unrelated_process)
{
	char name[64];
	snprintf(name, sizeof(name), "test-barrier-%d", (int)getpid());
	mp_barrier_t *b;
	expect_ok(mp_barrier_open(name, MP_CREATE | MP_EXCL, 2, NULL, NULL,
	    MP_FOREVER, &b));
	mp_barrier_t *bad;
	expect_err(mp_barrier_open(name, 0, 3, NULL, NULL, MP_FOREVER, &bad),
	    -EPROTO);
	setenv("MP_TEST_BARRIER_HELPER", name, 1);
	const char *argv[] = { "/proc/self/exe", NULL };
	struct mp_test_child child;
	mp_test_spawn(argv, &child);
	unsetenv("MP_TEST_BARRIER_HELPER");
	for (int i = 0; i < 100; i++) {
		unsigned index;
		expect_ok(mp_barrier_wait(b, 60000, &index));
		cr_assert_leq(index, 1);
	}
	cr_assert_eq(mp_test_wait(&child, 60000), 0);
	mp_barrier_close(b);
	expect_ok(mp_barrier_unlink(name));
	expect_err(mp_barrier_open(name, 0, 2, NULL, NULL, MP_FOREVER, &b),
	    -ENOENT);
}
