/* SPDX-License-Identifier: MIT */
/* conn/conn_internal.h: the connection's state, shared by the files of src/conn (internal). */
#ifndef MP_CONN_INTERNAL_H
#define MP_CONN_INTERNAL_H

#include <mproc/conn.h>

#include "core/buf.h"
#include "core/internal.h"

/*
 * The fuzz build (-DMPROC_FUZZ=ON) sets the two sizes below much smaller
 * (CMakeLists.txt), so that inputs of a few KiB reach the paths of large,
 * parked and growing messages, which the sizes here keep for frames of
 * 64 KiB and 4 MiB; the tests (tests/test_conn.c) run these.
 */
#ifndef MP__CONN_RBUF_KIB
#define MP__CONN_RBUF_KIB 64
#endif
#ifndef MP__CONN_ALLOC_AHEAD_KIB
#define MP__CONN_ALLOC_AHEAD_KIB 4096
#endif

/*
 * Size of the receive buffer. Small frames are read many at a time into
 * it and parsed from it; a frame that does not fit goes straight into its
 * destination buffer instead, so large payloads are copied only once.
 */
#define MP__CONN_RBUF_SIZE ((size_t)MP__CONN_RBUF_KIB << 10)

/*
 * A large message's buffer is allocated whole up to this size; beyond it,
 * it grows as the bytes arrive, so that a peer's 12-byte header cannot
 * make us allocate up to the message limit (256 MiB by default) for
 * nothing (found by tests/fuzz/fuzz_frame).
 */
#define MP__CONN_ALLOC_AHEAD ((size_t)MP__CONN_ALLOC_AHEAD_KIB << 10)

/*
 * Receive spinning (conn.c, recv_spin, and the rings' spin in
 * pipe_ring.c): how long, and after how many fruitless spins in a row a
 * connection spins only once in MP__CONN_SPIN_RETRY waits.
 */
#define MP__CONN_SPIN_NS      20000
#define MP__CONN_SPIN_MISSES  4
#define MP__CONN_SPIN_RETRY   64

/* Messages up to this size are copied behind the header in sbuf. */
#define MP__CONN_COPY_MAX ((size_t)64 << 10)

struct mp__pring;

struct mp_conn {
	int fd;
	bool readable;
	bool writable;
	bool is_sock;
	bool eof;              /* read(2) returned 0: nothing more will come */
	bool broken;           /* a message was lost mid-way: no framing left */
	size_t max_message;

	/*
	 * Receive spinning (conn.c, recv_spin): whether this connection
	 * spins (the ends of a duplex mp_pipe), how many spins in a row
	 * ended without data, and a counter of the waits that skipped one.
	 */
	bool spin;
	uint8_t spin_misses;
	uint8_t spin_skipped;

	/*
	 * Receive side: rbuf[rpos..rend) is read and not yet consumed. rbuf
	 * is NULL until the first receive.
	 */
	uint8_t *rbuf;
	size_t rpos;
	size_t rend;

	/*
	 * A large message interrupted by a timeout: pend[0..pend_got) of
	 * pend_len bytes has arrived (pend holds pend_cap), its header is
	 * already consumed.
	 */
	uint8_t *pend;
	size_t pend_cap;
	size_t pend_len;
	size_t pend_got;

	/* Where the last view from rbuf began, for mp__conn_unrecv. */
	size_t view_pos;
	size_t view_end;

	/* Send side: header space plus payload, reused for every message. */
	struct mp__buf sbuf;

	/*
	 * The ends of a duplex mp_pipe also share rings in memory
	 * (pipe_ring.c, docs/internals/pipe.md); NULL elsewhere. ring_end
	 * is 0 for mp_pipe's a, 1 for b. The rest is this process's view:
	 * head_seen and tail_seen are lower bounds of the shared positions
	 * (send and receive direction), closes_seen the peer's close count
	 * last checked, kmode that the receive direction went over to the
	 * socket for good and its ring is drained, marker_due that a MARKER
	 * was taken and its frame is not yet received, rview a copy of the
	 * last message taken from the ring for a view (rview_pending: given
	 * back by mp__conn_unrecv), view_kind what the last view was.
	 */
	struct mp__pring *ring;
	_Atomic uint32_t *ring_refs; /* this process's ends on ring */
	int ring_end;
	uint64_t head_seen;
	uint64_t tail_seen;
	uint32_t closes_seen;
	bool kmode;
	bool marker_due;
	bool rview_pending;
	uint8_t view_kind;
	uint8_t *rview;
	size_t rview_len;
};

/* What the last view was, for mp__conn_unrecv. */
enum {
	MP__VIEW_RBUF = 0,   /* a frame in rbuf */
	MP__VIEW_MARKER = 1, /* a frame in rbuf that a MARKER announced */
	MP__VIEW_RING = 2,   /* a ring record copied to rview */
};

