/* SPDX-License-Identifier: MIT */
/* core/buf.h: a growable byte buffer used by encoders and framers (internal). */
#ifndef MP_CORE_BUF_H
#define MP_CORE_BUF_H

#include "core/internal.h"

#include <string.h>

/*
 * struct mp__buf: data[0..len) is filled, cap is allocated. Zero-initialise
 * it (or use mp__buf_init) before first use; mp__buf_fini releases it.
 * Appends return 0 or -ENOMEM; on failure the buffer keeps its old content.
 */
struct mp__buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

void mp__buf_init(struct mp__buf *b);
void mp__buf_fini(struct mp__buf *b);
/* Make room for at least extra more bytes. */
int mp__buf_reserve(struct mp__buf *b, size_t extra);
/* Hand the data to the caller (release with mp_free) and reset the buffer. */
void *mp__buf_steal(struct mp__buf *b, size_t *len);

/*
 * struct mp__tls_buf: a thread's reusable buffer (a _Thread_local one,
 * zero-initialised), released when the thread ends, so that threads that
 * come and go do not each leave theirs behind. mp__tls_buf_use empties it
 * for the next use and, the first time in a thread, registers it for that
 * release: 0 or -ENOMEM.
 */
struct mp__tls_buf {
	struct mp__buf b;
	struct mp__tls_buf *next;   /* the thread's other registered buffers */
	bool registered;
};

int mp__tls_buf_use(struct mp__tls_buf *t);

static inline int
mp__buf_append(struct mp__buf *b, const void *p, size_t n)
{
	if (b->cap - b->len < n) {
		int rv = mp__buf_reserve(b, n);
		if (rv != 0) {
			return rv;
		}
	}
	if (n > 0) {
		memcpy(b->data + b->len, p, n);
	}
	b->len += n;
	return 0;
}

static inline int
mp__buf_put_u8(struct mp__buf *b, uint8_t v)
{
	if (b->cap == b->len) {
		int rv = mp__buf_reserve(b, 1);
		if (rv != 0) {
			return rv;
		}
	}
	b->data[b->len++] = v;
	return 0;
}

#endif
