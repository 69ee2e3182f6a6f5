/* SPDX-License-Identifier: MIT */
/* manager/server_wait.c: helpers for method handlers, parked calls, wake-ups and the timer heap. */
#include "manager/server_int.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

/* ---- Helpers for handlers ------------------------------------------------ */

int
mp__mgr_ret(struct mp__mgr_call *c, mp_obj_t *v)
{
	if (v == NULL) {
		return -ENOMEM;
	}
	mp_obj_unref(c->result);
	c->kind = MP__MGR_RETURN;
	c->result = v;
	return 0;
}

int
mp__mgr_err(struct mp__mgr_call *c, mp_obj_t *exc)
{
	if (exc == NULL) {
		return -ENOMEM;
	}
	mp_obj_unref(c->result);
	c->kind = MP__MGR_ERROR;
	c->result = exc;
	return 0;
}

int
mp__mgr_errf(struct mp__mgr_call *c, enum mp__mgr_exc which, const char *fmt,
    ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return mp__mgr_err(c, mp__mgr_exc_msg(which, "%s", msg));
}

mp_obj_t *
mp__mgr_arg(const struct mp__mgr_call *c, size_t i, const char *name)
{
	if (i < mp_obj_len(c->args)) {
		return mp_tuple_get(c->args, (ssize_t)i);
	}
	return name == NULL ? NULL : mp_dict_get_str(c->kwds, name);
}

int
mp__mgr_args_check(struct mp__mgr_call *c, size_t max,
    const char *const *names)
{
	const char *fn = c->m != NULL ? c->m->name : "__init__";
	size_t n = mp_obj_len(c->args);
	if (n > max) {
		mp__mgr_errf(c, MP__EXC_TYPE,
		    "%s() takes at most %zu arguments (%zu given)", fn, max, n);
		return 1;
	}
	size_t pos = 0;
	mp_obj_t *k;
	mp_obj_t *v;
	while (mp_dict_next(c->kwds, &pos, &k, &v)) {
		const char *ks = mp_str_data(k, NULL);
		size_t i = 0;
		while (names != NULL && names[i] != NULL &&
		    strcmp(names[i], ks) != 0) {
			i++;
		}
		if (names == NULL || names[i] == NULL) {
			mp__mgr_errf(c, MP__EXC_TYPE,
			    "%s() got an unexpected keyword argument '%s'", fn,
			    ks);
			return 1;
		}
		if (i < n) {
			mp__mgr_errf(c, MP__EXC_TYPE,
			    "%s() got multiple values for argument '%s'", fn,
			    ks);
			return 1;
		}
	}
	return 0;
}

int
mp__mgr_timeout(struct mp__mgr_call *c, const mp_obj_t *t,
    enum mp__mgr_neg neg, const char *msg)
{
	c->deadline = -1;
	if (t == NULL || mp_obj_type(t) == MP_TYPE_NONE) {
		return 0;
	}
	enum mp_type ty = mp_obj_type(t);
	if (ty != MP_TYPE_INT && ty != MP_TYPE_FLOAT && ty != MP_TYPE_BOOL) {
		mp__mgr_errf(c, MP__EXC_TYPE,
		    "timeout must be a number, not '%s'", mp_obj_type_name(t));
		return 1;
	}
	double v = mp_float_value(t);
	if (isnan(v) || v < 0) {
		if (neg == MP__NEG_FOREVER && !isnan(v)) {
			return 0;
		}
		if (neg == MP__NEG_NOW) {
			c->deadline = mp__now_ns();
			return 0;
		}
		mp__mgr_errf(c, MP__EXC_VALUE, "%s", msg);
		return 1;
	}
	/* Beyond a century is forever (and cannot overflow). */
	if (v > 3.2e9) {
		return 0;
	}
	c->deadline = mp__now_ns() + (int64_t)(v * 1e9);
	return 0;
}

bool
mp__mgr_truthy(const mp_obj_t *o)
{
	switch (mp_obj_type(o)) {
	case MP_TYPE_NONE:
		return false;
	case MP_TYPE_BOOL:
		return mp_bool_value(o);
	case MP_TYPE_INT: {
		int64_t v;
		return mp_int_value(o, &v) != 0 || v != 0;
	}
	case MP_TYPE_FLOAT:
		return mp_float_value(o) != 0.0;
	case MP_TYPE_STR: {
		size_t n;
		mp_str_data(o, &n);
		return n > 0;
	}
	case MP_TYPE_BYTES: {
		size_t n;
		mp_bytes_data(o, &n);
		return n > 0;
	}
	case MP_TYPE_INSTANCE:
		return true;
	default:
		return mp_obj_len(o) > 0;
	}
}

