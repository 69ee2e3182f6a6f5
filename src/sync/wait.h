/* SPDX-License-Identifier: MIT */
/* sync/wait.h: the spin-then-sleep wait of Condition, Event and Barrier. */
#ifndef MP_SYNC_WAIT_H
#define MP_SYNC_WAIT_H

#include "core/internal.h"
#include "sync/futex.h"

#include <sched.h>
#include <stdatomic.h>

/*
 * How long a waiter spins on its word before it sleeps in the kernel.
 * Waking a sleeping process costs about 30 us on the target machines
 * (a vCPU that halts must be woken by the host), so spinning for a little
 * longer than that turns every hand-off between two running processes into
 * a cache-line transfer (well under a microsecond) and costs at most about
 * one wake-up's worth of CPU when the peer is slow.
 */
#define MP__WAIT_SPIN_NS 50000

/*
 * The spin's rhythm, in turns of mp__spin_pause (about 25 ns each). The
 * first MP__WAIT_PURE_TURNS (about 1.5 us) only spin: a peer running on
 * another CPU answers well within that. After them the clock is read and
 * sched_yield called every MP__WAIT_YIELD_EVERY turns: when the process we
 * wait for shares our CPU (or waits for it), spinning only delays it until
 * the scheduler's tick, while a yield hands the CPU over at once. Yielding
 * with nothing else to run costs about 0.4 us.
 */
#define MP__WAIT_PURE_TURNS  64
#define MP__WAIT_YIELD_EVERY 16

/*
 * The period at which a sleeper that watches other processes for death
 * (Barrier) wakes to check them. Shorter costs CPU for nothing; longer
 * delays the error.
 */
#define MP__WAIT_SLICE_NS (50 * 1000000LL)

/*
 * mp__spin_while_eq: spin while *word == val, for at most budget_ns (and
 * never past deadline_ns, -1 for none). Returns the last value read: a
 * value different from val means the word changed. Cannot fail.
 */
static inline uint32_t
mp__spin_while_eq(_Atomic uint32_t *word, uint32_t val, int64_t budget_ns,
    int64_t deadline_ns)
{
	uint32_t cur = atomic_load_explicit(word, memory_order_acquire);
	int64_t end = 0;
	for (unsigned turn = 1; cur == val; turn++) {
		mp__spin_pause();
		if (turn >= MP__WAIT_PURE_TURNS &&
		    turn % MP__WAIT_YIELD_EVERY == 0) {
			int64_t now = mp__now_ns();
			if (end == 0) {
				end = now + budget_ns;
				if (deadline_ns >= 0 && deadline_ns < end) {
					end = deadline_ns;
				}
			}
			if (now >= end) {
				return atomic_load_explicit(word,
				    memory_order_acquire);
			}
			sched_yield();
		}
		cur = atomic_load_explicit(word, memory_order_acquire);
	}
	return cur;
}

/*
 * mp__sleep_while_eq: sleep on the futex while *word == val, until
 * deadline_ns (-1: forever). *sleepers counts the processes that may be
 * asleep, so that a waker can skip the system call when it is zero; the
 * waker must change *word before it reads *sleepers (both sequentially
 * consistent), and we raise *sleepers before the kernel compares *word:
 * one of the two then sees the other. Returns 0 when the word changed (or
 * spuriously: callers re-check), -ETIMEDOUT at the deadline.
 */
static inline int
mp__sleep_while_eq(_Atomic uint32_t *word, uint32_t val,
    _Atomic uint32_t *sleepers, int64_t deadline_ns)
{
	atomic_fetch_add_explicit(sleepers, 1, memory_order_seq_cst);
	int rv = 0;
	if (atomic_load_explicit(word, memory_order_seq_cst) == val) {
		rv = mp__futex_wait(word, val, deadline_ns);
	}
	atomic_fetch_sub_explicit(sleepers, 1, memory_order_relaxed);
	return rv;
}

/*
 * mp__wake_sleepers: the waker's half of mp__sleep_while_eq, called after
 * it changed *word. Cannot fail.
 */
static inline void
mp__wake_sleepers(_Atomic uint32_t *word, _Atomic uint32_t *sleepers)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(sleepers, memory_order_seq_cst) != 0) {
		mp__futex_wake(word, INT32_MAX);
	}
}

#endif
