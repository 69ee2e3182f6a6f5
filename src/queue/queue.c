/* SPDX-License-Identifier: MIT */
/* queue/queue.c: Queue: creation, named queues, pickled and raw messages, sizes. */
#include "queue/queue_internal.h"
#include "obj/pickle_internal.h"

#include <string.h>
#include <unistd.h>

#define QUEUE_KIND "queue"
#define BUFFER_MIN ((size_t)4096)
#define BUFFER_MAX ((size_t)256 << 20)

/*
 * A thread's reusable pickle buffer: a put encodes into it and copies the
 * bytes into the ring, so the put path allocates nothing once it has
 * grown. One that grew past KEEP_MAX for a large object is released after
 * that put, so a single huge message does not pin memory; the thread's
 * end releases the rest.
 */
static _Thread_local struct mp__tls_buf tls_out;
#define KEEP_MAX ((size_t)1 << 20)

static size_t
buffer_bytes(const struct mp_queue_opts *opts)
{
	size_t want = opts != NULL && opts->buffer_size != 0 ?
	    opts->buffer_size : MP_QUEUE_BUFFER_DEFAULT;
	size_t cap = BUFFER_MIN;
	while (cap < want && cap < BUFFER_MAX) {
		cap <<= 1;
	}
	return cap;
}

struct init_args {
	uint32_t cap;
	uint32_t maxsize;
	bool joinable;
};

static void
shared_init(void *mem, void *arg)
{
	const struct init_args *a = arg;
	struct mp__queue_shared *sh = mem;
	memset(sh, 0, sizeof(*sh));
	sh->cap = a->cap;
	sh->maxsize = a->maxsize;
	sh->joinable = a->joinable;
	mp__lock_init(&sh->put_lock, false);
	mp__lock_init(&sh->get_lock, false);
	sh->magic = MP__QUEUE_MAGIC;
}

int
mp__queue_make(const char *name, int flags, size_t maxsize,
    const struct mp_queue_opts *opts, mp_queue_t **out)
{
	if (maxsize > INT32_MAX || (flags & ~(MP_CREATE | MP_EXCL)) != 0) {
		return -EINVAL;
	}
	size_t cap = buffer_bytes(opts);
	struct init_args args = { (uint32_t)cap, (uint32_t)maxsize,
		opts != NULL && opts->joinable };
	mp_queue_t *q = mp__calloc(1, sizeof(*q));
	if (q == NULL) {
		return -ENOMEM;
	}
	int rv;
	void *mem;
	size_t size = sizeof(struct mp__queue_shared) + cap;
	if (name == NULL) {
		rv = mp__arena_alloc(size, &mem);
		if (rv == 0) {
			shared_init(mem, &args);
		}
	} else {
		rv = mp__named_open(QUEUE_KIND, name, size,
		    (flags & MP_CREATE) != 0, (flags & MP_EXCL) != 0,
		    shared_init, &args, &q->map);
		mem = q->map.mem;
		q->named = true;
	}
	if (rv != 0) {
		goto out_free;
	}
	q->sh = mem;
	q->ring = (uint8_t *)mem + sizeof(struct mp__queue_shared);
	if (q->sh->magic != MP__QUEUE_MAGIC || q->sh->cap != cap) {
		rv = -EPROTO;
		goto out_close;
	}
	q->magic = MP__QUEUE_HANDLE_MAGIC;
	q->creator = getpid();
	*out = q;
	return 0;
out_close:
	mp__named_close(&q->map);
out_free:
	mp__free(q);
	return rv;
}

int
mp_queue_new(size_t maxsize, const struct mp_queue_opts *opts,
    mp_queue_t **out)
{
	return mp__queue_make(NULL, 0, maxsize, opts, out);
}

int
mp_joinable_queue_new(size_t maxsize, const struct mp_queue_opts *opts,
    mp_queue_t **out)
{
	struct mp_queue_opts o = { 0 };
	if (opts != NULL) {
		o = *opts;
	}
	o.joinable = true;
	return mp__queue_make(NULL, 0, maxsize, &o, out);
}

int
mp_queue_open(const char *name, int flags, size_t maxsize,
    const struct mp_queue_opts *opts, mp_queue_t **out)
{
	if (name == NULL) {
		return -EINVAL;
	}
	return mp__queue_make(name, flags, maxsize, opts, out);
}

