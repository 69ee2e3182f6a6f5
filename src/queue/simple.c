/* SPDX-License-Identifier: MIT */
/* queue/simple.c: SimpleQueue, the Queue's ring with no maxsize and no task accounting. */
#include "queue/queue_internal.h"

int
mp_simple_queue_new(const struct mp_queue_opts *opts, mp_simple_queue_t **out)
{
	struct mp_queue_opts o = { 0 };
	if (opts != NULL) {
		o.buffer_size = opts->buffer_size;
	}
	mp_queue_t *q;
	int rv = mp__queue_make(NULL, 0, 0, &o, &q);
	if (rv != 0) {
		return rv;
	}
	/* The handle is the Queue's; the type only keeps the two apart. */
	_Static_assert(offsetof(struct mp_simple_queue, q) == 0, "same handle");
	*out = (mp_simple_queue_t *)q;
	return 0;
}

void
mp_simple_queue_close(mp_simple_queue_t *q)
{
	mp_queue_close(q == NULL ? NULL : &q->q);
}

void
mp_simple_queue_free(mp_simple_queue_t *q)
{
	mp_queue_free(q == NULL ? NULL : &q->q);
}

int
mp_simple_queue_put(mp_simple_queue_t *q, const mp_obj_t *o,
    int64_t timeout_ms)
{
	return mp_queue_put(&q->q, o, timeout_ms);
}

int
mp_simple_queue_put_bytes(mp_simple_queue_t *q, const void *data, size_t len,
    int64_t timeout_ms)
{
	return mp_queue_put_bytes(&q->q, data, len, timeout_ms);
}

int
mp_simple_queue_get(mp_simple_queue_t *q, mp_obj_t **out, int64_t timeout_ms)
{
	return mp_queue_get(&q->q, out, timeout_ms);
}

int
mp_simple_queue_get_bytes(mp_simple_queue_t *q, void **out, size_t *len,
    int64_t timeout_ms)
{
	return mp_queue_get_bytes(&q->q, out, len, timeout_ms);
}

bool
mp_simple_queue_empty(const mp_simple_queue_t *q)
{
	return mp_queue_empty(&q->q);
}
