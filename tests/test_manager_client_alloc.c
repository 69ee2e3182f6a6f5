/* SPDX-License-Identifier: MIT */
/* test_manager_client_alloc.c: every allocation of the manager client failing in turn. */
#include "harness/harness.h"
#include "core/internal.h"

#include <mproc/manager.h>

#include <dirent.h>
#include <sys/wait.h>

MP_TEST_SUITE(manager_client_alloc);

/*
 * The server is a started manager's: another process, so only the
 * client's allocations count. After each failed run the manager and the
 * proxy must still work, and the client must hold no more blocks than
 * before the run once its channel is open again.
 */
struct rig {
	mp_manager_t *m;
	mp_proxy_t *list;
	long base;
};

static size_t
list_len(struct rig *r)
{
	size_t n = 0;
	expect_ok(mp_proxy_list_len(r->list, &n));
	return n;
}

static void
rig_open(struct rig *r)
{
	mp_test_count_start();
	expect_ok(mp_manager_start(&r->m));
	expect_ok(mp_manager_create(r->m, "list", NULL, NULL, &r->list));
	(void)list_len(r);
	r->base = mp_test_count_live();
}

/* Usable again, and no block more than at the start. */
static void
rig_check(struct rig *r, const struct mp_test_sweep *s)
{
	(void)list_len(r);
	cr_assert_eq(mp_test_count_live(), r->base,
	    "sweep %s, allocation %lu: %ld blocks leaked", s->what, s->n,
	    mp_test_count_live() - r->base);
}

static void
rig_close(struct rig *r)
{
	mp_proxy_free(r->list);
	mp_manager_free(r->m);
	mp_test_count_end();
}

static size_t
objects(struct rig *r)
{
	size_t n = 0;
	expect_ok(mp_manager_number_of_objects(r->m, &n));
	return n;
}

/*
 * The server holds before + *kept objects, or one more that a run left
 * (allowed when may_keep): count it in *kept.
 */
static void
expect_objects(struct rig *r, const struct mp_test_sweep *s, size_t before,
    unsigned *kept, bool may_keep)
{
	size_t now = objects(r);
	cr_assert(now == before + *kept || (may_keep && now == before +
	    *kept + 1), "%s, allocation %lu: %zu objects, want %zu",
	    s->what, s->n, now, before + *kept);
	*kept += now > before + *kept;
}

Test(manager_client_alloc, connect)
{
	struct rig r;
	rig_open(&r);
	size_t keylen;
	const void *key = mp_manager_authkey(r.m, &keylen);
	struct mp_test_sweep s;
	for (mp_test_sweep_start(&s, "manager connect");
	    mp_test_sweep_next(&s);) {
		mp_manager_t *m = NULL;
		mp_test_sweep_arm(&s);
		int rv = mp_manager_connect(mp_manager_address(r.m), key,
		    keylen, 10000, &m);
		mp_test_sweep_done(&s, rv, 0, 0);
		if (rv == 0) {
			size_t n = 0;
			expect_ok(mp_manager_number_of_objects(m, &n));
			cr_assert_eq(n, 1);
			mp_manager_free(m);
		} else {
			cr_assert_null(m);
		}
		rig_check(&r, &s);
	}
	rig_close(&r);
}

/*
 * create: a failure before the request leaves the server as it was. One
 * after the server made the object, before the client could read the
 * reply, is reported as -ENOMEM too; the server then keeps the object
 * (for the client's other references, as CPython's does): counted.
 */
Test(manager_client_alloc, create_and_free)
{
	struct rig r;
	rig_open(&r);
	size_t before = objects(&r);
	unsigned orphans = 0;
	struct mp_test_sweep s;
	for (mp_test_sweep_start(&s, "manager create dict(a=1)");
	    mp_test_sweep_next(&s);) {
		mp_proxy_t *p = NULL;
		mp_obj_t *kw = mp_dict_new();
		expect_ok(mp_dict_set(kw, mp_str("a"), mp_int(1)));
		mp_test_sweep_arm(&s);
		int rv = mp_manager_create(r.m, "dict", NULL, kw, &p);
		mp_test_sweep_done(&s, rv, 0, 0);
		mp_obj_unref(kw);
		if (rv == 0) {
			mp_obj_t *k = mp_str("a");
			mp_obj_t *v = NULL;
			int64_t i = 0;
			expect_ok(mp_proxy_dict_get(p, k, &v));
			expect_ok(mp_int_value(v, &i));
			cr_assert_eq(i, 1);
			mp_obj_unref(v);
			mp_obj_unref(k);
			mp_proxy_free(p);
		} else {
			cr_assert_null(p);
		}
		expect_objects(&r, &s, before, &orphans, true);
		rig_check(&r, &s);
	}
	fprintf(stderr, "manager create: %u objects kept by the server for "
	    "a reply lost to -ENOMEM\n", orphans);
	rig_close(&r);
}

