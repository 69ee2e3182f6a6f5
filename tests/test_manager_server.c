/* SPDX-License-Identifier: MIT */
/* test_manager_server.c: the manager server's protocol, functions, waiting calls, refcounts and defences. */
#include "harness/harness.h"
#include "harness/mgr.h"
#include "manager/protocol.h"

#include <mproc/manager_server.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

MP_TEST_SUITE(manager_server);

#define KEY "secret"
#define WAIT_MS 20000

/* ---- helpers ------------------------------------------------------------- */

struct srv {
	mp_manager_server_t *s;
	pthread_t thread;
	int rv;
};

static void *
serve_thread(void *arg)
{
	struct srv *v = arg;
	v->rv = mp_manager_server_serve(v->s);
	return NULL;
}

static void
srv_start(struct srv *v, const char *addr,
    const struct mp_manager_server_opts *opts)
{
	expect_ok(mp_manager_server_open(addr, KEY, strlen(KEY), opts, &v->s));
	cr_assert_eq(pthread_create(&v->thread, NULL, serve_thread, v), 0);
}

static void
srv_stop(struct srv *v)
{
	mp_manager_server_shutdown(v->s);
	cr_assert_eq(pthread_join(v->thread, NULL), 0);
	expect_ok(v->rv);
	mp_manager_server_close(v->s);
}

static mp_conn_t *
dial(struct srv *v)
{
	mp_conn_t *c;
	expect_ok(mp_client_connect(mp_manager_server_address(v->s), KEY,
	    strlen(KEY), WAIT_MS, &c));
	return c;
}

static mp_obj_t *
rpc(mp_conn_t *c, const char *ident, const char *method, mp_obj_t *args,
    mp_obj_t *kwds, enum mp__mgr_kind *kind)
{
	mp_test_mgr_send(c, ident, method, args, kwds);
	return mp_test_mgr_recv(c, kind);
}

/* A server function on its own connection, as CPython's dispatch(). */
static mp_obj_t *
oneshot(struct srv *v, const char *fn, mp_obj_t *args, mp_obj_t *kwds,
    enum mp__mgr_kind *kind)
{
	mp_conn_t *c = dial(v);
	mp_obj_t *r = rpc(c, NULL, fn, args, kwds, kind);
	mp_conn_close(c);
	return r;
}

static void
expect_repr(const mp_obj_t *o, const char *want)
{
	char *s;
	expect_ok(mp_obj_repr(o, &s));
	cr_assert_str_eq(s, want);
	mp_free(s);
}

/* create(typeid, args...) -> ident (copied into id). */
static void
create(struct srv *v, mp_obj_t *args, char *id, size_t size)
{
	enum mp__mgr_kind kind;
	mp_obj_t *r = oneshot(v, "create", args, NULL, &kind);
	cr_assert_eq(kind, MP__MGR_RETURN);
	snprintf(id, size, "%s", mp_str_data(mp_tuple_get(r, 0), NULL));
	mp_obj_unref(r);
}

static int64_t
number_of_objects(struct srv *v)
{
	enum mp__mgr_kind kind;
	mp_obj_t *r = oneshot(v, "number_of_objects", NULL, NULL, &kind);
	cr_assert_eq(kind, MP__MGR_RETURN);
	int64_t n;
	expect_ok(mp_int_value(r, &n));
	mp_obj_unref(r);
	return n;
}

static mp_conn_t *
channel(struct srv *v)
{
	mp_conn_t *c = dial(v);
	enum mp__mgr_kind kind;
	mp_obj_t *r = rpc(c, NULL, "accept_connection",
	    mp_tuple_of(1, mp_str("MainProcess")), NULL, &kind);
	cr_assert_eq(kind, MP__MGR_RETURN);
	mp_obj_unref(r);
	return c;
}

static size_t
unhex(const char *hex, uint8_t *out)
{
	size_t n = 0;
	for (; hex[0] != '\0' && hex[1] != '\0'; hex += 2) {
		unsigned b;
		cr_assert(sscanf(hex, "%2x", &b) == 1);
		out[n++] = (uint8_t)b;
	}
	return n;
}

static void
expect_frame(const mp_obj_t *msg, const char *hex)
{
	struct mp__buf b = { 0 };
	expect_ok(mp__mgr_encode(&b, msg));
	uint8_t want[512];
	size_t n = unhex(hex, want);
	cr_assert_eq(b.len, n, "frame of %zu bytes, want %zu", b.len, n);
	cr_assert(memcmp(b.data, want, n) == 0, "frame differs from %s", hex);
	mp__buf_fini(&b);
}

/* ---- protocol ------------------------------------------------------------ */

