/* SPDX-License-Identifier: MIT */
/* test_manager_server_alloc.c: every allocation of the manager server's dispatch failing in turn. */
#include "harness/harness.h"
#include "manager/protocol.h"

#include <mproc/manager_server.h>

#include <pthread.h>

MP_TEST_SUITE(manager_server_alloc);

#define KEY "secret"
#define WAIT_MS 20000

/*
 * The server runs in a thread of this process and only that thread's
 * allocations count and fail; this thread is the client. Each request
 * of the script below is sent with the server's 1st, 2nd ... allocation
 * failing. The server must then answer as usual, answer a traceback
 * naming the lack of memory (MemoryError), or close the connection; never
 * crash, hang, leak or change anything it did not report.
 */
struct rig {
	mp_manager_server_t *s;
	pthread_t thread;
	int rv;
	mp_conn_t *chan;        /* a method channel */
	char ids[16][20];       /* the objects the script uses */
	int64_t objects;        /* what number_of_objects must say */
};

static void *
serve_thread(void *arg)
{
	struct rig *r = arg;
	r->rv = mp_manager_server_serve(r->s);
	return NULL;
}

static mp_conn_t *
dial(struct rig *r)
{
	mp_conn_t *c = NULL;
	expect_ok(mp_client_connect(mp_manager_server_address(r->s), KEY,
	    strlen(KEY), WAIT_MS, &c));
	return c;
}

/*
 * Send a request and read its reply: 0 with *kind and *result (a new
 * reference), or the receive's error when the server closed.
 */
static int
rpc(mp_conn_t *c, const char *ident, const char *method, mp_obj_t *args,
    mp_obj_t *kwds, enum mp__mgr_kind *kind, mp_obj_t **result)
{
	mp_obj_t *req = mp__mgr_request(ident, method, args, kwds);
	cr_assert_not_null(req);
	int rv = mp_conn_send(c, req);
	mp_obj_unref(req);
	void *buf = NULL;
	size_t len;
	if (rv == 0) {
		rv = mp_conn_recv_bytes(c, 1 << 24, WAIT_MS, &buf, &len);
	}
	if (rv != 0) {
		cr_assert(rv == MP_EOF || rv == MP_ETRUNCATED ||
		    rv == -ECONNRESET || rv == -EPIPE, "%s: %s", method,
		    mp_err_name(rv));
		return rv;
	}
	mp_obj_t *msg = NULL;
	expect_ok(mp__mgr_decode(buf, len, 0, &msg, NULL, 0));
	mp_free(buf);
	mp_obj_t *res;
	expect_ok(mp__mgr_reply_parse(msg, kind, &res));
	*result = mp_obj_ref(res);
	mp_obj_unref(msg);
	return 0;
}

/* A server function on a connection of its own; must succeed. */
static mp_obj_t *
oneshot(struct rig *r, const char *fn, mp_obj_t *args)
{
	mp_conn_t *c = dial(r);
	enum mp__mgr_kind kind;
	mp_obj_t *res = NULL;
	expect_ok(rpc(c, NULL, fn, args, NULL, &kind, &res));
	cr_assert_eq(kind, MP__MGR_RETURN, "%s", fn);
	mp_conn_close(c);
	return res;
}

static int64_t
count_objects(struct rig *r)
{
	mp_obj_t *res = oneshot(r, "number_of_objects", NULL);
	int64_t n = -1;
	expect_ok(mp_int_value(res, &n));
	mp_obj_unref(res);
	return n;
}

static mp_conn_t *
channel(struct rig *r)
{
	mp_conn_t *c = dial(r);
	enum mp__mgr_kind kind;
	mp_obj_t *res = NULL;
	expect_ok(rpc(c, NULL, "accept_connection", mp_tuple_of(1,
	    mp_str("MainProcess")), NULL, &kind, &res));
	cr_assert_eq(kind, MP__MGR_RETURN);
	mp_obj_unref(res);
	return c;
}

/* Objects the script calls, created before any failure is armed. */
enum { L, D, Q, J, V, A, N, K, R, C, E, S, B, N_OBJS };

static const char *const typeids[N_OBJS] = {
	"list", "dict", "Queue", "JoinableQueue", "Value", "Array",
	"Namespace", "Lock", "RLock", "Condition", "Event", "Semaphore",
	"Barrier",
};