int
mp_queue_unlink(const char *name)
{
	struct mp__named n = { 0 };
	if (name == NULL || strlen(name) == 0 || strlen(name) > 200 ||
	    strchr(name, '/') != NULL) {
		return -EINVAL;
	}
	snprintf(n.path, sizeof(n.path), "/mproc.%s.%s", QUEUE_KIND, name);
	return mp__named_unlink(&n);
}

void
mp_queue_close(mp_queue_t *q)
{
	if (q == NULL) {
		return;
	}
	MP_ASSERT(q->magic == MP__QUEUE_HANDLE_MAGIC);
	q->closed = true;
}

void
mp_queue_free(mp_queue_t *q)
{
	if (q == NULL) {
		return;
	}
	MP_ASSERT(q->magic == MP__QUEUE_HANDLE_MAGIC);
	q->magic = 0;
	if (q->named) {
		mp__named_close(&q->map);
	} else if (q->creator == getpid()) {
		q->sh->magic = 0;
		mp__arena_free(q->sh);
	}
	mp__free(q);
}

static int
check_open(const mp_queue_t *q)
{
	MP_ASSERT(q != NULL && q->magic == MP__QUEUE_HANDLE_MAGIC);
	return q->closed ? MP_ECLOSED : 0;
}

int
mp_queue_put(mp_queue_t *q, const mp_obj_t *o, int64_t timeout_ms)
{
	int rv = check_open(q);
	if (rv != 0) {
		return rv;
	}
	if (o == NULL) {
		return -EINVAL;
	}
	rv = mp__tls_buf_use(&tls_out);
	if (rv == 0) {
		rv = mp__pickle_encode(&tls_out.b, o);
	}
	if (rv == 0) {
		rv = mp__queue_put_msg(q, MP__FMT_PICKLE, tls_out.b.data,
		    tls_out.b.len, timeout_ms);
	}
	if (tls_out.b.cap > KEEP_MAX) {
		mp__buf_fini(&tls_out.b);
	}
	return rv;
}

int
mp_queue_put_bytes(mp_queue_t *q, const void *data, size_t len,
    int64_t timeout_ms)
{
	int rv = check_open(q);
	if (rv != 0) {
		return rv;
	}
	if (data == NULL && len > 0) {
		return -EINVAL;
	}
	return mp__queue_put_msg(q, MP__FMT_BYTES, data, len, timeout_ms);
}

int
mp_queue_get(mp_queue_t *q, mp_obj_t **out, int64_t timeout_ms)
{
	int rv = check_open(q);
	if (rv != 0) {
		return rv;
	}
	uint8_t *data, fmt;
	size_t len;
	bool owned;
	rv = mp__queue_get_msg(q, false, &data, &len, &fmt, &owned, timeout_ms);
	if (rv != 0) {
		return rv;
	}
	/* Decoding happens here, after the get lock is released. */
	mp_obj_t *o = NULL;
	if (fmt == MP__FMT_BYTES) {
		o = mp_bytes(data, len);
		rv = o == NULL ? -ENOMEM : 0;
	} else {
		rv = mp_pickle_loads(data, len, NULL, &o);
	}
	if (owned) {
		mp__free(data);
	}
	if (rv == 0) {
		*out = o;
	}
	return rv;
}

int
mp_queue_get_bytes(mp_queue_t *q, void **out, size_t *len,
    int64_t timeout_ms)
{
	int rv = check_open(q);
	if (rv != 0) {
		return rv;
	}
	uint8_t *data, fmt;
	size_t n;
	bool owned;
	rv = mp__queue_get_msg(q, true, &data, &n, &fmt, &owned, timeout_ms);
	if (rv != 0) {
		return rv;
	}
	*out = data;
	*len = n;
	return 0;
}

size_t
mp_queue_qsize(const mp_queue_t *q)
{
	MP_ASSERT(q != NULL && q->magic == MP__QUEUE_HANDLE_MAGIC);
	if (q->closed) {
		return 0;
	}
	/* con first: what it counts was published before, so no underflow. */
	uint64_t c = atomic_load_explicit(&q->sh->con, memory_order_acquire);
	uint64_t p = atomic_load_explicit(&q->sh->pub, memory_order_acquire);
	return (uint32_t)(p >> 32) - (uint32_t)(c >> 32);
}

bool
mp_queue_empty(const mp_queue_t *q)
{
	return mp_queue_qsize(q) == 0;
}

bool
mp_queue_full(const mp_queue_t *q)
{
	size_t n = mp_queue_qsize(q);
	return q->sh->maxsize != 0 && n >= q->sh->maxsize;
}
