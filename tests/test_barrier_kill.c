/* SPDX-License-Identifier: MIT */
/* test_barrier_kill.c: Barrier parties killed at random points: the others break, complete, or wait only where the docs say. */
#include "harness/harness.h"
#include "sync/barrier_internal.h"

#include <mproc/barrier.h>

#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>

MP_TEST_SUITE(barrier_kill);

/*
 * One epoch: 2 to 4 child processes meet at a fresh barrier in a loop,
 * with random work between rounds. In half the epochs the test process is
 * one more party (the conductor): after a random number of rounds it
 * stops arriving, so the children of the next round wait for it, asleep,
 * and a death among them is the barrier's to find. In the other half the
 * children run free and, one time in two, an action burns a random number
 * of iterations. After the random number of rounds and a random delay
 * (loop iterations), one child is killed with SIGKILL. The survivors wait
 * with MP_FOREVER, so what they do next is the library's doing:
 *   - "broken": every survivor returns MP_EBROKEN (the death was seen);
 *   - "settled": every survivor sleeps on the barrier's futex with the word
 *     unchanged and no dead process in a slot of the round, so nobody can
 *     move it any more: the dead party was not in the round (between two
 *     waits, waiting for the previous round to drain, or released and
 *     counted out as a departure), or died in the few instructions between
 *     its arrival and its slot, or its slot and its departure. barrier.h
 *     documents all of these as undetectable (a survivor needs a timeout
 *     there); the test then aborts the barrier itself.
 * Once every survivor has left, the word's count tells the two apart: 0
 * means the dead party was counted out or never in, 1 that it died in one
 * of the windows. A death that was seen must leave 0; then a reset must
 * give a working barrier: the survivors, a replacement process and the
 * conductor complete one more round with distinct indices. Every completed
 * round must give distinct indices, every survivor must have completed the
 * same rounds, and the action must have run once per round.
 */
#define KILLS       150
#define MAX_KIDS    4
#define MAX_ROUNDS  4096
#define GUARD_MS    20000

enum { OUTSIDE, INSIDE, RETURNED };

struct sweep {
	_Atomic uint64_t rounds;                 /* waits that returned 0 */
	_Atomic uint64_t done[MAX_KIDS];
	_Atomic int state[MAX_KIDS];
	_Atomic int result[MAX_KIDS];            /* the failed wait's code */
	_Atomic int final[MAX_KIDS];             /* index in the extra round */
	_Atomic uint32_t mask[MAX_ROUNDS];       /* indices seen per round */
	_Atomic int dup_index;
	_Atomic uint64_t actions;
	uint64_t action_spin;
	uint64_t seed;
};

static void
burn_action(void *arg)
{
	struct sweep *sw = arg;
	mp_test_spin(sw->action_spin);
	atomic_fetch_add(&sw->actions, 1);
}

/* Record index idx for round r; two parties with one index is a bug. */
static void
record_index(struct sweep *sw, uint64_t r, unsigned idx)
{
	if (r < MAX_ROUNDS && (atomic_fetch_or(&sw->mask[r], 1u << idx) &
	    (1u << idx)) != 0) {
		atomic_fetch_add(&sw->dup_index, 1);
	}
}

/* 'g': one more round after the test's reset; 'q': done. */
static _Noreturn void
extra_main(struct sweep *sw, mp_barrier_t *b, int p, int go)
{
	if (mp_test_recv_byte(go) == 'g') {
		unsigned idx;
		int rv = mp_barrier_wait(b, 30000, &idx);
		atomic_store(&sw->final[p], rv == 0 ? (int)idx : rv);
	}
	_exit(0);
}

static _Noreturn void
party_main(struct sweep *sw, mp_barrier_t *b, int p, int go)
{
	uint64_t rng = sw->seed ^ (uint64_t)(p + 1) * 0x2545f4914f6cdd1dull;
	unsigned idx;
	int rv;
	for (;;) {
		atomic_store(&sw->state[p], INSIDE);
		rv = mp_barrier_wait(b, MP_FOREVER, &idx);
		if (rv != 0) {
			break;
		}
		uint64_t r = atomic_load(&sw->done[p]);
		record_index(sw, r, idx);
		atomic_store(&sw->done[p], r + 1);
		atomic_fetch_add(&sw->rounds, 1);
		atomic_store(&sw->state[p], OUTSIDE);
		mp_test_spin(mp_test_rand_below(&rng, 100000));
	}
	atomic_store(&sw->result[p], rv);
	atomic_store(&sw->state[p], RETURNED);
	extra_main(sw, b, p, go);
}