static mp_obj_t *
create_args(int which)
{
	mp_obj_t *t = mp_str(typeids[which]);
	switch (which) {
	case L:
		return mp_tuple_of(2, t, mp_list_of(3, mp_int(1), mp_str("two"),
		    mp_float(3.0)));
	case V:
		return mp_tuple_of(3, t, mp_str("i"), mp_int(7));
	case A:
		return mp_tuple_of(3, t, mp_str("d"), mp_list_of(3,
		    mp_float(1), mp_float(2), mp_float(3)));
	case B:
		return mp_tuple_of(2, t, mp_int(1));
	default:
		return mp_tuple_of(1, t);
	}
}

static void
rig_open(struct rig *r)
{
	mp_test_count_start();
	memset(r, 0, sizeof(*r));
	expect_ok(mp_manager_server_open("127.0.0.1:0", KEY, strlen(KEY),
	    NULL, &r->s));
	cr_assert_eq(pthread_create(&r->thread, NULL, serve_thread, r), 0);
	for (int i = 0; i < N_OBJS; i++) {
		mp_obj_t *res = oneshot(r, "create", create_args(i));
		snprintf(r->ids[i], sizeof(r->ids[i]), "%s",
		    mp_str_data(mp_tuple_get(res, 0), NULL));
		mp_obj_unref(res);
	}
	r->objects = N_OBJS;
	for (int i = 0; i < 100; i++) {
		mp_obj_unref(oneshot(r, "incref", mp_tuple_of(1,
		    mp_str(r->ids[D]))));
	}
	r->chan = channel(r);
	mp__alloc_fail_only(&r->thread);
}

static void
rig_close(struct rig *r)
{
	mp__alloc_fail_only(NULL);
	mp_conn_close(r->chan);
	mp_manager_server_shutdown(r->s);
	cr_assert_eq(pthread_join(r->thread, NULL), 0);
	expect_ok(r->rv);
	mp_manager_server_close(r->s);
	/* Every block of the server was released, failures included. */
	mp_test_count_end();
}

#define RET MP__MGR_RETURN
#define ERR MP__MGR_ERROR
#define TB MP__MGR_TRACEBACK
#define PROXY MP__MGR_PROXY

/* One request of the script. */
struct step {
	const char *what;
	int obj;                 /* index into ids, or -1: server function */
	const char *method;
	mp_obj_t *(*args)(struct rig *r);
	mp_obj_t *(*kwds)(void);
	enum mp__mgr_kind want;
	int64_t objects;         /* objects it adds when it succeeds */
	/* Unarmed, before and after each run: what the call needs (an
	 * item to get, a lock to release) and the state to return to. */
	void (*prep)(struct rig *r, int obj);
	void (*post)(struct rig *r, int obj);
};

/* A call on the channel that must get a reply of kind want or error. */
static enum mp__mgr_kind
plain(struct rig *r, int obj, const char *method, mp_obj_t *args)
{
	enum mp__mgr_kind kind;
	mp_obj_t *res = NULL;
	expect_ok(rpc(r->chan, r->ids[obj], method, args, NULL, &kind, &res));
	cr_assert(kind == RET || kind == ERR, "%s: %s", method,
	    mp__mgr_kind_name(kind));
	bool is_false = kind == RET && mp_obj_type(res) == MP_TYPE_BOOL &&
	    !mp_bool_value(res);
	mp_obj_unref(res);
	/* A false return (acquire(False) of a taken lock) counts as ERR. */
	return is_false ? ERR : kind;
}

static void
put_one(struct rig *r, int obj)
{
	cr_assert_eq(plain(r, obj, "put", mp_tuple_of(1, mp_str("x"))), RET);
}

static void
drain(struct rig *r, int obj)
{
	while (plain(r, obj, "get", mp_tuple_of(1, mp_bool(false))) == RET) {
	}
}

static void
put_and_get(struct rig *r, int obj)
{
	put_one(r, obj);
	cr_assert_eq(plain(r, obj, "get", NULL), RET);
}

static void
acquire(struct rig *r, int obj)
{
	(void)plain(r, obj, "acquire", mp_tuple_of(1, mp_bool(false)));
}

static void
release_all(struct rig *r, int obj)
{
	while (plain(r, obj, "release", NULL) == RET) {
	}
}

/* A semaphore back to 1: take what is there, give one. */
static void
sem_reset(struct rig *r, int obj)
{
	while (plain(r, obj, "acquire", mp_tuple_of(1, mp_bool(false))) ==
	    RET) {
	}
	cr_assert_eq(plain(r, obj, "release", NULL), RET);
}

