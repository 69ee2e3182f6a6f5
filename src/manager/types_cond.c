/* SPDX-License-Identifier: MIT */
/* manager/types_cond.c: Condition and Barrier as server-side objects with parked waiters. */
#include "manager/server_int.h"

#include <stdio.h>
#include <string.h>

/* ---- Condition ----------------------------------------------------------- */

/*
 * threading.Condition() over its own RLock, owned by a connection as in
 * types_sync.c. wait() is a parked call in three stages: 0 checks the
 * lock and releases it (remembering the depth in n2), 1 waits for a
 * notify (flag) or the timeout, 2 takes the lock back, without a
 * deadline, as CPython's wait reacquires before it returns. Its result
 * (notified or not) waits in n meanwhile.
 */
struct cond {
	uint64_t owner;
	int64_t depth;
};

static uint64_t
conn_of(const struct mp__mgr_call *c)
{
	return c->conn != NULL ? c->conn->id : 0;
}

static int
cond_create(struct mp__mgr_call *c, void **impl)
{
	if (mp_obj_len(c->args) > 0 || mp_obj_len(c->kwds) > 0) {
		/* Condition(lock) would carry a proxy: not rebuilt here. */
		mp__mgr_errf(c, MP__EXC_TYPE, "Condition() takes no lock "
		    "argument on this server");
		return MP_EREMOTEERR;
	}
	struct cond *k = mp__calloc(1, sizeof(*k));
	*impl = k;
	return k == NULL ? -ENOMEM : 0;
}

static bool
cond_take(struct cond *k, struct mp__mgr_call *c, int64_t depth)
{
	if (k->depth > 0 && k->owner != conn_of(c)) {
		return false;
	}
	if (k->depth == 0) {
		k->owner = conn_of(c);
		if (c->conn != NULL) {
			(void)mp__mgr_conn_hold(c->conn, c->obj->id);
		}
	}
	k->depth += depth;
	return true;
}

static bool
cond_take_one(struct mp__mgr_call *c)
{
	return cond_take(c->obj->impl, c, 1);
}

/* The condition's own RLock: acquire(blocking=True, timeout=-1). */
static int
cond_acquire(struct mp__mgr_call *c)
{
	return mp__mgr_acquire(c, cond_take_one, true);
}

static int
cond_release(struct mp__mgr_call *c)
{
	struct cond *k = c->obj->impl;
	if (mp__mgr_args_check(c, 0, NULL) != 0) {
		return 0;
	}
	if (k->depth == 0 || k->owner != conn_of(c)) {
		return mp__mgr_errf(c, MP__EXC_RUNTIME,
		    "cannot release un-acquired lock");
	}
	if (--k->depth == 0) {
		k->owner = 0;
	}
	return mp__mgr_ret(c, mp_none());
}

static int
cond_wait(struct mp__mgr_call *c)
{
	static const char *const kw[] = { "timeout", NULL };
	struct cond *k = c->obj->impl;
	switch (c->stage) {
	case 0:
		if (mp__mgr_args_check(c, 1, kw) != 0) {
			return 0;
		}
		if (k->depth == 0 || k->owner != conn_of(c)) {
			return mp__mgr_errf(c, MP__EXC_RUNTIME,
			    "cannot wait on un-acquired lock");
		}
		if (mp__mgr_timeout(c, mp__mgr_arg(c, 0, "timeout"),
		    MP__NEG_NOW, "") != 0) {
			return 0;
		}
		c->n2 = k->depth;
		k->depth = 0;
		k->owner = 0;
		c->flag = false;
		c->stage = 1;
		return MP__MGR_PARK;
	case 1:
		if (!c->flag && !c->timed_out) {
			return MP__MGR_PARK;
		}
		c->n = c->flag;
		c->stage = 2;
		c->deadline = -1;
		/* Take the lock back. */
		__attribute__((fallthrough));
	default:
		if (!cond_take(k, c, c->n2)) {
			return MP__MGR_PARK;
		}
		return mp__mgr_ret(c, mp_bool(c->n != 0));
	}
}

static int
notify_n(struct mp__mgr_call *c, int64_t n)
{
	struct cond *k = c->obj->impl;
	if (k->depth == 0 || k->owner != conn_of(c)) {
		return mp__mgr_errf(c, MP__EXC_RUNTIME,
		    "cannot notify on un-acquired lock");
	}
	for (struct mp__mgr_call *w = c->obj->wait_head; w != NULL && n > 0;
	    w = w->wnext) {
		if (w->m->fn == cond_wait && w->stage == 1 && !w->flag) {
			w->flag = true;
			n--;
		}
	}
	return mp__mgr_ret(c, mp_none());
}

static int
cond_notify(struct mp__mgr_call *c)
{
	static const char *const kw[] = { "n", NULL };
	if (mp__mgr_args_check(c, 1, kw) != 0) {
		return 0;
	}
	int64_t n = 1;
	mp_obj_t *nv = mp__mgr_arg(c, 0, "n");
	if (nv != NULL && mp_int_value(nv, &n) != 0) {
		return mp__mgr_errf(c, MP__EXC_TYPE, "an integer is required");
	}
	return notify_n(c, n);
}

