/* SPDX-License-Identifier: MIT */
/* manager/server_dispatch.c: server functions, method calls, fallbacks and registration. */
#include "manager/server_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

/* ---- Replies ------------------------------------------------------------- */

static mp_obj_t *
traceback(const char *exc, const char *msg)
{
	char text[512];
	snprintf(text, sizeof(text),
	    "Traceback (most recent call last):\n"
	    "  File \"<mproc manager server>\"\n%s: %s\n", exc, msg);
	return mp_str(text);
}

/* '#TRACEBACK' text for an exception instance (repr of its message). */
static mp_obj_t *
traceback_exc(const mp_obj_t *exc)
{
	char *s = NULL;
	const mp_obj_t *args = mp_instance_args(exc);
	if (args != NULL && mp_obj_len(args) == 1) {
		mp_obj_t *a = mp_tuple_get(args, 0);
		int rv = mp_obj_type(a) == MP_TYPE_STR ? mp_obj_str(a, &s) :
		    mp_obj_repr(a, &s);
		if (rv != 0) {
			return NULL; /* not a traceback without its message */
		}
	}
	mp_obj_t *t = traceback(mp_instance_name(exc) != NULL ?
	    mp_instance_name(exc) : "Exception", s != NULL ? s : "");
	mp_free(s);
	return t;
}

static mp_obj_t *
exposed_tuple(const struct mp__mgr_class *cls)
{
	size_t n = 0;
	while (cls->exposed[n] != NULL) {
		n++;
	}
	mp_obj_t *items[64];
	MP_ASSERT(n <= MP__ARRAY_LEN(items));
	for (size_t i = 0; i < n; i++) {
		items[i] = mp_str(cls->exposed[i]);
	}
	return mp_tuple_from(items, n);
}

/* The class of a typeid (a registered name), or NULL. */
static const struct mp__mgr_class *
class_of(struct mp_manager_server *s, const char *typeid)
{
	struct mp__mgr_reg *r = mp__mgr_reg_find(s, typeid, strlen(typeid));
	return r == NULL ? NULL : r->cls;
}

/* The result of a method in method_to_typeid becomes a new object. */
static int
wrap_proxy(struct mp_manager_server *s, struct mp__mgr_call *c)
{
	const struct mp__mgr_class *cls = class_of(s, c->m->result_typeid);
	if (cls == NULL) {
		return -ENOENT;
	}
	struct mp__mgr_call cc = { .srv = s, .conn = c->conn, .cls = cls };
	cc.args = mp_tuple_of(1, c->result);
	c->result = NULL;
	cc.kwds = mp_dict_new();
	struct mp__mgr_obj *o = NULL;
	int rv = cc.args == NULL || cc.kwds == NULL ? -ENOMEM :
	    mp__mgr_obj_create(s, cls, &cc, &o);
	mp_obj_unref(cc.args);
	mp_obj_unref(cc.kwds);
	mp_obj_unref(cc.result);
	if (rv != 0) {
		return rv < 0 ? rv : -EINVAL;
	}
	mp__mgr_obj_incref(s, o, c->conn != NULL ? c->conn->client : NULL);
	c->made = o;
	c->kind = MP__MGR_PROXY;
	c->result = mp_tuple_of(2, exposed_tuple(cls),
	    mp__mgr_token(c->m->result_typeid, mp_obj_ref(s->address_obj),
	    o->ident));
	return c->result == NULL ? -ENOMEM : 0;
}

/* The reply that takes the reference c->made failed: give it back. */
static void
unmake(struct mp_manager_server *s, struct mp__mgr_call *c)
{
	if (c->made != NULL) {
		mp__mgr_obj_decref(s, c->made, c->conn != NULL ?
		    c->conn->client : NULL);
		c->made = NULL;
	}
}

static mp_obj_t *
failure_traceback(int rv)
{
	return traceback(rv == -EIDRM ? "ReferenceError" : rv == -ENOMEM ?
	    "MemoryError" : "RuntimeError", rv == -EIDRM ? "the shared "
	    "object was released while the call waited" : mp_strerror(rv));
}

