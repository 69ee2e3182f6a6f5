/* SPDX-License-Identifier: MIT */
/* sync/barrier.c: Barrier, one state word, dead waiters counted out. */
#include "shared/arena.h"
#include "sync/barrier_internal.h"
#include "sync/lock_internal.h"
#include "sync/wait.h"

#include <mproc/barrier.h>

#include <string.h>

/* The word once one caller has left a round that is over (count > 0). */
static uint32_t
w_after_leave(uint32_t w)
{
	uint32_t phase = w_phase(w);
	uint32_t count = w_count(w);
	MP_ASSERT(count > 0 && phase != FILLING);
	if (count == 1 && phase != BROKEN) {
		return w_make(w_gen(w) + 1, FILLING, 0);
	}
	return w_make(w_gen(w), phase, count - 1);
}

static void
shared_init(void *mem, void *arg)
{
	struct barrier_shared *sh = mem;
	sh->parties = *(const unsigned *)arg;
	atomic_init(&sh->word, 0);
	atomic_init(&sh->sleepers, 0);
	atomic_init(&sh->checked_ns, 0);
	for (unsigned i = 0; i < sh->parties; i++) {
		atomic_init(&sh->slots[i], 0);
	}
	sh->magic = BARRIER_MAGIC;
}

static size_t
shared_size(unsigned parties)
{
	return sizeof(struct barrier_shared) + parties * sizeof(uint64_t);
}

static bool
valid_default(int64_t timeout_ms)
{
	return timeout_ms >= MP_FOREVER;
}

int
mp_barrier_new(unsigned parties, mp_barrier_action_fn action, void *arg,
    int64_t default_timeout_ms, mp_barrier_t **out)
{
	if (parties == 0 || parties > MP_BARRIER_MAX_PARTIES ||
	    !valid_default(default_timeout_ms)) {
		return -EINVAL;
	}
	struct mp_barrier *b = mp__calloc(1, sizeof(*b));
	if (b == NULL) {
		return -ENOMEM;
	}
	void *mem;
	int rv = mp__arena_alloc(shared_size(parties), &mem);
	if (rv != 0) {
		mp__free(b);
		return rv;
	}
	shared_init(mem, &parties);
	b->sh = mem;
	b->action = action;
	b->arg = arg;
	b->default_timeout_ms = default_timeout_ms;
	*out = b;
	return 0;
}

void
mp_barrier_free(mp_barrier_t *b)
{
	if (b == NULL) {
		return;
	}
	MP_ASSERT(!b->named && b->sh->magic == BARRIER_MAGIC);
	b->sh->magic = 0;
	mp__arena_free(b->sh);
	mp__free(b);
}

int
mp_barrier_open(const char *name, int flags, unsigned parties,
    mp_barrier_action_fn action, void *arg, int64_t default_timeout_ms,
    mp_barrier_t **out)
{
	if (parties == 0 || parties > MP_BARRIER_MAX_PARTIES ||
	    !valid_default(default_timeout_ms)) {
		return -EINVAL;
	}
	struct mp_barrier *b = mp__calloc(1, sizeof(*b));
	if (b == NULL) {
		return -ENOMEM;
	}
	void *mem;
	int rv = mp__sync_named_open(BARRIER_KIND, name, shared_size(parties),
	    flags, shared_init, &parties, &mem);
	if (rv != 0) {
		mp__free(b);
		return rv;
	}
	b->sh = mem;
	if (b->sh->parties != parties) {
		/* Not with a sound block: its size encodes parties. */
		mp__sync_named_close(mem);
		mp__free(b);
		return -EPROTO;
	}
	b->action = action;
	b->arg = arg;
	b->default_timeout_ms = default_timeout_ms;
	b->named = true;
	*out = b;
	return 0;
}

void
mp_barrier_close(mp_barrier_t *b)
{
	if (b == NULL) {
		return;
	}
	MP_ASSERT(b->named);
	bool was_named = mp__sync_named_close(b->sh);
	MP_ASSERT(was_named);
	mp__free(b);
}

int
mp_barrier_unlink(const char *name)
{
	return mp__sync_named_unlink(BARRIER_KIND, name);
}

/* Change the word from *w to want and wake the sleepers; false if it moved. */
static bool
transition(struct barrier_shared *sh, uint32_t *w, uint32_t want)
{
	if (!atomic_compare_exchange_strong_explicit(&sh->word, w, want,
	    memory_order_seq_cst, memory_order_acquire)) {
		return false;
	}
	mp__wake_sleepers(&sh->word, &sh->sleepers);
	return true;
}

/*
 * Count out the waiter in slot i, found dead. Claiming the slot first
 * makes sure two sleepers that find the same corpse count it out once. A
 * death before the release breaks the round, as a timeout would; a death
 * after it (while draining or resetting) is only a departure.
 */
