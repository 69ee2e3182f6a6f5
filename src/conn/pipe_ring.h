/* SPDX-License-Identifier: MIT */
/* conn/pipe_ring.h: the shared-memory rings of a duplex mp_pipe (internal; docs/internals/pipe.md). */
#ifndef MP_CONN_PIPE_RING_H
#define MP_CONN_PIPE_RING_H

#include "conn/conn_internal.h"
#include "sync/lock_internal.h"

#include <stdatomic.h>

/*
 * Data bytes of one direction's ring (a power of two), and the largest
 * payload that travels in it: larger messages go through the socket,
 * announced by a MARKER record. The fuzz build may set it smaller.
 */
#ifndef MP__PRING_KIB
#define MP__PRING_KIB 64
#endif
#define MP__PRING_CAP ((uint64_t)MP__PRING_KIB << 10)
#define MP__PRING_REC_MAX ((size_t)MP__PRING_CAP / 4)

/*
 * The doorbell: a 4-byte frame header no CPython peer sends (a length of
 * -2), written to the socket after a publish that found a sleeper. Only
 * our own ends share this socket; the frame reader skips it.
 */
#define MP__PRING_BELL_BYTES "\xFF\xFF\xFF\xFE"

/* Record types; a record is an 8-byte header, then the payload padded to 8. */
enum {
	MP__PREC_DATA = 1,   /* a whole message */
	MP__PREC_MARKER = 2, /* the next message is a frame in the socket */
	MP__PREC_WRAP = 3,   /* skip to the start of the ring */
};

struct mp__prec {
	uint32_t len;
	uint32_t type;
};

/*
 * One direction, one cache line per writer: the sender's line, the tail,
 * the receiver's line, the head, and the rarely written wake-up words.
 * Positions are monotonic byte counts (mod 2^64, never wrapping in
 * practice); head <= tail <= head + MP__PRING_CAP.
 */
struct mp__pring_dir {
	/* Sender's line: written under send_lock. */
	struct mp_lock send_lock;
	_Atomic uint32_t kernel;     /* 1: this direction uses the socket */
	_Atomic uint32_t kernel_req; /* mp_conn_fileno asked for the switch */
	_Atomic uint32_t send_frame; /* a MARKER's frame is being written */
	_Atomic uint32_t bells;      /* doorbells written to the socket */
	uint8_t pad0[64 - 40];
	_Atomic uint64_t tail;
	uint8_t pad1[56];
	/* Receiver's line: written under recv_lock. */
	struct mp_lock recv_lock;
	_Atomic uint32_t recv_frame; /* a MARKER taken, its frame not read */
	_Atomic uint32_t bells_taken; /* doorbells read from the socket */
	uint8_t pad2[64 - 32];
	_Atomic uint64_t head;
	uint8_t pad3[56];
	/* Read by both sides at every message, written only rarely. */
	_Atomic uint32_t sleepers;   /* receivers about to poll the socket */
	_Atomic uint32_t room_wait;  /* a sender waits for room */
	_Atomic uint32_t room_seq;   /* its futex word, bumped by receivers */
	_Atomic uint32_t broken;     /* a sender or receiver died mid-frame */
	_Atomic uint64_t room_want;  /* the head it waits for */
	uint8_t pad4[64 - 24];
};

_Static_assert(sizeof(struct mp__pring_dir) == 320, "one line per writer");

/*
 * The whole mapping: dir[e] carries what end e sends (e 0 is mp_pipe's a,
 * 1 is b), closes[e] counts closes of end e's copies; the two data areas
 * follow at page offsets.
 */
struct mp__pring {
	_Atomic uint32_t closes[2];
	uint8_t pad[56];
	struct mp__pring_dir dir[2];
};

#define MP__PRING_DATA_OFF ((size_t)4096)
#define MP__PRING_MAP_SIZE (MP__PRING_DATA_OFF + 2 * (size_t)MP__PRING_CAP)

/*
 * A sender waiting for room, or a receiver waiting for a MARKER's frame,
 * checks every slice that its peer still lives.
 */