static mp_obj_t *
a_none(struct rig *r)
{
	(void)r;
	return NULL;
}

static mp_obj_t *
a_item(struct rig *r)
{
	(void)r;
	return mp_tuple_of(1, mp_list_of(2, mp_str("item"), mp_bytes("b",
	    1)));
}

static mp_obj_t *
a_zero(struct rig *r)
{
	(void)r;
	return mp_tuple_of(1, mp_int(0));
}

static mp_obj_t *
a_slice(struct rig *r)
{
	(void)r;
	return mp_tuple_of(1, mp_instance_new("builtins", "slice",
	    mp_tuple_of(3, mp_int(0), mp_int(2), mp_none()), NULL, false));
}

static mp_obj_t *
a_set0(struct rig *r)
{
	(void)r;
	return mp_tuple_of(2, mp_int(0), mp_float(9.5));
}

static mp_obj_t *
a_key(struct rig *r)
{
	(void)r;
	return mp_tuple_of(1, mp_str("k"));
}

static mp_obj_t *
a_key_value(struct rig *r)
{
	(void)r;
	return mp_tuple_of(2, mp_str("k"), mp_list_of(1, mp_int(1)));
}

static mp_obj_t *
a_missing(struct rig *r)
{
	(void)r;
	return mp_tuple_of(1, mp_str("missing"));
}

static mp_obj_t *
a_parties(struct rig *r)
{
	(void)r;
	return mp_tuple_of(1, mp_str("parties"));
}

static mp_obj_t *
a_false(struct rig *r)
{
	(void)r;
	return mp_tuple_of(1, mp_bool(false));
}

static mp_obj_t *
a_zero_timeout(struct rig *r)
{
	(void)r;
	return mp_tuple_of(1, mp_float(0.0));
}

static mp_obj_t *
a_extend(struct rig *r)
{
	(void)r;
	return mp_tuple_of(1, mp_list_of(2, mp_int(5), mp_int(6)));
}

static mp_obj_t *
a_update(struct rig *r)
{
	(void)r;
	mp_obj_t *d = mp_dict_new();
	if (mp_dict_set(d, mp_str("u"), mp_int(2)) != 0) {
		mp_obj_unref(d);
		return NULL;
	}
	return mp_tuple_of(1, d);
}

static mp_obj_t *
a_token(struct rig *r)
{
	mp_obj_t *addr = NULL;
	const char *host = mp_manager_server_address(r->s);
	const char *colon = strrchr(host, ':');
	addr = mp_tuple_of(2, mp_str("127.0.0.1"), mp_int(atoi(colon + 1)));
	return mp_tuple_of(1, mp__mgr_token("list", addr, r->ids[L]));
}

static mp_obj_t *
a_ident(struct rig *r)
{
	return mp_tuple_of(1, mp_str(r->ids[D]));
}

static mp_obj_t *
a_create_dict(struct rig *r)
{
	(void)r;
	return mp_tuple_of(1, mp_str("dict"));
}

static mp_obj_t *
a_create_queue(struct rig *r)
{
	(void)r;
	return mp_tuple_of(2, mp_str("Queue"), mp_int(10));
}

static mp_obj_t *
a_create_barrier(struct rig *r)
{
	(void)r;
	return mp_tuple_of(2, mp_str("Barrier"), mp_int(3));
}

static mp_obj_t *
a_create_array(struct rig *r)
{
	(void)r;
	return mp_tuple_of(3, mp_str("Array"), mp_str("i"), mp_list_of(4,
	    mp_int(1), mp_int(2), mp_int(3), mp_int(4)));
}

/* array.array('i', 4): TypeError, reported as a traceback. */
static mp_obj_t *
a_create_bad_array(struct rig *r)
{
	(void)r;
	return mp_tuple_of(3, mp_str("Array"), mp_str("i"), mp_int(4));
}

static mp_obj_t *
a_create_list(struct rig *r)
{
	(void)r;
	return mp_tuple_of(2, mp_str("list"), mp_list_of(2, mp_str("a"),
	    mp_tuple_of(1, mp_none())));
}

static mp_obj_t *
k_timeout(void)
{
	mp_obj_t *d = mp_dict_new();
	if (mp_dict_set(d, mp_str("timeout"), mp_float(0.0)) != 0) {
		mp_obj_unref(d);
		return NULL;
	}
	return d;
}

