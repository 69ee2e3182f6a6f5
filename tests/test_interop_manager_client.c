/* SPDX-License-Identifier: MIT */
/* test_interop_manager_client.c: the C manager client with CPython 3.8-3.13. */
#include "harness/harness.h"

#include <mproc/manager.h>
#include <mproc/manager_server.h>

#include <pthread.h>
#include <signal.h>

MP_TEST_SUITE(interop_manager_client);

#define KEY "secret"

/* A CPython server of kind (see tests/py/mgrc_server.py); addr gets its
 * "127.0.0.1:port". */
static void
py_server(const struct mp_test_python *py, const char *kind,
    struct mp_test_child *child, char *addr, size_t size)
{
	const char *args[] = { kind, KEY, NULL };
	mp_test_spawn_py(py->path, "mgrc_server.py", args, child);
	ssize_t n = mp_test_read_line(child->out_fd, addr, size, 30000);
	cr_assert_gt(n, 0, "python %s: the server did not start", py->label);
}

static void
py_server_stop(const struct mp_test_python *py, struct mp_test_child *child)
{
	int rv = mp_test_wait(child, 30000);
	cr_assert_eq(rv, 0, "python %s: the server exited with %d", py->label,
	    rv);
}

static mp_proxy_t *
create(mp_manager_t *m, const char *typeid, mp_obj_t *args)
{
	mp_proxy_t *p = NULL;
	int rv = mp_manager_create(m, typeid, args, NULL, &p);
	cr_assert_eq(rv, 0, "create %s: %s", typeid, mp_err_name(rv));
	mp_obj_unref(args);
	return p;
}

static void
expect_repr(const mp_obj_t *o, const char *want, const char *label)
{
	char *s = NULL;
	expect_ok(mp_obj_repr(o, &s));
	cr_assert_str_eq(s, want, "python %s", label);
	mp_free(s);
}

static void
check_queue(mp_manager_t *m, const char *label)
{
	mp_proxy_t *q = create(m, "get_queue", NULL);
	mp_obj_t *v = mp_list_of(4, mp_str("name"), mp_int(42), mp_none(),
	    mp_str("hello"));
	expect_ok(mp_proxy_queue_put(q, v, MP_FOREVER));
	mp_obj_t *back = NULL;
	expect_ok(mp_proxy_queue_get(q, 5000, &back));
	expect_repr(back, "['name', 42, None, 'hello']", label);
	mp_obj_unref(back);
	mp_obj_unref(v);
	expect_err(mp_proxy_queue_get(q, MP_NOWAIT, &back), -EAGAIN);
	expect_err(mp_proxy_queue_get(q, 20, &back), -ETIMEDOUT);
	mp_obj_t *exc = NULL;
	mp_obj_t *args = mp_tuple_of(1, mp_bool(false));
	expect_err(mp_proxy_call(q, "get", args, NULL, 5000, &exc),
	    MP_EREMOTEERR);
	cr_assert_str_eq(mp_instance_name(exc), "Empty", "python %s", label);
	mp_obj_unref(exc);
	mp_obj_unref(args);
	/* Sizes around CPython's two-write threshold and beyond. */
	size_t sizes[] = { 16000, 17000, 70000 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *buf = calloc(1, sizes[i]);
		v = mp_bytes(buf, sizes[i]);
		free(buf);
		expect_ok(mp_proxy_queue_put(q, v, 5000));
		expect_ok(mp_proxy_queue_get(q, 5000, &back));
		cr_assert(mp_obj_equal(v, back), "python %s", label);
		mp_obj_unref(back);
		mp_obj_unref(v);
	}
	mp_proxy_free(q);
}

Test(interop_manager_client, basemanager_queue)
{
	const struct mp_test_python *pys;
	size_t n = mp_test_pythons(&pys);
	for (size_t i = 0; i < n; i++) {
		const char *kinds[] = { "base", "mpqueue" };
		for (size_t k = 0; k < 2; k++) {
			struct mp_test_child child;
			char addr[128];
			py_server(&pys[i], kinds[k], &child, addr,
			    sizeof(addr));
			mp_manager_t *m = NULL;
			expect_ok(mp_manager_connect(addr, KEY, strlen(KEY),
			    10000, &m));
			check_queue(m, pys[i].label);
			mp_manager_free(m);
			py_server_stop(&pys[i], &child);
		}
	}
}

