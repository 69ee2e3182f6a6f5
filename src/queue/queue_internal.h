/* SPDX-License-Identifier: MIT */
/* queue/queue_internal.h: the queue's shared layout, its handle and the ring engine (internal). */
#ifndef MP_QUEUE_INTERNAL_H
#define MP_QUEUE_INTERNAL_H

#include "core/internal.h"
#include "shared/arena.h"
#include "sync/lock_internal.h"

#include <mproc/queue.h>

#include <stdatomic.h>

/*
 * The shared state (docs/internals/queue.md). It holds no pointers. The
 * producers' side and the consumers' side each have a robust lock and
 * their own cache lines, so one producer and one consumer never contend
 * for a lock or write a line the other writes, except the ring and the
 * two published words:
 *   pub = (messages published << 32) | head byte position   (producers)
 *   con = (messages consumed  << 32) | tail byte position   (consumers)
 * Both positions count bytes modulo 2^32; the ring size is a power of two
 * below 2^31, so head - tail (mod 2^32) is the number of bytes in use.
 * A record counts as in the queue once pub covers it, and as gone once con
 * covers it: each side publishes with one 64-bit store, after its bytes
 * are complete, so a process killed between two instructions leaves the
 * words describing whole records only.
 */
#define MP__QUEUE_LINE 64

struct mp__queue_shared {
	/* Constant after creation. */
	uint32_t magic;
	uint32_t cap;           /* ring bytes, a power of two */
	uint32_t maxsize;       /* messages; 0: no limit */
	uint32_t joinable;
	uint8_t pad0[MP__QUEUE_LINE - 16];

	/* Producers: written under put_lock only. */
	struct mp_lock put_lock;
	uint32_t tail_seen;     /* a recent tail position (a cache of con) */
	uint32_t count_seen;    /* and its message count */
	uint32_t streaming;     /* a fragmented message is under way */
	uint32_t stream_seq;    /* its sequence number */
	uint8_t pad1[MP__QUEUE_LINE - sizeof(struct mp_lock) - 16];

	/* Written by producers, read by consumers. */
	_Atomic uint64_t pub;
	_Atomic uint32_t data_word;    /* bumped to wake consumers */
	uint8_t pad2[MP__QUEUE_LINE - 12];

	/* Consumers: written under get_lock only. */
	struct mp_lock get_lock;
	uint32_t head_seen;     /* a recent head position (a cache of pub) */
	uint8_t pad3[MP__QUEUE_LINE - sizeof(struct mp_lock) - 4];

	/* Written by consumers, read by producers. */
	_Atomic uint64_t con;
	_Atomic uint32_t space_word;   /* bumped to wake producers */
	uint8_t pad4[MP__QUEUE_LINE - 12];

	/*
	 * Sleeper flags (one sleeper per side at most: the lock holder),
	 * written only around a sleep, read on every put / get.
	 */
	_Atomic uint32_t get_sleepers;
	_Atomic uint32_t put_sleepers;
	uint8_t pad5[MP__QUEUE_LINE - 8];

	/* JoinableQueue: unfinished = published count - done. */
	_Atomic uint32_t done;
	_Atomic uint32_t join_sleepers;
	uint8_t pad6[MP__QUEUE_LINE - 8];

	/* The ring follows, cap bytes. */
};

_Static_assert(sizeof(struct mp__queue_shared) == 7 * MP__QUEUE_LINE,
    "shared layout is pinned");

#define MP__QUEUE_MAGIC 0x65757571u    /* "queu" */

/*
 * Records in the ring: a 16-byte header, then len payload bytes, padded to
 * 16, so a header never wraps past the end of the ring (a payload may).
 * A small message is one WHOLE record. A large one is FIRST (payload: the
 * total length as 8 bytes, then data), MID..., LAST, all with the seq and
 * tid of their stream; ABORT withdraws a stream. The put lock keeps a
 * stream's records contiguous.
 */
enum mp__rec_type {
	MP__REC_WHOLE = 1,
	MP__REC_FIRST = 2,
	MP__REC_MID = 3,
	MP__REC_LAST = 4,
	MP__REC_ABORT = 5,
};

enum mp__rec_fmt {
	MP__FMT_PICKLE = 1,
	MP__FMT_BYTES = 2,
};

struct mp__rec {
	uint32_t len;
	uint8_t type;
	uint8_t fmt;
	uint16_t pad;
	uint32_t seq;
	uint32_t tid;
};

_Static_assert(sizeof(struct mp__rec) == 16, "record header is pinned");

#define MP__REC_ALIGN 16u

/* The process-local handle; a forked child works on its copy. */
struct mp_queue {
	struct mp__queue_shared *sh;
	uint8_t *ring;
	uint32_t magic;         /* MP__QUEUE_HANDLE_MAGIC */
	bool closed;
	bool named;
	pid_t creator;          /* the process that made this handle */
	struct mp__named map;   /* named queues */
};

#define MP__QUEUE_HANDLE_MAGIC 0x68657571u  /* "queh" */

struct mp_simple_queue {
	struct mp_queue q;
};

/*
 * mp__queue_make: the shared part and handle of an anonymous queue
 * (mp__arena_alloc) or a named one (name not NULL). Returns as
 * mp_queue_new / mp_queue_open.
 */
int mp__queue_make(const char *name, int flags, size_t maxsize,
    const struct mp_queue_opts *opts, mp_queue_t **out);

/*
 * mp__queue_put_msg: append one message of len bytes in format fmt (a
 * pickle or raw bytes), as one record or streamed in fragments. Returns as
 * mp_queue_put.
 */
int mp__queue_put_msg(mp_queue_t *q, uint8_t fmt, const void *data,
    size_t len, int64_t timeout_ms);

/*
 * mp__queue_get_msg: take the oldest message. Small ones are copied into
 * the thread's reusable buffer unless own is set; *data then points into it
 * (valid until the thread's next get); with own (or for a large message)
 * *data is a buffer the caller frees with mp_free, and *owned says which.
 * Returns as mp_queue_get_bytes.
 */
int mp__queue_get_msg(mp_queue_t *q, bool own, uint8_t **data, size_t *len,
    uint8_t *fmt, bool *owned, int64_t timeout_ms);

/* Validate timeout_ms and turn it into a deadline (-1: forever). */
int mp__queue_deadline(int64_t timeout_ms, int64_t *deadline);

#endif