static const struct step script[] = {
	{ .what = "server create dict", .obj = -1, .method = "create",
		.args = a_create_dict, .want = RET, .objects = 1 },
	{ .what = "server create Queue(10)", .obj = -1, .method = "create",
		.args = a_create_queue, .want = RET, .objects = 1 },
	{ .what = "server create Barrier(3)", .obj = -1, .method = "create",
		.args = a_create_barrier, .want = RET, .objects = 1 },
	{ .what = "server create Array('i', [1, 2, 3, 4])", .obj = -1,
		.method = "create", .args = a_create_array, .want = RET,
		.objects = 1 },
	{ .what = "server create Array('i', 4): TypeError", .obj = -1,
		.method = "create", .args = a_create_bad_array, .want = TB },
	{ .what = "server create list([...])", .obj = -1, .method = "create",
		.args = a_create_list, .want = RET, .objects = 1 },
	{ .what = "server incref", .obj = -1, .method = "incref",
		.args = a_ident, .want = RET },
	{ .what = "server decref", .obj = -1, .method = "decref",
		.args = a_ident, .want = RET },
	{ .what = "server number_of_objects", .obj = -1,
		.method = "number_of_objects", .args = a_none, .want = RET },
	{ .what = "server debug_info", .obj = -1, .method = "debug_info",
		.args = a_none, .want = RET },
	{ .what = "server get_methods", .obj = -1, .method = "get_methods",
		.args = a_token, .want = RET },
	{ .what = "server dummy", .obj = -1, .method = "dummy",
		.args = a_none, .want = RET },
	{ .what = "server unknown function", .obj = -1, .method = "nope",
		.args = a_none, .want = TB },
	{ .what = "list append", .obj = L, .method = "append", .args = a_item,
		.want = RET },
	{ .what = "list extend", .obj = L, .method = "extend",
		.args = a_extend, .want = RET },
	{ .what = "list getitem", .obj = L, .method = "__getitem__",
		.args = a_zero, .want = RET },
	{ .what = "list getitem slice", .obj = L, .method = "__getitem__",
		.args = a_slice, .want = RET },
	{ .what = "list setitem", .obj = L, .method = "__setitem__",
		.args = a_set0, .want = RET },
	{ .what = "list repr", .obj = L, .method = "__repr__", .args = a_none,
		.want = RET },
	{ .what = "list str", .obj = L, .method = "__str__", .args = a_none,
		.want = RET },
	{ .what = "list getvalue", .obj = L, .method = "#GETVALUE",
		.args = a_none, .want = RET },
	{ .what = "list index missing", .obj = L, .method = "index",
		.args = a_missing, .want = ERR },
	{ .what = "list mul", .obj = L, .method = "__mul__", .args = a_zero,
		.want = RET },
	{ .what = "dict setitem", .obj = D, .method = "__setitem__",
		.args = a_key_value, .want = RET },
	{ .what = "dict getitem", .obj = D, .method = "__getitem__",
		.args = a_key, .want = RET },
	{ .what = "dict getitem missing", .obj = D, .method = "__getitem__",
		.args = a_missing, .want = ERR },
	{ .what = "dict keys", .obj = D, .method = "keys", .args = a_none,
		.want = RET },
	{ .what = "dict items", .obj = D, .method = "items", .args = a_none,
		.want = RET },
	{ .what = "dict copy", .obj = D, .method = "copy", .args = a_none,
		.want = RET },
	{ .what = "dict update", .obj = D, .method = "update",
		.args = a_update, .want = RET },
	{ .what = "dict repr", .obj = D, .method = "__repr__", .args = a_none,
		.want = RET },
	{ .what = "dict iter (a proxy)", .obj = D, .method = "__iter__",
		.args = a_none, .want = PROXY, .objects = 1 },
	{ .what = "queue put", .obj = Q, .method = "put", .args = a_item,
		.want = RET, .post = drain },
	{ .what = "queue get", .obj = Q, .method = "get", .args = a_false,
		.want = RET, .prep = put_one, .post = drain },
	{ .what = "queue get_nowait empty", .obj = Q, .method = "get_nowait",
		.args = a_none, .want = ERR },
	{ .what = "queue qsize", .obj = Q, .method = "qsize", .args = a_none,
		.want = RET },
	{ .what = "joinable put", .obj = J, .method = "put", .args = a_item,
		.want = RET, .post = drain },
	{ .what = "joinable get", .obj = J, .method = "get", .args = a_false,
		.want = RET, .prep = put_one, .post = drain },
	{ .what = "joinable task_done", .obj = J, .method = "task_done",
		.args = a_none, .want = RET, .prep = put_and_get },
	{ .what = "value get", .obj = V, .method = "get", .args = a_none,
		.want = RET },
	{ .what = "value set", .obj = V, .method = "set", .args = a_zero,
		.want = RET },
	{ .what = "array getitem", .obj = A, .method = "__getitem__",
		.args = a_zero, .want = RET },
	{ .what = "array getitem slice", .obj = A, .method = "__getitem__",
		.args = a_slice, .want = RET },
	{ .what = "array setitem", .obj = A, .method = "__setitem__",
		.args = a_set0, .want = RET },
	{ .what = "array getvalue", .obj = A, .method = "#GETVALUE",
		.args = a_none, .want = RET },
	{ .what = "namespace setattr", .obj = N, .method = "__setattr__",
		.args = a_key_value, .want = RET },
	{ .what = "namespace getattr", .obj = N, .method = "__getattribute__",
		.args = a_key, .want = RET },
	{ .what = "namespace getattr missing", .obj = N,
		.method = "__getattribute__", .args = a_missing, .want = ERR },
	{ .what = "namespace repr", .obj = N, .method = "__repr__",
		.args = a_none, .want = RET },
	{ .what = "lock acquire", .obj = K, .method = "acquire",
		.args = a_false, .want = RET, .post = release_all },
	{ .what = "lock release", .obj = K, .method = "release",
		.args = a_none, .want = RET, .prep = acquire,
		.post = release_all },
	{ .what = "rlock acquire", .obj = R, .method = "acquire",
		.args = a_false, .want = RET, .post = release_all },
	{ .what = "rlock release", .obj = R, .method = "release",
		.args = a_none, .want = RET, .prep = acquire,
		.post = release_all },
	{ .what = "condition acquire", .obj = C, .method = "acquire",
		.args = a_false, .want = RET, .post = release_all },
	{ .what = "condition notify", .obj = C, .method = "notify",
		.args = a_none, .want = RET, .prep = acquire,
		.post = release_all },
	{ .what = "condition wait(0)", .obj = C, .method = "wait",
		.args = a_zero_timeout, .want = RET, .prep = acquire,
		.post = release_all },
	{ .what = "condition release", .obj = C, .method = "release",
		.args = a_none, .want = RET, .prep = acquire,
		.post = release_all },
	{ .what = "event set", .obj = E, .method = "set", .args = a_none,
		.want = RET },
	{ .what = "event wait", .obj = E, .method = "wait", .args = a_none,
		.kwds = k_timeout, .want = RET },
	{ .what = "event is_set", .obj = E, .method = "is_set",
		.args = a_none, .want = RET },
	{ .what = "semaphore acquire", .obj = S, .method = "acquire",
		.args = a_false, .want = RET, .post = sem_reset },
	{ .what = "semaphore release", .obj = S, .method = "release",
		.args = a_none, .want = RET, .post = sem_reset },
	{ .what = "barrier(1) wait", .obj = B, .method = "wait",
		.args = a_none, .want = RET },
	{ .what = "barrier getattr parties", .obj = B,
		.method = "__getattribute__", .args = a_parties, .want = RET },
	{ .what = "unknown method", .obj = L, .method = "no_such_method",
		.args = a_none, .want = TB },
	{ .what = "unknown ident", .obj = -2, .method = "append",
		.args = a_item, .want = TB },
};