/*
 * Whether pid sleeps in futex_wait on addr expecting val, from
 * /proc/<pid>/syscall ("202 0xaddr 0xop 0xval ...").
 */
static bool
asleep_on(pid_t pid, const void *addr, uint32_t val)
{
	char path[64];
	char line[256];
	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	FILE *f = fopen(path, "re");
	cr_assert_not_null(f, "cannot read %s (errno %d): the test needs "
	    "it to tell a sleeping survivor", path, errno);
	char *got = fgets(line, sizeof(line), f);
	fclose(f);
	if (got == NULL) {
		return false;
	}
	char *p = line;
	long nr = strtol(p, &p, 10);
	unsigned long long a = strtoull(p, &p, 16);
	(void)strtoull(p, &p, 16);
	unsigned long long v = strtoull(p, &p, 16);
	return nr == SYS_futex && a == (unsigned long long)(uintptr_t)addr &&
	    (uint32_t)v == val;
}

struct epoch {
	mp_barrier_t *b;
	pid_t pid[MAX_KIDS];
	int go[MAX_KIDS];
	unsigned kids;
	unsigned victim;
	bool conductor;        /* the test process is a party too */
	bool action;
	uint64_t conducted;    /* rounds the conductor completed */
};

/* Nobody can move the barrier any more (see the comment at the top). */
static bool
settled(const struct epoch *e)
{
	struct barrier_shared *sh = e->b->sh;
	uint32_t w = atomic_load(&sh->word);
	if (w_phase(w) == BROKEN) {
		return false;
	}
	for (unsigned i = 0; i < sh->parties; i++) {
		uint64_t s = atomic_load(&sh->slots[i]);
		if (s != 0 && (uint32_t)(s >> 32) == w_gen(w) &&
		    (pid_t)(uint32_t)s == e->pid[e->victim]) {
			return false;  /* a corpse in the round: it will go */
		}
	}
	for (unsigned p = 0; p < e->kids; p++) {
		if (p != e->victim && !asleep_on(e->pid[p], &sh->word, w)) {
			return false;
		}
	}
	return atomic_load(&sh->word) == w;
}

static bool
all_returned(const struct sweep *sw, const struct epoch *e)
{
	for (unsigned p = 0; p < e->kids; p++) {
		if (p != e->victim && atomic_load(&sw->state[p]) != RETURNED) {
			return false;
		}
	}
	return true;
}

static void
dump(const struct sweep *sw, const struct epoch *e, const char *what)
{
	struct barrier_shared *sh = e->b->sh;
	uint32_t w = atomic_load(&sh->word);
	fprintf(stderr, "%s: %u children%s, victim %u, word gen %u phase %u "
	    "count %u\n", what, e->kids, e->conductor ? " + conductor" : "",
	    e->victim, w_gen(w), w_phase(w), w_count(w));
	for (unsigned p = 0; p < e->kids; p++) {
		fprintf(stderr, "  child %u pid %d state %d done %llu\n", p,
		    (int)e->pid[p], atomic_load(&sw->state[p]),
		    (unsigned long long)atomic_load(&sw->done[p]));
	}
	for (unsigned i = 0; i < sh->parties; i++) {
		uint64_t s = atomic_load(&sh->slots[i]);
		fprintf(stderr, "  slot %u: gen %u tid %u\n", i,
		    (unsigned)(s >> 32), (unsigned)s);
	}
}

/* Wait until cond holds or fail after GUARD_MS, showing the state. */
#define AWAIT(cond, sw, e, what) \
	do { \
		int64_t end_ = mp_test_now_ms() + GUARD_MS; \
		while (!(cond)) { \
			if (mp_test_now_ms() > end_) { \
				dump(sw, e, what); \
				cr_assert_fail("%s: nothing moved for %d s", \
				    what, GUARD_MS / 1000); \
			} \
			sched_yield(); \
		} \
	} while (0)

