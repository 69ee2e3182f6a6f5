/* SPDX-License-Identifier: MIT */
/* mproc/queue.h: Queue, JoinableQueue and SimpleQueue in shared memory, with no feeder thread. */
#ifndef MPROC_QUEUE_H
#define MPROC_QUEUE_H

#include <mproc/common.h>
#include <mproc/obj.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * mp_queue_t is Python's multiprocessing.Queue and JoinableQueue: a FIFO of
 * messages shared by any number of producer and consumer processes. A
 * message is an mp_obj_t (carried as its pickle, as Python does) or raw
 * bytes. The queue is a ring buffer in shared memory (docs/internals/
 * queue.md); there is no feeder thread: when a put returns, the message is
 * in the ring, so a process may exit (or be killed) right after a put and
 * the message is still delivered.
 *
 * Messages of any size go through. A message larger than about half the
 * ring is streamed in fragments while a consumer drains them; the consumer
 * assembles it and never delivers part of one. Each producer's messages
 * arrive in the order it put them.
 *
 * Python's exceptions map to errors: queue.Full is -EAGAIN (MP_NOWAIT) or
 * -ETIMEDOUT (the timeout expired) from a put; queue.Empty is the same pair
 * from a get; ValueError("Queue is closed") is MP_ECLOSED; ValueError
 * ("task_done() called too many times") is -EINVAL.
 *
 * Crash rules (principle 3): a producer or consumer killed at any moment,
 * even mid-put or mid-get, never corrupts the queue and never blocks the
 * others forever. A message whose put returned is delivered exactly once,
 * with one exception: a consumer that dies after its get took the message
 * from the ring (between the take and the return of the get, or later)
 * loses that message with it. A message whose producer died before its put
 * returned is either delivered whole or not at all.
 *
 * Differences from Python, on purpose:
 * - maxsize counts messages as in Python, but the ring also bounds bytes
 *   (struct mp_queue_opts.buffer_size): a put waits while the ring has no
 *   room for the message, even when maxsize is 0 (infinite). Python's
 *   feeder thread buffers without limit in the producer's memory instead.
 * - close() is per handle: the handle refuses puts and gets afterwards
 *   (MP_ECLOSED); messages already put stay for the other processes.
 *
 * Threads: safe (every call may be made from any thread of any process).
 * Fork: a queue created before mp_process_start (or fork) is shared with
 * the child through the same handle; named queues are shared with
 * unrelated processes.
 */
typedef struct mp_queue mp_queue_t;

/* The ring size of a queue made with no options: 1 MiB. */
#define MP_QUEUE_BUFFER_DEFAULT ((size_t)1 << 20)

/*
 * Options of mp_queue_new and mp_queue_open. Zero-initialise and set what
 * you need; NULL gives all defaults.
 */
struct mp_queue_opts {
	/*
	 * Bytes of the shared ring. 0 gives MP_QUEUE_BUFFER_DEFAULT; other
	 * values are rounded up to a power of two between 4 KiB and 256 MiB.
	 * Small messages cost their size rounded up to 16 bytes, plus 16.
	 */
	size_t buffer_size;
	/* A JoinableQueue: mp_queue_task_done and mp_queue_join work. */
	bool joinable;
};

/*
 * mp_queue_new: a new empty Queue(maxsize) in the shared arena that forked
 * children inherit. maxsize 0 means no limit on the number of messages (as
 * Python's maxsize <= 0). mp_joinable_queue_new is the same with
 * opts->joinable set. Returns 0, -EINVAL (maxsize above INT32_MAX), or
 * -ENOMEM. Release with mp_queue_free().
 * Threads: safe. Fork: usable.
 */
MP_API int mp_queue_new(size_t maxsize, const struct mp_queue_opts *opts,
    mp_queue_t **out);
MP_API int mp_joinable_queue_new(size_t maxsize,
    const struct mp_queue_opts *opts, mp_queue_t **out);