/* A traceback that reports the lack of memory. */
static bool
out_of_memory(enum mp__mgr_kind kind, const mp_obj_t *res)
{
	const char *text = mp_str_data(res, NULL);
	return kind == MP__MGR_TRACEBACK && text != NULL &&
	    (strstr(text, "MemoryError: out of memory") != NULL ||
	    strstr(text, "request refused: out of memory") != NULL);
}

/* The reply of a run, for a failure message (static buffer). */
static const char *
shown(int rv, enum mp__mgr_kind kind, const mp_obj_t *res)
{
	static char text[600];
	char *r = NULL;
	if (rv != 0) {
		snprintf(text, sizeof(text), "connection: %s", mp_err_name(rv));
		return text;
	}
	(void)mp_obj_repr(res, &r);
	snprintf(text, sizeof(text), "%s %.500s", mp__mgr_kind_name(kind),
	    r != NULL ? r : "?");
	mp_free(r);
	return text;
}

/*
 * Undo what a step that may have taken effect did, so the next run
 * starts from the same state: release locks taken, drop the references
 * creates and proxies returned. Unarmed.
 */
static void
undo(struct rig *r, const struct step *st, enum mp__mgr_kind kind,
    mp_obj_t *res)
{
	if (res == NULL || (kind != RET && kind != PROXY)) {
		return;
	}
	bool inc = strcmp(st->method, "incref") == 0;
	if (inc || strcmp(st->method, "decref") == 0) {
		/* A decref whose reply is lost stays done: the rig holds
		 * enough references on D for that. */
		mp_obj_unref(oneshot(r, inc ? "decref" : "incref",
		    mp_tuple_of(1, mp_str(r->ids[D]))));
		return;
	}
	if (st->objects == 0) {
		return;
	}
	const char *id = NULL;
	mp_obj_t *token = kind == PROXY ? mp_tuple_get(res, 1) : NULL;
	if (token != NULL) {
		const char *typeid;
		mp_obj_t *addr;
		expect_ok(mp__mgr_token_parse(token, &typeid, &addr, &id));
	} else {
		id = mp_str_data(mp_tuple_get(res, 0), NULL);
	}
	cr_assert_not_null(id);
	mp_obj_unref(oneshot(r, "decref", mp_tuple_of(1, mp_str(id))));
}

