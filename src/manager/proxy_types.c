/* SPDX-License-Identifier: MIT */
/* manager/proxy_types.c: typed proxy calls (Queue, list, dict, Lock ...). */
#include "manager/client_int.h"

#include <string.h>

/*
 * Each wrapper sends what CPython's proxy class sends for the same call
 * (research notes §4), so it works against CPython's servers and ours,
 * and turns the exceptions that mean "try again" or "absent" into the
 * codes the local objects use.
 */

/* The wait a blocking call allows its reply: the server's timeout, plus
 * slack for the reply to travel. */
static int64_t
reply_wait(int64_t timeout_ms)
{
	if (timeout_ms < 0) {
		return MP_FOREVER;
	}
	return timeout_ms + MP_MANAGER_REPLY_SLACK_MS;
}

static int64_t
plain_wait(mp_proxy_t *p)
{
	return atomic_load(&p->m->timeout_ms);
}

/* Seconds as Python takes them. */
static mp_obj_t *
seconds(int64_t timeout_ms)
{
	return mp_float((double)timeout_ms / 1000.0);
}

/*
 * Call method with args (stolen, NULL for ()); when the method raises
 * exc_a or exc_b, return the matching code instead of MP_EREMOTEERR.
 * *result (may be NULL) gets the returned value.
 */
static int
call(mp_proxy_t *p, const char *method, mp_obj_t *args, int64_t wait,
    int exc_a, int code_a, int exc_b, int code_b, mp_obj_t **result)
{
	mp_obj_t *r = NULL;
	int rv = mp_proxy_call(p, method, args, NULL, wait, &r);
	mp_obj_unref(args);
	if (rv == MP_EREMOTEERR) {
		int which = mp__mgr_exc_which(r);
		mp_obj_unref(r);
		if (which >= 0 && which == exc_a) {
			return code_a;
		}
		if (which >= 0 && which == exc_b) {
			return code_b;
		}
		return rv;
	}
	if (rv != 0) {
		return rv;
	}
	if (result != NULL) {
		*result = r;
	} else {
		mp_obj_unref(r);
	}
	return 0;
}

/* A tuple the wrappers build; NULL items make it NULL (no memory). */
#define ARGS(...) mp_tuple_of(__VA_ARGS__)

static mp_obj_t *
borrow(const mp_obj_t *o)
{
	return mp_obj_ref((mp_obj_t *)o);
}

/* Python's (block, timeout) arguments for a timeout_ms, after lead. */
static mp_obj_t *
block_args(mp_obj_t *lead, int64_t timeout_ms)
{
	if (timeout_ms == MP_NOWAIT) {
		return lead != NULL ? ARGS(2, lead, mp_bool(false)) :
		    ARGS(1, mp_bool(false));
	}
	if (timeout_ms < 0) {
		return lead != NULL ? ARGS(1, lead) : ARGS(0);
	}
	if (lead != NULL) {
		return ARGS(3, lead, mp_bool(true), seconds(timeout_ms));
	}
	return ARGS(2, mp_bool(true), seconds(timeout_ms));
}

static int
timeout_code(int64_t timeout_ms)
{
	return timeout_ms == MP_NOWAIT ? -EAGAIN : -ETIMEDOUT;
}

static int
size_of(mp_obj_t *r, size_t *out)
{
	int64_t v = 0;
	int rv = mp_int_value(r, &v);
	mp_obj_unref(r);
	if (rv != 0 || v < 0) {
		return -EPROTO;
	}
	*out = (size_t)v;
	return 0;
}

/* ---- Queue --------------------------------------------------------------- */

int
mp_proxy_queue_put(mp_proxy_t *q, const mp_obj_t *item, int64_t timeout_ms)
{
	MP_ASSERT(q != NULL && item != NULL);
	mp_obj_t *args = block_args(borrow(item), timeout_ms);
	if (args == NULL) {
		return -ENOMEM;
	}
	return call(q, "put", args, reply_wait(timeout_ms), MP__EXC_FULL,
	    timeout_code(timeout_ms), -1, 0, NULL);
}

int
mp_proxy_queue_get(mp_proxy_t *q, int64_t timeout_ms, mp_obj_t **item)
{
	MP_ASSERT(q != NULL && item != NULL);
	mp_obj_t *args = block_args(NULL, timeout_ms);
	if (args == NULL) {
		return -ENOMEM;
	}
	return call(q, "get", args, reply_wait(timeout_ms), MP__EXC_EMPTY,
	    timeout_code(timeout_ms), -1, 0, item);
}