/*
 * mp_queue_open: open the named queue "name" that unrelated processes share
 * (backed by /dev/shm/mproc.queue.<name>). flags: MP_CREATE creates it,
 * empty, when absent (with maxsize and opts); MP_CREATE | MP_EXCL requires
 * creating it. An opener of an existing queue must give the creator's
 * buffer_size (the default, when both use it); maxsize and joinable are
 * the creator's. Returns 0, -EINVAL (bad name, flags, maxsize), -ENOENT
 * (absent, no MP_CREATE), -EEXIST (MP_EXCL and present), -EPROTO (the name
 * holds another object or another buffer size), -ENOMEM, or -errno from
 * shm_open / mmap. Release with mp_queue_free(); the creator removes the
 * name with mp_queue_unlink().
 * Threads: safe. Fork: a child inherits the open handle.
 */
MP_API int mp_queue_open(const char *name, int flags, size_t maxsize,
    const struct mp_queue_opts *opts, mp_queue_t **out);

/*
 * mp_queue_unlink: remove the name of a named queue; processes that have
 * it open keep using it. Returns 0, -EINVAL, -ENOENT, or -errno.
 */
MP_API int mp_queue_unlink(const char *name);

/*
 * mp_queue_close: Python's Queue.close(): this handle, in this process,
 * will put and get no more; later calls return MP_ECLOSED. Messages already
 * put stay in the queue for the other processes (with no feeder thread
 * there is nothing to flush or join). NULL and a second close are
 * ignored. This function cannot fail.
 * Threads: do not close while another thread uses the handle.
 * Fork: affects the calling process only.
 */
MP_API void mp_queue_close(mp_queue_t *q);

/*
 * mp_queue_free: release the handle. In the process that created an
 * anonymous queue, the ring also returns to the arena, so every other
 * process must be done with it; in a child that inherited the handle only
 * the handle is released. A named queue is unmapped (its name stays until
 * mp_queue_unlink). NULL is ignored. This function cannot fail.
 */
MP_API void mp_queue_free(mp_queue_t *q);

/*
 * mp_queue_put: append the pickle of o, waiting at most timeout_ms while
 * the queue is full (maxsize messages, or no room in the ring). On return
 * the message is in shared memory. The object is only read (borrowed
 * during the call). Returns 0, or:
 *   -EAGAIN      MP_NOWAIT and the queue is full (queue.Full);
 *   -ETIMEDOUT   the timeout expired (queue.Full); nothing was put;
 *   -EINVAL      o cannot be pickled, or timeout_ms below MP_FOREVER;
 *   -ENOMEM      the pickle could not be built;
 *   MP_ECLOSED   the handle was closed.
 * A message streamed in fragments that times out part-way is withdrawn:
 * no consumer sees any of it. With MP_NOWAIT the call may still wait about
 * a millisecond for another producer's put to finish copying. Signals do
 * not interrupt the wait.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_queue_put(mp_queue_t *q, const mp_obj_t *o, int64_t timeout_ms);

/*
 * mp_queue_put_bytes: as mp_queue_put, for len raw bytes (len may be 0;
 * data may then be NULL). The bytes are copied into the ring.
 */
MP_API int mp_queue_put_bytes(mp_queue_t *q, const void *data, size_t len,
    int64_t timeout_ms);

/*
 * mp_queue_get: remove the oldest message, waiting at most timeout_ms
 * while the queue is empty, and decode it into *out (a new reference). A
 * message put with mp_queue_put_bytes comes out as a bytes object.
 * Returns 0, or:
 *   -EAGAIN      MP_NOWAIT and the queue is empty (queue.Empty);
 *   -ETIMEDOUT   the timeout expired (queue.Empty);
 *   -EINVAL      timeout_ms below MP_FOREVER;
 *   -ENOMEM      no memory for the message: it stays in the queue, or,
 *                when memory ran out while decoding its pickle, it was
 *                taken and is lost (as CPython's get loses it);
 *   MP_EPICKLE, MP_EFORBIDDEN, MP_ELIMIT  the message was taken but its
 *                pickle did not decode (mp_pickle_loads);
 *   MP_ECLOSED   the handle was closed.
 * The timeout bounds the wait for a message to begin: a large message
 * whose first fragment this get took is received to its end as long as
 * its producer lives (a producer that dies mid-message is noticed within
 * about 50 ms and its fragments are discarded). With MP_NOWAIT on a
 * queue that is not empty, the call may wait about a millisecond for
 * another consumer's get to finish. On failure *out is untouched. Signals
 * do not interrupt the wait.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_queue_get(mp_queue_t *q, mp_obj_t **out, int64_t timeout_ms);

/*
 * mp_queue_get_bytes: as mp_queue_get, returning the message's bytes in a
 * buffer released with mp_free() (*len bytes; a 0-byte message gives a
 * non-NULL buffer). A message put with mp_queue_put comes out as its
 * pickle. Returns the codes of mp_queue_get but the pickle ones.
 */