/* The CPython frames of the research notes (§5.7), byte for byte. */
Test(manager_server, protocol_frames_match_cpython)
{
	mp_obj_t *m = mp__mgr_request(NULL, "dummy", NULL, NULL);
	expect_frame(m, "0000001b8004951000000000000000284e8c0564756d6d79"
	    "94297d9474942e");
	mp_obj_unref(m);
	m = mp__mgr_reply(MP__MGR_RETURN, mp_none());
	expect_frame(m, "000000198004950e000000000000008c072352455455524e944e"
	    "86942e");
	mp_obj_unref(m);
	m = mp__mgr_reply(MP__MGR_ERROR, mp__mgr_exc(MP__EXC_KEY,
	    mp_tuple_of(1, mp_str("zz"))));
	expect_frame(m, "000000388004952d000000000000008c06234552524f52948c08"
	    "6275696c74696e73948c084b65794572726f729493948c027a7a94859452"
	    "9486942e");
	mp_obj_unref(m);
	m = mp__mgr_reply(MP__MGR_ERROR, mp__mgr_exc(MP__EXC_EMPTY, NULL));
	expect_frame(m, "0000002d80049522000000000000008c06234552524f52948c06"
	    "5f7175657565948c05456d70747994939429529486942e");
	mp_obj_unref(m);
	m = mp__mgr_reply(MP__MGR_PROXY, mp_tuple_of(2, mp_tuple_of(4,
	    mp_str("__next__"), mp_str("send"), mp_str("throw"),
	    mp_str("close")), mp__mgr_token("Iterator",
	    mp__mgr_address("127.0.0.1:50000"), "7f0a1b2c3d40")));
	expect_frame(m,
	    "0000009480049589000000000000008c062350524f585994288c085f"
	    "5f6e6578745f5f948c0473656e64948c057468726f77948c05636c6f"
	    "73659474948c186d756c746970726f63657373696e672e6d616e6167"
	    "657273948c05546f6b656e9493942981948c084974657261746f7294"
	    "8c093132372e302e302e31944d50c386948c0c376630613162326333"
	    "64343094879462869486942e");
	mp_obj_unref(m);
}

Test(manager_server, protocol_parses_and_refuses)
{
	uint8_t buf[512];
	size_t n;
	mp_obj_t *tok = mp__mgr_token("Queue", mp__mgr_address("/tmp/x.sock"),
	    "abc");
	const char *typeid;
	const char *id;
	mp_obj_t *addr;
	expect_ok(mp__mgr_token_parse(tok, &typeid, &addr, &id));
	cr_assert_str_eq(typeid, "Queue");
	cr_assert_str_eq(id, "abc");
	expect_repr(addr, "'/tmp/x.sock'");
	void *data;
	size_t len;
	expect_ok(mp_pickle_dumps(tok, &data, &len));
	mp_obj_t *back;
	expect_ok(mp__mgr_decode(data, len, 0, &back, NULL, 0));
	expect_ok(mp__mgr_token_parse(back, &typeid, &addr, &id));
	mp_free(data);
	mp_obj_unref(back);
	mp_obj_unref(tok);
	/* posix.system is not in the whitelist. */
	n = unhex("80048c05706f7369788c0673797374656d938c026964855294"
	    "2e", buf);
	mp_obj_t *o = NULL;
	expect_err(mp__mgr_decode(buf, n, 0, &o, NULL, 0), MP_EFORBIDDEN);
	/* A request is a 4-tuple with a str method. */
	struct mp__mgr_req r;
	mp_obj_t *bad = mp_tuple_of(2, mp_none(), mp_str("x"));
	expect_err(mp__mgr_request_parse(bad, &r), -EPROTO);
	mp_obj_unref(bad);
	mp_obj_t *req = mp__mgr_request("7f", "put", mp_tuple_of(1,
	    mp_int(1)), NULL);
	expect_ok(mp__mgr_request_parse(req, &r));
	cr_assert_eq(r.ident_len, 2);
	cr_assert_eq(r.method_len, 3);
	mp_obj_unref(req);
	mp_obj_t *e = mp__mgr_exc_msg(MP__EXC_FULL, "x");
	cr_assert_eq(mp__mgr_exc_which(e), MP__EXC_FULL);
	mp_obj_unref(e);
}

/* ---- server functions ---------------------------------------------------- */