static void
evict(struct barrier_shared *sh, unsigned i, uint64_t seen)
{
	if (!atomic_compare_exchange_strong(&sh->slots[i], &seen, 0)) {
		return;
	}
	uint32_t w = atomic_load(&sh->word);
	for (;;) {
		if (w_gen(w) != (uint32_t)(seen >> 32) || w_count(w) == 0) {
			return;  /* the slot was stale after all */
		}
		uint32_t want;
		if (w_phase(w) == FILLING) {
			want = w_make(w_gen(w), BROKEN, w_count(w) - 1);
		} else {
			want = w_after_leave(w);
		}
		if (transition(sh, &w, want)) {
			return;
		}
	}
}

/*
 * The slow-path check a sleeper runs every MP__WAIT_SLICE_NS: is any
 * process of the current round dead? Each check of a pid costs a few
 * system calls, so of all the sleepers only one sweeps per half slice:
 * a barrier of a hundred parties would otherwise spend its CPU on it.
 */
static void
check_waiters(struct barrier_shared *sh)
{
	int64_t now = mp__now_ns();
	int64_t last = atomic_load_explicit(&sh->checked_ns,
	    memory_order_relaxed);
	if (now - last < MP__WAIT_SLICE_NS / 2 ||
	    !atomic_compare_exchange_strong(&sh->checked_ns, &last, now)) {
		return;
	}
	uint32_t gen = w_gen(atomic_load(&sh->word));
	for (unsigned i = 0; i < sh->parties; i++) {
		uint64_t s = atomic_load_explicit(&sh->slots[i],
		    memory_order_acquire);
		if (s == 0 || (uint32_t)(s >> 32) != gen) {
			continue;
		}
		if (!mp__pid_alive((pid_t)(uint32_t)s)) {
			evict(sh, i, s);
		}
	}
}

/*
 * Wait until the word is no longer w: spin, then sleep in slices, checking
 * the waiters for death between slices. Returns 0 when the word changed,
 * -ETIMEDOUT at the deadline (-1: none).
 */
static int
wait_change(struct barrier_shared *sh, uint32_t w, int64_t deadline)
{
	if (mp__spin_while_eq(&sh->word, w, MP__WAIT_SPIN_NS, deadline) != w) {
		return 0;
	}
	for (;;) {
		int64_t slice = mp__now_ns() + MP__WAIT_SLICE_NS;
		bool last_slice = deadline >= 0 && deadline <= slice;
		int rv = mp__sleep_while_eq(&sh->word, w, &sh->sleepers,
		    last_slice ? deadline : slice);
		uint32_t cur = atomic_load_explicit(&sh->word,
		    memory_order_acquire);
		if (cur != w) {
			return 0;
		}
		if (rv == -ETIMEDOUT) {
			if (last_slice) {
				return -ETIMEDOUT;
			}
			check_waiters(sh);
		}
	}
}

/*
 * Join the round being filled. Returns 0 with the word our arrival wrote
 * in *w, MP_EBROKEN, or -ETIMEDOUT while the previous round drained. A
 * last arrival without an action releases the round in the same step.
 */
static int
arrive(struct mp_barrier *b, int64_t deadline, uint32_t *w)
{
	struct barrier_shared *sh = b->sh;
	uint32_t cur = atomic_load_explicit(&sh->word, memory_order_acquire);
	for (;;) {
		uint32_t phase = w_phase(cur);
		uint32_t count = w_count(cur);
		if (phase == BROKEN) {
			return MP_EBROKEN;
		}
		if (phase == FILLING && count < sh->parties) {
			uint32_t want = cur + 1;
			bool last = count + 1 == sh->parties;
			if (last && b->action == NULL) {
				want = sh->parties == 1 ?
				    w_make(w_gen(cur) + 1, FILLING, 0) :
				    w_make(w_gen(cur), DRAINING, count);
			}
			if (atomic_compare_exchange_weak_explicit(&sh->word,
			    &cur, want, memory_order_seq_cst,
			    memory_order_acquire)) {
				if (last && b->action == NULL) {
					mp__wake_sleepers(&sh->word,
					    &sh->sleepers);
				}
				*w = cur;
				return 0;
			}
			continue;
		}
		/* Draining, resetting, or the action runs: wait for the end. */
		if (wait_change(sh, cur, deadline) == -ETIMEDOUT) {
			return -ETIMEDOUT;
		}
		cur = atomic_load_explicit(&sh->word, memory_order_acquire);
	}
}

/* Leave a round that is over; the caller's slot is cleared first. */
static void
leave(struct barrier_shared *sh, unsigned index)
{
	atomic_store_explicit(&sh->slots[index], 0, memory_order_release);
	uint32_t w = atomic_load(&sh->word);
	while (!transition(sh, &w, w_after_leave(w))) {
	}
}

