/* SPDX-License-Identifier: MIT */
/* mproc/barrier.h: process-shared Barrier (Python's Barrier). */
#ifndef MPROC_BARRIER_H
#define MPROC_BARRIER_H

#include <mproc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * mp_barrier_t is Python's multiprocessing.Barrier (threading.Barrier
 * semantics): parties callers of mp_barrier_wait block until the last one
 * arrives, then all return together, each with its arrival index
 * (0 .. parties-1). The barrier is reusable: the next round starts when
 * every caller of the previous one has left (callers that arrive earlier
 * wait for that, as in Python). The optional action runs in exactly one
 * process per round, the last to arrive, before the others are released.
 *
 * A barrier is broken by mp_barrier_abort, by a wait that times out, or by
 * a process that dies while it waits. Every waiter then returns MP_EBROKEN,
 * and so does every later wait until mp_barrier_reset.
 *
 * Crash awareness (Python has none): a waiting process records its pid in
 * the barrier. Sleepers wake every 50 ms and check those pids; when one has
 * died (killed, crashed, exited) the barrier breaks, and the dead process
 * is counted out so that mp_barrier_reset leaves a usable barrier. The same
 * holds for the last arrival dying in the action, and for a process that
 * dies after a round released it but before it left the wait (then the
 * round is not broken: it is only counted out). What cannot be detected: a
 * party that dies before it calls mp_barrier_wait looks exactly like a slow
 * one; use a timeout (or the default timeout) when that matters. The pid
 * is written a few instructions after the arrival is counted and erased a
 * few instructions before the caller is counted out, and a death inside
 * those windows is not seen either. A pid the kernel has already given to
 * a new process reads as alive.
 *
 * Waiters spin for a few tens of microseconds before they sleep: two
 * processes that meet at a barrier in a loop hand over in well under a
 * microsecond instead of the ~30 us a futex wake-up costs.
 *
 * Threads: safe (a thread counts as one party). Fork: usable in children
 * forked after mp_barrier_new; the action pointer is inherited with them.
 */
typedef struct mp_barrier mp_barrier_t;

/* The action run by the last process to arrive, before the release. */
typedef void (*mp_barrier_action_fn)(void *arg);

/*
 * Pass MP_BARRIER_DEFAULT as the timeout of mp_barrier_wait to use the
 * barrier's default timeout (Python's wait(timeout=None)).
 */
#define MP_BARRIER_DEFAULT ((int64_t)-2)

/* The largest number of parties a barrier accepts. */
#define MP_BARRIER_MAX_PARTIES 4095u

/*
 * mp_barrier_new: create a barrier for parties callers (1 ..
 * MP_BARRIER_MAX_PARTIES) in the shared arena. action (may be NULL) is
 * called as action(arg) by the last arrival of every round; processes
 * forked afterwards share the pointer, which is valid there. The action
 * must not wait on this barrier. default_timeout_ms (MP_FOREVER or
 * milliseconds >= 0) is what MP_BARRIER_DEFAULT means.
 * Returns 0 and stores the handle in *out, -EINVAL (parties out of range,
 * bad default timeout), -ENOMEM. On failure *out is untouched. Release it
 * with mp_barrier_free.
 * Threads: safe. Fork: shared with children forked afterwards.
 */
MP_API int mp_barrier_new(unsigned parties, mp_barrier_action_fn action,
    void *arg, int64_t default_timeout_ms, mp_barrier_t **out);

/*
 * mp_barrier_free: return a barrier made by mp_barrier_new to the arena.
 * Call it once, in one process, when no process uses it any more. NULL is
 * ignored. This function cannot fail.
 * Threads: not while another thread uses the barrier. Fork: usable.
 */
MP_API void mp_barrier_free(mp_barrier_t *b);