/* Queue the reply of a finished call (rv as its handler returned). */
void
mp__mgr_reply_call(struct mp_manager_server *s, struct mp__mgr_call *c, int rv)
{
	if (rv == 0 && c->kind == MP__MGR_RETURN && c->m != NULL &&
	    c->m->result_typeid != NULL) {
		rv = wrap_proxy(s, c);
	}
	enum mp__mgr_kind kind = c->kind;
	mp_obj_t *result = c->result;
	c->result = NULL;
	if (rv != 0 || result == NULL) {
		mp_obj_unref(result);
		unmake(s, c);
		kind = MP__MGR_TRACEBACK;
		result = failure_traceback(rv != 0 ? rv : -ENOMEM);
	}
	rv = mp__mgr_conn_reply(s, c->conn, kind, result);
	if (rv != 0) {
		unmake(s, c);
	}
	if (rv == -ENOMEM && kind != MP__MGR_TRACEBACK) {
		/* No memory to encode the answer: say so, in fewer bytes. */
		rv = mp__mgr_conn_reply(s, c->conn, MP__MGR_TRACEBACK,
		    failure_traceback(rv));
	}
	if (rv != 0) {
		c->conn->state = MP__ST_CLOSING;
	}
	c->made = NULL;
}

/* ---- Server functions (one-shot connections) ----------------------------- */

static int
fn_create(struct mp_manager_server *s, struct mp__mgr_call *c)
{
	size_t n = mp_obj_len(c->args);
	mp_obj_t *typeid = mp_tuple_get(c->args, 0);
	if (n == 0 || mp_obj_type(typeid) != MP_TYPE_STR) {
		c->kind = MP__MGR_TRACEBACK;
		c->result = traceback("TypeError",
		    "create() missing the typeid argument");
		return 0;
	}
	size_t tlen;
	const char *tname = mp_str_data(typeid, &tlen);
	struct mp__mgr_reg *r = mp__mgr_reg_find(s, tname, tlen);
	if (r == NULL) {
		char msg[300];
		snprintf(msg, sizeof(msg), "'%.200s'", tname);
		c->kind = MP__MGR_TRACEBACK;
		c->result = traceback("KeyError", msg);
		return 0;
	}
	struct mp__mgr_obj *o = r->shared;
	if (o == NULL) {
		mp_obj_t *items[256];
		if (n - 1 > MP__ARRAY_LEN(items)) {
			return -E2BIG;
		}
		for (size_t i = 1; i < n; i++) {
			items[i - 1] = mp_obj_ref(mp_tuple_get(c->args,
			    (ssize_t)i));
		}
		struct mp__mgr_call cc = { .srv = s, .conn = c->conn,
			.cls = r->cls, .kwds = c->kwds };
		cc.args = mp_tuple_from(items, n - 1);
		int rv = cc.args == NULL ? -ENOMEM :
		    mp__mgr_obj_create(s, r->cls, &cc, &o);
		mp_obj_unref(cc.args);
		if (rv == MP_EREMOTEERR) {
			/* CPython reports a failing callable as a traceback. */
			c->kind = MP__MGR_TRACEBACK;
			c->result = cc.result != NULL ?
			    traceback_exc(cc.result) : NULL;
			mp_obj_unref(cc.result);
			return c->result == NULL ? -ENOMEM : 0;
		}
		mp_obj_unref(cc.result);
		if (rv != 0) {
			return rv;
		}
	}
	mp__mgr_obj_incref(s, o, c->conn->client);
	c->made = o;
	return mp__mgr_ret(c, mp_tuple_of(2, mp_str(o->ident),
	    exposed_tuple(o->cls)));
}

