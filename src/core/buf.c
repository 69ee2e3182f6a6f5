/* SPDX-License-Identifier: MIT */
/* core/buf.c: growable byte buffer. */
#include "core/buf.h"

#include <pthread.h>

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

/* One key for every thread buffer: its value heads the thread's list. */
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static bool tls_key_ok;

static void
tls_release(void *head)
{
	struct mp__tls_buf *t = head;
	while (t != NULL) {
		struct mp__tls_buf *next = t->next;
		mp__buf_fini(&t->b);
		t->next = NULL;
		t->registered = false;
		t = next;
	}
}

static void
tls_key_make(void)
{
	tls_key_ok = pthread_key_create(&tls_key, tls_release) == 0;
}

int
mp__tls_buf_use(struct mp__tls_buf *t)
{
	t->b.len = 0;
	if (t->registered) {
		return 0;
	}
	pthread_once(&tls_once, tls_key_make);
	if (!tls_key_ok) {
		return -ENOMEM;
	}
	struct mp__tls_buf *head = pthread_getspecific(tls_key);
	t->next = head;
	if (pthread_setspecific(tls_key, t) != 0) {
		t->next = NULL;
		return -ENOMEM;
	}
	t->registered = true;
	return 0;
}
