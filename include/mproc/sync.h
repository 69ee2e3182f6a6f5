/* SPDX-License-Identifier: MIT */
/* mproc/sync.h: process-shared Lock, RLock, Semaphore and BoundedSemaphore. */
#ifndef MPROC_SYNC_H
#define MPROC_SYNC_H

#include <mproc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * mp_lock_t is Python's multiprocessing.Lock, mp_rlock_t its RLock. They are
 * one object type: an RLock is a lock created recursive, every mp_lock_*
 * call accepts both, and the mp_rlock_* names are aliases for readability.
 *
 * The owner of a lock is a thread (two threads of one process are distinct
 * owners), identified by its kernel thread id. All processes that share a
 * lock must be in one PID namespace.
 *
 * Differences from Python, on purpose:
 * - Crash awareness. When the owner dies holding the lock (killed, crashed,
 *   exited), the next acquirer gets the lock and -EOWNERDEAD instead of
 *   waiting forever. A waiter already asleep notices the death within about
 *   50 ms; an acquirer that arrives after the death notices it at once.
 *   The data the lock protects may be half-updated: repair it, then call
 *   mp_lock_mark_consistent() before releasing, or the lock becomes
 *   unusable (-ENOTRECOVERABLE for every later acquire), as with a robust
 *   pthread mutex. Limit: the owner is recognised by its thread id, so if
 *   the kernel gives that id to a new process before a waiter checks, the
 *   waiter believes the owner alive until that process exits.
 * - A Lock acquired again by the thread that holds it returns -EDEADLK
 *   (Python blocks forever, or until the timeout).
 * - A Lock released by a thread that does not hold it returns -EPERM
 *   (Python's multiprocessing.Lock lets any process release it; RLock
 *   raises, as here).
 *
 * Threads: safe. Fork: a lock created before mp_process_start (or fork) is
 * shared with the child; the child does not own the locks its parent held.
 */
typedef struct mp_lock mp_lock_t;
typedef struct mp_lock mp_rlock_t;

/*
 * mp_lock_new, mp_rlock_new: a new unlocked Lock / RLock in the shared arena
 * that forked children inherit. Returns 0, or -ENOMEM. Release with
 * mp_lock_free() once no process uses it any more.
 */
MP_API int mp_lock_new(mp_lock_t **out);
MP_API int mp_rlock_new(mp_rlock_t **out);

/*
 * mp_lock_free: return a lock made by mp_lock_new / mp_rlock_new to the
 * arena. NULL is ignored. Freeing a lock another process still uses is the
 * caller's bug. This function cannot fail.
 */
MP_API void mp_lock_free(mp_lock_t *l);

/*
 * mp_lock_open, mp_rlock_open: open the named lock "name" that unrelated
 * processes share (backed by /dev/shm/mproc.lock.<name>). flags: MP_CREATE
 * creates it unlocked when absent; MP_CREATE | MP_EXCL requires creating
 * it. Returns 0, -EINVAL (bad name or flags), -ENOENT (absent, no
 * MP_CREATE), -EEXIST (MP_EXCL and present), -EPROTO (the name holds
 * another kind of object, or a Lock opened as an RLock or the reverse),
 * -ENOMEM, or -errno from shm_open / mmap. Close with mp_lock_close();
 * the creator removes the name with mp_lock_unlink().
 */
MP_API int mp_lock_open(const char *name, int flags, mp_lock_t **out);
MP_API int mp_rlock_open(const char *name, int flags, mp_rlock_t **out);

/*
 * mp_lock_close: unmap a lock opened with mp_lock_open / mp_rlock_open.
 * It does not release the lock. NULL is ignored. This function cannot fail.
 */
MP_API void mp_lock_close(mp_lock_t *l);

/*
 * mp_lock_unlink: remove the name of a named lock; processes that have it
 * open keep using it. Returns 0, -EINVAL, -ENOENT, or -errno.
 */
MP_API int mp_lock_unlink(const char *name);

/*
 * mp_lock_acquire: take the lock, waiting at most timeout_ms (MP_NOWAIT,
 * MP_FOREVER, or milliseconds). An RLock held by the caller is taken again
 * (its count grows by one). Returns:
 *   0                 acquired;
 *   -EAGAIN           MP_NOWAIT and the lock is held by another thread;
 *   -ETIMEDOUT        the timeout expired;
 *   -EOWNERDEAD       acquired, but the previous owner died holding it
 *                     (see above: repair, then mp_lock_mark_consistent);
 *   -ENOTRECOVERABLE  a previous owner died and nobody marked the lock
 *                     consistent; it cannot be acquired any more;
 *   -EDEADLK          a (non-recursive) Lock already held by the caller;
 *   -EOVERFLOW        an RLock already held UINT32_MAX times.
 * Signals do not interrupt the wait.
 */
MP_API int mp_lock_acquire(mp_lock_t *l, int64_t timeout_ms);