/* proxy free: cannot fail; a decref it could not send is counted. */
Test(manager_client_alloc, proxy_free)
{
	struct rig r;
	rig_open(&r);
	size_t before = objects(&r);
	unsigned kept = 0;
	struct mp_test_sweep s;
	for (mp_test_sweep_start(&s, "proxy free"); mp_test_sweep_next(&s);) {
		mp_proxy_t *p = NULL;
		expect_ok(mp_manager_create(r.m, "Event", NULL, NULL, &p));
		mp_test_sweep_arm(&s);
		mp_proxy_free(p);
		mp_test_sweep_done(&s, 0, 0, 0);
		expect_objects(&r, &s, before, &kept, true);
		rig_check(&r, &s);
	}
	fprintf(stderr, "proxy free: %u decrefs not sent for lack of memory "
	    "(ignored, as documented)\n", kept);
	rig_close(&r);
}

/* ---- Method calls ------------------------------------------------------- */

/* The proxies the calls use, and what a call returned. */
struct objs {
	mp_proxy_t *dict, *queue, *value, *ns, *lock, *event;
	mp_obj_t *key;
	mp_obj_t *out;
	mp_proxy_t *proxy;
	char *text;
	bool flag;
	size_t n;
};

struct call {
	const char *what;
	int want;
	int (*run)(struct rig *r, struct objs *o);
	/* After the run (nothing armed): check, release, restore. */
	void (*after)(struct rig *r, struct objs *o, int rv);
};

static int
run_append(struct rig *r, struct objs *o)
{
	(void)o;
	mp_obj_t *v = mp_list_of(1, mp_str("item"));
	int rv = v == NULL ? -ENOMEM : mp_proxy_list_append(r->list, v);
	mp_obj_unref(v);
	return rv;
}

static void
after_append(struct rig *r, struct objs *o, int rv)
{
	/* Sent before the failure or not: the list grew by one or none. */
	size_t n = list_len(r);
	cr_assert(n == o->n + 1 || (rv != 0 && n == o->n));
}

static int
run_list_get(struct rig *r, struct objs *o)
{
	return mp_proxy_list_get(r->list, 0, &o->out);
}

static void
after_list_get(struct rig *r, struct objs *o, int rv)
{
	(void)r;
	if (rv == 0) {
		cr_assert_eq(mp_obj_type(o->out), MP_TYPE_LIST);
	}
}

static int
run_list_get_bad(struct rig *r, struct objs *o)
{
	return mp_proxy_list_get(r->list, 1000000, &o->out);
}

static int
run_dict_set(struct rig *r, struct objs *o)
{
	(void)r;
	mp_obj_t *v = mp_tuple_of(2, mp_float(2.5), mp_none());
	int rv = v == NULL ? -ENOMEM : mp_proxy_dict_set(o->dict, o->key, v);
	mp_obj_unref(v);
	return rv;
}

static int
run_dict_get(struct rig *r, struct objs *o)
{
	(void)r;
	return mp_proxy_dict_get(o->dict, o->key, &o->out);
}

static int
run_dict_get_missing(struct rig *r, struct objs *o)
{
	(void)r;
	mp_obj_t *k = mp_int(12345);
	int rv = k == NULL ? -ENOMEM : mp_proxy_dict_get(o->dict, k, &o->out);
	mp_obj_unref(k);
	return rv;
}

/* The exception itself: KeyError, built from the '#ERROR' reply. */
static int
run_getitem_raw(struct rig *r, struct objs *o)
{
	(void)r;
	mp_obj_t *args = mp_tuple_of(1, mp_str("nope"));
	int rv = args == NULL ? -ENOMEM : mp_proxy_call(o->dict,
	    "__getitem__", args, NULL, 10000, &o->out);
	mp_obj_unref(args);
	return rv;
}

static void
after_exception(struct rig *r, struct objs *o, int rv)
{
	(void)r;
	if (rv == MP_EREMOTEERR) {
		cr_assert_str_eq(mp_instance_name(o->out), o->flag ?
		    "RemoteError" : "KeyError");
	} else {
		cr_assert_null(o->out);
	}
}

/* An unknown method: a '#TRACEBACK' the client turns into RemoteError. */
static int
run_traceback(struct rig *r, struct objs *o)
{
	(void)r;
	o->flag = true;
	return mp_proxy_call(o->dict, "no_such_method", NULL, NULL, 10000,
	    &o->out);
}