MP_API int mp_queue_get_bytes(mp_queue_t *q, void **out, size_t *len,
    int64_t timeout_ms);

/*
 * mp_queue_qsize: the number of messages in the queue (a snapshot: other
 * processes may change it at once). A message still being streamed in
 * fragments counts once its last fragment is in. This function cannot
 * fail; on a closed handle it returns 0.
 */
MP_API size_t mp_queue_qsize(const mp_queue_t *q);

/* mp_queue_empty: qsize() == 0. This function cannot fail. */
MP_API bool mp_queue_empty(const mp_queue_t *q);

/*
 * mp_queue_full: whether maxsize messages are in the queue (never true for
 * maxsize 0; a put may still wait for room in the ring). This function
 * cannot fail.
 */
MP_API bool mp_queue_full(const mp_queue_t *q);

/*
 * mp_queue_task_done: JoinableQueue.task_done(): one message taken by a
 * get has been processed. Returns 0, -EINVAL when called more times than
 * messages were put (Python's ValueError), -ENOTSUP on a queue that is not
 * joinable, MP_ECLOSED.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_queue_task_done(mp_queue_t *q);

/*
 * mp_queue_join: JoinableQueue.join(): wait at most timeout_ms until every
 * message put has been marked done. Returns 0, -EAGAIN (MP_NOWAIT and work
 * is pending), -ETIMEDOUT, -EINVAL (bad timeout), -ENOTSUP (not joinable),
 * MP_ECLOSED. A message lost with a consumer that died is never marked
 * done: join then only returns by its timeout.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_queue_join(mp_queue_t *q, int64_t timeout_ms);

/*
 * mp_simple_queue_t is Python's multiprocessing.SimpleQueue: put, get,
 * empty and close, with no maxsize, no timeouts in Python (here the gets
 * and puts take one, as the Queue's do) and the same ring, messages, crash
 * rules and fork behaviour as mp_queue_t.
 * Threads: safe. Fork: shared with children forked after its creation.
 */
typedef struct mp_simple_queue mp_simple_queue_t;

/*
 * mp_simple_queue_new: a new empty SimpleQueue in the shared arena; opts
 * as for mp_queue_new (joinable is ignored), NULL for the defaults.
 * Returns 0 or -ENOMEM. Release with mp_simple_queue_free().
 */
MP_API int mp_simple_queue_new(const struct mp_queue_opts *opts,
    mp_simple_queue_t **out);

/* mp_simple_queue_close, _free: as mp_queue_close and mp_queue_free. */
MP_API void mp_simple_queue_close(mp_simple_queue_t *q);
MP_API void mp_simple_queue_free(mp_simple_queue_t *q);

/* The put and get calls: as their mp_queue_ counterparts. */
MP_API int mp_simple_queue_put(mp_simple_queue_t *q, const mp_obj_t *o,
    int64_t timeout_ms);
MP_API int mp_simple_queue_put_bytes(mp_simple_queue_t *q, const void *data,
    size_t len, int64_t timeout_ms);
MP_API int mp_simple_queue_get(mp_simple_queue_t *q, mp_obj_t **out,
    int64_t timeout_ms);
MP_API int mp_simple_queue_get_bytes(mp_simple_queue_t *q, void **out,
    size_t *len, int64_t timeout_ms);

/* mp_simple_queue_empty: whether no message is queued. Cannot fail. */
MP_API bool mp_simple_queue_empty(const mp_simple_queue_t *q);

#ifdef __cplusplus
}
#endif
#endif