/*
 * mp_lock_release: release the lock (an RLock: drop one level of its
 * count, releasing it when the count reaches zero). Returns 0, or -EPERM
 * when the calling thread does not hold it. Releasing a lock acquired with
 * -EOWNERDEAD without mp_lock_mark_consistent() makes it not recoverable.
 */
MP_API int mp_lock_release(mp_lock_t *l);

/*
 * mp_lock_mark_consistent: after mp_lock_acquire returned -EOWNERDEAD,
 * declare the protected state repaired, so that releasing the lock leaves
 * it usable. Returns 0, -EPERM (the caller does not hold the lock), or
 * -EINVAL (the lock is not in the owner-died state).
 */
MP_API int mp_lock_mark_consistent(mp_lock_t *l);

/*
 * mp_lock_is_mine: whether the calling thread holds the lock.
 * This function cannot fail.
 */
MP_API bool mp_lock_is_mine(const mp_lock_t *l);

/*
 * mp_rlock_count: how many times the calling thread holds the lock (0 when
 * it does not hold it; at most 1 for a non-recursive Lock).
 * This function cannot fail.
 */
MP_API unsigned mp_rlock_count(const mp_rlock_t *l);

/* Aliases for RLocks. */
static inline void
mp_rlock_free(mp_rlock_t *l)
{
	mp_lock_free(l);
}

static inline void
mp_rlock_close(mp_rlock_t *l)
{
	mp_lock_close(l);
}

static inline int
mp_rlock_unlink(const char *name)
{
	return mp_lock_unlink(name);
}

static inline int
mp_rlock_acquire(mp_rlock_t *l, int64_t timeout_ms)
{
	return mp_lock_acquire(l, timeout_ms);
}

static inline int
mp_rlock_release(mp_rlock_t *l)
{
	return mp_lock_release(l);
}

static inline int
mp_rlock_mark_consistent(mp_rlock_t *l)
{
	return mp_lock_mark_consistent(l);
}

static inline bool
mp_rlock_is_mine(const mp_rlock_t *l)
{
	return mp_lock_is_mine(l);
}

/*
 * mp_sem_t is Python's multiprocessing.Semaphore and BoundedSemaphore: a
 * counter that acquire decrements (waiting while it is zero) and release
 * increments. A semaphore has no owner: any thread may release it, and a
 * process that dies after acquiring it is not noticed (as in Python).
 *
 * Threads: safe. Fork: a semaphore created before mp_process_start (or
 * fork) is shared with the child.
 */
typedef struct mp_sem mp_sem_t;

/*
 * mp_sem_new, mp_bounded_sem_new: a semaphore with the given initial value
 * (at most INT32_MAX) in the shared arena that forked children inherit. A
 * bounded semaphore refuses to be released above its initial value.
 * Returns 0, -EINVAL (value too large), or -ENOMEM. Free with mp_sem_free().
 */
MP_API int mp_sem_new(unsigned value, mp_sem_t **out);
MP_API int mp_bounded_sem_new(unsigned value, mp_sem_t **out);

/*
 * mp_sem_free: return a semaphore made by mp_sem_new / mp_bounded_sem_new to
 * the arena. NULL is ignored. This function cannot fail.
 */
MP_API void mp_sem_free(mp_sem_t *s);

/*
 * mp_sem_open: open the named semaphore "name" (backed by
 * /dev/shm/mproc.sem.<name>). With MP_CREATE it is created, when absent,
 * with the initial value and bounded-ness given; those two arguments are
 * ignored when the semaphore already exists. Returns 0, -EINVAL (bad name,
 * flags or value), -ENOENT, -EEXIST, -EPROTO, -ENOMEM, or -errno from
 * shm_open / mmap. Close with mp_sem_close(); the creator removes the name
 * with mp_sem_unlink().
 */
MP_API int mp_sem_open(const char *name, int flags, unsigned value,
    bool bounded, mp_sem_t **out);

/* mp_sem_close: unmap a named semaphore. NULL is ignored. Cannot fail. */
MP_API void mp_sem_close(mp_sem_t *s);

/* mp_sem_unlink: remove a semaphore's name. Returns 0, -EINVAL, -ENOENT. */
MP_API int mp_sem_unlink(const char *name);

/*
 * mp_sem_acquire: decrement the value, waiting at most timeout_ms while it
 * is zero. Returns 0, -EAGAIN (MP_NOWAIT and the value is zero), or
 * -ETIMEDOUT. Signals do not interrupt the wait.
 */
MP_API int mp_sem_acquire(mp_sem_t *s, int64_t timeout_ms);

/*
 * mp_sem_release: increment the value and wake one waiter. Returns 0, or
 * -EOVERFLOW when a bounded semaphore would exceed its initial value
 * (Python raises ValueError) or any semaphore would exceed INT32_MAX; the
 * value is then unchanged.
 */
MP_API int mp_sem_release(mp_sem_t *s);

/*
 * mp_sem_get_value: the current value into *out (a snapshot: other
 * processes may change it at once). Returns 0; cannot fail otherwise.
 */
MP_API int mp_sem_get_value(const mp_sem_t *s, int *out);

#ifdef __cplusplus
}
#endif
#endif