static int
run_queue_put(struct rig *r, struct objs *o)
{
	(void)r;
	mp_obj_t *v = mp_bytes("payload", 7);
	int rv = v == NULL ? -ENOMEM : mp_proxy_queue_put(o->queue, v,
	    MP_NOWAIT);
	mp_obj_unref(v);
	return rv;
}

static void
after_queue_put(struct rig *r, struct objs *o, int rv)
{
	(void)r;
	(void)rv;
	/* Empty the queue again (the put may have arrived). */
	mp_obj_t *v = NULL;
	while (mp_proxy_queue_get(o->queue, MP_NOWAIT, &v) == 0) {
		mp_obj_unref(v);
	}
}

static int
run_queue_get_empty(struct rig *r, struct objs *o)
{
	(void)r;
	return mp_proxy_queue_get(o->queue, MP_NOWAIT, &o->out);
}

static int
run_value(struct rig *r, struct objs *o)
{
	(void)r;
	mp_obj_t *v = mp_int(99);
	int rv = v == NULL ? -ENOMEM : mp_proxy_value_set(o->value, v);
	mp_obj_unref(v);
	return rv != 0 ? rv : mp_proxy_value_get(o->value, &o->out);
}

static int
run_ns(struct rig *r, struct objs *o)
{
	(void)r;
	int rv = mp_proxy_ns_set(o->ns, "field", o->key);
	return rv != 0 ? rv : mp_proxy_ns_get(o->ns, "field", &o->out);
}

static int
run_ns_missing(struct rig *r, struct objs *o)
{
	(void)r;
	return mp_proxy_ns_get(o->ns, "missing", &o->out);
}

static int
run_lock(struct rig *r, struct objs *o)
{
	(void)r;
	int rv = mp_proxy_lock_acquire(o->lock, MP_NOWAIT);
	return rv != 0 ? rv : mp_proxy_lock_release(o->lock);
}

static void
after_lock(struct rig *r, struct objs *o, int rv)
{
	(void)r;
	(void)rv;
	/* An acquire that arrived but whose reply was lost holds it. */
	int rel = mp_proxy_lock_release(o->lock);
	cr_assert(rel == 0 || rel == -EPERM, "%s", mp_err_name(rel));
	expect_ok(mp_proxy_lock_acquire(o->lock, MP_NOWAIT));
	expect_ok(mp_proxy_lock_release(o->lock));
}

static int
run_event(struct rig *r, struct objs *o)
{
	(void)r;
	int rv = mp_proxy_event_set(o->event);
	return rv != 0 ? rv : mp_proxy_event_is_set(o->event, &o->flag);
}

static int
run_repr(struct rig *r, struct objs *o)
{
	(void)r;
	return mp_proxy_repr(o->dict, &o->text);
}

static int
run_getvalue(struct rig *r, struct objs *o)
{
	(void)r;
	return mp_proxy_getvalue(o->dict, &o->out);
}

static int
run_call_proxy(struct rig *r, struct objs *o)
{
	(void)r;
	return mp_proxy_call_proxy(o->dict, "__iter__", NULL, NULL, 10000,
	    &o->proxy);
}

static void
after_call_proxy(struct rig *r, struct objs *o, int rv)
{
	(void)r;
	if (rv == 0) {
		cr_assert_str_eq(mp_proxy_typeid(o->proxy), "Iterator");
		mp_obj_t *k = NULL;
		expect_ok(mp_proxy_call(o->proxy, "__next__", NULL, NULL,
		    10000, &k));
		cr_assert(mp_obj_equal(k, o->key));
		mp_obj_unref(k);
	}
}

static const struct call calls[] = {
	{ "proxy list append", 0, run_append, after_append },
	{ "proxy list get", 0, run_list_get, after_list_get },
	{ "proxy list get out of range", -EINVAL, run_list_get_bad, NULL },
	{ "proxy dict set", 0, run_dict_set, NULL },
	{ "proxy dict get", 0, run_dict_get, NULL },
	{ "proxy dict get missing", -ENOENT, run_dict_get_missing, NULL },
	{ "proxy call raising KeyError", MP_EREMOTEERR, run_getitem_raw,
		after_exception },
	{ "proxy call of no method", MP_EREMOTEERR, run_traceback,
		after_exception },
	{ "proxy queue put", 0, run_queue_put, after_queue_put },
	{ "proxy queue get empty", -EAGAIN, run_queue_get_empty, NULL },
	{ "proxy value set + get", 0, run_value, NULL },
	{ "proxy namespace set + get", 0, run_ns, NULL },
	{ "proxy namespace get missing", -ENOENT, run_ns_missing, NULL },
	{ "proxy lock acquire + release", 0, run_lock, after_lock },
	{ "proxy event set + is_set", 0, run_event, NULL },
	{ "proxy repr", 0, run_repr, NULL },
	{ "proxy getvalue", 0, run_getvalue, NULL },
	{ "proxy call_proxy __iter__", 0, run_call_proxy, after_call_proxy },
};