static void
check_sync_types(mp_manager_t *m, const char *label)
{
	mp_obj_t *x = NULL;
	mp_proxy_t *l = create(m, "list", NULL);
	for (int i = 0; i < 3; i++) {
		mp_obj_t *v = mp_int(i * 10);
		expect_ok(mp_proxy_list_append(l, v));
		mp_obj_unref(v);
	}
	size_t len = 0;
	expect_ok(mp_proxy_list_len(l, &len));
	cr_assert_eq(len, 3);
	expect_ok(mp_proxy_list_get(l, -1, &x));
	expect_repr(x, "20", label);
	mp_obj_unref(x);
	expect_err(mp_proxy_list_get(l, 5, &x), -EINVAL);
	char *s = NULL;
	expect_ok(mp_proxy_repr(l, &s));
	cr_assert_str_eq(s, "[0, 10, 20]", "python %s", label);
	mp_free(s);

	mp_proxy_t *d = create(m, "dict", NULL);
	mp_obj_t *k = mp_str("a");
	expect_ok(mp_proxy_dict_set(d, k, k));
	expect_ok(mp_proxy_dict_get(d, k, &x));
	expect_repr(x, "'a'", label);
	mp_obj_unref(x);
	mp_obj_t *zz = mp_str("zz");
	expect_err(mp_proxy_dict_get(d, zz, &x), -ENOENT);
	mp_obj_unref(zz);
	expect_ok(mp_proxy_call(d, "keys", NULL, NULL, 5000, &x));
	expect_repr(x, "['a']", label);
	mp_obj_unref(x);
	mp_proxy_t *it = NULL;
	expect_ok(mp_proxy_call_proxy(d, "__iter__", NULL, NULL, 5000, &it));
	expect_ok(mp_proxy_call(it, "__next__", NULL, NULL, 5000, &x));
	expect_repr(x, "'a'", label);
	mp_obj_unref(x);
	expect_err(mp_proxy_call(it, "__next__", NULL, NULL, 5000, &x),
	    MP_EREMOTEERR);
	cr_assert_str_eq(mp_instance_name(x), "StopIteration");
	mp_obj_unref(x);
	mp_proxy_free(it);
	mp_obj_unref(k);

	mp_proxy_t *v = create(m, "Value",
	    mp_tuple_of(2, mp_str("i"), mp_int(7)));
	mp_obj_t *nine = mp_int(9);
	expect_ok(mp_proxy_value_set(v, nine));
	expect_ok(mp_proxy_value_get(v, &x));
	expect_repr(x, "9", label);
	mp_obj_unref(x);

	mp_proxy_t *ns = create(m, "Namespace", NULL);
	expect_err(mp_proxy_ns_get(ns, "x", &x), -ENOENT);
	expect_ok(mp_proxy_ns_set(ns, "x", nine));
	expect_ok(mp_proxy_ns_get(ns, "x", &x));
	expect_repr(x, "9", label);
	mp_obj_unref(x);
	mp_obj_unref(nine);

	mp_proxy_t *lk = create(m, "Lock", NULL);
	expect_ok(mp_proxy_lock_acquire(lk, MP_FOREVER));
	expect_err(mp_proxy_lock_acquire(lk, MP_NOWAIT), -EAGAIN);
	expect_err(mp_proxy_lock_acquire(lk, 20), -ETIMEDOUT);
	expect_ok(mp_proxy_lock_release(lk));
	expect_err(mp_proxy_lock_release(lk), -EPERM);

	mp_proxy_t *e = create(m, "Event", NULL);
	expect_err(mp_proxy_event_wait(e, 20), -ETIMEDOUT);
	expect_ok(mp_proxy_event_set(e));
	bool set = false;
	expect_ok(mp_proxy_event_is_set(e, &set));
	cr_assert(set);
	expect_ok(mp_proxy_event_wait(e, MP_FOREVER));

	mp_proxy_t *b = create(m, "Barrier", mp_tuple_of(1, mp_int(1)));
	int64_t idx = -1;
	expect_ok(mp_proxy_barrier_wait(b, 5000, &idx));
	cr_assert_eq(idx, 0);
	mp_proxy_t *b2 = create(m, "Barrier", mp_tuple_of(1, mp_int(2)));
	expect_err(mp_proxy_barrier_wait(b2, 20, NULL), MP_EBROKEN);

	mp_proxy_t *procs[] = { b2, b, e, lk, ns, v, d, l };
	for (size_t i = 0; i < sizeof(procs) / sizeof(procs[0]); i++) {
		mp_proxy_free(procs[i]);
	}
	size_t objs = 99;
	expect_ok(mp_manager_number_of_objects(m, &objs));
	cr_assert_eq(objs, 0, "python %s: %zu objects left", label, objs);
}