static void
run_step(struct rig *r, const struct step *st)
{
	unsigned closed = 0, tracebacks = 0;
	struct mp_test_sweep s;
	for (mp_test_sweep_start(&s, st->what); mp_test_sweep_next(&s);) {
		mp_conn_t *c = st->obj == -1 ? dial(r) : r->chan;
		const char *ident = st->obj >= 0 ? r->ids[st->obj] :
		    st->obj == -2 ? "ffffffff" : NULL;
		mp_obj_t *args = st->args(r);
		mp_obj_t *kwds = st->kwds != NULL ? st->kwds() : NULL;
		enum mp__mgr_kind kind = RET;
		mp_obj_t *res = NULL;
		if (st->prep != NULL) {
			st->prep(r, st->obj);
		}
		mp_test_sweep_arm(&s);
		int rv = rpc(c, ident, st->method, args, kwds, &kind, &res);
		/* What the client saw: the answer, or a clean failure. */
		int seen = rv != 0 || out_of_memory(kind, res) ? -ENOMEM :
		    kind == st->want ? 0 : -EPROTO;
		if (seen == -EPROTO) {
			cr_log_error("%s, allocation %lu: %s", st->what, s.n,
			    shown(rv, kind, res));
		}
		mp_test_sweep_done(&s, seen, 0, 0);
		closed += rv != 0;
		tracebacks += rv == 0 && seen == -ENOMEM;
		undo(r, st, kind, res);
		mp_obj_unref(res);
		if (st->obj == -1) {
			mp_conn_close(c);
		} else if (rv != 0) {
			mp_conn_close(r->chan);
			r->chan = channel(r);
		}
		if (st->post != NULL) {
			st->post(r, st->obj);
		}
		/* Nothing was created or kept that was not reported. */
		cr_assert_eq(count_objects(r), r->objects, "%s, allocation "
		    "%lu: %lld objects, want %lld", st->what, s.n,
		    (long long)count_objects(r), (long long)r->objects);
	}
	fprintf(stderr, "  %s: %u tracebacks, %u closed connections\n",
	    st->what, tracebacks, closed);
}

Test(manager_server_alloc, every_request_of_the_script)
{
	struct rig r;
	rig_open(&r);
	for (size_t i = 0; i < MP__ARRAY_LEN(script); i++) {
		run_step(&r, &script[i]);
	}
	rig_close(&r);
}