static mp_proxy_t *
make(struct rig *r, const char *typeid)
{
	mp_proxy_t *p = NULL;
	expect_ok(mp_manager_create(r->m, typeid, NULL, NULL, &p));
	return p;
}

Test(manager_client_alloc, method_calls)
{
	struct rig r;
	rig_open(&r);
	mp_obj_t *v = mp_list_of(1, mp_str("first"));
	expect_ok(mp_proxy_list_append(r.list, v));
	mp_obj_unref(v);
	struct objs o = { .key = mp_str("a") };
	o.dict = make(&r, "dict");
	o.queue = make(&r, "Queue");
	mp_obj_t *args = mp_tuple_of(2, mp_str("i"), mp_int(0));
	expect_ok(mp_manager_create(r.m, "Value", args, NULL, &o.value));
	mp_obj_unref(args);
	o.ns = make(&r, "Namespace");
	o.lock = make(&r, "Lock");
	o.event = make(&r, "Event");
	expect_ok(run_dict_set(&r, &o));
	r.base = mp_test_count_live();
	size_t before = objects(&r);
	unsigned orphans = 0;
	for (size_t k = 0; k < MP__ARRAY_LEN(calls); k++) {
		const struct call *c = &calls[k];
		struct mp_test_sweep s;
		for (mp_test_sweep_start(&s, c->what);
		    mp_test_sweep_next(&s);) {
			o.out = NULL;
			o.proxy = NULL;
			o.text = NULL;
			o.flag = false;
			o.n = list_len(&r);
			mp_test_sweep_arm(&s);
			int rv = c->run(&r, &o);
			mp_test_sweep_done(&s, rv, c->want, 0);
			if (c->after != NULL) {
				c->after(&r, &o, rv);
			}
			mp_obj_unref(o.out);
			mp_proxy_free(o.proxy);
			mp_free(o.text);
			/* Only a proxy result lost to -ENOMEM stays. */
			expect_objects(&r, &s, before, &orphans,
			    c->run == run_call_proxy);
			rig_check(&r, &s);
		}
	}
	fprintf(stderr, "proxy call_proxy: %u objects kept by the server for "
	    "a reply lost to -ENOMEM\n", orphans);
	mp_proxy_free(o.dict);
	mp_proxy_free(o.queue);
	mp_proxy_free(o.value);
	mp_proxy_free(o.ns);
	mp_proxy_free(o.lock);
	mp_proxy_free(o.event);
	mp_obj_unref(o.key);
	rig_close(&r);
}

/*
 * mp_manager_start: the forked server inherits the armed failure too, so
 * a run may fail in the client or in the server's start. Either way the
 * call reports it, and nothing is left: no server process, no socket
 * directory (TMPDIR is a fresh directory of this case).
 */
Test(manager_client_alloc, start)
{
	char tmp[] = "/tmp/mp-alloc-start-XXXXXX";
	cr_assert_not_null(mkdtemp(tmp));
	setenv("TMPDIR", tmp, 1);
	mp_test_count_start();
	struct mp_test_sweep s;
	unsigned in_server = 0;
	for (mp_test_sweep_start(&s, "manager start");
	    mp_test_sweep_next(&s);) {
		mp_manager_t *m = NULL;
		mp_test_sweep_arm(&s);
		int rv = mp_manager_start(&m);
		/* The server reports its own failure; this process's count
		 * does not see it, and the sweep goes on past it. */
		mp_test_sweep_done(&s, rv, rv == -ENOMEM ? -ENOMEM : 0, 0);
		bool server = rv == -ENOMEM && !s.hit;
		in_server += server;
		s.hit |= server;
		if (rv == 0) {
			mp_manager_free(m);
		} else {
			cr_assert_null(m);
		}
		int st;
		cr_assert_eq(waitpid(-1, &st, WNOHANG), -1,
		    "allocation %lu: a server process is left", s.n);
		DIR *d = opendir(tmp);
		cr_assert_not_null(d);
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			cr_assert(e->d_name[0] == '.', "allocation %lu: %s/%s "
			    "is left", s.n, tmp, e->d_name);
		}
		closedir(d);
	}
	fprintf(stderr, "manager start: %u of the failures were the "
	    "server's\n", in_server);
	mp_test_count_end();
	unsetenv("TMPDIR");
	cr_assert_eq(rmdir(tmp), 0);
}