static struct mp__mgr_obj *
ident_arg(struct mp_manager_server *s, struct mp__mgr_call *c)
{
	mp_obj_t *id = mp_tuple_get(c->args, 0);
	size_t len;
	const char *text = mp_str_data(id, &len);
	struct mp__mgr_obj *o = text == NULL || mp_obj_len(c->args) != 1 ?
	    NULL : mp__mgr_obj_find(s, text, len);
	if (o == NULL || o->refs == 0) {
		char *r = NULL;
		if (id != NULL) {
			(void)mp_obj_repr(id, &r);
		}
		c->kind = MP__MGR_TRACEBACK;
		c->result = traceback("KeyError", r != NULL ? r : "");
		mp_free(r);
		return NULL;
	}
	return o;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a;
	uint64_t y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int
fn_debug_info(struct mp_manager_server *s, struct mp__mgr_call *c)
{
	/* Ids of one length sort as their hex text, as CPython sorts. */
	uint64_t *ids = mp__malloc((s->objs.len + 1) * sizeof(*ids));
	if (ids == NULL) {
		return -ENOMEM;
	}
	size_t n = 0;
	size_t pos = 0;
	uint64_t id;
	void *val;
	while (mp__u64map_next(&s->objs, &pos, &id, &val)) {
		ids[n++] = id;
	}
	qsort(ids, n, sizeof(*ids), cmp_u64);
	struct mp__buf b = { 0 };
	int rv = 0;
	for (size_t i = 0; i < n && rv == 0; i++) {
		struct mp__mgr_obj *o = mp__u64map_get(&s->objs, ids[i]);
		if (o->refs == 0) {
			continue;
		}
		char *text = NULL;
		rv = o->cls->repr(o->impl, true, &text);
		if (rv != 0) {
			break;
		}
		/* str(obj)[:75]: 75 characters, not bytes, of UTF-8. */
		size_t cut = 0;
		for (int chars = 0; text[cut] != '\0'; cut++) {
			if (((uint8_t)text[cut] & 0xC0) != 0x80 &&
			    chars++ == 75) {
				break;
			}
		}
		char head[80];
		int hl = snprintf(head, sizeof(head),
		    "%s  %s:       refcount=%" PRId64 "\n    ",
		    b.len > 0 ? "\n" : "", o->ident, o->refs);
		rv = mp__buf_append(&b, head, (size_t)hl);
		if (rv == 0) {
			rv = mp__buf_append(&b, text, cut);
		}
		mp_free(text);
	}
	mp__free(ids);
	mp_obj_t *str = NULL;
	if (rv == 0) {
		rv = mp_str_new(b.len > 0 ? (const char *)b.data : "", b.len,
		    &str);
	}
	mp__buf_fini(&b);
	return rv != 0 ? rv : mp__mgr_ret(c, str);
}

static int
fn_get_methods(struct mp_manager_server *s, struct mp__mgr_call *c)
{
	const char *typeid;
	mp_obj_t *addr;
	const char *id;
	struct mp__mgr_obj *o = NULL;
	if (mp_obj_len(c->args) == 1 && mp__mgr_token_parse(mp_tuple_get(
	    c->args, 0), &typeid, &addr, &id) == 0) {
		o = mp__mgr_obj_find(s, id, strlen(id));
	}
	if (o == NULL) {
		c->kind = MP__MGR_TRACEBACK;
		c->result = traceback("KeyError", "unknown token");
		return 0;
	}
	mp_obj_t *items[64];
	size_t n = 0;
	for (size_t i = 0; o->cls->exposed[i] != NULL; i++) {
		bool dup = false;
		for (size_t j = 0; j < i; j++) {
			dup |= strcmp(o->cls->exposed[i],
			    o->cls->exposed[j]) == 0;
		}
		if (!dup && n < MP__ARRAY_LEN(items)) {
			items[n++] = mp_str(o->cls->exposed[i]);
		}
	}
	return mp__mgr_ret(c, mp_tuple_from(items, n));
}

static int
server_function(struct mp_manager_server *s, struct mp__mgr_call *c,
    const struct mp__mgr_req *r)
{
	char name[64];
	snprintf(name, sizeof(name), "%.*s", (int)(r->method_len < 60 ?
	    r->method_len : 60), r->method);
	c->kind = MP__MGR_RETURN;
	if (strcmp(name, "dummy") == 0) {
		return mp__mgr_ret(c, mp_none());
	}
	if (strcmp(name, "create") == 0) {
		return fn_create(s, c);
	}
	if (strcmp(name, "incref") == 0 || strcmp(name, "decref") == 0) {
		struct mp__mgr_obj *o = ident_arg(s, c);
		if (o == NULL) {
			return c->result == NULL ? -ENOMEM : 0;
		}
		if (name[0] == 'i') {
			mp__mgr_obj_incref(s, o, c->conn->client);
			c->made = o;
		} else {
			mp__mgr_obj_decref(s, o, c->conn->client);
		}
		return mp__mgr_ret(c, mp_none());
	}
	if (strcmp(name, "accept_connection") == 0) {
		c->conn->state = MP__ST_CHANNEL;
		return mp__mgr_ret(c, mp_none());
	}
	if (strcmp(name, "get_methods") == 0) {
		return fn_get_methods(s, c);
	}
	if (strcmp(name, "number_of_objects") == 0) {
		return mp__mgr_ret(c, mp_int((int64_t)s->nlive));
	}
	if (strcmp(name, "debug_info") == 0) {
		return fn_debug_info(s, c);
	}
	if (strcmp(name, "shutdown") == 0) {
		mp__mgr_log(s, MP_MANAGER_LOG_INFO, "shutdown requested");
		mp__mgr_server_stop(s);
		return mp__mgr_ret(c, mp_none());
	}
	char msg[100];
	snprintf(msg, sizeof(msg), "'%s' unrecognized", name);
	c->kind = MP__MGR_TRACEBACK;
	c->result = traceback("AssertionError", msg);
	return c->result == NULL ? -ENOMEM : 0;
}

/* ---- Method calls (channels) --------------------------------------------- */

static int
fallback(struct mp__mgr_call *c, const char *name)
{
	struct mp__mgr_obj *o = c->obj;
	if (strcmp(name, "#GETVALUE") == 0) {
		mp_obj_t *v = NULL;
		int rv = o->cls->getvalue == NULL ? -ENOTSUP :
		    o->cls->getvalue(o->impl, &v);
		if (rv == -ENOTSUP) {
			c->kind = MP__MGR_UNSERIALIZABLE;
			c->result = traceback("TypeError", "cannot pickle the "
			    "referent");
			return c->result == NULL ? -ENOMEM : 0;
		}
		return rv != 0 ? rv : mp__mgr_ret(c, v);
	}
	bool is_str = strcmp(name, "__str__") == 0;
	if (is_str || strcmp(name, "__repr__") == 0) {
		char *text = NULL;
		int rv = o->cls->repr(o->impl, is_str, &text);
		if (rv != 0) {
			return rv;
		}
		mp_obj_t *v = mp_str(text);
		mp_free(text);
		return mp__mgr_ret(c, v);
	}
	char msg[100];
	snprintf(msg, sizeof(msg), "'%.80s'", name);
	c->kind = MP__MGR_TRACEBACK;
	c->result = traceback("KeyError", msg);
	return c->result == NULL ? -ENOMEM : 0;
}

static int
method_call(struct mp_manager_server *s, struct mp__mgr_call *c,
    const struct mp__mgr_req *r)
{
	if (r->ident == NULL) {
		/* CPython looks the None ident up, and fails. */
		c->kind = MP__MGR_TRACEBACK;
		c->result = traceback("KeyError", "None");
		return c->result == NULL ? -ENOMEM : 0;
	}
	struct mp__mgr_obj *o = mp__mgr_obj_find(s, r->ident, r->ident_len);
	if (o == NULL) {
		char msg[100];
		snprintf(msg, sizeof(msg), "'%.*s'", (int)(r->ident_len < 80 ?
		    r->ident_len : 80), r->ident);
		c->kind = MP__MGR_TRACEBACK;
		c->result = traceback("KeyError", msg);
		return c->result == NULL ? -ENOMEM : 0;
	}
	c->obj = o;
	for (size_t i = 0; i < o->cls->n_methods; i++) {
		const struct mp__mgr_method *m = &o->cls->methods[i];
		if (strlen(m->name) == r->method_len &&
		    memcmp(m->name, r->method, r->method_len) == 0) {
			c->m = m;
			c->method_index = i;
			return m->fn(c);
		}
	}
	char name[100];
	snprintf(name, sizeof(name), "%.*s", (int)(r->method_len < 90 ?
	    r->method_len : 90), r->method);
	return fallback(c, name);
}

int
mp__mgr_dispatch(struct mp_manager_server *s, struct mp__mgr_conn *conn,
    mp_obj_t *req)
{
	struct mp__mgr_req r;
	struct mp__mgr_call c = {
		.srv = s, .conn = conn, .req = req, .deadline = -1,
		.heap_i = SIZE_MAX,
	};
	bool oneshot = conn->state == MP__ST_ONESHOT;
	int rv;
	if (mp__mgr_request_parse(req, &r) != 0) {
		c.kind = MP__MGR_TRACEBACK;
		c.result = traceback("ValueError", "a request is a tuple "
		    "(ident, methodname, args, kwds)");
		rv = c.result == NULL ? -ENOMEM : 0;
	} else {
		c.args = r.args;
		c.kwds = r.kwds;
		int il = r.ident_len < 40 ? (int)r.ident_len : 40;
		mp__mgr_log(s, MP_MANAGER_LOG_DEBUG,
		    "connection %llu: %.*s %.*s", (unsigned long long)conn->id,
		    r.ident != NULL ? il : 4,
		    r.ident != NULL ? r.ident : "None",
		    (int)(r.method_len < 40 ? r.method_len : 40), r.method);
		/* Server functions never wait; a method may, and must then
		 * park without failing: its object may have changed. */
		rv = oneshot ? server_function(s, &c, &r) :
		    mp__mgr_park_reserve(s);
		if (!oneshot && rv == 0) {
			rv = method_call(s, &c, &r);
		}
	}
	if (rv == MP__MGR_PARK) {
		mp__mgr_park(s, &c);
		return 0; /* the parked copy owns req */
	}
	mp__mgr_reply_call(s, &c, rv);
	if (oneshot && conn->state == MP__ST_ONESHOT) {
		/* One request per top-level connection, then close. */
		conn->state = MP__ST_CLOSING;
	}
	mp_obj_unref(c.result);
	mp_obj_unref(req);
	if (c.obj != NULL && c.obj->wait_head != NULL) {
		mp__mgr_obj_changed(s, c.obj);
	}
	return 0;
}

/* ---- Registration -------------------------------------------------------- */

static const struct mp__mgr_class *const builtins[] = {
	&mp__mgr_class_queue,
	&mp__mgr_class_joinable_queue,
	&mp__mgr_class_event,
	&mp__mgr_class_lock,
	&mp__mgr_class_rlock,
	&mp__mgr_class_semaphore,
	&mp__mgr_class_bounded_semaphore,
	&mp__mgr_class_condition,
	&mp__mgr_class_barrier,
	&mp__mgr_class_list,
	&mp__mgr_class_dict,
	&mp__mgr_class_iterator,
	&mp__mgr_class_value,
	&mp__mgr_class_array,
	&mp__mgr_class_namespace,
};

int
mp__mgr_register_builtins(struct mp_manager_server *s)
{
	for (size_t i = 0; i < MP__ARRAY_LEN(builtins); i++) {
		int rv = mp__mgr_reg_add(s, builtins[i]->typeid, builtins[i],
		    NULL);
		if (rv != 0) {
			return rv;
		}
	}
	return 0;
}

int
mp_manager_server_register_shared(mp_manager_server_t *s, const char *name,
    const char *typeid, const mp_obj_t *args)
{
	MP_ASSERT(s != NULL);
	if (name == NULL || name[0] == '\0' || typeid == NULL ||
	    (args != NULL && mp_obj_type(args) != MP_TYPE_TUPLE)) {
		return -EINVAL;
	}
	const struct mp__mgr_class *cls = class_of(s, typeid);
	if (cls == NULL) {
		return -ENOENT;
	}
	struct mp__mgr_call cc = { .srv = s, .cls = cls };
	cc.args = args != NULL ? mp_obj_ref((mp_obj_t *)args) : mp_tuple_of(0);
	cc.kwds = mp_dict_new();
	struct mp__mgr_obj *o = NULL;
	int rv = cc.args == NULL || cc.kwds == NULL ? -ENOMEM :
	    mp__mgr_obj_create(s, cls, &cc, &o);
	mp_obj_unref(cc.args);
	mp_obj_unref(cc.kwds);
	mp_obj_unref(cc.result);
	if (rv != 0) {
		return rv == MP_EREMOTEERR ? -EINVAL : rv;
	}
	o->pinned = true;
	rv = mp__mgr_reg_add(s, name, cls, NULL);
	if (rv != 0) {
		mp__mgr_obj_destroy(s, o);
		return rv;
	}
	mp__mgr_reg_find(s, name, strlen(name))->shared = o;
	return 0;
}