Test(manager_server, server_functions)
{
	struct srv v;
	srv_start(&v, "127.0.0.1:0", NULL);
	enum mp__mgr_kind kind;
	mp_obj_t *r = oneshot(&v, "dummy", NULL, NULL, &kind);
	cr_assert_eq(kind, MP__MGR_RETURN);
	mp_obj_unref(r);
	cr_assert_eq(number_of_objects(&v), 0);
	char id[32];
	create(&v, mp_tuple_of(2, mp_str("list"), mp_list_of(2, mp_int(1),
	    mp_int(2))), id, sizeof(id));
	cr_assert_eq(number_of_objects(&v), 1);
	/* get_methods(token): the exposed names once each. */
	r = oneshot(&v, "get_methods", mp_tuple_of(1, mp__mgr_token("list",
	    mp__mgr_address("127.0.0.1:1"), id)), NULL, &kind);
	cr_assert_eq(kind, MP__MGR_RETURN);
	cr_assert_eq(mp_obj_len(r), 19);
	mp_obj_unref(r);
	r = oneshot(&v, "incref", mp_tuple_of(1, mp_str(id)), NULL, &kind);
	cr_assert_eq(kind, MP__MGR_RETURN);
	mp_obj_unref(r);
	r = oneshot(&v, "debug_info", NULL, NULL, &kind);
	cr_assert_eq(kind, MP__MGR_RETURN);
	cr_assert(strstr(mp_str_data(r, NULL), "refcount=2") != NULL);
	cr_assert(strstr(mp_str_data(r, NULL), "[1, 2]") != NULL);
	mp_obj_unref(r);
	for (int i = 0; i < 2; i++) {
		r = oneshot(&v, "decref", mp_tuple_of(1, mp_str(id)), NULL,
		    &kind);
		cr_assert_eq(kind, MP__MGR_RETURN);
		mp_obj_unref(r);
	}
	cr_assert_eq(number_of_objects(&v), 0);
	/* Gone: decref and incref of it fail as CPython's KeyError. */
	r = oneshot(&v, "decref", mp_tuple_of(1, mp_str(id)), NULL, &kind);
	cr_assert_eq(kind, MP__MGR_TRACEBACK);
	mp_obj_unref(r);
	r = oneshot(&v, "frobnicate", NULL, NULL, &kind);
	cr_assert_eq(kind, MP__MGR_TRACEBACK);
	cr_assert(strstr(mp_str_data(r, NULL), "'frobnicate' unrecognized"));
	mp_obj_unref(r);
	r = oneshot(&v, "create", mp_tuple_of(1, mp_str("NoSuchType")), NULL,
	    &kind);
	cr_assert_eq(kind, MP__MGR_TRACEBACK);
	mp_obj_unref(r);
	/* A one-shot connection gets one reply and is closed. */
	mp_conn_t *c = dial(&v);
	r = rpc(c, NULL, "dummy", NULL, NULL, &kind);
	mp_obj_unref(r);
	void *buf;
	size_t len;
	expect_err(mp_conn_recv_bytes(c, 100, WAIT_MS, &buf, &len), MP_EOF);
	mp_conn_close(c);
	srv_stop(&v);
}

Test(manager_server, method_calls_exposed_and_fallbacks)
{
	struct srv v;
	srv_start(&v, "127.0.0.1:0", NULL);
	char id[32];
	create(&v, mp_tuple_of(1, mp_str("dict")), id, sizeof(id));
	mp_conn_t *c = channel(&v);
	enum mp__mgr_kind kind;
	mp_obj_t *r = rpc(c, id, "__setitem__", mp_tuple_of(2, mp_str("k"),
	    mp_int(1)), NULL, &kind);
	cr_assert_eq(kind, MP__MGR_RETURN);
	mp_obj_unref(r);
	r = rpc(c, id, "__getitem__", mp_tuple_of(1, mp_str("zz")), NULL,
	    &kind);
	cr_assert_eq(kind, MP__MGR_ERROR);
	cr_assert_eq(mp__mgr_exc_which(r), MP__EXC_KEY);
	mp_obj_unref(r);
	r = rpc(c, id, "#GETVALUE", NULL, NULL, &kind);
	expect_repr(r, "{'k': 1}");
	mp_obj_unref(r);
	r = rpc(c, id, "__str__", NULL, NULL, &kind);
	cr_assert_str_eq(mp_str_data(r, NULL), "{'k': 1}");
	mp_obj_unref(r);
	/* Not exposed, not a fallback: a traceback, the channel lives on. */
	r = rpc(c, id, "__class__", NULL, NULL, &kind);
	cr_assert_eq(kind, MP__MGR_TRACEBACK);
	mp_obj_unref(r);
	r = rpc(c, NULL, "incref", mp_tuple_of(1, mp_str(id)), NULL, &kind);
	cr_assert_eq(kind, MP__MGR_TRACEBACK, "server functions are not "
	    "served on a channel");
	mp_obj_unref(r);
	r = rpc(c, "123", "keys", NULL, NULL, &kind);
	cr_assert_eq(kind, MP__MGR_TRACEBACK);
	mp_obj_unref(r);
	/* __iter__ gives a new object: '#PROXY' with an Iterator Token. */
	r = rpc(c, id, "__iter__", NULL, NULL, &kind);
	cr_assert_eq(kind, MP__MGR_PROXY);
	const char *typeid;
	const char *itid;
	mp_obj_t *addr;
	expect_ok(mp__mgr_token_parse(mp_tuple_get(r, 1), &typeid, &addr,
	    &itid));
	cr_assert_str_eq(typeid, "Iterator");
	char it[32];
	snprintf(it, sizeof(it), "%s", itid);
	mp_obj_unref(r);
	r = rpc(c, it, "__next__", NULL, NULL, &kind);
	cr_assert_eq(kind, MP__MGR_RETURN);
	expect_repr(r, "'k'");
	mp_obj_unref(r);
	r = rpc(c, it, "__next__", NULL, NULL, &kind);
	cr_assert_eq(mp__mgr_exc_which(r), MP__EXC_STOP);
	mp_obj_unref(r);
	cr_assert_eq(number_of_objects(&v), 2);
	mp_conn_close(c);
	srv_stop(&v);
}