/* ---- The timer heap ------------------------------------------------------ */

static void
heap_swap(struct mp_manager_server *s, size_t i, size_t j)
{
	struct mp__mgr_call *t = s->heap[i];
	s->heap[i] = s->heap[j];
	s->heap[j] = t;
	s->heap[i]->heap_i = i;
	s->heap[j]->heap_i = j;
}

static void
heap_up(struct mp_manager_server *s, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (s->heap[p]->deadline <= s->heap[i]->deadline) {
			break;
		}
		heap_swap(s, i, p);
		i = p;
	}
}

static void
heap_down(struct mp_manager_server *s, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1;
		size_t m = i;
		if (l < s->nheap &&
		    s->heap[l]->deadline < s->heap[m]->deadline) {
			m = l;
		}
		if (l + 1 < s->nheap &&
		    s->heap[l + 1]->deadline < s->heap[m]->deadline) {
			m = l + 1;
		}
		if (m == i) {
			return;
		}
		heap_swap(s, i, m);
		i = m;
	}
}

/* Room for one more entry in the timer heap. */
static int
heap_reserve(struct mp_manager_server *s)
{
	if (s->nheap == s->capheap) {
		size_t ncap = s->capheap == 0 ? 64 : s->capheap * 2;
		struct mp__mgr_call **n = mp__realloc(s->heap,
		    ncap * sizeof(*n));
		if (n == NULL) {
			return -ENOMEM;
		}
		s->heap = n;
		s->capheap = ncap;
	}
	return 0;
}

/* After heap_reserve: cannot fail. */
static void
heap_push(struct mp_manager_server *s, struct mp__mgr_call *c)
{
	MP_ASSERT(s->nheap < s->capheap);
	c->heap_i = s->nheap;
	s->heap[s->nheap++] = c;
	heap_up(s, c->heap_i);
}

static void
heap_remove(struct mp_manager_server *s, struct mp__mgr_call *c)
{
	size_t i = c->heap_i;
	if (i == SIZE_MAX) {
		return;
	}
	c->heap_i = SIZE_MAX;
	if (i == --s->nheap) {
		return;
	}
	s->heap[i] = s->heap[s->nheap];
	s->heap[i]->heap_i = i;
	heap_up(s, i);
	heap_down(s, s->heap[i]->heap_i);
}

/* ---- Parked calls -------------------------------------------------------- */

static void
wait_unlink(struct mp__mgr_call *c)
{
	struct mp__mgr_obj *o = c->obj;
	if (c->wprev != NULL) {
		c->wprev->wnext = c->wnext;
	} else {
		o->wait_head = c->wnext;
	}
	if (c->wnext != NULL) {
		c->wnext->wprev = c->wprev;
	} else {
		o->wait_tail = c->wprev;
	}
	c->wprev = c->wnext = NULL;
}

static void
call_free(struct mp_manager_server *s, struct mp__mgr_call *c)
{
	mp_obj_unref(c->req);
	mp_obj_unref(c->result);
	/* Kept as the next call's reserve. */
	if (s->spare == NULL) {
		s->spare = c;
	} else {
		mp__free(c);
	}
}

static void
resume_later(struct mp_manager_server *s, struct mp__mgr_conn *conn)
{
	if (conn->in_resume) {
		return;
	}
	conn->in_resume = true;
	conn->rnext = NULL;
	if (s->resume_tail != NULL) {
		s->resume_tail->rnext = conn;
	} else {
		s->resume_head = conn;
	}
	s->resume_tail = conn;
}


/* A parked call is answered: reply, free it, let its connection go on. */
static void
finish_parked(struct mp_manager_server *s, struct mp__mgr_call *c, int rv)
{
	wait_unlink(c);
	heap_remove(s, c);
	struct mp__mgr_conn *conn = c->conn;
	mp__mgr_reply_call(s, c, rv);
	conn->parked = NULL;
	call_free(s, c);
	resume_later(s, conn);
}

int
mp__mgr_park_reserve(struct mp_manager_server *s)
{
	if (s->spare == NULL) {
		s->spare = mp__malloc(sizeof(*s->spare));
		if (s->spare == NULL) {
			return -ENOMEM;
		}
	}
	return heap_reserve(s);
}