/* Where a received message goes. */
enum mp__dest_kind {
	MP__DEST_ALLOC, /* a new buffer for the caller */
	MP__DEST_INTO,  /* the caller's buffer */
	MP__DEST_VIEW,  /* a pointer into rbuf, valid until the next receive */
};

struct mp__dest {
	enum mp__dest_kind kind;
	uint8_t *buf;  /* MP__DEST_INTO: the caller's buffer; else the result */
	size_t max;    /* longest acceptable message */
	size_t len;    /* result */
	bool owned;    /* buf was allocated for a large MP__DEST_VIEW message */
};

/*
 * The socket's side of a message, for pipe_ring.c: send p[0..n) as one
 * frame (in_sbuf: p is c->sbuf.data + 4, sent in place), and receive one
 * frame. Ring ends read frames exactly (no read-ahead) until kmode.
 */
int mp__conn_send_frame(mp_conn_t *c, const void *p, size_t n, bool in_sbuf);
int mp__conn_recv_sock(mp_conn_t *c, struct mp__dest *d, int64_t deadline,
    bool nowait);

/* Wrap fd, whose kind the caller already knows. */
int mp__conn_new(int fd, bool readable, bool writable, bool is_sock,
    mp_conn_t **out);

/* A handshake's deadline for timeout_ms (MP_FOREVER gets the 10 s bound). */
int64_t mp__conn_handshake_deadline(int64_t timeout_ms);

/* Receives with an absolute deadline (see mp__deadline_from_timeout). */
int mp__conn_recv_deadline(mp_conn_t *c, size_t maxlen, int64_t deadline_ns,
    bool nowait, void **out, size_t *len);
int mp__conn_recv_into_deadline(mp_conn_t *c, void *buf, size_t cap,
    int64_t deadline_ns, bool nowait, size_t *len);

/*
 * The next message as a view: into rbuf when it fits there (no copy), else
 * a buffer of its own that *owned tells the caller to mp__free. Valid
 * until the next receive on c.
 */
int mp__conn_recv_view(mp_conn_t *c, size_t maxlen, int64_t deadline_ns,
    bool nowait, const uint8_t **data, size_t *len, bool *owned);

/*
 * Give back the message of the last mp__conn_recv_view (its decoding ran
 * out of memory), so the next receive returns it again. Only right after
 * that view, before any other call on c; an owned buffer passes to c.
 */
void mp__conn_unrecv(mp_conn_t *c, const uint8_t *data, size_t len,
    bool owned);

/* Send c->sbuf.data[4..len) as one message; the first 4 bytes are scratch. */
int mp__conn_send_sbuf(mp_conn_t *c);

/*
 * True when a receive returns without touching the fd: a whole frame is
 * buffered, or end of file was seen, or the next header is bad.
 */
bool mp__conn_frame_buffered(const mp_conn_t *c);

/*
 * Both halves in a role's order: a server (Listener.accept) delivers then
 * answers, a client answers then delivers. deadline (absolute, never
 * forever) bounds the whole exchange.
 */
int mp__conn_handshake(mp_conn_t *c, const void *key, size_t keylen,
    bool server, int64_t deadline);

/*
 * The deliver half with a caller-chosen nonce (the part after
 * "#CHALLENGE#"), so that tests can check the handshake byte for byte.
 */
int mp__conn_deliver_nonce(mp_conn_t *c, const void *key, size_t keylen,
    const void *nonce, size_t nonce_len, int64_t deadline_ns);

/* Set TCP_NODELAY on a TCP socket (best effort; other kinds are left alone). */
void mp__conn_tune_socket(int fd);

/*
 * The handshake's computations, without I/O (auth.c). The blocking
 * handshake above uses them, and so does the manager server's event loop,
 * which runs the same steps between its own non-blocking reads.
 *
 * mp__auth_nonce: our challenge payload, "{sha256}" + 40 random bytes (the
 * CPython 3.12+ form, which every version 3.8 to 3.13 answers). 0 or -EIO.
 * mp__auth_verify: whether resp answers the challenge payload nonce for
 * key: a bare 16-byte HMAC-MD5 (3.8 to 3.11) or "{name}" + HMAC-name.
 * mp__auth_answer: the response to a peer's challenge payload p, by
 * CPython 3.12's rules; its length, or 0 to refuse. out has room for
 * MP__AUTH_RESPONSE_MAX bytes.
 */
#define MP__AUTH_NONCE_LEN 48
#define MP__AUTH_RESPONSE_MAX (16 + 64)  /* prefix + EVP_MAX_MD_SIZE */
int mp__auth_nonce(uint8_t nonce[MP__AUTH_NONCE_LEN]);
bool mp__auth_verify(const void *key, size_t keylen, const uint8_t *nonce,
    size_t nlen, const uint8_t *resp, size_t rlen);
size_t mp__auth_answer(const void *key, size_t keylen, const uint8_t *p,
    size_t len, uint8_t *out);

#endif
