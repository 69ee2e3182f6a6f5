/* SPDX-License-Identifier: MIT */
/* manager/types_queue.c: queue.Queue (Queue and JoinableQueue typeids) as a server-side object. */
#include "manager/server_int.h"

#include <stdio.h>
#include <string.h>

/*
 * A ring of items. A get on an empty queue (or a put on a full one) is
 * parked and retried, oldest first, whenever the queue changes; join()
 * waits for unfinished to reach 0. AutoProxy forwards arguments exactly
 * as the user wrote them, so put(item, block, timeout) and get(block,
 * timeout) take both positional and keyword forms.
 */
struct queue {
	mp_obj_t **items;
	size_t cap;
	size_t head;
	size_t len;
	int64_t maxsize;    /* <= 0: unbounded */
	int64_t unfinished; /* puts not yet matched by task_done */
	bool is_shutdown;   /* 3.13's shutdown() was called */
};

static int
q_create(struct mp__mgr_call *c, void **impl)
{
	static const char *const kw[] = { "maxsize", NULL };
	if (mp__mgr_args_check(c, 1, kw) != 0) {
		return MP_EREMOTEERR;
	}
	int64_t maxsize = 0;
	mp_obj_t *m = mp__mgr_arg(c, 0, "maxsize");
	if (m != NULL && mp_int_value(m, &maxsize) != 0) {
		mp__mgr_errf(c, MP__EXC_TYPE, "maxsize must be an integer");
		return MP_EREMOTEERR;
	}
	struct queue *q = mp__calloc(1, sizeof(*q));
	if (q == NULL) {
		return -ENOMEM;
	}
	q->maxsize = maxsize;
	*impl = q;
	return 0;
}

static void
q_destroy(void *impl)
{
	struct queue *q = impl;
	for (size_t i = 0; i < q->len; i++) {
		mp_obj_unref(q->items[(q->head + i) % q->cap]);
	}
	mp__free(q->items);
	mp__free(q);
}

static bool
q_full(const struct queue *q)
{
	return q->maxsize > 0 && (int64_t)q->len >= q->maxsize;
}

static int
q_push(struct queue *q, mp_obj_t *item)
{
	if (q->len == q->cap) {
		size_t ncap = q->cap == 0 ? 8 : q->cap * 2;
		mp_obj_t **n = mp__malloc(ncap * sizeof(*n));
		if (n == NULL) {
			return -ENOMEM;
		}
		for (size_t i = 0; i < q->len; i++) {
			n[i] = q->items[(q->head + i) % q->cap];
		}
		mp__free(q->items);
		q->items = n;
		q->cap = ncap;
		q->head = 0;
	}
	q->items[(q->head + q->len) % q->cap] = mp_obj_ref(item);
	q->len++;
	q->unfinished++;
	return 0;
}

static mp_obj_t *
q_pop(struct queue *q)
{
	mp_obj_t *it = q->items[q->head];
	q->head = (q->head + 1) % q->cap;
	if (--q->len == 0) {
		/* An idle queue holds no array. */
		mp__free(q->items);
		q->items = NULL;
		q->cap = 0;
		q->head = 0;
	}
	return it;
}

/* queue.ShutDown exists from CPython 3.13, whose clients alone call
 * shutdown(). */
static int
shut_down(struct mp__mgr_call *c)
{
	return mp__mgr_err(c, mp__mgr_exc(MP__EXC_SHUTDOWN, NULL));
}

/* Parse (block, timeout) from position first on; 1 when replied. */
static int
block_args(struct mp__mgr_call *c, size_t first, bool *block)
{
	mp_obj_t *b = mp__mgr_arg(c, first, "block");
	mp_obj_t *t = mp__mgr_arg(c, first + 1, "timeout");
	*block = b == NULL || mp__mgr_truthy(b);
	c->deadline = -1;
	if (!*block) {
		return 0;
	}
	return mp__mgr_timeout(c, t, MP__NEG_ERROR,
	    "'timeout' must be a non-negative number");
}

static int
q_put(struct mp__mgr_call *c)
{
	static const char *const kw[] = { "item", "block", "timeout", NULL };
	struct queue *q = c->obj->impl;
	if (c->stage == 0) {
		bool block;
		if (mp__mgr_args_check(c, 3, kw) != 0 ||
		    block_args(c, 1, &block) != 0) {
			return 0;
		}
		if (mp__mgr_arg(c, 0, "item") == NULL) {
			return mp__mgr_errf(c, MP__EXC_TYPE, "put() missing "
			    "1 required positional argument: 'item'");
		}
		c->flag = block;
		c->stage = 1;
	}
	if (q->is_shutdown) {
		return shut_down(c);
	}
	if (!q_full(q)) {
		int rv = q_push(q, mp__mgr_arg(c, 0, "item"));
		return rv != 0 ? rv : mp__mgr_ret(c, mp_none());
	}
	if (!c->flag || c->timed_out) {
		return mp__mgr_err(c, mp__mgr_exc(MP__EXC_FULL, NULL));
	}
	return MP__MGR_PARK;
}

static int
q_get(struct mp__mgr_call *c)
{
	static const char *const kw[] = { "block", "timeout", NULL };
	struct queue *q = c->obj->impl;
	if (c->stage == 0) {
		bool block;
		if (mp__mgr_args_check(c, 2, kw) != 0 ||
		    block_args(c, 0, &block) != 0) {
			return 0;
		}
		c->flag = block;
		c->stage = 1;
	}
	if (q->len > 0) {
		return mp__mgr_ret(c, q_pop(q));
	}
	if (q->is_shutdown) {
		return shut_down(c);
	}
	if (!c->flag || c->timed_out) {
		return mp__mgr_err(c, mp__mgr_exc(MP__EXC_EMPTY, NULL));
	}
	return MP__MGR_PARK;
}

