/* SPDX-License-Identifier: MIT */
/* manager/proxy.c: mp_proxy_t: create, call and release shared objects. */
#include "manager/client_int.h"

#include <string.h>
#include <unistd.h>

static int
proxy_new(mp_manager_t *m, const char *id, const char *typeid,
    mp_proxy_t **out)
{
	mp_proxy_t *p = mp__calloc(1, sizeof(*p));
	if (p == NULL) {
		return -ENOMEM;
	}
	p->id = mp__strdup(id);
	p->typeid = mp__strdup(typeid);
	if (p->id == NULL || p->typeid == NULL) {
		mp__free(p->id);
		mp__free(p->typeid);
		mp__free(p);
		return -ENOMEM;
	}
	mp__mgr_ref(m);
	p->m = m;
	p->owner = getpid();
	*out = p;
	return 0;
}

/* Release a reference the server holds for us; failures are ignored. */
static void
decref(mp_manager_t *m, const char *id)
{
	if (atomic_load(&m->closed)) {
		return;
	}
	(void)mp__mgr_server_call(m, "decref", mp_tuple_of(1, mp_str(id)),
	    NULL, NULL);
}

static bool
args_ok(const mp_obj_t *args, const mp_obj_t *kwds)
{
	return (args == NULL || mp_obj_type(args) == MP_TYPE_TUPLE) &&
	    (kwds == NULL || mp_obj_type(kwds) == MP_TYPE_DICT);
}

int
mp_manager_create(mp_manager_t *m, const char *typeid, const mp_obj_t *args,
    const mp_obj_t *kwds, mp_proxy_t **out)
{
	MP_ASSERT(m != NULL && typeid != NULL && out != NULL);
	if (!args_ok(args, kwds)) {
		return -EINVAL;
	}
	if (atomic_load(&m->closed)) {
		return MP_ECLOSED;
	}
	/* create(typeid, *args, **kwds): the typeid leads the tuple. */
	size_t n = args != NULL ? mp_obj_len(args) : 0;
	mp_obj_t **items = mp__malloc((n + 1) * sizeof(*items));
	if (items == NULL) {
		return -ENOMEM;
	}
	items[0] = mp_str(typeid);
	for (size_t i = 0; i < n; i++) {
		items[i + 1] = mp_obj_ref(mp_tuple_get(args, (ssize_t)i));
	}
	mp_obj_t *cargs = mp_tuple_from(items, n + 1);
	mp__free(items);
	if (cargs == NULL) {
		return -ENOMEM;
	}
	mp_obj_t *res = NULL;
	int rv = mp__mgr_server_call(m, "create", cargs,
	    mp_obj_ref((mp_obj_t *)kwds), &res);
	if (rv != 0) {
		return rv;
	}
	/* (ident, exposed): the count is already 1, ours to release. */
	mp_obj_t *id = mp_tuple_get(res, 0);
	if (mp_obj_type(res) != MP_TYPE_TUPLE || mp_obj_len(res) != 2 ||
	    mp_obj_type(id) != MP_TYPE_STR) {
		mp_obj_unref(res);
		return -EPROTO;
	}
	rv = proxy_new(m, mp_str_data(id, NULL), typeid, out);
	if (rv != 0) {
		decref(m, mp_str_data(id, NULL));
	}
	mp_obj_unref(res);
	return rv;
}

void
mp_proxy_free(mp_proxy_t *p)
{
	if (p == NULL) {
		return;
	}
	/* A child borrows its parent's reference: nothing to give back. */
	if (p->owner == getpid()) {
		decref(p->m, p->id);
	}
	mp__mgr_unref(p->m);
	mp__free(p->id);
	mp__free(p->typeid);
	mp__free(p);
}

const char *
mp_proxy_id(const mp_proxy_t *p)
{
	MP_ASSERT(p != NULL);
	return p->id;
}

const char *
mp_proxy_typeid(const mp_proxy_t *p)
{
	MP_ASSERT(p != NULL);
	return p->typeid;
}

/* The '#PROXY' result (exposed, Token): adopt the token's id. */
static int
adopt(mp_manager_t *m, const mp_obj_t *result, mp_proxy_t **out)
{
	const char *typeid;
	const char *id;
	mp_obj_t *address;
	if (mp_obj_type(result) != MP_TYPE_TUPLE || mp_obj_len(result) != 2 ||
	    mp__mgr_token_parse(mp_tuple_get(result, 1), &typeid, &address,
	    &id) != 0) {
		return -EPROTO;
	}
	/* The address is the server's view of itself; ours is the one
	 * to use. */
	(void)address;
	int rv = proxy_new(m, id, typeid, out);
	if (rv != 0) {
		decref(m, id);
	}
	return rv;
}