/* Park a stack call: copy it to the reserve and link it. */
void
mp__mgr_park(struct mp_manager_server *s, struct mp__mgr_call *c)
{
	struct mp__mgr_call *h = s->spare;
	MP_ASSERT(h != NULL);
	s->spare = NULL;
	*h = *c;
	h->heap_i = SIZE_MAX;
	if (h->deadline >= 0) {
		heap_push(s, h);
	}
	struct mp__mgr_obj *o = h->obj;
	h->wnext = NULL;
	h->wprev = o->wait_tail;
	if (o->wait_tail != NULL) {
		o->wait_tail->wnext = h;
	} else {
		o->wait_head = h;
	}
	o->wait_tail = h;
	c->conn->parked = h;
}

/* Retry one parked call; true when it was answered. */
static bool
retry(struct mp_manager_server *s, struct mp__mgr_call *w)
{
	int64_t before = w->deadline;
	int rv = w->m->fn(w);
	if (rv == MP__MGR_PARK) {
		if (w->deadline != before) {
			/* The handler moved on to a wait without a deadline
			 * (Condition.wait reacquiring its lock). */
			heap_remove(s, w);
			if (w->deadline >= 0 && heap_reserve(s) == 0) {
				heap_push(s, w);
			} else {
				w->deadline = -1;
			}
		}
		return false;
	}
	finish_parked(s, w, rv);
	return true;
}

void
mp__mgr_obj_changed(struct mp_manager_server *s, struct mp__mgr_obj *o)
{
	/* Oldest first, again until a pass answers nobody: one answer can
	 * make an older waiter ready (a get frees room for a put). */
	bool progress = true;
	while (progress && o->wait_head != NULL) {
		progress = false;
		struct mp__mgr_call *w = o->wait_head;
		while (w != NULL) {
			struct mp__mgr_call *next = w->wnext;
			if (retry(s, w)) {
				progress = true;
			}
			w = next;
		}
	}
}

int64_t
mp__mgr_timers_run(struct mp_manager_server *s, int64_t now)
{
	while (s->nheap > 0) {
		struct mp__mgr_call *w = s->heap[0];
		if (w->deadline > now) {
			return w->deadline - now;
		}
		heap_remove(s, w);
		w->timed_out = true;
		struct mp__mgr_obj *o = w->obj;
		(void)retry(s, w);
		/* A timeout can change the object (a Barrier breaks). */
		mp__mgr_obj_changed(s, o);
	}
	return -1;
}

void
mp__mgr_call_cancel(struct mp_manager_server *s, struct mp__mgr_call *c)
{
	struct mp__mgr_obj *o = c->obj;
	wait_unlink(c);
	heap_remove(s, c);
	if (o->cls->cancel != NULL) {
		o->cls->cancel(c);
	}
	call_free(s, c);
	mp__mgr_obj_changed(s, o);
}

void
mp__mgr_obj_fail_waiters(struct mp_manager_server *s, struct mp__mgr_obj *o)
{
	while (o->wait_head != NULL) {
		finish_parked(s, o->wait_head, -EIDRM);
	}
}

int
mp__mgr_acquire(struct mp__mgr_call *c, bool (*take)(struct mp__mgr_call *c),
    bool minus_one_forever)
{
	static const char *const kw[] = { "blocking", "timeout", NULL };
	if (c->stage == 1) {
		if (take(c)) {
			return mp__mgr_ret(c, mp_bool(true));
		}
		return c->timed_out ? mp__mgr_ret(c, mp_bool(false)) :
		    MP__MGR_PARK;
	}
	if (mp__mgr_args_check(c, 2, kw) != 0) {
		return 0;
	}
	mp_obj_t *b = mp__mgr_arg(c, 0, "blocking");
	mp_obj_t *t = mp__mgr_arg(c, 1, "timeout");
	bool blocking = b == NULL || mp__mgr_truthy(b);
	bool has_t = t != NULL && mp_obj_type(t) != MP_TYPE_NONE &&
	    !(minus_one_forever && mp_float_value(t) == -1.0);
	if (!blocking && has_t) {
		return mp__mgr_errf(c, MP__EXC_VALUE,
		    "can't specify a timeout for a non-blocking call");
	}
	if (take(c)) {
		return mp__mgr_ret(c, mp_bool(true));
	}
	if (!blocking) {
		return mp__mgr_ret(c, mp_bool(false));
	}
	if (has_t && mp__mgr_timeout(c, t, MP__NEG_ERROR,
	    "timeout value must be a non-negative number") != 0) {
		return 0;
	}
	if (!has_t) {
		c->deadline = -1;
	}
	c->stage = 1;
	return MP__MGR_PARK;
}