int
mp_proxy_queue_qsize(mp_proxy_t *q, size_t *out)
{
	MP_ASSERT(q != NULL && out != NULL);
	mp_obj_t *r = NULL;
	int rv = call(q, "qsize", NULL, plain_wait(q), -1, 0, -1, 0, &r);
	return rv != 0 ? rv : size_of(r, out);
}

/* ---- list and dict ------------------------------------------------------- */

int
mp_proxy_list_append(mp_proxy_t *l, const mp_obj_t *item)
{
	MP_ASSERT(l != NULL && item != NULL);
	mp_obj_t *args = ARGS(1, borrow(item));
	if (args == NULL) {
		return -ENOMEM;
	}
	return call(l, "append", args, plain_wait(l), -1, 0, -1, 0, NULL);
}

int
mp_proxy_list_get(mp_proxy_t *l, ssize_t i, mp_obj_t **out)
{
	MP_ASSERT(l != NULL && out != NULL);
	mp_obj_t *args = ARGS(1, mp_int(i));
	if (args == NULL) {
		return -ENOMEM;
	}
	return call(l, "__getitem__", args, plain_wait(l), MP__EXC_INDEX,
	    -EINVAL, -1, 0, out);
}

int
mp_proxy_list_len(mp_proxy_t *l, size_t *out)
{
	MP_ASSERT(l != NULL && out != NULL);
	mp_obj_t *r = NULL;
	int rv = call(l, "__len__", NULL, plain_wait(l), -1, 0, -1, 0, &r);
	return rv != 0 ? rv : size_of(r, out);
}

int
mp_proxy_dict_set(mp_proxy_t *d, const mp_obj_t *key, const mp_obj_t *value)
{
	MP_ASSERT(d != NULL && key != NULL && value != NULL);
	mp_obj_t *args = ARGS(2, borrow(key), borrow(value));
	if (args == NULL) {
		return -ENOMEM;
	}
	return call(d, "__setitem__", args, plain_wait(d), -1, 0, -1, 0, NULL);
}

int
mp_proxy_dict_get(mp_proxy_t *d, const mp_obj_t *key, mp_obj_t **out)
{
	MP_ASSERT(d != NULL && key != NULL && out != NULL);
	mp_obj_t *args = ARGS(1, borrow(key));
	if (args == NULL) {
		return -ENOMEM;
	}
	return call(d, "__getitem__", args, plain_wait(d), MP__EXC_KEY,
	    -ENOENT, -1, 0, out);
}

int
mp_proxy_dict_len(mp_proxy_t *d, size_t *out)
{
	MP_ASSERT(d != NULL && out != NULL);
	mp_obj_t *r = NULL;
	int rv = call(d, "__len__", NULL, plain_wait(d), -1, 0, -1, 0, &r);
	return rv != 0 ? rv : size_of(r, out);
}

/* ---- Value and Namespace ------------------------------------------------- */

int
mp_proxy_value_get(mp_proxy_t *v, mp_obj_t **out)
{
	MP_ASSERT(v != NULL && out != NULL);
	return call(v, "get", NULL, plain_wait(v), -1, 0, -1, 0, out);
}

int
mp_proxy_value_set(mp_proxy_t *v, const mp_obj_t *value)
{
	MP_ASSERT(v != NULL && value != NULL);
	mp_obj_t *args = ARGS(1, borrow(value));
	if (args == NULL) {
		return -ENOMEM;
	}
	return call(v, "set", args, plain_wait(v), -1, 0, -1, 0, NULL);
}

/*
 * (name,) or (name, value) for a Namespace call: -EINVAL for a name that
 * is not UTF-8, -ENOMEM when memory runs out (not the same failure).
 */
static int
name_args(const char *name, const mp_obj_t *value, mp_obj_t **args)
{
	mp_obj_t *key = NULL;
	int rv = mp_str_new(name, strlen(name), &key);
	if (rv != 0) {
		return rv;
	}
	*args = value != NULL ? ARGS(2, key, borrow(value)) : ARGS(1, key);
	return *args == NULL ? -ENOMEM : 0;
}

int
mp_proxy_ns_get(mp_proxy_t *ns, const char *name, mp_obj_t **out)
{
	MP_ASSERT(ns != NULL && name != NULL && out != NULL);
	mp_obj_t *args = NULL;
	int rv = name_args(name, NULL, &args);
	if (rv != 0) {
		return rv;
	}
	return call(ns, "__getattribute__", args, plain_wait(ns),
	    MP__EXC_ATTRIBUTE, -ENOENT, -1, 0, out);
}