static int
cond_notify_all(struct mp__mgr_call *c)
{
	if (mp__mgr_args_check(c, 0, NULL) != 0) {
		return 0;
	}
	return notify_n(c, INT64_MAX);
}

static void
cond_gone(void *impl, uint64_t conn_id)
{
	struct cond *k = impl;
	if (k->depth > 0 && k->owner == conn_id) {
		k->depth = 0;
		k->owner = 0;
	}
}

static int
cond_repr(void *impl, bool as_str, char **out)
{
	(void)as_str;
	struct cond *k = impl;
	char buf[96];
	snprintf(buf, sizeof(buf), "<Condition(<%s _thread.RLock>, 0)>",
	    k->depth > 0 ? "locked" : "unlocked");
	*out = mp__strdup(buf);
	return *out == NULL ? -ENOMEM : 0;
}

static const char *const cond_exposed[] = {
	"acquire", "release", "wait", "notify", "notify_all", NULL,
};

static const struct mp__mgr_method cond_methods[] = {
	{ "acquire", cond_acquire, NULL },
	{ "release", cond_release, NULL },
	{ "wait", cond_wait, NULL },
	{ "notify", cond_notify, NULL },
	{ "notify_all", cond_notify_all, NULL },
};

const struct mp__mgr_class mp__mgr_class_condition = {
	.typeid = "Condition",
	.pyname = "Condition",
	.exposed = cond_exposed,
	.methods = cond_methods,
	.n_methods = MP__ARRAY_LEN(cond_methods),
	.create = cond_create,
	.destroy = mp__free,
	.repr = cond_repr,
	.conn_gone = cond_gone,
};

/* ---- Barrier ------------------------------------------------------------- */

/*
 * threading.Barrier(parties, action=None, timeout=None). A waiter keeps
 * its arrival index in n; the last arrival marks every waiter released
 * (flag), a break (abort, reset, a waiter's timeout) marks them broken
 * (stage 2), and each answers on its retry.
 */
struct barrier {
	int64_t parties;
	int64_t count;
	bool broken;
	bool has_timeout;
	double timeout;
};

static int
barrier_create(struct mp__mgr_call *c, void **impl)
{
	static const char *const kw[] = {
		"parties", "action", "timeout", NULL,
	};
	if (mp__mgr_args_check(c, 3, kw) != 0) {
		return MP_EREMOTEERR;
	}
	mp_obj_t *p = mp__mgr_arg(c, 0, "parties");
	mp_obj_t *a = mp__mgr_arg(c, 1, "action");
	mp_obj_t *t = mp__mgr_arg(c, 2, "timeout");
	int64_t parties;
	if (p == NULL || mp_int_value(p, &parties) != 0) {
		mp__mgr_errf(c, MP__EXC_TYPE, "parties must be an integer");
		return MP_EREMOTEERR;
	}
	if (parties < 1) {
		mp__mgr_errf(c, MP__EXC_VALUE, "parties must be >= 1");
		return MP_EREMOTEERR;
	}
	if (a != NULL && mp_obj_type(a) != MP_TYPE_NONE) {
		mp__mgr_errf(c, MP__EXC_TYPE, "a Barrier action cannot be "
		    "sent to this server");
		return MP_EREMOTEERR;
	}
	struct barrier *b = mp__calloc(1, sizeof(*b));
	if (b == NULL) {
		return -ENOMEM;
	}
	b->parties = parties;
	if (t != NULL && mp_obj_type(t) != MP_TYPE_NONE) {
		b->has_timeout = true;
		b->timeout = mp_float_value(t);
	}
	*impl = b;
	return 0;
}

static void
barrier_break(struct mp__mgr_obj *o)
{
	struct barrier *b = o->impl;
	for (struct mp__mgr_call *w = o->wait_head; w != NULL; w = w->wnext) {
		if (w->stage == 1 && !w->flag) {
			w->stage = 2;
		}
	}
	b->count = 0;
}

static int
broken(struct mp__mgr_call *c)
{
	return mp__mgr_err(c, mp__mgr_exc(MP__EXC_BROKEN_BARRIER, NULL));
}

