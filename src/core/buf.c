/* SPDX-License-Identifier: MIT */
/* core/buf.c: growable byte buffer. */
#include "core/buf.h"

void
mp__buf_init(struct mp__buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void
mp__buf_fini(struct mp__buf *b)
{
	mp__free(b->data);
	mp__buf_init(b);
}

int
mp__buf_reserve(struct mp__buf *b, size_t extra)
{
	if (b->cap - b->len >= extra) {
		return 0;
	}
	if (extra > SIZE_MAX - b->len) {
		return -ENOMEM;
	}
	size_t need = b->len + extra;
	size_t cap = b->cap < 64 ? 64 : b->cap;
	while (cap < need) {
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	}
	uint8_t *p = mp__realloc(b->data, cap);
	if (p == NULL) {
		return -ENOMEM;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

void *
mp__buf_steal(struct mp__buf *b, size_t *len)
{
	void *p = b->data;
	if (len != NULL) {
		*len = b->len;
	}
	mp__buf_init(b);
	return p;
}