/* The reply to a call, as mp_proxy_call reports it. */
static int
reply_result(mp_manager_t *m, enum mp__mgr_kind kind, mp_obj_t *reply,
    mp_obj_t **result)
{
	mp_obj_t *r = mp_tuple_get(reply, 1);
	int rv;
	switch (kind) {
	case MP__MGR_RETURN:
		*result = mp_obj_ref(r);
		rv = 0;
		break;
	case MP__MGR_ERROR:
		if (mp_obj_type(r) == MP_TYPE_INSTANCE) {
			*result = mp_obj_ref(r);
		} else {
			*result = mp__mgr_remote_error(r);
		}
		rv = *result != NULL ? MP_EREMOTEERR : -ENOMEM;
		break;
	case MP__MGR_PROXY: {
		/* Nobody will hold this object: release it now. */
		mp_proxy_t *p = NULL;
		if (adopt(m, r, &p) == 0) {
			mp_proxy_free(p);
		}
		rv = MP_ETYPE;
		break;
	}
	default:
		*result = mp__mgr_remote_error(r);
		rv = *result != NULL ? MP_EREMOTEERR : -ENOMEM;
		break;
	}
	mp_obj_unref(reply);
	return rv;
}

/* One call of method on the referent: the reply and its kind. */
static int
call(mp_proxy_t *p, const char *method, const mp_obj_t *args,
    const mp_obj_t *kwds, int64_t timeout_ms, enum mp__mgr_kind *kind,
    mp_obj_t **reply)
{
	MP_ASSERT(p != NULL && method != NULL);
	if (!args_ok(args, kwds)) {
		return -EINVAL;
	}
	return mp__mgr_method_call(p->m, p->id, method, args, kwds,
	    timeout_ms, kind, reply);
}

int
mp_proxy_call(mp_proxy_t *p, const char *method, const mp_obj_t *args,
    const mp_obj_t *kwds, int64_t timeout_ms, mp_obj_t **result)
{
	MP_ASSERT(result != NULL);
	enum mp__mgr_kind kind;
	mp_obj_t *reply = NULL;
	int rv = call(p, method, args, kwds, timeout_ms, &kind, &reply);
	if (rv != 0) {
		return rv;
	}
	return reply_result(p->m, kind, reply, result);
}

int
mp_proxy_call_proxy(mp_proxy_t *p, const char *method, const mp_obj_t *args,
    const mp_obj_t *kwds, int64_t timeout_ms, mp_proxy_t **out)
{
	MP_ASSERT(out != NULL);
	enum mp__mgr_kind kind;
	mp_obj_t *reply = NULL;
	int rv = call(p, method, args, kwds, timeout_ms, &kind, &reply);
	if (rv != 0) {
		return rv;
	}
	if (kind == MP__MGR_PROXY) {
		rv = adopt(p->m, mp_tuple_get(reply, 1), out);
		mp_obj_unref(reply);
		return rv;
	}
	mp_obj_t *ignored = NULL;
	rv = reply_result(p->m, kind, reply, &ignored);
	mp_obj_unref(ignored);
	return rv == 0 ? MP_ETYPE : rv;
}

int
mp_proxy_repr(mp_proxy_t *p, char **out)
{
	MP_ASSERT(out != NULL);
	mp_obj_t *r = NULL;
	int rv = mp_proxy_call(p, "__repr__", NULL, NULL,
	    atomic_load(&p->m->timeout_ms), &r);
	if (rv == MP_EREMOTEERR) {
		mp_obj_unref(r);
		return rv;
	}
	if (rv != 0) {
		return rv;
	}
	size_t len;
	const char *s = mp_obj_type(r) == MP_TYPE_STR ? mp_str_data(r, &len) :
	    NULL;
	char *copy = s != NULL ? mp__malloc(len + 1) : NULL;
	if (copy != NULL) {
		memcpy(copy, s, len + 1);
	}
	rv = s == NULL ? -EPROTO : copy == NULL ? -ENOMEM : 0;
	mp_obj_unref(r);
	if (rv == 0) {
		*out = copy;
	}
	return rv;
}

int
mp_proxy_getvalue(mp_proxy_t *p, mp_obj_t **out)
{
	MP_ASSERT(p != NULL && out != NULL);
	mp_obj_t *r = NULL;
	int rv = mp_proxy_call(p, "#GETVALUE", NULL, NULL,
	    atomic_load(&p->m->timeout_ms), &r);
	if (rv == MP_EREMOTEERR) {
		mp_obj_unref(r);
		return rv;
	}
	if (rv == 0) {
		*out = r;
	}
	return rv;
}