static int
barrier_wait(struct mp__mgr_call *c)
{
	static const char *const kw[] = { "timeout", NULL };
	struct barrier *b = c->obj->impl;
	if (c->stage == 1) {
		if (c->flag) {
			return mp__mgr_ret(c, mp_int(c->n));
		}
		if (!c->timed_out) {
			return MP__MGR_PARK;
		}
		/* threading breaks the barrier for everybody on a timeout. */
		b->broken = true;
		barrier_break(c->obj);
		c->stage = 2;
	}
	if (c->stage == 2) {
		return broken(c);
	}
	if (mp__mgr_args_check(c, 1, kw) != 0) {
		return 0;
	}
	mp_obj_t *t = mp__mgr_arg(c, 0, "timeout");
	if (b->broken) {
		return broken(c);
	}
	c->n = b->count++;
	if (b->count == b->parties) {
		for (struct mp__mgr_call *w = c->obj->wait_head; w != NULL;
		    w = w->wnext) {
			if (w->stage == 1) {
				w->flag = true;
			}
		}
		b->count = 0;
		return mp__mgr_ret(c, mp_int(c->n));
	}
	if (t == NULL || mp_obj_type(t) == MP_TYPE_NONE) {
		c->deadline = -1;
		if (b->has_timeout) {
			c->deadline = mp__now_ns() +
			    (int64_t)(b->timeout * 1e9);
		}
	} else if (mp__mgr_timeout(c, t, MP__NEG_NOW, "") != 0) {
		b->count--;
		return 0;
	}
	c->stage = 1;
	c->flag = false;
	return MP__MGR_PARK;
}

static int
barrier_abort(struct mp__mgr_call *c)
{
	if (mp__mgr_args_check(c, 0, NULL) != 0) {
		return 0;
	}
	struct barrier *b = c->obj->impl;
	b->broken = true;
	barrier_break(c->obj);
	return mp__mgr_ret(c, mp_none());
}

static int
barrier_reset(struct mp__mgr_call *c)
{
	if (mp__mgr_args_check(c, 0, NULL) != 0) {
		return 0;
	}
	struct barrier *b = c->obj->impl;
	/* Current waiters get BrokenBarrierError; the barrier starts over. */
	barrier_break(c->obj);
	b->broken = false;
	return mp__mgr_ret(c, mp_none());
}

static int
barrier_getattr(struct mp__mgr_call *c)
{
	static const char *const kw[] = { "name", NULL };
	if (mp__mgr_args_check(c, 1, kw) != 0) {
		return 0;
	}
	struct barrier *b = c->obj->impl;
	mp_obj_t *name = mp__mgr_arg(c, 0, "name");
	if (name == NULL) {
		return mp__mgr_errf(c, MP__EXC_TYPE, "__getattribute__() "
		    "missing 1 required positional argument: 'name'");
	}
	if (mp__mgr_str_eq(name, "parties")) {
		return mp__mgr_ret(c, mp_int(b->parties));
	}
	if (mp__mgr_str_eq(name, "n_waiting")) {
		return mp__mgr_ret(c, mp_int(b->broken ? 0 : b->count));
	}
	if (mp__mgr_str_eq(name, "broken")) {
		return mp__mgr_ret(c, mp_bool(b->broken));
	}
	if (mp_obj_type(name) != MP_TYPE_STR) {
		return mp__mgr_errf(c, MP__EXC_TYPE,
		    "attribute name must be string");
	}
	return mp__mgr_errf(c, MP__EXC_ATTRIBUTE,
	    "'Barrier' object has no attribute '%.100s'",
	    mp_str_data(name, NULL));
}

/*
 * A waiter's connection closed: it leaves the round. The later arrivals
 * move down one index, so the round still hands out 0 .. parties-1 once
 * each (threading's index is the arrival order); without that, the next
 * arrival would get an index a waiter already holds.
 */
static void
barrier_cancel(struct mp__mgr_call *c)
{
	struct barrier *b = c->obj->impl;
	if (c->stage != 1 || c->flag || b->count == 0) {
		return;
	}
	b->count--;
	for (struct mp__mgr_call *w = c->obj->wait_head; w != NULL;
	    w = w->wnext) {
		if (w->stage == 1 && !w->flag && w->n > c->n) {
			w->n--;
		}
	}
}

static int
barrier_repr(void *impl, bool as_str, char **out)
{
	(void)as_str;
	struct barrier *b = impl;
	char buf[128];
	snprintf(buf, sizeof(buf),
	    "<threading.Barrier at %p: waiters=%lld/%lld>", impl,
	    (long long)b->count, (long long)b->parties);
	*out = mp__strdup(buf);
	return *out == NULL ? -ENOMEM : 0;
}

static const char *const barrier_exposed[] = {
	"__getattribute__", "wait", "abort", "reset", NULL,
};

static const struct mp__mgr_method barrier_methods[] = {
	{ "__getattribute__", barrier_getattr, NULL },
	{ "wait", barrier_wait, NULL },
	{ "abort", barrier_abort, NULL },
	{ "reset", barrier_reset, NULL },
};

const struct mp__mgr_class mp__mgr_class_barrier = {
	.typeid = "Barrier",
	.pyname = "Barrier",
	.exposed = barrier_exposed,
	.methods = barrier_methods,
	.n_methods = MP__ARRAY_LEN(barrier_methods),
	.create = barrier_create,
	.destroy = mp__free,
	.repr = barrier_repr,
	.cancel = barrier_cancel,
};
