/* SPDX-License-Identifier: MIT */
/* fuzz_frame.c: libFuzzer target for the connection's frame reader (src/conn/conn.c). */
#include <mproc.h>
#include <fcntl.h>
#include <string.h>

#include "conn/conn_internal.h"
#include "fuzz_common.h"

/*
 * The fuzzer's bytes are what a peer writes on a connection, received by
 * mp_conn over a socket pair or a pipe. Input: a mode byte, a chunk byte,
 * then the stream.
 *   mode & 1         a pipe (no MSG_DONTWAIT: the poll-first path), else a
 *                    socket pair;
 *   (mode >> 1) & 3  how messages are received: 0 mp_conn_recv_bytes,
 *                    1 mp_conn_recv_bytes_into (a buffer of the limit),
 *                    2 mp_conn_recv (a pickle), 3 mp__conn_recv_view;
 *   (mode >> 3) & 3  the message limit: the default (256 MiB), 1 MiB,
 *                    1.5 times the receive buffer (a frame past it goes
 *                    straight to its own buffer) or 64 bytes;
 *   mode & 0x20      the stream arrives in chunks of (chunk byte + 1)
 *                    bytes (at least 1/64 of it), each followed by
 *                    non-blocking receives (a
 *                    large frame is parked half-way and resumed), else
 *                    all at once.
 * After the stream the writer closes, and receives go on until one fails
 * for good (end of file, a bad header, a truncated frame, ...).
 *
 * The fuzz build shrinks the receive buffer to 4 KiB and the size a
 * large message's buffer starts at to 8 KiB (src/conn/conn_internal.h),
 * so that inputs of up to 32 KiB (scripts/fuzz) take every path: small
 * frames, large ones, parked and resumed, and buffers growing (doubling)
 * as bytes arrive.
 *
 * Checked against a plain reading of the stream: every message received
 * is the next frame's payload (4-byte header, or -1 and an 8-byte
 * length), a frame over the limit fails with -EMSGSIZE and no frame is
 * skipped or invented; mp_conn_recv decodes as mp_pickle_loads does.
 */

struct ref {
	const uint8_t *p;
	size_t len;
	size_t pos;
};

/* The next frame of the stream as the protocol reads it: 1 with its
 * payload, 0 when incomplete, -EPROTO for a bad header. */
FUZZ_ORACLE static int
ref_next(const struct ref *r, const uint8_t **payload, uint64_t *n,
    size_t *hdr)
{
	const uint8_t *d = r->p + r->pos;
	size_t have = r->len - r->pos;
	if (have < 4) {
		return 0;
	}
	uint32_t v = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 |
	    (uint32_t)d[2] << 8 | d[3];
	*hdr = 4;
	*n = v;
	if (v == 0xFFFFFFFF) {
		if (have < 12) {
			return 0;
		}
		*hdr = 12;
		*n = 0;
		for (int i = 4; i < 12; i++) {
			*n = *n << 8 | d[i];
		}
	} else if (v > 0x7FFFFFFF) {
		return -EPROTO;
	}
	*payload = d + *hdr;
	return *n <= have - *hdr ? 1 : 0;
}

/* a and b encode alike (== would not do: NaN is not equal to NaN). */
FUZZ_ORACLE static void
same_value(const mp_obj_t *a, const mp_obj_t *b)
{
	void *pa = NULL, *pb = NULL;
	size_t la = 0, lb = 0;
	int ra = mp_pickle_dumps(a, &pa, &la);
	int rb = mp_pickle_dumps(b, &pb, &lb);
	fuzz_check(ra == rb && la == lb && (la == 0 || memcmp(pa, pb,
	    la) == 0), "recv and loads decode differently");
	mp_free(pa);
	mp_free(pb);
}

struct run {
	mp_conn_t *c;
	int api;
	size_t max;
	struct ref ref;
	uint8_t *into;
	bool done;      /* a receive failed for good */
};