/*
 * mp_barrier_open: open the barrier called name (1 to 200 bytes, no '/';
 * the shared memory object is "/mproc.barrier.<name>"), shared by every
 * process that opens it. flags as mp_event_open: MP_CREATE, MP_EXCL.
 * parties: the number of parties, the same in every process (the size of
 * the shared block depends on it). action, arg and default_timeout_ms
 * belong to this handle: when this process is the last to arrive, it runs
 * its own action.
 * Returns 0 and stores the handle in *out, -EINVAL (bad name, flags,
 * parties or timeout), -ENOENT, -EEXIST, -EPROTO (another kind of object,
 * or a barrier of another number of parties), -ETIMEDOUT (the creator did
 * not finish initialising it), -ENOMEM, -errno from shm_open / mmap. On
 * failure *out is untouched. Close with mp_barrier_close; the creator
 * removes the name with mp_barrier_unlink.
 * Threads: safe. Fork: the handle is usable in children.
 */
MP_API int mp_barrier_open(const char *name, int flags, unsigned parties,
    mp_barrier_action_fn action, void *arg, int64_t default_timeout_ms,
    mp_barrier_t **out);

/*
 * mp_barrier_close: release a handle from mp_barrier_open; the barrier
 * lives on for the other processes. NULL is ignored. This function cannot
 * fail.
 * Threads: not while another thread uses the handle. Fork: a child closes
 * its inherited handle for itself only.
 */
MP_API void mp_barrier_close(mp_barrier_t *b);

/*
 * mp_barrier_unlink: remove the name of a named barrier; processes that
 * have it open keep using it. Returns 0, -EINVAL, -ENOENT, or -errno.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_barrier_unlink(const char *name);

/*
 * mp_barrier_wait: arrive at the barrier and wait for the round to fill.
 * timeout_ms: MP_BARRIER_DEFAULT (the barrier's default), MP_FOREVER, or
 * milliseconds (MP_NOWAIT included: only the last arrival can then pass).
 * On success *index (may be NULL) receives the arrival index, 0 for the
 * first to arrive up to parties-1 for the last, which ran the action.
 * Returns:
 *   0           the round filled;
 *   MP_EBROKEN  the barrier is broken, was broken while waiting (abort, a
 *               dead waiter, another waiter's timeout) or reset while
 *               waiting; also when this call's own timeout expired, which
 *               breaks the barrier for everyone (Python raises
 *               BrokenBarrierError there too);
 *   -ETIMEDOUT  the timeout expired before the caller could join a round
 *               (the previous round was still draining: its callers had
 *               not all left); nothing is broken;
 *   -EINVAL     a timeout below MP_BARRIER_DEFAULT.
 * The timeout counts from the call and covers both the wait for the
 * previous round to drain (Python waits for that without a timeout) and
 * the wait in the caller's own round. Once the last party has arrived, the
 * round completes even if a timeout expires while the action runs.
 * Signals do not interrupt the wait.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_barrier_wait(mp_barrier_t *b, int64_t timeout_ms,
    unsigned *index);

/*
 * mp_barrier_abort: break the barrier: current and later waiters return
 * MP_EBROKEN until mp_barrier_reset. This function cannot fail.
 * Threads: safe. Fork: usable.
 */
MP_API void mp_barrier_abort(mp_barrier_t *b);

/*
 * mp_barrier_reset: return the barrier to its initial empty state. Current
 * waiters return MP_EBROKEN; the barrier accepts new arrivals once they
 * have left. This function cannot fail.
 * Threads: safe. Fork: usable.
 */
MP_API void mp_barrier_reset(mp_barrier_t *b);

/*
 * mp_barrier_parties: the number of parties. This function cannot fail.
 * mp_barrier_n_waiting: how many callers wait in the round being filled
 * (a snapshot, as Python's n_waiting). This function cannot fail.
 * mp_barrier_broken: whether the barrier is broken. This function cannot fail.
 * Threads: safe. Fork: usable.
 */
MP_API unsigned mp_barrier_parties(const mp_barrier_t *b);
MP_API unsigned mp_barrier_n_waiting(const mp_barrier_t *b);
MP_API bool mp_barrier_broken(const mp_barrier_t *b);

#ifdef __cplusplus
}
#endif
#endif
