/* SPDX-License-Identifier: MIT */
/* mproc/condition.h: process-shared Condition (Python's Condition). */
#ifndef MPROC_CONDITION_H
#define MPROC_CONDITION_H

#include <mproc/common.h>
#include <mproc/sync.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * mp_cond_t is Python's multiprocessing.Condition: a lock (an mp_lock_t,
 * Lock or RLock) plus a queue of waiters. mp_cond_wait releases the lock
 * completely, even an RLock held several times, sleeps until notified,
 * then takes the lock back at its old depth. mp_cond_notify(c, n) wakes
 * exactly n waiters when at least n wait (the n that have waited longest),
 * all of them otherwise; a notification is never lost to a spurious
 * wake-up and never reaches a waiter that started waiting after it.
 *
 * The lock. mp_cond_new uses the caller's lock, which must come from
 * mp_lock_new or mp_rlock_new (the shared arena: the condition refers to
 * it by its distance in that one mapping, valid in every process of the
 * family), or, given NULL, an RLock of its own, as Python does. A named
 * condition (mp_cond_open) always has its own RLock, stored inside its
 * named block, so every process that opens the name gets the same lock.
 * mp_cond_lock returns the lock in either case.
 *
 * Crash awareness. A lock holder that dies surfaces as -EOWNERDEAD from
 * the call that takes the lock next, mp_cond_wait included (it has to take
 * the lock back). A waiter that was killed while waiting does not swallow
 * a notification: mp_cond_notify checks that each waiter it picks is
 * alive, and skips (and forgets) the dead. The window left: a waiter that
 * dies after it was picked and before it returns took its notification
 * with it. A waiter waiting for a notifier that died cannot tell it from a
 * slow one; use a timeout.
 *
 * At most MP_COND_MAX_WAITERS threads wait on one condition at once.
 *
 * Threads: safe; a waiter is a thread, so threads of one process wait and
 * notify each other too.
 * Fork: usable in children forked after mp_cond_new or mp_cond_open. A
 * child does not hold the lock its parent held at the fork.
 */
typedef struct mp_cond mp_cond_t;

#define MP_COND_MAX_WAITERS 256

/*
 * mp_cond_new: create a condition in the shared arena over lock (from
 * mp_lock_new / mp_rlock_new, and to outlive the condition), or over an
 * RLock of its own when lock is NULL. Returns 0 and stores the handle in
 * *out, -EINVAL (lock not in the shared arena), -ENOMEM. On failure *out
 * is untouched. Release it with mp_cond_free.
 * Threads: safe. Fork: shared with children forked afterwards.
 */
MP_API int mp_cond_new(mp_lock_t *lock, mp_cond_t **out);

/*
 * mp_cond_free: return a condition made by mp_cond_new to the arena, with
 * its own lock if it had one (a caller's lock stays the caller's). Call it
 * once, in one process, when no process uses it any more. NULL is
 * ignored. This function cannot fail.
 * Threads: not while another thread uses it. Fork: usable.
 */
MP_API void mp_cond_free(mp_cond_t *c);

/*
 * mp_cond_open: open the condition called name (1 to 200 bytes, no '/';
 * the shared memory object is "/mproc.cond.<name>") with its own RLock.
 * flags as mp_event_open: MP_CREATE, MP_EXCL. Returns 0 and stores the
 * handle in *out, -EINVAL (bad name or flags), -ENOENT, -EEXIST, -EPROTO
 * (another kind of object), -ETIMEDOUT (the creator did not finish
 * initialising it), -ENOMEM, -errno from shm_open / mmap. On failure *out
 * is untouched. Close with mp_cond_close; the creator removes the name
 * with mp_cond_unlink.
 * Threads: safe. Fork: the handle is usable in children.
 */
MP_API int mp_cond_open(const char *name, int flags, mp_cond_t **out);

/*
 * mp_cond_close: unmap a condition opened with mp_cond_open (its lock is
 * not released). NULL is ignored. This function cannot fail.
 * Threads: not while another thread uses it. Fork: a child closes its
 * inherited handle for itself only.
 */
MP_API void mp_cond_close(mp_cond_t *c);

/*
 * mp_cond_unlink: remove the name of a named condition; processes that
 * have it open keep using it. Returns 0, -EINVAL, -ENOENT, or -errno.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_cond_unlink(const char *name);

/*
 * mp_cond_lock: the condition's lock. This function cannot fail.
 * Threads: safe. Fork: usable.
 */
MP_API mp_lock_t *mp_cond_lock(mp_cond_t *c);

/*
 * mp_cond_acquire, mp_cond_release: mp_lock_acquire and mp_lock_release on
 * the condition's lock, with their returns (-EOWNERDEAD, -EPERM, ...).
 * Threads: safe. Fork: usable.
 */
MP_API int mp_cond_acquire(mp_cond_t *c, int64_t timeout_ms);
MP_API int mp_cond_release(mp_cond_t *c);

/*
 * mp_cond_wait: release the lock, which the calling thread must hold,
 * wait until notified or the timeout (MP_FOREVER, MP_NOWAIT, milliseconds)
 * expires, and take the lock back at its former depth. The lock is held
 * again whenever this returns 0, -ETIMEDOUT, -EAGAIN or -EOWNERDEAD.
 * Returns:
 *   0                 notified;
 *   -ETIMEDOUT        the timeout expired first;
 *   -EAGAIN           MP_NOWAIT (the lock was still released and taken
 *                     back, letting other threads in);
 *   -EPERM            the calling thread does not hold the lock; nothing
 *                     was done;
 *   -EOWNERDEAD       notified or not, the lock was taken back but its
 *                     previous holder died holding it: repair the shared
 *                     state, then mp_lock_mark_consistent;
 *   -ENOTRECOVERABLE  the lock can no longer be taken (a dead holder's
 *                     state was never marked consistent); the lock is not
 *                     held;
 *   -ENOSPC           MP_COND_MAX_WAITERS threads wait already; nothing
 *                     was done;
 *   -EINVAL           a negative timeout other than MP_FOREVER.
 * Waiting on a lock acquired with -EOWNERDEAD and not marked consistent
 * makes that lock not recoverable, as a robust pthread mutex does. A
 * return of 0 may still find the caller's predicate false (another thread
 * got the lock first): test it in a loop, or use mp_cond_wait_for. Taking
 * the lock back is not bounded by the timeout, as in Python. Signals do
 * not interrupt the wait.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_cond_wait(mp_cond_t *c, int64_t timeout_ms);

/*
 * mp_cond_wait_for: wait until pred(arg) is true, testing it with the lock
 * held before the first wait and after each wake-up, as Python's
 * wait_for. Returns 0 when pred returned true, -ETIMEDOUT when it was
 * still false at the timeout, -EAGAIN with MP_NOWAIT when it is false,
 * and the other errors of mp_cond_wait (which stop the loop).
 * Threads: safe. Fork: usable.
 */
MP_API int mp_cond_wait_for(mp_cond_t *c, bool (*pred)(void *arg), void *arg,
    int64_t timeout_ms);

/*
 * mp_cond_notify: wake n of the waiters, oldest first: exactly n when at
 * least n live waiters wait, all of them otherwise (n = 0 wakes none).
 * The calling thread must hold the lock. Returns 0, or -EPERM when it does
 * not (nobody is woken).
 * mp_cond_notify_all: wake every waiter; same returns.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_cond_notify(mp_cond_t *c, unsigned n);
MP_API int mp_cond_notify_all(mp_cond_t *c);

#ifdef __cplusplus
}
#endif
#endif