/*
 * A list repeat makes no more items than max_message: l *= 53 a few times
 * over had a fuzzed server build 20 million items and pickle them in the
 * reply (found by tests/fuzz/fuzz_dispatch; corpus dispatch/list-repeat).
 */
Test(manager_server, list_repeat_is_bounded_by_max_message)
{
	struct srv v;
	struct mp_manager_server_opts opts = { .max_message = 1 << 16 };
	srv_start(&v, "127.0.0.1:0", &opts);
	char id[32];
	create(&v, mp_tuple_of(2, mp_str("list"), mp_list_of(2, mp_int(1),
	    mp_int(2))), id, sizeof(id));
	mp_conn_t *c = channel(&v);
	static const struct {
		const char *method;
		int64_t times;
		bool ok;    /* else OverflowError */
		size_t len;
	} calls[] = {
		{ "__imul__", 32768, true, 65536 },     /* the limit itself */
		{ "__mul__", 2, false, 0 },
		{ "__imul__", 2, false, 0 },
		{ "__rmul__", 1, true, 65536 },
		{ "__mul__", 0, true, 0 },
	};
	for (size_t i = 0; i < MP__ARRAY_LEN(calls); i++) {
		enum mp__mgr_kind kind;
		mp_obj_t *r = rpc(c, id, calls[i].method, mp_tuple_of(1,
		    mp_int(calls[i].times)), NULL, &kind);
		if (calls[i].ok) {
			cr_assert_eq(kind, MP__MGR_RETURN, "call %zu", i);
			cr_assert_eq(mp_obj_len(r), calls[i].len, "call %zu", i);
		} else {
			cr_assert_eq(kind, MP__MGR_ERROR, "call %zu", i);
			cr_assert_eq(mp__mgr_exc_which(r), MP__EXC_OVERFLOW);
		}
		mp_obj_unref(r);
	}
	/* The refused *= left the list as it was. */
	enum mp__mgr_kind kind;
	mp_obj_t *r = rpc(c, id, "__len__", NULL, NULL, &kind);
	int64_t n = 0;
	expect_ok(mp_int_value(r, &n));
	cr_assert_eq(n, 65536);
	mp_obj_unref(r);
	mp_conn_close(c);
	srv_stop(&v);
}

/* ---- waiting calls ------------------------------------------------------- */

/* A get on an empty queue waits without holding up anybody else. */
Test(manager_server, blocking_get_parks_only_its_caller)
{
	struct srv v;
	srv_start(&v, "127.0.0.1:0", NULL);
	char q[32];
	create(&v, mp_tuple_of(1, mp_str("Queue")), q, sizeof(q));
	mp_conn_t *a = channel(&v);
	mp_conn_t *b = channel(&v);
	mp_test_mgr_send(a, q, "get", NULL, NULL);
	enum mp__mgr_kind kind;
	/* b is served while a waits. */
	mp_obj_t *r = rpc(b, q, "qsize", NULL, NULL, &kind);
	expect_repr(r, "0");
	mp_obj_unref(r);
	r = rpc(b, q, "put", mp_tuple_of(1, mp_str("late")), NULL, &kind);
	cr_assert_eq(kind, MP__MGR_RETURN);
	mp_obj_unref(r);
	r = mp_test_mgr_recv(a, &kind);
	cr_assert_eq(kind, MP__MGR_RETURN);
	expect_repr(r, "'late'");
	mp_obj_unref(r);
	/* With a timeout the wait ends in queue.Empty. */
	mp_obj_t *kw = mp_dict_new();
	mp_dict_set(kw, mp_str("timeout"), mp_float(0.01));
	r = rpc(a, q, "get", NULL, kw, &kind);
	cr_assert_eq(kind, MP__MGR_ERROR);
	cr_assert_eq(mp__mgr_exc_which(r), MP__EXC_EMPTY);
	mp_obj_unref(r);
	mp_conn_close(a);
	mp_conn_close(b);
	srv_stop(&v);
}