int
mp_proxy_ns_set(mp_proxy_t *ns, const char *name, const mp_obj_t *value)
{
	MP_ASSERT(ns != NULL && name != NULL && value != NULL);
	mp_obj_t *args = NULL;
	int rv = name_args(name, value, &args);
	if (rv != 0) {
		return rv;
	}
	return call(ns, "__setattr__", args, plain_wait(ns), -1, 0, -1, 0,
	    NULL);
}

/* ---- Lock, Event, Barrier ------------------------------------------------ */

/* A bool reply: false becomes code. */
static int
bool_or(int rv, mp_obj_t *r, int code)
{
	if (rv != 0) {
		return rv;
	}
	bool ok = mp_obj_type(r) == MP_TYPE_BOOL && mp_bool_value(r);
	mp_obj_unref(r);
	return ok ? 0 : code;
}

int
mp_proxy_lock_acquire(mp_proxy_t *l, int64_t timeout_ms)
{
	MP_ASSERT(l != NULL);
	/* AcquirerProxy: (blocking,) or (blocking, timeout). */
	mp_obj_t *args = timeout_ms == MP_NOWAIT ? ARGS(1, mp_bool(false)) :
	    timeout_ms < 0 ? ARGS(1, mp_bool(true)) :
	    ARGS(2, mp_bool(true), seconds(timeout_ms));
	if (args == NULL) {
		return -ENOMEM;
	}
	mp_obj_t *r = NULL;
	int rv = call(l, "acquire", args, reply_wait(timeout_ms), -1, 0, -1, 0,
	    &r);
	return bool_or(rv, r, timeout_code(timeout_ms));
}

int
mp_proxy_lock_release(mp_proxy_t *l)
{
	MP_ASSERT(l != NULL);
	return call(l, "release", NULL, plain_wait(l), MP__EXC_RUNTIME, -EPERM,
	    MP__EXC_VALUE, -EPERM, NULL);
}

int
mp_proxy_event_set(mp_proxy_t *e)
{
	MP_ASSERT(e != NULL);
	return call(e, "set", NULL, plain_wait(e), -1, 0, -1, 0, NULL);
}

int
mp_proxy_event_clear(mp_proxy_t *e)
{
	MP_ASSERT(e != NULL);
	return call(e, "clear", NULL, plain_wait(e), -1, 0, -1, 0, NULL);
}

int
mp_proxy_event_is_set(mp_proxy_t *e, bool *out)
{
	MP_ASSERT(e != NULL && out != NULL);
	mp_obj_t *r = NULL;
	int rv = call(e, "is_set", NULL, plain_wait(e), -1, 0, -1, 0, &r);
	if (rv != 0) {
		return rv;
	}
	*out = mp_obj_type(r) == MP_TYPE_BOOL && mp_bool_value(r);
	mp_obj_unref(r);
	return 0;
}

/* wait(timeout) as EventProxy and BarrierProxy send it: None = forever. */
static mp_obj_t *
wait_args(int64_t timeout_ms)
{
	return ARGS(1, timeout_ms < 0 ? mp_none() : seconds(timeout_ms));
}

int
mp_proxy_event_wait(mp_proxy_t *e, int64_t timeout_ms)
{
	MP_ASSERT(e != NULL);
	mp_obj_t *args = wait_args(timeout_ms);
	if (args == NULL) {
		return -ENOMEM;
	}
	mp_obj_t *r = NULL;
	int rv = call(e, "wait", args, reply_wait(timeout_ms), -1, 0, -1, 0,
	    &r);
	return bool_or(rv, r, timeout_code(timeout_ms));
}

int
mp_proxy_barrier_wait(mp_proxy_t *b, int64_t timeout_ms, int64_t *index)
{
	MP_ASSERT(b != NULL);
	mp_obj_t *args = wait_args(timeout_ms);
	if (args == NULL) {
		return -ENOMEM;
	}
	mp_obj_t *r = NULL;
	int rv = call(b, "wait", args, reply_wait(timeout_ms),
	    MP__EXC_BROKEN_BARRIER, MP_EBROKEN, -1, 0, &r);
	if (rv != 0) {
		return rv;
	}
	int64_t v = 0;
	rv = mp_int_value(r, &v);
	mp_obj_unref(r);
	if (rv != 0) {
		return -EPROTO;
	}
	if (index != NULL) {
		*index = v;
	}
	return 0;
}