/* The last arrival with an action: run it, then release the round. */
static int
release_after_action(struct mp_barrier *b, unsigned index)
{
	struct barrier_shared *sh = b->sh;
	b->action(b->arg);
	uint32_t w = atomic_load(&sh->word);
	for (;;) {
		if (w_phase(w) != FILLING) {
			/* Aborted, reset or found dead during the action. */
			leave(sh, index);
			return MP_EBROKEN;
		}
		atomic_store_explicit(&sh->slots[index], 0,
		    memory_order_release);
		uint32_t want = sh->parties == 1 ?
		    w_make(w_gen(w) + 1, FILLING, 0) :
		    w_make(w_gen(w), DRAINING, sh->parties - 1);
		if (transition(sh, &w, want)) {
			return 0;
		}
	}
}

/*
 * Wait in our round (gen) until it is released or broken. Our own timeout
 * breaks it, unless the last party has arrived: then the action is running
 * and the round completes, as in Python, where the timed-out waiter needs
 * the lock the action holds.
 */
static int
await_round(struct barrier_shared *sh, unsigned index, int64_t deadline)
{
	uint32_t w = atomic_load_explicit(&sh->word, memory_order_acquire);
	for (;;) {
		switch (w_phase(w)) {
		case DRAINING:
			leave(sh, index);
			return 0;
		case RESETTING:
		case BROKEN:
			leave(sh, index);
			return MP_EBROKEN;
		default:
			break;
		}
		bool full = w_count(w) == sh->parties;
		if (wait_change(sh, w, full ? -1 : deadline) == -ETIMEDOUT) {
			uint32_t broken = w_make(w_gen(w), BROKEN, w_count(w));
			transition(sh, &w, broken);
		}
		w = atomic_load_explicit(&sh->word, memory_order_acquire);
	}
}

int
mp_barrier_wait(mp_barrier_t *b, int64_t timeout_ms, unsigned *index)
{
	MP_ASSERT(b != NULL && b->sh->magic == BARRIER_MAGIC);
	if (timeout_ms == MP_BARRIER_DEFAULT) {
		timeout_ms = b->default_timeout_ms;
	}
	if (timeout_ms < MP_FOREVER) {
		return -EINVAL;
	}
	int64_t deadline = timeout_ms == MP_NOWAIT ? mp__now_ns() :
	    mp__deadline_from_timeout(timeout_ms);
	/* Before arriving: the first call in a process is a system call. */
	uint32_t tid = (uint32_t)mp__self_tid();
	uint32_t w;
	int rv = arrive(b, deadline, &w);
	if (rv != 0) {
		return rv;
	}
	struct barrier_shared *sh = b->sh;
	unsigned me = w_count(w);
	if (me + 1 == sh->parties && b->action == NULL) {
		rv = 0;
	} else {
		uint64_t slot = (uint64_t)w_gen(w) << 32 | tid;
		atomic_store_explicit(&sh->slots[me], slot,
		    memory_order_release);
		if (me + 1 == sh->parties) {
			rv = release_after_action(b, me);
		} else {
			rv = await_round(sh, me, deadline);
		}
	}
	if (rv == 0 && index != NULL) {
		*index = me;
	}
	return rv;
}

void
mp_barrier_abort(mp_barrier_t *b)
{
	MP_ASSERT(b != NULL && b->sh->magic == BARRIER_MAGIC);
	struct barrier_shared *sh = b->sh;
	uint32_t w = atomic_load(&sh->word);
	while (w_phase(w) != BROKEN &&
	    !transition(sh, &w, w_make(w_gen(w), BROKEN, w_count(w)))) {
	}
}

void
mp_barrier_reset(mp_barrier_t *b)
{
	MP_ASSERT(b != NULL && b->sh->magic == BARRIER_MAGIC);
	struct barrier_shared *sh = b->sh;
	uint32_t w = atomic_load(&sh->word);
	for (;;) {
		uint32_t phase = w_phase(w);
		uint32_t want;
		if (w_count(w) == 0) {
			if (phase == FILLING) {
				return;
			}
			want = w_make(w_gen(w) + 1, FILLING, 0);
		} else if (phase == FILLING || phase == BROKEN) {
			/* Python: waiters raise, the barrier empties itself. */
			want = w_make(w_gen(w), RESETTING, w_count(w));
		} else {
			/* Draining or resetting already ends that way. */
			return;
		}
		if (transition(sh, &w, want)) {
			return;
		}
	}
}

unsigned
mp_barrier_parties(const mp_barrier_t *b)
{
	MP_ASSERT(b != NULL && b->sh->magic == BARRIER_MAGIC);
	return b->sh->parties;
}

unsigned
mp_barrier_n_waiting(const mp_barrier_t *b)
{
	MP_ASSERT(b != NULL && b->sh->magic == BARRIER_MAGIC);
	uint32_t w = atomic_load(&b->sh->word);
	return w_phase(w) == FILLING ? w_count(w) : 0;
}

bool
mp_barrier_broken(const mp_barrier_t *b)
{
	MP_ASSERT(b != NULL && b->sh->magic == BARRIER_MAGIC);
	return w_phase(atomic_load(&b->sh->word)) == BROKEN;
}