struct tally {
	int broken[2];          /* free-running, conducted */
	int absent_outside, absent_draining, absent_released, windows, reused;
	uint64_t rounds;
};

/* The survivors' rounds, indices and actions agree; returns R. */
static uint64_t
check_rounds(const struct sweep *sw, const struct epoch *e)
{
	uint64_t r = UINT64_MAX;
	for (unsigned p = 0; p < e->kids; p++) {
		uint64_t d = atomic_load(&sw->done[p]);
		if (p == e->victim) {
			continue;
		}
		cr_assert(r == UINT64_MAX || d == r, "survivors completed %llu "
		    "and %llu rounds", (unsigned long long)r,
		    (unsigned long long)d);
		r = d;
	}
	if (e->conductor) {
		cr_assert_eq(r, e->conducted, "the conductor completed %llu "
		    "rounds, the others %llu",
		    (unsigned long long)e->conducted, (unsigned long long)r);
	}
	uint64_t v = atomic_load(&sw->done[e->victim]);
	cr_assert(v == r || v + 1 == r, "the victim completed %llu rounds, "
	    "the survivors %llu", (unsigned long long)v, (unsigned long long)r);
	cr_assert_eq(atomic_load(&sw->dup_index), 0,
	    "two parties of one round got the same index");
	if (e->action) {
		uint64_t a = atomic_load(&sw->actions);
		cr_assert(a == r || a == r + 1, "%llu actions for %llu rounds",
		    (unsigned long long)a, (unsigned long long)r);
	}
	return r;
}

/* A child in seat p: a looping party, or a replacement for one round. */
static pid_t
start_child(struct sweep *sw, struct epoch *e, unsigned p, bool loop)
{
	int fds[2];
	mp_test_pipe(fds);
	pid_t pid = mp_test_fork();
	if (pid == 0) {
		close(fds[1]);
		if (loop) {
			party_main(sw, e->b, (int)p, fds[0]);
		}
		extra_main(sw, e->b, (int)p, fds[0]);
	}
	close(fds[0]);
	e->go[p] = fds[1];
	return pid;
}

/*
 * After a reset, the survivors, a replacement for the dead child (in its
 * seat, told to go at once) and the conductor complete one round.
 */
static void
extra_round(struct sweep *sw, struct epoch *e)
{
	mp_barrier_reset(e->b);
	uint32_t w = atomic_load(&e->b->sh->word);
	cr_assert(w_phase(w) == FILLING && w_count(w) == 0,
	    "reset left phase %u count %u", w_phase(w), w_count(w));
	close(e->go[e->victim]);
	e->pid[e->victim] = start_child(sw, e, e->victim, false);
	for (unsigned p = 0; p < e->kids; p++) {
		mp_test_send_byte(e->go[p], 'g');
	}
	uint32_t seen = 0;
	if (e->conductor) {
		unsigned idx;
		expect_ok(mp_barrier_wait(e->b, 30000, &idx));
		seen = 1u << idx;
	}
	for (unsigned p = 0; p < e->kids; p++) {
		cr_assert_eq(mp_test_reap(e->pid[p]), 0);
		int f = atomic_load(&sw->final[p]);
		cr_assert(f >= 0 && f < (int)e->b->sh->parties &&
		    (seen & (1u << f)) == 0, "extra round: party %u got %d",
		    p, f);
		seen |= 1u << f;
	}
}

/* Run the epoch up to the kill; returns the victim's state then. */
static int
run_until_kill(struct sweep *sw, struct epoch *e, uint64_t *rng)
{
	uint64_t target = mp_test_rand_below(rng, 60);
	if (e->conductor) {
		for (uint64_t r = 0; r < target; r++) {
			unsigned idx;
			expect_ok(mp_barrier_wait(e->b, 30000, &idx));
			record_index(sw, r, idx);
			mp_test_spin(mp_test_rand_below(rng, 100000));
		}
		e->conducted = target;
		/* Let a random number of children arrive in the next round. */
		unsigned in = (unsigned)mp_test_rand_below(rng, e->kids + 1);
		AWAIT(mp_barrier_n_waiting(e->b) >= in, sw, e, "arrivals");
	} else {
		AWAIT(atomic_load(&sw->rounds) >= target, sw, e, "warm-up");
	}
	mp_test_spin(mp_test_rand_below(rng, 300000));
	int where = atomic_load(&sw->state[e->victim]);
	cr_assert_eq(mp_test_kill(e->pid[e->victim]), -SIGKILL);
	return where;
}