/* Accepting a connection, the handshake and the first request. */
Test(manager_server_alloc, connection_lifecycle)
{
	struct rig r;
	rig_open(&r);
	struct mp_test_sweep s;
	for (mp_test_sweep_start(&s, "server accept + handshake + "
	    "accept_connection + call"); mp_test_sweep_next(&s);) {
		mp_conn_t *c = NULL;
		enum mp__mgr_kind kind = RET;
		mp_obj_t *res = NULL;
		mp_test_sweep_arm(&s);
		int rv = mp_client_connect(mp_manager_server_address(r.s), KEY,
		    strlen(KEY), WAIT_MS, &c);
		cr_assert(rv == 0 || rv == MP_EOF || rv == MP_ETRUNCATED ||
		    rv == -ECONNRESET || rv == -EPIPE || rv == MP_EAUTH,
		    "connect: %s", mp_err_name(rv));
		if (rv == 0) {
			rv = rpc(c, NULL, "accept_connection", mp_tuple_of(1,
			    mp_str("MainProcess")), NULL, &kind, &res);
		}
		if (rv == 0 && kind == RET) {
			mp_obj_unref(res);
			res = NULL;
			rv = rpc(c, r.ids[L], "__len__", NULL, NULL, &kind,
			    &res);
		}
		int seen = rv != 0 || out_of_memory(kind, res) ? -ENOMEM :
		    kind == RET ? 0 : -EPROTO;
		if (seen == -EPROTO) {
			cr_log_error("allocation %lu: %s", s.n,
			    shown(rv, kind, res));
		}
		mp_test_sweep_done(&s, seen, 0, 0);
		mp_obj_unref(res);
		mp_conn_close(c);
		cr_assert_eq(count_objects(&r), r.objects);
	}
	rig_close(&r);
}

/*
 * Requests the sweep's script first got wrong, which made the server
 * abort (a NULL argument's type was asked): now a TypeError.
 */
Test(manager_server_alloc, missing_arguments_are_type_errors)
{
	struct rig r;
	rig_open(&r);
	mp__alloc_fail_only(NULL);
	enum mp__mgr_kind kind;
	mp_obj_t *res = NULL;
	expect_ok(rpc(r.chan, r.ids[B], "__getattribute__", NULL, NULL, &kind,
	    &res));
	cr_assert_eq(kind, ERR);
	cr_assert_str_eq(mp_instance_name(res), "TypeError");
	mp_obj_unref(res);
	mp_conn_t *c = dial(&r);
	expect_ok(rpc(c, NULL, "create", mp_tuple_of(1, mp_str("Iterator")),
	    NULL, &kind, &res));
	cr_assert_eq(kind, TB);
	cr_assert(strstr(mp_str_data(res, NULL), "TypeError") != NULL);
	mp_obj_unref(res);
	mp_conn_close(c);
	cr_assert_eq(count_objects(&r), r.objects);
	rig_close(&r);
}

/* ---- Parked calls ------------------------------------------------------- */

static int64_t
n_waiting(struct rig *r, const char *id)
{
	enum mp__mgr_kind kind;
	mp_obj_t *res = NULL;
	expect_ok(rpc(r->chan, id, "__getattribute__", mp_tuple_of(1,
	    mp_str("n_waiting")), NULL, &kind, &res));
	cr_assert_eq(kind, RET);
	int64_t n = -1;
	expect_ok(mp_int_value(res, &n));
	mp_obj_unref(res);
	return n;
}

static void
send_only(mp_conn_t *c, const char *id, const char *method, mp_obj_t *args)
{
	mp_obj_t *req = mp__mgr_request(id, method, args, NULL);
	cr_assert_not_null(req);
	expect_ok(mp_conn_send(c, req));
	mp_obj_unref(req);
}

/* The reply to a request sent earlier: 0 (kind, result) or closed. */
static int
reply_of(mp_conn_t *c, enum mp__mgr_kind *kind, mp_obj_t **res)
{
	void *buf = NULL;
	size_t len;
	int rv = mp_conn_recv_bytes(c, 1 << 24, WAIT_MS, &buf, &len);
	if (rv != 0) {
		cr_assert(rv == MP_EOF || rv == MP_ETRUNCATED ||
		    rv == -ECONNRESET, "%s", mp_err_name(rv));
		return rv;
	}
	mp_obj_t *msg = NULL;
	expect_ok(mp__mgr_decode(buf, len, 0, &msg, NULL, 0));
	mp_free(buf);
	mp_obj_t *r;
	expect_ok(mp__mgr_reply_parse(msg, kind, &r));
	*res = mp_obj_ref(r);
	mp_obj_unref(msg);
	return 0;
}

