/* SPDX-License-Identifier: MIT */
/* manager/types_sync.c: Lock, RLock, Semaphore, BoundedSemaphore and Event as server-side objects. */
#include "manager/server_int.h"

#include <stdio.h>

/*
 * These are threading's objects as a CPython manager holds them, but a
 * waiter is a parked call, not a blocked thread: acquire on a held lock
 * returns MP__MGR_PARK and is retried, oldest first, whenever the object
 * changes (server_dispatch.c). An RLock's owner is the connection (a
 * CPython server serves each channel with its own thread, and the thread
 * owns the lock); when that connection closes the lock is released, where
 * CPython would keep it held forever.
 */

enum kind { LOCK, RLOCK, SEMAPHORE, BOUNDED };

struct lockish {
	enum kind kind;
	uint64_t owner;     /* RLock: owning connection, 0 when free */
	int64_t count;      /* Lock/RLock: depth held; semaphores: value */
	int64_t initial;    /* BoundedSemaphore's bound */
};

static uint64_t
conn_of(const struct mp__mgr_call *c)
{
	return c->conn != NULL ? c->conn->id : 0;
}

static int
create_lock(struct mp__mgr_call *c, enum kind kind, void **impl)
{
	static const char *const sem_kw[] = { "value", NULL };
	int64_t value = 1;
	if (kind == SEMAPHORE || kind == BOUNDED) {
		if (mp__mgr_args_check(c, 1, sem_kw) != 0) {
			return MP_EREMOTEERR;
		}
		mp_obj_t *v = mp__mgr_arg(c, 0, "value");
		if (v != NULL && mp_int_value(v, &value) != 0) {
			mp__mgr_errf(c, MP__EXC_TYPE, "an integer is required");
			return MP_EREMOTEERR;
		}
		if (value < 0) {
			mp__mgr_errf(c, MP__EXC_VALUE,
			    "semaphore initial value must be >= 0");
			return MP_EREMOTEERR;
		}
	} else if (mp__mgr_args_check(c, 0, NULL) != 0) {
		return MP_EREMOTEERR;
	}
	struct lockish *l = mp__calloc(1, sizeof(*l));
	if (l == NULL) {
		return -ENOMEM;
	}
	l->kind = kind;
	l->count = kind == SEMAPHORE || kind == BOUNDED ? value : 0;
	l->initial = value;
	*impl = l;
	return 0;
}

static int
create_plain(struct mp__mgr_call *c, void **impl)
{
	return create_lock(c, LOCK, impl);
}

static int
create_rlock(struct mp__mgr_call *c, void **impl)
{
	return create_lock(c, RLOCK, impl);
}

static int
create_sem(struct mp__mgr_call *c, void **impl)
{
	return create_lock(c, SEMAPHORE, impl);
}

static int
create_bounded(struct mp__mgr_call *c, void **impl)
{
	return create_lock(c, BOUNDED, impl);
}

/* Take the lock for c if it is free; true when taken. */
static bool
try_take(struct lockish *l, struct mp__mgr_call *c)
{
	switch (l->kind) {
	case LOCK:
		if (l->count > 0) {
			return false;
		}
		l->count = 1;
		return true;
	case RLOCK:
		if (l->count > 0 && l->owner != conn_of(c)) {
			return false;
		}
		if (l->count++ == 0) {
			l->owner = conn_of(c);
			if (c->conn != NULL) {
				(void)mp__mgr_conn_hold(c->conn, c->obj->id);
			}
		}
		return true;
	default:
		if (l->count == 0) {
			return false;
		}
		l->count--;
		return true;
	}
}

static bool
take_for(struct mp__mgr_call *c)
{
	return try_take(c->obj->impl, c);
}

/* acquire(blocking=True, timeout=-1 (None for semaphores)). */
static int
m_acquire(struct mp__mgr_call *c)
{
	const struct lockish *l = c->obj->impl;
	bool sem = l->kind == SEMAPHORE || l->kind == BOUNDED;
	return mp__mgr_acquire(c, take_for, !sem);
}

static int
m_release(struct mp__mgr_call *c)
{
	static const char *const kw[] = { "n", NULL };
	struct lockish *l = c->obj->impl;
	bool sem = l->kind == SEMAPHORE || l->kind == BOUNDED;
	if (mp__mgr_args_check(c, sem ? 1 : 0, sem ? kw : NULL) != 0) {
		return 0;
	}
	switch (l->kind) {
	case LOCK:
		if (l->count == 0) {
			return mp__mgr_errf(c, MP__EXC_RUNTIME,
			    "release unlocked lock");
		}
		l->count = 0;
		break;
	case RLOCK:
		if (l->count == 0 || l->owner != conn_of(c)) {
			return mp__mgr_errf(c, MP__EXC_RUNTIME,
			    "cannot release un-acquired lock");
		}
		if (--l->count == 0) {
			l->owner = 0;
		}
		break;
	default: {
		int64_t n = 1;
		mp_obj_t *nv = mp__mgr_arg(c, 0, "n");
		if (nv != NULL && mp_int_value(nv, &n) != 0) {
			return mp__mgr_errf(c, MP__EXC_TYPE,
			    "an integer is required");
		}
		if (n < 1) {
			return mp__mgr_errf(c, MP__EXC_VALUE,
			    "n must be one or more");
		}
		if (l->kind == BOUNDED && l->count + n > l->initial) {
			return mp__mgr_errf(c, MP__EXC_VALUE,
			    "Semaphore released too many times");
		}
		l->count += n;
		break;
	}
	}
	return mp__mgr_ret(c, mp_none());
}