static void
run_epoch(struct sweep *sw, uint64_t *rng, struct tally *t)
{
	struct epoch e = { .kids = 2 + (unsigned)mp_test_rand_below(rng, 3) };
	e.victim = (unsigned)mp_test_rand_below(rng, e.kids);
	e.conductor = mp_test_rand_below(rng, 2) == 0;
	e.action = !e.conductor && mp_test_rand_below(rng, 2) == 0;
	memset(sw, 0, sizeof(*sw));
	sw->seed = mp_test_rand(rng);
	sw->action_spin = mp_test_rand_below(rng, 200000);
	expect_ok(mp_barrier_new(e.kids + e.conductor, e.action ? burn_action :
	    NULL, sw, MP_FOREVER, &e.b));
	for (unsigned p = 0; p < e.kids; p++) {
		e.pid[p] = start_child(sw, &e, p, true);
	}
	int where = run_until_kill(sw, &e, rng);
	AWAIT(all_returned(sw, &e) || settled(&e), sw, &e, "after the kill");
	bool seen = all_returned(sw, &e);
	if (!seen) {
		mp_barrier_abort(e.b);
		AWAIT(all_returned(sw, &e), sw, &e, "after the abort");
	}
	for (unsigned p = 0; p < e.kids; p++) {
		if (p != e.victim) {
			expect_err(atomic_load(&sw->result[p]), MP_EBROKEN);
		}
	}
	if (e.conductor) {
		/* Broken: the conductor's next wait fails at once. */
		expect_err(mp_barrier_wait(e.b, 30000, NULL), MP_EBROKEN);
	}
	uint64_t r = check_rounds(sw, &e);
	t->rounds += r;
	/* Everyone alive has left: what the count holds is the dead one. */
	uint32_t ghost = w_count(atomic_load(&e.b->sh->word));
	cr_assert_leq(ghost, 1);
	if (seen) {
		cr_assert_eq(ghost, 0, "a death that was seen left it counted");
		t->broken[e.conductor]++;
	} else if (ghost == 1) {
		t->windows++;
	} else if (where == OUTSIDE) {
		t->absent_outside++;
	} else if (atomic_load(&sw->done[e.victim]) == r) {
		t->absent_draining++;
	} else {
		t->absent_released++;
	}
	if (ghost == 0) {
		extra_round(sw, &e);
		t->reused++;
	} else {
		for (unsigned p = 0; p < e.kids; p++) {
			if (p != e.victim) {
				mp_test_send_byte(e.go[p], 'q');
				cr_assert_eq(mp_test_reap(e.pid[p]), 0);
			}
		}
	}
	for (unsigned p = 0; p < e.kids; p++) {
		close(e.go[p]);
	}
	mp_barrier_free(e.b);
}

Test(barrier_kill, parties_killed_at_random_points, .timeout = 300)
{
	uint64_t rng = mp_test_seed("barrier_kill");
	struct sweep *sw = mp_test_shared_map(sizeof(*sw));
	struct tally t = { 0 };
	int64_t start = mp_test_now_ms();
	int kills = mp_test_repeats(KILLS);
	for (int k = 0; k < kills; k++) {
		run_epoch(sw, &rng, &t);
	}
	cr_log_info("%d kills in %lld ms, %llu rounds. Death seen, barrier "
	    "broken: %d free-running, %d with the conductor absent. Dead "
	    "party not in the round (survivors wait, as documented): %d "
	    "killed between waits, %d waiting for the last round to drain, "
	    "%d released and counted out as a departure. Documented windows "
	    "(arrival or departure without a slot): %d. Reset and reused: "
	    "%d", kills, (long long)(mp_test_now_ms() - start),
	    (unsigned long long)t.rounds, t.broken[0], t.broken[1],
	    t.absent_outside, t.absent_draining, t.absent_released,
	    t.windows, t.reused);
	cr_assert_gt(t.broken[1], 0, "no kill landed in a wait");
	munmap(sw, sizeof(*sw));
}