/* A client that leaves while its call waits costs nothing afterwards. */
Test(manager_server, waiter_that_leaves_is_dropped)
{
	struct srv v;
	srv_start(&v, "127.0.0.1:0", NULL);
	char k[32];
	create(&v, mp_tuple_of(1, mp_str("Lock")), k, sizeof(k));
	mp_conn_t *a = channel(&v);
	enum mp__mgr_kind kind;
	mp_obj_t *r = rpc(a, k, "acquire", NULL, NULL, &kind);
	cr_assert(mp_bool_value(r));
	mp_obj_unref(r);
	mp_conn_t *b = channel(&v);
	mp_test_mgr_send(b, k, "acquire", NULL, NULL); /* waits */
	mp_conn_close(b);
	mp_conn_t *c = channel(&v);
	mp_test_mgr_send(c, k, "acquire", NULL, NULL); /* waits */
	r = rpc(a, k, "release", NULL, NULL, &kind);
	cr_assert_eq(kind, MP__MGR_RETURN);
	mp_obj_unref(r);
	r = mp_test_mgr_recv(c, &kind); /* c, not the departed b, gets the lock */
	cr_assert(mp_bool_value(r));
	mp_obj_unref(r);
	mp_conn_close(a);
	mp_conn_close(c);
	srv_stop(&v);
}

/* ---- registration -------------------------------------------------------- */

static int
counter_create(const mp_obj_t *args, const mp_obj_t *kwds, void **obj,
    mp_obj_t **error)
{
	(void)kwds;
	(void)error;
	int64_t *n = mp_malloc(sizeof(*n));
	*n = 0;
	if (mp_obj_len(args) > 0) {
		mp_int_value(mp_tuple_get(args, 0), n);
	}
	*obj = n;
	return 0;
}

static int
counter_incr(void *obj, const mp_obj_t *args, const mp_obj_t *kwds,
    mp_obj_t **result)
{
	(void)args;
	(void)kwds;
	int64_t *n = obj;
	*result = mp_int(++*n);
	return 0;
}

static int
counter_fail(void *obj, const mp_obj_t *args, const mp_obj_t *kwds,
    mp_obj_t **result)
{
	(void)obj;
	(void)args;
	(void)kwds;
	*result = mp_instance_new("builtins", "ValueError",
	    mp_tuple_of(1, mp_str("no")), NULL, false);
	return MP_EREMOTEERR;
}

static const struct mp_manager_method counter_methods[] = {
	{ "incr", counter_incr, NULL },
	{ "fail", counter_fail, NULL },
};

static const struct mp_manager_type counter_type = {
	.name = "Counter",
	.methods = counter_methods,
	.n_methods = 2,
	.create = counter_create,
	.free = mp_free,
};

Test(manager_server, registered_types_and_shared_names)
{
	struct srv v;
	expect_ok(mp_manager_server_open("127.0.0.1:0", KEY, strlen(KEY), NULL,
	    &v.s));
	expect_ok(mp_manager_server_register(v.s, "Counter", &counter_type));
	expect_err(mp_manager_server_register(v.s, "Counter", &counter_type),
	    -EEXIST);
	expect_ok(mp_manager_server_register_shared(v.s, "get_queue", "Queue",
	    NULL));
	expect_err(mp_manager_server_register_shared(v.s, "x", "Nope", NULL),
	    -ENOENT);
	cr_assert_eq(pthread_create(&v.thread, NULL, serve_thread, &v), 0);
	char id[32];
	create(&v, mp_tuple_of(2, mp_str("Counter"), mp_int(41)), id,
	    sizeof(id));
	mp_conn_t *c = channel(&v);
	enum mp__mgr_kind kind;
	mp_obj_t *r = rpc(c, id, "incr", NULL, NULL, &kind);
	expect_repr(r, "42");
	mp_obj_unref(r);
	r = rpc(c, id, "fail", NULL, NULL, &kind);
	cr_assert_eq(kind, MP__MGR_ERROR);
	cr_assert_eq(mp__mgr_exc_which(r), MP__EXC_VALUE);
	mp_obj_unref(r);
	r = rpc(c, id, "__repr__", NULL, NULL, &kind);
	cr_assert(strncmp(mp_str_data(r, NULL), "<Counter object", 15) == 0);
	mp_obj_unref(r);
	/* Every create of a shared name is the same object. */
	char q1[32];
	char q2[32];
	create(&v, mp_tuple_of(1, mp_str("get_queue")), q1, sizeof(q1));
	create(&v, mp_tuple_of(1, mp_str("get_queue")), q2, sizeof(q2));
	cr_assert_str_eq(q1, q2);
	cr_assert_eq(number_of_objects(&v), 2);
	mp_conn_close(c);
	srv_stop(&v);
}