/* 0 for a reply of kind want, -ENOMEM for a clean failure. */
static int
outcome(int rv, enum mp__mgr_kind kind, mp_obj_t *res,
    enum mp__mgr_kind want)
{
	int seen = rv != 0 || out_of_memory(kind, res) ? -ENOMEM :
	    kind == want ? 0 : -EPROTO;
	if (seen == -EPROTO) {
		cr_log_error("unexpected reply: %s", shown(rv, kind, res));
	}
	mp_obj_unref(res);
	return seen;
}

/*
 * A Barrier(2) party parks; the second arrives with the server's
 * allocations failing (the wake path). Then one party alone parks until
 * its timeout breaks the round, failing (a failed park must not count a
 * party; the timer path replies).
 */
Test(manager_server_alloc, parked_calls)
{
	struct rig r;
	rig_open(&r);
	mp__alloc_fail_only(NULL);
	mp_obj_t *res = oneshot(&r, "create", mp_tuple_of(2, mp_str("Barrier"),
	    mp_int(2)));
	char id[20];
	snprintf(id, sizeof(id), "%s", mp_str_data(mp_tuple_get(res, 0), NULL));
	mp_obj_unref(res);
	r.objects++;
	mp_conn_t *other = channel(&r);
	mp__alloc_fail_only(&r.thread);
	for (int wake = 1; wake >= 0; wake--) {
		struct mp_test_sweep s;
		const char *what = wake ? "barrier wake a parked party" :
		    "barrier park a party";
		for (mp_test_sweep_start(&s, what); mp_test_sweep_next(&s);) {
			enum mp__mgr_kind k1 = RET, k2 = RET;
			mp_obj_t *r1 = NULL, *r2 = NULL;
			int rv1, rv2, seen;
			if (wake) {
				send_only(other, id, "wait", NULL);
				while (n_waiting(&r, id) != 1) {
				}
				mp_test_sweep_arm(&s);
				rv1 = rpc(r.chan, id, "wait", NULL, NULL, &k1,
				    &r1);
				bool done = rv1 == 0 && k1 == RET;
				seen = outcome(rv1, k1, r1, RET);
				if (done) {
					/* The other's reply follows ours:
					 * count its allocations too. */
					rv2 = reply_of(other, &k2, &r2);
					int b = outcome(rv2, k2, r2, RET);
					seen = b;
				}
				mp_test_sweep_done(&s, seen, 0, 0);
				if (rv1 != 0) {
					mp_conn_close(r.chan);
					r.chan = channel(&r);
				}
				/* The round completed, or never began. */
				rv2 = done ? rv2 : 1;
				if (!done && n_waiting(&r, id) == 0) {
					rv2 = reply_of(other, &k2, &r2);
					int b = outcome(rv2, k2, r2, RET);
					cr_assert(b == 0 || s.hit);
				}
				if (rv2 == 1) {
					/* Never released: reset breaks it. */
					cr_assert_eq(n_waiting(&r, id), 1);
					expect_ok(rpc(r.chan, id, "reset", NULL,
					    NULL, &k1, &r1));
					mp_obj_unref(r1);
					expect_ok(reply_of(other, &k2, &r2));
					cr_assert_eq(k2, ERR);
					mp_obj_unref(r2);
					rv2 = 0;
				}
				rv1 = 0;
			} else {
				/* Parked until its timeout breaks the round;
				 * all of it before the reply. */
				mp_test_sweep_arm(&s);
				rv2 = rpc(other, id, "wait", mp_tuple_of(1,
				    mp_float(0.05)), NULL, &k2, &r2);
				seen = outcome(rv2, k2, r2, ERR);
				mp_test_sweep_done(&s, seen, 0, 0);
				cr_assert_eq(n_waiting(&r, id), 0,
				    "a failed park counted a party");
				rv1 = 0;
			}
			if (rv1 != 0) {
				mp_conn_close(r.chan);
				r.chan = channel(&r);
			}
			if (rv2 < 0) {
				mp_conn_close(other);
				other = channel(&r);
			}
			/* A party that went away broke it: start again. */
			mp_obj_unref(res = NULL);
			enum mp__mgr_kind k;
			expect_ok(rpc(r.chan, id, "reset", NULL, NULL, &k,
			    &res));
			mp_obj_unref(res);
			cr_assert_eq(n_waiting(&r, id), 0);
			cr_assert_eq(count_objects(&r), r.objects);
		}
	}
	mp_conn_close(other);
	rig_close(&r);
}