Test(interop_manager_client, syncmanager_types)
{
	const struct mp_test_python *pys;
	size_t n = mp_test_pythons(&pys);
	for (size_t i = 0; i < n; i++) {
		struct mp_test_child child;
		char addr[128];
		py_server(&pys[i], "sync", &child, addr, sizeof(addr));
		mp_manager_t *m = NULL;
		expect_ok(mp_manager_connect(addr, KEY, strlen(KEY), 10000,
		    &m));
		check_sync_types(m, pys[i].label);
		mp_manager_free(m);
		py_server_stop(&pys[i], &child);
	}
}

Test(interop_manager_client, wrong_key_and_killed_server)
{
	const struct mp_test_python *pys;
	size_t n = mp_test_pythons(&pys);
	for (size_t i = 0; i < n; i++) {
		struct mp_test_child child;
		char addr[128];
		py_server(&pys[i], "sync", &child, addr, sizeof(addr));
		mp_manager_t *m = NULL;
		expect_err(mp_manager_connect(addr, "nope", 4, 10000, &m),
		    MP_EAUTH);
		expect_ok(mp_manager_connect(addr, KEY, strlen(KEY), 10000,
		    &m));
		mp_proxy_t *q = create(m, "Queue", NULL);
		size_t qs;
		expect_ok(mp_proxy_queue_qsize(q, &qs));
		int rv;
		kill(child.pid, SIGKILL);
		rv = mp_test_wait(&child, 30000);
		cr_assert_eq(rv, -SIGKILL);
		mp_obj_t *x = NULL;
		rv = mp_proxy_queue_get(q, MP_FOREVER, &x);
		cr_assert(rv == MP_EOF || rv == -ECONNRESET ||
		    rv == MP_ETRUNCATED, "python %s: get gave %s",
		    pys[i].label, mp_err_name(rv));
		expect_err(mp_proxy_queue_qsize(q, &qs), -ECONNREFUSED);
		mp_proxy_free(q);
		mp_manager_free(m);
	}
}

/* ---- Mixed: a CPython producer and a C consumer share one queue ---------- */

static void
consume(const char *addr, const struct mp_test_python *py, int count)
{
	mp_manager_t *m = NULL;
	expect_ok(mp_manager_connect(addr, KEY, strlen(KEY), 10000, &m));
	mp_proxy_t *q = create(m, "get_queue", NULL);
	char nbuf[16];
	snprintf(nbuf, sizeof(nbuf), "%d", count);
	const char *args[] = { addr, KEY, nbuf, NULL };
	struct mp_test_child prod;
	mp_test_spawn_py(py->path, "mgrc_producer.py", args, &prod);
	for (int i = 0;; i++) {
		mp_obj_t *x = NULL;
		expect_ok(mp_proxy_queue_get(q, 30000, &x));
		if (mp_obj_type(x) == MP_TYPE_NONE) {
			cr_assert_eq(i, count);
			break;
		}
		char want[64];
		snprintf(want, sizeof(want), "['item', %d, None, b'%s']", i,
		    i % 3 == 0 ? "" : i % 3 == 1 ? "\\x00" : "\\x00\\x00");
		expect_repr(x, want, py->label);
		mp_obj_unref(x);
	}
	char line[32];
	cr_assert_gt(mp_test_read_line(prod.out_fd, line, sizeof(line), 30000),
	    0);
	cr_assert_str_eq(line, "done");
	cr_assert_eq(mp_test_wait(&prod, 30000), 0);
	mp_proxy_free(q);
	mp_manager_free(m);
}

Test(interop_manager_client, python_producer_c_consumer_python_server)
{
	const struct mp_test_python *pys;
	size_t n = mp_test_pythons(&pys);
	for (size_t i = 0; i < n; i++) {
		struct mp_test_child child;
		char addr[128];
		py_server(&pys[i], "base", &child, addr, sizeof(addr));
		consume(addr, &pys[i], 200);
		py_server_stop(&pys[i], &child);
	}
}

static void *
serve(void *arg)
{
	mp_manager_server_serve(arg);
	return NULL;
}

Test(interop_manager_client, python_producer_c_consumer_c_server)
{
	mp_manager_server_t *s = NULL;
	expect_ok(mp_manager_server_open("127.0.0.1:0", KEY, strlen(KEY), NULL,
	    &s));
	expect_ok(mp_manager_server_register_shared(s, "get_queue", "Queue",
	    NULL));
	pthread_t tid;
	cr_assert_eq(pthread_create(&tid, NULL, serve, s), 0);
	const struct mp_test_python *pys;
	size_t n = mp_test_pythons(&pys);
	for (size_t i = 0; i < n; i++) {
		consume(mp_manager_server_address(s), &pys[i], 200);
	}
	mp_manager_server_shutdown(s);
	pthread_join(tid, NULL);
	mp_manager_server_close(s);
}