/* ---- reference policy ---------------------------------------------------- */

/* A client process that dies without its decrefs: its references go. */
Test(manager_server, vanished_client_references_are_released)
{
	char path[64];
	snprintf(path, sizeof(path), "/tmp/mp-mgr-test-%d.sock", (int)getpid());
	struct mp_manager_server_opts opts = { .orphan_grace_ms = 1 };
	struct srv v;
	srv_start(&v, path, &opts);
	int ready[2];
	cr_assert_eq(pipe(ready), 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		close(ready[0]);
		mp_conn_t *c;
		if (mp_client_connect(path, KEY, strlen(KEY), WAIT_MS,
		    &c) != 0) {
			_exit(1);
		}
		mp_obj_t *req = mp__mgr_request(NULL, "create",
		    mp_tuple_of(1, mp_str("list")), NULL);
		void *buf;
		size_t len;
		int rv = mp_conn_send(c, req);
		if (rv == 0) {
			rv = mp_conn_recv_bytes(c, 1 << 20, WAIT_MS, &buf,
			    &len);
		}
		(void)!write(ready[1], "x", 1);
		/* Memory freed for valgrind's leak check; no decref sent. */
		mp_obj_unref(req);
		if (rv == 0) {
			mp_free(buf);
		}
		mp_conn_close(c);
		_exit(rv == 0 ? 0 : 1);
	}
	close(ready[1]);
	char x;
	cr_assert_eq(read(ready[0], &x, 1), 1);
	close(ready[0]);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* The release happens once the server has seen the child's last
	 * connection close and the grace passed; ask until it has. */
	while (number_of_objects(&v) != 0) {
		sched_yield();
	}
	srv_stop(&v);
}

/* ---- defences ------------------------------------------------------------ */

static int
raw_connect(struct srv *v)
{
	const char *a = mp_manager_server_address(v->s);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	sin.sin_port = htons((uint16_t)atoi(strrchr(a, ':') + 1));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(fd >= 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/* Read until EOF (the server closed); fails after WAIT_MS. */
static void
expect_closed(int fd)
{
	char buf[4096];
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		cr_assert_eq(poll(&p, 1, WAIT_MS), 1, "the server kept the "
		    "connection open");
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0) {
			return;
		}
	}
}

/* A connection that completes the handshake by hand over fd. */
static mp_conn_t *
authed_raw(struct srv *v)
{
	mp_conn_t *c = dial(v);
	return c;
}

Test(manager_server, bad_peers_do_not_disturb_good_ones)
{
	struct mp_manager_server_opts opts = {
		.handshake_timeout_ms = 200, .max_message = 1 << 16,
	};
	struct srv v;
	srv_start(&v, "127.0.0.1:0", &opts);
	char q[32];
	create(&v, mp_tuple_of(1, mp_str("Queue")), q, sizeof(q));
	mp_conn_t *good = channel(&v);
	/* Silent: never answers the challenge, closed after the timeout. */
	int silent = raw_connect(&v);
	/* Half a frame sent during the handshake, then silence. */
	int half = raw_connect(&v);
	cr_assert_eq(write(half, "\x00\x00\x00\x10" "abc", 7), 7);
	/* Wrong key: FAILURE, closed. */
	mp_conn_t *bad;
	expect_err(mp_client_connect(mp_manager_server_address(v.s), "nope",
	    4, WAIT_MS, &bad), MP_EAUTH);
	/* Garbage after the handshake: closed with a logged reason. */
	mp_conn_t *garbage = authed_raw(&v);
	expect_ok(mp_conn_send_bytes(garbage, "\x80\x04garbage", 9));
	/* An oversized frame after the handshake: closed. */
	mp_conn_t *big = authed_raw(&v);
	uint8_t hdr[4] = { 0x7f, 0xff, 0xff, 0xff };
	cr_assert_eq(write(mp_conn_fileno(big), hdr, 4), 4);
	/* Half a request after the handshake stays pending, harmless. */
	mp_conn_t *part = channel(&v);
	cr_assert_eq(write(mp_conn_fileno(part), "\x00\x00\x01\x00\x80", 5),
	    5);
	enum mp__mgr_kind kind;
	for (int i = 0; i < 3; i++) {
		mp_obj_t *r = rpc(good, q, "put", mp_tuple_of(1, mp_int(i)),
		    NULL, &kind);
		cr_assert_eq(kind, MP__MGR_RETURN);
		mp_obj_unref(r);
	}
	mp_obj_t *r = rpc(good, q, "qsize", NULL, NULL, &kind);
	expect_repr(r, "3");
	mp_obj_unref(r);
	expect_closed(silent);
	expect_closed(half);
	expect_closed(mp_conn_fileno(big));
	/* The garbage got a traceback before the close. */
	r = mp_test_mgr_recv(garbage, &kind);
	cr_assert_eq(kind, MP__MGR_TRACEBACK);
	mp_obj_unref(r);
	expect_closed(mp_conn_fileno(garbage));
	close(silent);
	close(half);
	mp_conn_close(big);
	mp_conn_close(garbage);
	mp_conn_close(part);
	mp_conn_close(good);
	srv_stop(&v);
}