/* The outcome of one receive against the reference; false to stop. */
static bool
receive(struct run *r, bool nowait)
{
	int64_t deadline = nowait ? 0 : -1;
	const uint8_t *got = NULL;
	size_t len = 0;
	void *alloc = NULL;
	bool owned = false;
	mp_obj_t *obj = NULL;
	int rv;
	switch (r->api) {
	case 0:
		rv = mp__conn_recv_deadline(r->c, r->max, deadline, nowait,
		    &alloc, &len);
		got = alloc;
		break;
	case 1:
		rv = mp__conn_recv_into_deadline(r->c, r->into, r->max,
		    deadline, nowait, &len);
		got = r->into;
		break;
	case 2:
		rv = mp_conn_recv(r->c, nowait ? 0 : MP_FOREVER, &obj);
		break;
	default:
		rv = mp__conn_recv_view(r->c, r->max, deadline, nowait, &got,
		    &len, &owned);
		break;
	}
	if (rv == -EAGAIN) {
		return false;
	}
	const uint8_t *want;
	uint64_t n = 0;
	size_t hdr = 0;
	int ref = ref_next(&r->ref, &want, &n, &hdr);
	if (r->api == 2) {
		if (rv == MP_EPICKLE || rv == MP_EFORBIDDEN ||
		    rv == MP_ELIMIT || rv == 0) {
			/* A whole frame was taken; it decodes as loads says. */
			fuzz_check(ref == 1 && n <= r->max, "recv: no frame");
			struct mp_pickle_opts o = { .max_len = r->max };
			mp_obj_t *o2 = NULL;
			int rv2 = mp_pickle_loads(want, (size_t)n, &o, &o2);
			fuzz_check(rv2 == rv, "recv and loads disagree");
			if (rv == 0) {
				same_value(obj, o2);
			}
			mp_obj_unref(o2);
			mp_obj_unref(obj);
			r->ref.pos += hdr + (size_t)n;
			return true;
		}
	} else if (rv == 0) {
		fuzz_check(ref == 1 && n <= r->max, "a message from nowhere");
		fuzz_check(len == n && (n == 0 || memcmp(got, want, len) == 0),
		    "a message is not its frame's payload");
		r->ref.pos += hdr + (size_t)n;
		if (r->api == 0 || owned) {
			mp_free((void *)got);
		}
		return true;
	}
	/* A failure. Which ones the stream allows: */
	if (rv == -EMSGSIZE) {
		fuzz_check(ref >= 0 && hdr > 0 && n > r->max,
		    "-EMSGSIZE for a frame within the limit");
	} else if (rv == -EPROTO) {
		fuzz_check(ref == -EPROTO, "-EPROTO for a good header");
	} else if (rv == MP_EOF) {
		fuzz_check(r->ref.pos == r->ref.len, "EOF before the end");
	} else if (rv == MP_ETRUNCATED) {
		fuzz_check(ref == 0 && r->ref.pos < r->ref.len,
		    "truncated, but the frame is whole");
	} else {
		fuzz_check(rv == -ENOMEM, "an unexpected error");
	}
	r->done = true;
	return false;
}

static const size_t limits[4] = { 0, (size_t)1 << 20,
	MP__CONN_RBUF_SIZE * 3 / 2, 64 };

/* recv_bytes_into's limit is its buffer's size: at most this. */
#define INTO_MAX (2 * MP__CONN_ALLOC_AHEAD)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2) {
		return 0;
	}
	uint8_t mode = data[0];
	size_t chunk = (mode & 0x20) ? (size_t)data[1] + 1 : SIZE_MAX;
	/* At most 64 chunks: each costs a few system calls. */
	if (chunk < (size - 2) / 64 + 1) {
		chunk = (size - 2) / 64 + 1;
	}
	int fds[2];
	bool pipe_mode = mode & 1;
	if (pipe_mode) {
		fuzz_check(pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0, "pipe2");
	} else {
		fuzz_socketpair(fds);
	}
	/* The reader's end blocks, as mp_pipe's do; the writer's does not. */
	fuzz_check(fcntl(fds[0], F_SETFL, 0) == 0, "fcntl");
	struct run r = { .api = (mode >> 1) & 3, .ref = { data + 2, size - 2,
		0 } };
	fuzz_check(mp__conn_new(fds[0], true, false, !pipe_mode, &r.c) == 0,
	    "conn");
	mp_conn_set_max_message(r.c, limits[(mode >> 3) & 3]);
	r.max = mp_conn_max_message(r.c);
	if (r.api == 1) {
		r.max = r.max > INTO_MAX ? INTO_MAX : r.max;
		r.into = malloc(r.max);
		fuzz_check(r.into != NULL, "malloc");
	}
	const uint8_t *p = data + 2;
	size_t left = size - 2;
	int stalls = 0;
	while (left > 0 && !r.done && stalls < 2) {
		size_t n = left < chunk ? left : chunk;
		size_t w = fuzz_write_some(fds[1], p, n);
		p += w;
		left -= w;
		stalls = w == 0 ? stalls + 1 : 0;
		bool more = true;
		while (more && !r.done) {
			more = receive(&r, true);
		}
	}
	/* What could not be written (a full pipe) is not in the stream. */
	r.ref.len -= left;
	close(fds[1]);
	for (int i = 0; i < 100000 && !r.done; i++) {
		receive(&r, false);
	}
	fuzz_check(r.done, "receives never end");
	free(r.into);
	mp_conn_close(r.c);
	return 0;
}
