/* SPDX-License-Identifier: MIT */
/* sync/barrier_internal.h: the Barrier's shared layout and state word (internal; tests read it). */
#ifndef MP_SYNC_BARRIER_INTERNAL_H
#define MP_SYNC_BARRIER_INTERNAL_H

#include "core/internal.h"

#include <mproc/barrier.h>

#include <stdatomic.h>

/*
 * The barrier is Python's threading.Barrier state machine (filling,
 * draining, resetting, broken, and _count) packed into one 32-bit word, so
 * that every transition is one compare-and-swap and every waiter sleeps on
 * the futex of that word:
 *
 *   bits  0..11  count: FILLING, the arrivals of this round (index = count
 *                at arrival; == parties while the last runs the action);
 *                otherwise the callers that have not left wait() yet
 *   bits 12..13  phase
 *   bits 14..31  gen: +1 whenever a new round starts (the drain ends, or a
 *                reset of an empty barrier)
 *
 * A waiter stays counted until it leaves, and the next round cannot start
 * before the count drains to zero, so a waiter always sees the outcome of
 * its own round (DRAINING: released; RESETTING or BROKEN: broken), however
 * late it runs. That is why a round that is over still costs each waiter
 * one more compare-and-swap: without it a reset could not be told from a
 * release by a waiter that slept through both.
 */
enum mp__barrier_phase {
	FILLING = 0,
	DRAINING = 1,
	RESETTING = 2,
	BROKEN = 3,
};

#define COUNT_MASK  0xfffu
#define PHASE_SHIFT 12
#define GEN_SHIFT   14
#define GEN_MASK    0x3ffffu

_Static_assert(MP_BARRIER_MAX_PARTIES == COUNT_MASK, "count holds parties");

/*
 * slots[i] is the waiter with arrival index i in round gen, as
 * (gen << 32) | tid, or 0. It is written just after the arrival and
 * cleared just before the waiter leaves, so a sleeper can find which
 * processes are inside and check them for death.
 */
struct barrier_shared {
	_Atomic uint32_t word;
	_Atomic uint32_t sleepers;
	uint32_t parties;
	uint32_t magic;
	_Atomic int64_t checked_ns;  /* CLOCK_MONOTONIC of the last sweep */
	_Atomic uint64_t slots[];
};

#define BARRIER_MAGIC 0x72726162u  /* "barr" */
#define BARRIER_KIND  "barrier"

_Static_assert(sizeof(struct barrier_shared) == 24, "shared layout is pinned");

/*
 * The handle is process-local (heap), not the shared state: the action is
 * a function pointer, which has no place in shared memory, and a named
 * barrier's processes each bring their own. Fork copies the handle along
 * with the heap, so children use it as it is.
 */
struct mp_barrier {
	struct barrier_shared *sh;
	mp_barrier_action_fn action;
	void *arg;
	int64_t default_timeout_ms;
	bool named;
};

static inline uint32_t
w_count(uint32_t w)
{
	return w & COUNT_MASK;
}

static inline uint32_t
w_phase(uint32_t w)
{
	return (w >> PHASE_SHIFT) & 3u;
}

static inline uint32_t
w_gen(uint32_t w)
{
	return w >> GEN_SHIFT;
}

static inline uint32_t
w_make(uint32_t gen, uint32_t phase, uint32_t count)
{
	return ((gen & GEN_MASK) << GEN_SHIFT) | (phase << PHASE_SHIFT) | count;
}

#endif