#define MP__PRING_SLICE_NS (50 * 1000000LL)

static inline uint8_t *
mp__pring_data(struct mp__pring *r, int e)
{
	return (uint8_t *)r + MP__PRING_DATA_OFF + (size_t)e * MP__PRING_CAP;
}

static inline struct mp__pring_dir *
mp__pring_send_dir(const mp_conn_t *c)
{
	return &c->ring->dir[c->ring_end];
}

static inline struct mp__pring_dir *
mp__pring_recv_dir(const mp_conn_t *c)
{
	return &c->ring->dir[1 - c->ring_end];
}

static inline uint64_t
mp__pring_rec_size(size_t n)
{
	return sizeof(struct mp__prec) + (((uint64_t)n + 7) & ~(uint64_t)7);
}

/*
 * Map and initialise a ring pair, with *refs, this process's count of
 * ends using the mapping, at 2 (both ends of a new pipe). The count is
 * private memory: a forked child gets its own copy along with its own
 * copies of the ends, so each process unmaps when its last end closes.
 * 0 or -ENOMEM.
 */
int mp__pring_new(struct mp__pring **out, _Atomic uint32_t **refs);

/* Unmap and free what mp__pring_new made (mp_pipe's failure path). */
void mp__pring_free(struct mp__pring *r, _Atomic uint32_t *refs);

/*
 * Count a close of end e (after its fd is closed); the process's last
 * end unmaps.
 */
void mp__pring_close(struct mp__pring *r, int e, _Atomic uint32_t *refs);

/*
 * Send p[0..n) as one message on c (a ring end). in_sbuf: p is
 * c->sbuf.data + 4, so the socket path may send sbuf in place.
 */
int mp__pring_send(mp_conn_t *c, const void *p, size_t n, bool in_sbuf);

/* Receive one message into d; the ring end's form of conn.c's recv_frame. */
int mp__pring_recv(mp_conn_t *c, struct mp__dest *d, int64_t deadline,
    bool nowait);

/* mp_conn_poll on a ring end not yet in kernel mode. */
int mp__pring_poll(mp_conn_t *c, int64_t deadline);

/*
 * For mp_conn_wait. ready: whether a receive returns at once (this may
 * put c in kernel mode; then conn.c's own test applies).
 * sleep_begin: count c as a sleeper before poll(2): 0 counted (call
 * sleep_end after the poll), 1 a message arrived meanwhile (ready, not
 * counted), -1 c does not sleep as a ring receiver (not counted).
 * after_wake: the socket polled readable: take doorbells away; true when
 * a receive would return (data, end of file, or a lock held elsewhere).
 */
bool mp__pring_ready(mp_conn_t *c);
int mp__pring_sleep_begin(mp_conn_t *c);
void mp__pring_sleep_end(mp_conn_t *c);
bool mp__pring_after_wake(mp_conn_t *c);

/*
 * Doorbells are counted (rung by senders, taken by receivers), so that a
 * receiver skips exactly those and a header 0xFFFFFFFE written by anyone
 * else still fails as the bad header it is. bells_owed: how many are in
 * the socket (or on their way) and not yet taken; bell_taken counts one.
 */
uint32_t mp__pring_bells_owed(const mp_conn_t *c);
void mp__pring_bell_taken(mp_conn_t *c);

/*
 * Take a side's lock (l, with its frame flag) of direction d; a dead
 * holder is repaired (*dead: mark consistent at unlock). Returns 0,
 * -EAGAIN (nowait), -ETIMEDOUT. mp__pring_unlock releases it.
 */
int mp__pring_lock(struct mp__pring_dir *d, struct mp_lock *l,
    _Atomic uint32_t *frame, int64_t deadline, bool nowait, bool *dead);
void mp__pring_unlock(struct mp_lock *l, bool dead);

/* Put d on the socket if its send lock is free; whether d is now there. */
bool mp__pring_try_kernel(struct mp__pring_dir *d);

/* mp_conn_fileno's switch of both directions to the socket. */
void mp__pring_to_kernel(struct mp__pring *r);

#endif