/* A forked child that closes its copy leaves the owner's server alone. */
Test(manager_server, close_in_child_leaves_the_server_alone)
{
	char path[64];
	snprintf(path, sizeof(path), "/tmp/mp-mgr-fork-%d.sock", (int)getpid());
	struct srv v;
	srv_start(&v, path, NULL);
	char q[32];
	create(&v, mp_tuple_of(1, mp_str("Queue")), q, sizeof(q));
	mp_conn_t *a = channel(&v);
	mp_test_mgr_send(a, q, "get", NULL, NULL); /* parked in the server */
	mp_conn_t *b = channel(&v); /* served: the get is parked by now */
	/* Fork with no thread inside serve (the contract), then serve on. */
	mp_manager_server_shutdown(v.s);
	cr_assert_eq(pthread_join(v.thread, NULL), 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		mp_manager_server_close(v.s);
		_exit(0);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cr_assert_eq(access(path, F_OK), 0, "the child unlinked the socket");
	cr_assert_eq(pthread_create(&v.thread, NULL, serve_thread, &v), 0);
	enum mp__mgr_kind kind;
	mp_obj_t *r = rpc(b, q, "put", mp_tuple_of(1, mp_int(5)), NULL, &kind);
	cr_assert_eq(kind, MP__MGR_RETURN);
	mp_obj_unref(r);
	r = mp_test_mgr_recv(a, &kind);
	expect_repr(r, "5");
	mp_obj_unref(r);
	mp_conn_close(a);
	mp_conn_close(b);
	srv_stop(&v);
	cr_assert_eq(access(path, F_OK), -1, "the socket was not unlinked");
}

Test(manager_server, ipv6_loopback)
{
	mp_manager_server_t *s;
	int rv = mp_manager_server_open("[::1]:0", KEY, strlen(KEY), NULL, &s);
	if (rv == -EADDRNOTAVAIL || rv == -EAFNOSUPPORT) {
		cr_skip_test("no IPv6 loopback here");
	}
	expect_ok(rv);
	struct srv v = { .s = s };
	cr_assert(strncmp(mp_manager_server_address(s), "[::1]:", 6) == 0);
	cr_assert_eq(pthread_create(&v.thread, NULL, serve_thread, &v), 0);
	enum mp__mgr_kind kind;
	mp_obj_t *r = oneshot(&v, "dummy", NULL, NULL, &kind);
	cr_assert_eq(kind, MP__MGR_RETURN);
	mp_obj_unref(r);
	srv_stop(&v);
}

/* Random frames after the handshake: each gets a reply or a close. */
Test(manager_server, random_requests_never_break_the_server)
{
	struct srv v;
	srv_start(&v, "127.0.0.1:0", NULL);
	uint64_t x = 0x9E3779B97F4A7C15ull;
	for (int i = 0; i < 300; i++) {
		mp_conn_t *c = i % 2 == 0 ? channel(&v) : dial(&v);
		uint8_t buf[300];
		size_t n = 1 + (size_t)(i * 7919 % 299);
		for (size_t k = 0; k < n; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[k] = (uint8_t)x;
		}
		if (i % 3 == 0 && n > 2) {
			buf[0] = 0x80; /* PROTO 4: reach past the first byte */
			buf[1] = 4;
		}
		expect_ok(mp_conn_send_bytes(c, buf, n));
		void *reply;
		size_t len;
		int rv = mp_conn_recv_bytes(c, 1 << 20, WAIT_MS, &reply, &len);
		cr_assert(rv == 0 || rv == MP_EOF, "got %s", mp_err_name(rv));
		if (rv == 0) {
			mp_free(reply);
		}
		mp_conn_close(c);
	}
	enum mp__mgr_kind kind;
	mp_obj_t *r = oneshot(&v, "dummy", NULL, NULL, &kind);
	cr_assert_eq(kind, MP__MGR_RETURN);
	mp_obj_unref(r);
	srv_stop(&v);
}

/*
 * Every allocation of the server failing in turn, in a child process so
 * that only the server's allocations count: requests get a reply or the
 * connection closes, and the server never crashes.
 */
Test(manager_server, allocation_failures_in_the_server)
{
	char path[64];
	snprintf(path, sizeof(path), "/tmp/mp-mgr-alloc-%d.sock",
	    (int)getpid());
	for (unsigned long n = 1; n < 400; n += 1 + n / 16) {
		int ready[2];
		cr_assert_eq(pipe(ready), 0);
		pid_t pid = fork();
		cr_assert(pid >= 0);
		if (pid == 0) {
			close(ready[0]);
			mp_manager_server_t *s;
			if (mp_manager_server_open(path, KEY, strlen(KEY), NULL,
			    &s) != 0) {
				_exit(1);
			}
			(void)!write(ready[1], "x", 1);
			close(ready[1]);
			mp__alloc_fail_after(n);
			int rv = mp_manager_server_serve(s);
			mp__alloc_fail_after(0);
			mp_manager_server_close(s);
			_exit(rv == 0 ? 0 : 2);
		}
		close(ready[1]);
		char x;
		cr_assert_eq(read(ready[0], &x, 1), 1);
		close(ready[0]);
		/* A fixed script; any step may fail, none may hang. */
		mp_conn_t *c;
		int rv = mp_client_connect(path, KEY, strlen(KEY), WAIT_MS, &c);
		if (rv == 0) {
			mp_obj_t *req = mp__mgr_request(NULL, "create",
			    mp_tuple_of(2, mp_str("dict"), mp_dict_new()),
			    NULL);
			void *buf;
			size_t len;
			if (mp_conn_send(c, req) == 0 &&
			    mp_conn_recv_bytes(c, 1 << 20, WAIT_MS, &buf,
			    &len) == 0) {
				mp_free(buf);
			}
			mp_obj_unref(req);
			mp_conn_close(c);
		}
		rv = mp_client_connect(path, KEY, strlen(KEY), WAIT_MS, &c);
		if (rv == 0) {
			const char *steps[] = { "accept_connection",
				"__setitem__", "#GETVALUE", "__repr__",
				"keys" };
			for (size_t i = 0; i < 5; i++) {
				mp_obj_t *args = i == 0 ?
				    mp_tuple_of(1, mp_str("MainProcess")) :
				    i == 1 ? mp_tuple_of(2, mp_str("k"),
				    mp_list_of(1, mp_int(1))) : NULL;
				mp_obj_t *req = mp__mgr_request(i == 0 ? NULL :
				    "7f0000001000", steps[i], args, NULL);
				void *buf;
				size_t len;
				rv = mp_conn_send(c, req);
				mp_obj_unref(req);
				if (rv == 0) {
					rv = mp_conn_recv_bytes(c, 1 << 20,
					    WAIT_MS, &buf, &len);
				}
				if (rv != 0) {
					cr_assert(rv != -ETIMEDOUT, "the "
					    "server hung at step %zu (n=%lu)",
					    i, n);
					break;
				}
				mp_free(buf);
			}
			mp_conn_close(c);
		}
		kill(pid, SIGTERM);
		int st;
		cr_assert_eq(waitpid(pid, &st, 0), pid);
		cr_assert(WIFSIGNALED(st) ? WTERMSIG(st) == SIGTERM :
		    WEXITSTATUS(st) != 1, "n=%lu: server status %#x", n, st);
		unlink(path);
	}
}

Test(manager_server, shutdown_function_replies_then_stops)
{
	struct srv v;
	srv_start(&v, "127.0.0.1:0", NULL);
	enum mp__mgr_kind kind;
	mp_obj_t *r = oneshot(&v, "shutdown", NULL, NULL, &kind);
	cr_assert_eq(kind, MP__MGR_RETURN);
	mp_obj_unref(r);
	cr_assert_eq(pthread_join(v.thread, NULL), 0);
	expect_ok(v.rv);
	cr_assert_eq(mp_manager_server_number_of_objects(v.s), 0);
	mp_manager_server_close(v.s);
}