static int
q_put_nowait(struct mp__mgr_call *c)
{
	static const char *const kw[] = { "item", NULL };
	struct queue *q = c->obj->impl;
	if (mp__mgr_args_check(c, 1, kw) != 0) {
		return 0;
	}
	mp_obj_t *item = mp__mgr_arg(c, 0, "item");
	if (item == NULL) {
		return mp__mgr_errf(c, MP__EXC_TYPE, "put_nowait() missing 1 "
		    "required positional argument: 'item'");
	}
	if (q->is_shutdown) {
		return shut_down(c);
	}
	if (q_full(q)) {
		return mp__mgr_err(c, mp__mgr_exc(MP__EXC_FULL, NULL));
	}
	int rv = q_push(q, item);
	return rv != 0 ? rv : mp__mgr_ret(c, mp_none());
}

static int
q_get_nowait(struct mp__mgr_call *c)
{
	struct queue *q = c->obj->impl;
	if (mp__mgr_args_check(c, 0, NULL) != 0) {
		return 0;
	}
	if (q->len == 0) {
		return q->is_shutdown ? shut_down(c) :
		    mp__mgr_err(c, mp__mgr_exc(MP__EXC_EMPTY, NULL));
	}
	return mp__mgr_ret(c, q_pop(q));
}

static int
q_qsize(struct mp__mgr_call *c)
{
	struct queue *q = c->obj->impl;
	if (mp__mgr_args_check(c, 0, NULL) != 0) {
		return 0;
	}
	return mp__mgr_ret(c, mp_int((int64_t)q->len));
}

static int
q_empty(struct mp__mgr_call *c)
{
	struct queue *q = c->obj->impl;
	if (mp__mgr_args_check(c, 0, NULL) != 0) {
		return 0;
	}
	return mp__mgr_ret(c, mp_bool(q->len == 0));
}

static int
q_full_m(struct mp__mgr_call *c)
{
	struct queue *q = c->obj->impl;
	if (mp__mgr_args_check(c, 0, NULL) != 0) {
		return 0;
	}
	return mp__mgr_ret(c, mp_bool(q_full(q)));
}

static int
q_task_done(struct mp__mgr_call *c)
{
	struct queue *q = c->obj->impl;
	if (mp__mgr_args_check(c, 0, NULL) != 0) {
		return 0;
	}
	if (q->unfinished <= 0) {
		return mp__mgr_errf(c, MP__EXC_VALUE,
		    "task_done() called too many times");
	}
	q->unfinished--;
	return mp__mgr_ret(c, mp_none());
}

static int
q_join(struct mp__mgr_call *c)
{
	struct queue *q = c->obj->impl;
	if (c->stage == 0) {
		if (mp__mgr_args_check(c, 0, NULL) != 0) {
			return 0;
		}
		c->stage = 1;
	}
	return q->unfinished == 0 ? mp__mgr_ret(c, mp_none()) : MP__MGR_PARK;
}

/* shutdown(immediate=False): waiters are retried and fail. */
static int
q_shutdown(struct mp__mgr_call *c)
{
	static const char *const kw[] = { "immediate", NULL };
	struct queue *q = c->obj->impl;
	if (mp__mgr_args_check(c, 1, kw) != 0) {
		return 0;
	}
	mp_obj_t *imm = mp__mgr_arg(c, 0, "immediate");
	q->is_shutdown = true;
	if (imm != NULL && mp__mgr_truthy(imm)) {
		while (q->len > 0) {
			mp_obj_unref(q_pop(q));
			if (q->unfinished > 0) {
				q->unfinished--;
			}
		}
	}
	return mp__mgr_ret(c, mp_none());
}

static int
q_repr(void *impl, bool as_str, char **out)
{
	(void)as_str;
	char buf[64];
	snprintf(buf, sizeof(buf), "<queue.Queue object at %p>", impl);
	*out = mp__strdup(buf);
	return *out == NULL ? -ENOMEM : 0;
}

/*
 * queue.Queue's public methods as CPython 3.13 lists them; 3.8 to 3.12
 * lack shutdown, and their AutoProxy just gains a method.
 */
static const char *const q_exposed[] = {
	"empty", "full", "get", "get_nowait", "join", "put", "put_nowait",
	"qsize", "shutdown", "task_done", NULL,
};

static const struct mp__mgr_method q_methods[] = {
	{ "empty", q_empty, NULL },
	{ "full", q_full_m, NULL },
	{ "get", q_get, NULL },
	{ "get_nowait", q_get_nowait, NULL },
	{ "join", q_join, NULL },
	{ "put", q_put, NULL },
	{ "put_nowait", q_put_nowait, NULL },
	{ "qsize", q_qsize, NULL },
	{ "shutdown", q_shutdown, NULL },
	{ "task_done", q_task_done, NULL },
};

#define QUEUE_CLASS(var, tid) \
	const struct mp__mgr_class var = { \
		.typeid = tid, \
		.pyname = "Queue", \
		.exposed = q_exposed, \
		.methods = q_methods, \
		.n_methods = MP__ARRAY_LEN(q_methods), \
		.create = q_create, \
		.destroy = q_destroy, \
		.repr = q_repr, \
	}

QUEUE_CLASS(mp__mgr_class_queue, "Queue");
QUEUE_CLASS(mp__mgr_class_joinable_queue, "JoinableQueue");
