/* SPDX-License-Identifier: MIT */
/* mproc/event.h: process-shared Event (Python's multiprocessing.Event). */
#ifndef MPROC_EVENT_H
#define MPROC_EVENT_H

#include <mproc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * mp_event_t is a flag, initially clear, that mp_event_set raises and
 * mp_event_clear lowers; mp_event_wait blocks until it is raised. It is the
 * C form of Python's multiprocessing.Event (threading.Event semantics: a
 * waiter released by a set returns success even when the flag is cleared
 * again before it runs).
 *
 * Two kinds share the type. mp_event_new places the event in the shared
 * arena: processes forked after the call use the same handle. mp_event_open
 * places it in a named block that unrelated processes open by name.
 *
 * A waiter spins for a few tens of microseconds before it sleeps, so a set
 * reaches a waiter that is still running in well under a microsecond.
 *
 * Crash awareness: an event has no owner, so a waiter cannot tell a setter
 * that died from one that has not set yet; use a timeout where that matters.
 *
 * Threads: safe; any number of threads and processes may set, clear and
 * wait at once.
 * Fork: usable in children forked after mp_event_new or mp_event_open; the
 * handle stays valid in the child.
 */
typedef struct mp_event mp_event_t;

/*
 * mp_event_new: create a clear event in the shared arena. Returns 0 and
 * stores the handle in *out, or -ENOMEM (heap or arena exhausted). On
 * failure *out is untouched. Release it with mp_event_free.
 * Threads: safe. Fork: the event is shared with children forked afterwards.
 */
MP_API int mp_event_new(mp_event_t **out);

/*
 * mp_event_free: return an event made by mp_event_new to the arena. Call
 * it once, in one process, when no process uses the event any more (other
 * processes just stop using it). NULL is ignored. This function cannot
 * fail.
 * Threads: not while another thread uses the event. Fork: usable.
 */
MP_API void mp_event_free(mp_event_t *e);

/*
 * mp_event_open: open the event called name (1 to 200 bytes, no '/'),
 * shared by every process that opens it; the shared memory object is
 * "/mproc.event.<name>". flags: MP_CREATE creates a clear event when the
 * name is free, MP_EXCL with it fails when the name is taken; without
 * MP_CREATE the event must exist.
 * Returns 0 and stores the handle in *out, -EINVAL (bad name or flags),
 * -ENOENT (absent without MP_CREATE), -EEXIST (MP_EXCL and taken), -EPROTO
 * (the name holds another kind of object), -ETIMEDOUT (its creator did not
 * finish initialising it), -ENOMEM, or -errno from shm_open / mmap. On
 * failure *out is untouched. Release the handle with mp_event_close; the
 * creator removes the name with mp_event_unlink.
 * Threads: safe. Fork: the handle is usable in children.
 */
MP_API int mp_event_open(const char *name, int flags, mp_event_t **out);

/*
 * mp_event_close: unmap an event opened with mp_event_open. The event
 * lives on for the other processes that have it open. NULL is ignored.
 * This function cannot fail.
 * Threads: not while another thread uses the handle. Fork: a child closes
 * its inherited handle for itself only.
 */
MP_API void mp_event_close(mp_event_t *e);

/*
 * mp_event_unlink: remove the name of a named event, so later opens fail
 * with -ENOENT; processes that have it open keep using it. Only the
 * creator should call it. Returns 0, -EINVAL (bad name), -ENOENT, or
 * -errno from shm_unlink.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_event_unlink(const char *name);

/*
 * mp_event_set: raise the flag and wake every waiter. Setting a set event
 * does nothing. This function cannot fail.
 * Threads: safe. Fork: usable.
 */
MP_API void mp_event_set(mp_event_t *e);

/*
 * mp_event_clear: lower the flag; later waits block until the next set.
 * This function cannot fail.
 * Threads: safe. Fork: usable.
 */
MP_API void mp_event_clear(mp_event_t *e);

/*
 * mp_event_is_set: whether the flag is raised now.
 * Threads: safe. Fork: usable.
 */
MP_API bool mp_event_is_set(const mp_event_t *e);

/*
 * mp_event_wait: return when the flag is raised, at once if it is already.
 * timeout_ms: MP_FOREVER, MP_NOWAIT or milliseconds.
 * Returns 0 when the flag was set (possibly cleared again since), -EAGAIN
 * with MP_NOWAIT when it is clear, -ETIMEDOUT when the timeout expired
 * first, -EINVAL for a negative timeout other than MP_FOREVER.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_event_wait(mp_event_t *e, int64_t timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
