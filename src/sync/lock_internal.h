/* SPDX-License-Identifier: MIT */
/* sync/lock_internal.h: shared layouts, and hooks for Condition and Value. */
#ifndef MP_SYNC_LOCK_INTERNAL_H
#define MP_SYNC_LOCK_INTERNAL_H

#include "core/internal.h"
#include "sync/futex.h"

#include <mproc/sync.h>

#include <stdatomic.h>

/*
 * The lock word (docs/internals/sync.md): 0 when free, else the owner's
 * thread id (< 2^30, since pid_max <= 2^22). MP__LOCK_NOTRECOVERABLE is a
 * word no thread id can equal: a lock whose dead owner's state nobody
 * repaired.
 */
#define MP__LOCK_TID_MASK       0x3fffffffu
#define MP__LOCK_NOTRECOVERABLE 0x3fffffffu

/* mode bits: RECURSIVE is fixed at init; INCONSISTENT is the owner's. */
#define MP__LOCK_RECURSIVE      0x1u
#define MP__LOCK_INCONSISTENT   0x2u

/*
 * The shared state of a Lock / RLock: no pointers, so it works at any
 * address in any process. Other objects may embed it (a Value's lock)
 * after mp__lock_init. Sleepers wait on seq, which every release bumps, not
 * on word: the word of a lock released and taken again by the same thread
 * reads as before, and a sleeper about to wait for it to change would
 * miss the release. waiters is 1 when a thread may sleep: a release that
 * finds it set clears it and wakes one sleeper.
 */
struct mp_lock {
	_Atomic uint32_t word;
	_Atomic uint32_t seq;       /* bumped by every release; written by the owner */
	_Atomic uint32_t waiters;
	_Atomic uint32_t mode;
	uint32_t count;     /* RLock depth; the owner's only */
	uint32_t magic;     /* MP__LOCK_MAGIC: catches freed objects */
};

#define MP__LOCK_MAGIC 0x6b636f6cu  /* "lock" */

_Static_assert(sizeof(struct mp_lock) == 24, "shared layout is pinned");

/*
 * mp__lock_check_slice_ns: how long a sleeping waiter sleeps at most
 * before it checks that the owner lives (50 ms). Tests only change it.
 */
extern int64_t mp__lock_check_slice_ns;

/*
 * mp__lock_init: initialise caller storage (shared memory, zeroed or not) as
 * an unlocked Lock, or RLock when recursive. Nobody may use it yet.
 * Cannot fail. Nothing to finalise: forgetting the memory is enough.
 */
void mp__lock_init(struct mp_lock *l, bool recursive);

/*
 * mp__lock_acquire_until: mp_lock_acquire with an absolute CLOCK_MONOTONIC
 * deadline in nanoseconds (-1: forever). Same returns, but an expired
 * deadline always gives -ETIMEDOUT (never -EAGAIN).
 */
int mp__lock_acquire_until(struct mp_lock *l, int64_t deadline_ns);

/*
 * Python's Condition releases its lock completely around a wait, however
 * deep an RLock is held, and restores the depth afterwards
 * (RLock._release_save / _acquire_restore).
 *
 * mp__lock_release_save: release the lock fully, saving the RLock count in
 * *st. Returns 0, or -EPERM when the calling thread does not hold it. A lock
 * in the owner-died state (acquired with -EOWNERDEAD, not marked
 * consistent) becomes not recoverable, as a robust pthread mutex does in
 * pthread_cond_wait.
 *
 * mp__lock_acquire_restore: take the lock again (deadline as in
 * mp__lock_acquire_until) and restore the saved count. Returns 0,
 * -ETIMEDOUT, -EOWNERDEAD (acquired, count restored, the state is
 * inconsistent), -ENOTRECOVERABLE.
 * Threads: safe. Fork: usable.
 */
struct mp__lock_saved {
	uint32_t count;
};

int mp__lock_release_save(struct mp_lock *l, struct mp__lock_saved *st);
int mp__lock_acquire_restore(struct mp_lock *l, const struct mp__lock_saved *st,
    int64_t deadline_ns);

/*
 * The shared state of a Semaphore: value is the futex word; waiters counts
 * sleepers so that a release wakes only when someone sleeps. max is the
 * initial value of a BoundedSemaphore, INT32_MAX otherwise.
 */
struct mp_sem {
	_Atomic uint32_t value;
	_Atomic uint32_t waiters;
	uint32_t max;
	uint32_t magic;     /* MP__SEM_MAGIC */
};

#define MP__SEM_MAGIC 0x6d657373u  /* "ssem" */

_Static_assert(sizeof(struct mp_sem) == 16, "shared layout is pinned");

/*
 * mp__sem_init: initialise caller storage as a semaphore of the given value
 * (<= INT32_MAX), bounded by it when bounded. Cannot fail.
 */
void mp__sem_init(struct mp_sem *s, unsigned value, bool bounded);

/*
 * Named sync objects, shared by Lock, Semaphore, Condition, Event, Barrier:
 * one /dev/shm block per object, kind in its name ("lock", "sem", ...).
 *
 * mp__sync_named_open: open (flags MP_CREATE / MP_EXCL) the block of kind
 * and name, size bytes; on creation init(mem, arg) runs before any other
 * process sees it. Stores the shared state's address in *mem; the mapping
 * is remembered in a process-local table so mp__sync_named_close(mem) can
 * find it. Returns 0 or the errors of mp__named_open, -EINVAL for unknown
 * flags, -ENOMEM.
 * mp__sync_named_close: unmap what mp__sync_named_open mapped at mem (NULL
 * ignored); returns false when mem is not a named object of this process.
 * mp__sync_named_unlink: remove the name. Returns 0 or -errno.
 * Threads: safe. Fork: a child inherits the open objects (mappings and
 * table) and closes its own copies.
 */
int mp__sync_named_open(const char *kind, const char *name, size_t size,
    int flags, void (*init)(void *mem, void *arg), void *arg, void **mem);
bool mp__sync_named_close(void *mem);
int mp__sync_named_unlink(const char *kind, const char *name);

#endif