static void
lock_gone(void *impl, uint64_t conn_id)
{
	struct lockish *l = impl;
	if (l->kind == RLOCK && l->count > 0 && l->owner == conn_id) {
		l->count = 0;
		l->owner = 0;
	}
}

static int
lock_repr(void *impl, bool as_str, char **out)
{
	(void)as_str;
	struct lockish *l = impl;
	char buf[160];
	switch (l->kind) {
	case LOCK:
		snprintf(buf, sizeof(buf), "<%s _thread.lock object at %p>",
		    l->count > 0 ? "locked" : "unlocked", impl);
		break;
	case RLOCK:
		snprintf(buf, sizeof(buf),
		    "<%s _thread.RLock object owner=%llu count=%lld at %p>",
		    l->count > 0 ? "locked" : "unlocked",
		    (unsigned long long)l->owner, (long long)l->count, impl);
		break;
	default:
		snprintf(buf, sizeof(buf),
		    "<threading.%sSemaphore at %p: value=%lld>",
		    l->kind == BOUNDED ? "Bounded" : "", impl,
		    (long long)l->count);
		break;
	}
	*out = mp__strdup(buf);
	return *out == NULL ? -ENOMEM : 0;
}

static const char *const acquirer_exposed[] = { "acquire", "release", NULL };

static const struct mp__mgr_method acquirer_methods[] = {
	{ "acquire", m_acquire, NULL },
	{ "release", m_release, NULL },
};

#define ACQUIRER(var, tid, py, ctor) \
	const struct mp__mgr_class var = { \
		.typeid = tid, \
		.pyname = py, \
		.exposed = acquirer_exposed, \
		.methods = acquirer_methods, \
		.n_methods = MP__ARRAY_LEN(acquirer_methods), \
		.create = ctor, \
		.destroy = mp__free, \
		.repr = lock_repr, \
		.conn_gone = lock_gone, \
	}

ACQUIRER(mp__mgr_class_lock, "Lock", "lock", create_plain);
ACQUIRER(mp__mgr_class_rlock, "RLock", "RLock", create_rlock);
ACQUIRER(mp__mgr_class_semaphore, "Semaphore", "Semaphore", create_sem);
ACQUIRER(mp__mgr_class_bounded_semaphore, "BoundedSemaphore",
    "BoundedSemaphore", create_bounded);

/* ---- Event --------------------------------------------------------------- */

struct event {
	bool flag;
};

static int
create_event(struct mp__mgr_call *c, void **impl)
{
	if (mp__mgr_args_check(c, 0, NULL) != 0) {
		return MP_EREMOTEERR;
	}
	struct event *e = mp__calloc(1, sizeof(*e));
	*impl = e;
	return e == NULL ? -ENOMEM : 0;
}

static int
ev_is_set(struct mp__mgr_call *c)
{
	struct event *e = c->obj->impl;
	if (mp__mgr_args_check(c, 0, NULL) != 0) {
		return 0;
	}
	return mp__mgr_ret(c, mp_bool(e->flag));
}

static int
ev_set(struct mp__mgr_call *c)
{
	struct event *e = c->obj->impl;
	if (mp__mgr_args_check(c, 0, NULL) != 0) {
		return 0;
	}
	e->flag = true;
	return mp__mgr_ret(c, mp_none());
}

static int
ev_clear(struct mp__mgr_call *c)
{
	struct event *e = c->obj->impl;
	if (mp__mgr_args_check(c, 0, NULL) != 0) {
		return 0;
	}
	e->flag = false;
	return mp__mgr_ret(c, mp_none());
}

/* wait(timeout=None): the flag, after it is set or the timeout passed. */
static int
ev_wait(struct mp__mgr_call *c)
{
	static const char *const kw[] = { "timeout", NULL };
	struct event *e = c->obj->impl;
	if (c->stage == 0) {
		if (mp__mgr_args_check(c, 1, kw) != 0 ||
		    mp__mgr_timeout(c, mp__mgr_arg(c, 0, "timeout"),
		    MP__NEG_NOW, "") != 0) {
			return 0;
		}
		c->stage = 1;
	}
	if (e->flag || c->timed_out) {
		return mp__mgr_ret(c, mp_bool(e->flag));
	}
	return MP__MGR_PARK;
}

static int
ev_repr(void *impl, bool as_str, char **out)
{
	(void)as_str;
	struct event *e = impl;
	char buf[96];
	snprintf(buf, sizeof(buf), "<threading.Event at %p: %s>", impl,
	    e->flag ? "set" : "unset");
	*out = mp__strdup(buf);
	return *out == NULL ? -ENOMEM : 0;
}

static const char *const event_exposed[] = {
	"is_set", "set", "clear", "wait", NULL,
};

static const struct mp__mgr_method event_methods[] = {
	{ "is_set", ev_is_set, NULL },
	{ "set", ev_set, NULL },
	{ "clear", ev_clear, NULL },
	{ "wait", ev_wait, NULL },
};

const struct mp__mgr_class mp__mgr_class_event = {
	.typeid = "Event",
	.pyname = "Event",
	.exposed = event_exposed,
	.methods = event_methods,
	.n_methods = MP__ARRAY_LEN(event_methods),
	.create = create_event,
	.destroy = mp__free,
	.repr = ev_repr,
};
