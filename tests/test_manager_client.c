/* SPDX-License-Identifier: MIT */
/* test_manager_client.c: the manager client against the C server. */
#include "harness/harness.h"

#include <mproc/manager.h>
#include <mproc/manager_server.h>

#include <pthread.h>
#include <signal.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

MP_TEST_SUITE(manager_client);

static mp_manager_t *
start(void)
{
	mp_manager_t *m = NULL;
	expect_ok(mp_manager_start(&m));
	return m;
}

static mp_proxy_t *
create(mp_manager_t *m, const char *typeid, mp_obj_t *args)
{
	mp_proxy_t *p = NULL;
	expect_ok(mp_manager_create(m, typeid, args, NULL, &p));
	mp_obj_unref(args);
	return p;
}

static void
expect_repr(const mp_obj_t *o, const char *want)
{
	char *s = NULL;
	expect_ok(mp_obj_repr(o, &s));
	cr_assert_str_eq(s, want);
	mp_free(s);
}

static void
expect_objects(mp_manager_t *m, size_t want)
{
	size_t n = 99;
	expect_ok(mp_manager_number_of_objects(m, &n));
	cr_assert_eq(n, want, "number_of_objects %zu, want %zu", n, want);
}

Test(manager_client, start_leaves_nothing_behind)
{
	mp_manager_t *m = start();
	const char *addr = mp_manager_address(m);
	char path[512];
	snprintf(path, sizeof(path), "%s", addr);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0, "the socket exists while serving");
	cr_assert_gt(mp_manager_server_pid(m), 0);
	size_t keylen = 0;
	cr_assert_not_null(mp_manager_authkey(m, &keylen));
	cr_assert_eq(keylen, 32);
	mp_manager_free(m);
	cr_assert_eq(stat(path, &st), -1, "the socket is gone");
	*strrchr(path, '/') = '\0';
	cr_assert_eq(stat(path, &st), -1, "its directory is gone");
}

Test(manager_client, list_append_get_len_repr)
{
	mp_manager_t *m = start();
	mp_proxy_t *l = create(m, "list", NULL);
	cr_assert_str_eq(mp_proxy_typeid(l), "list");
	for (int i = 0; i < 3; i++) {
		mp_obj_t *v = mp_int(i);
		expect_ok(mp_proxy_list_append(l, v));
		mp_obj_unref(v);
	}
	size_t n = 0;
	expect_ok(mp_proxy_list_len(l, &n));
	cr_assert_eq(n, 3);
	mp_obj_t *x = NULL;
	expect_ok(mp_proxy_list_get(l, -1, &x));
	expect_repr(x, "2");
	mp_obj_unref(x);
	expect_err(mp_proxy_list_get(l, 7, &x), -EINVAL);
	char *s = NULL;
	expect_ok(mp_proxy_repr(l, &s));
	cr_assert_str_eq(s, "[0, 1, 2]");
	mp_free(s);
	mp_obj_t *copy = NULL;
	expect_ok(mp_proxy_getvalue(l, &copy));
	expect_repr(copy, "[0, 1, 2]");
	mp_obj_unref(copy);
	expect_objects(m, 1);
	mp_proxy_free(l);
	expect_objects(m, 0);
	mp_manager_free(m);
}

Test(manager_client, create_with_args_and_kwds)
{
	mp_manager_t *m = start();
	mp_proxy_t *l = create(m, "list",
	    mp_tuple_of(1, mp_list_of(2, mp_str("a"), mp_none())));
	char *s = NULL;
	expect_ok(mp_proxy_repr(l, &s));
	cr_assert_str_eq(s, "['a', None]");
	mp_free(s);
	mp_obj_t *kw = mp_dict_new();
	mp_dict_set(kw, mp_str("x"), mp_int(5));
	mp_proxy_t *d = NULL;
	expect_ok(mp_manager_create(m, "dict", NULL, kw, &d));
	mp_obj_unref(kw);
	mp_obj_t *k = mp_str("x");
	mp_obj_t *v = NULL;
	expect_ok(mp_proxy_dict_get(d, k, &v));
	expect_repr(v, "5");
	mp_obj_unref(v);
	mp_obj_unref(k);
	mp_proxy_free(d);
	mp_proxy_free(l);
	mp_manager_free(m);
}

Test(manager_client, unknown_typeid_is_a_remote_error)
{
	mp_manager_t *m = start();
	mp_proxy_t *p = NULL;
	expect_err(mp_manager_create(m, "nosuchtype", NULL, NULL, &p),
	    MP_EREMOTEERR);
	cr_assert_null(p);
	mp_obj_t *notuple = mp_int(1);
	expect_err(mp_manager_create(m, "list", notuple, NULL, &p), -EINVAL);
	mp_obj_unref(notuple);
	mp_manager_free(m);
}

Test(manager_client, dict_keyerror_and_exception_instance)
{
	mp_manager_t *m = start();
	mp_proxy_t *d = create(m, "dict", NULL);
	mp_obj_t *k = mp_str("a");
	mp_obj_t *one = mp_int(1);
	expect_ok(mp_proxy_dict_set(d, k, one));
	size_t n = 0;
	expect_ok(mp_proxy_dict_len(d, &n));
	cr_assert_eq(n, 1);
	mp_obj_t *zz = mp_str("zz");
	mp_obj_t *v = NULL;
	expect_err(mp_proxy_dict_get(d, zz, &v), -ENOENT);
	/* The generic call hands the exception over. */
	mp_obj_t *args = mp_tuple_of(1, mp_obj_ref(zz));
	mp_obj_t *exc = NULL;
	expect_err(mp_proxy_call(d, "__getitem__", args, NULL, 5000, &exc),
	    MP_EREMOTEERR);
	cr_assert_str_eq(mp_instance_name(exc), "KeyError");
	expect_repr(mp_instance_args(exc), "('zz',)");
	mp_obj_unref(exc);
	/* A method the object does not expose. */
	exc = NULL;
	expect_err(mp_proxy_call(d, "nonexistent", NULL, NULL, 5000, &exc),
	    MP_EREMOTEERR);
	cr_assert_not_null(exc);
	mp_obj_unref(exc);
	/* Keyword arguments pass through: d.update(b=2). */
	mp_obj_t *kw = mp_dict_new();
	mp_dict_set(kw, mp_str("b"), mp_int(2));
	mp_obj_t *r = NULL;
	expect_ok(mp_proxy_call(d, "update", NULL, kw, 5000, &r));
	mp_obj_unref(r);
	mp_obj_unref(kw);
	expect_ok(mp_proxy_getvalue(d, &r));
	expect_repr(r, "{'a': 1, 'b': 2}");
	mp_obj_unref(r);
	mp_obj_unref(args);
	mp_obj_unref(zz);
	mp_obj_unref(one);
	mp_obj_unref(k);
	mp_proxy_free(d);
	mp_manager_free(m);
}

Test(manager_client, dict_iterator_is_a_proxy)
{
	mp_manager_t *m = start();
	mp_proxy_t *d = create(m, "dict", NULL);
	mp_obj_t *k = mp_str("k");
	expect_ok(mp_proxy_dict_set(d, k, k));
	mp_obj_unref(k);
	mp_obj_t *r = NULL;
	expect_err(mp_proxy_call(d, "__iter__", NULL, NULL, 5000, &r),
	    MP_ETYPE);
	expect_objects(m, 1);
	mp_proxy_t *it = NULL;
	expect_ok(mp_proxy_call_proxy(d, "__iter__", NULL, NULL, 5000, &it));
	cr_assert_str_eq(mp_proxy_typeid(it), "Iterator");
	expect_objects(m, 2);
	expect_ok(mp_proxy_call(it, "__next__", NULL, NULL, 5000, &r));
	expect_repr(r, "'k'");
	mp_obj_unref(r);
	expect_err(mp_proxy_call(it, "__next__", NULL, NULL, 5000, &r),
	    MP_EREMOTEERR);
	cr_assert_str_eq(mp_instance_name(r), "StopIteration");
	mp_obj_unref(r);
	mp_proxy_t *no = NULL;
	expect_err(mp_proxy_call_proxy(d, "__len__", NULL, NULL, 5000, &no),
	    MP_ETYPE);
	mp_proxy_free(it);
	mp_proxy_free(d);
	expect_objects(m, 0);
	mp_manager_free(m);
}

Test(manager_client, queue_put_get_and_timeouts)
{
	mp_manager_t *m = start();
	mp_proxy_t *q = create(m, "Queue", mp_tuple_of(1, mp_int(1)));
	mp_obj_t *hello = mp_str("hello");
	expect_ok(mp_proxy_queue_put(q, hello, MP_FOREVER));
	expect_err(mp_proxy_queue_put(q, hello, MP_NOWAIT), -EAGAIN);
	expect_err(mp_proxy_queue_put(q, hello, 20), -ETIMEDOUT);
	size_t n = 0;
	expect_ok(mp_proxy_queue_qsize(q, &n));
	cr_assert_eq(n, 1);
	mp_obj_t *x = NULL;
	expect_ok(mp_proxy_queue_get(q, 1000, &x));
	expect_repr(x, "'hello'");
	mp_obj_unref(x);
	expect_err(mp_proxy_queue_get(q, MP_NOWAIT, &x), -EAGAIN);
	expect_err(mp_proxy_queue_get(q, 20, &x), -ETIMEDOUT);
	/* The queue.Empty instance, for callers that want the class. */
	mp_obj_t *args = mp_tuple_of(1, mp_bool(false));
	expect_err(mp_proxy_call(q, "get", args, NULL, 5000, &x),
	    MP_EREMOTEERR);
	cr_assert_str_eq(mp_instance_name(x), "Empty");
	mp_obj_unref(x);
	mp_obj_unref(args);
	mp_obj_unref(hello);
	mp_proxy_free(q);
	mp_manager_free(m);
}

/* A call whose reply does not come in time drops its channel; the next
 * call opens a new one and works. */
Test(manager_client, client_timeout_then_next_call_works)
{
	mp_manager_t *m = start();
	mp_proxy_t *q = create(m, "Queue", NULL);
	mp_obj_t *r = NULL;
	expect_err(mp_proxy_call(q, "get", NULL, NULL, 50, &r), -ETIMEDOUT);
	mp_obj_t *v = mp_int(7);
	expect_ok(mp_proxy_queue_put(q, v, MP_FOREVER));
	mp_obj_unref(v);
	expect_ok(mp_proxy_queue_get(q, 1000, &r));
	expect_repr(r, "7");
	mp_obj_unref(r);
	mp_proxy_free(q);
	mp_manager_free(m);
}

Test(manager_client, value_namespace_lock_event_barrier)
{
	mp_manager_t *m = start();
	mp_proxy_t *v = create(m, "Value",
	    mp_tuple_of(2, mp_str("i"), mp_int(7)));
	mp_obj_t *x = NULL;
	expect_ok(mp_proxy_value_get(v, &x));
	expect_repr(x, "7");
	mp_obj_unref(x);
	mp_obj_t *nine = mp_int(9);
	expect_ok(mp_proxy_value_set(v, nine));
	expect_ok(mp_proxy_value_get(v, &x));
	expect_repr(x, "9");
	mp_obj_unref(x);

	mp_proxy_t *ns = create(m, "Namespace", NULL);
	expect_err(mp_proxy_ns_get(ns, "x", &x), -ENOENT);
	expect_ok(mp_proxy_ns_set(ns, "x", nine));
	expect_ok(mp_proxy_ns_get(ns, "x", &x));
	expect_repr(x, "9");
	mp_obj_unref(x);
	mp_obj_unref(nine);

	mp_proxy_t *l = create(m, "Lock", NULL);
	expect_ok(mp_proxy_lock_acquire(l, MP_FOREVER));
	expect_err(mp_proxy_lock_acquire(l, MP_NOWAIT), -EAGAIN);
	expect_err(mp_proxy_lock_acquire(l, 20), -ETIMEDOUT);
	expect_ok(mp_proxy_lock_release(l));
	expect_err(mp_proxy_lock_release(l), -EPERM);

	mp_proxy_t *e = create(m, "Event", NULL);
	bool set = true;
	expect_ok(mp_proxy_event_is_set(e, &set));
	cr_assert(!set);
	expect_err(mp_proxy_event_wait(e, 20), -ETIMEDOUT);
	expect_err(mp_proxy_event_wait(e, MP_NOWAIT), -EAGAIN);
	expect_ok(mp_proxy_event_set(e));
	expect_ok(mp_proxy_event_wait(e, MP_FOREVER));
	expect_ok(mp_proxy_event_clear(e));

	mp_proxy_t *b = create(m, "Barrier", mp_tuple_of(1, mp_int(1)));
	int64_t idx = -1;
	expect_ok(mp_proxy_barrier_wait(b, 1000, &idx));
	cr_assert_eq(idx, 0);
	mp_proxy_t *b2 = create(m, "Barrier", mp_tuple_of(1, mp_int(2)));
	expect_err(mp_proxy_barrier_wait(b2, 20, NULL), MP_EBROKEN);
	expect_err(mp_proxy_barrier_wait(b2, 20, NULL), MP_EBROKEN);

	mp_proxy_free(b2);
	mp_proxy_free(b);
	mp_proxy_free(e);
	mp_proxy_free(l);
	mp_proxy_free(ns);
	mp_proxy_free(v);
	expect_objects(m, 0);
	mp_manager_free(m);
}

/* ---- Threads and processes ----------------------------------------------- */

struct th {
	mp_proxy_t *l;
	int base;
	int rv;
};

static void *
appender(void *arg)
{
	struct th *t = arg;
	for (int i = 0; i < 50 && t->rv == 0; i++) {
		mp_obj_t *v = mp_int(t->base + i);
		t->rv = mp_proxy_list_append(t->l, v);
		mp_obj_unref(v);
	}
	return NULL;
}

static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	cr_assert_not_null(d);
	int n = 0;
	while (readdir(d) != NULL) {
		n++;
	}
	closedir(d);
	return n;
}

Test(manager_client, threads_share_a_proxy)
{
	mp_manager_t *m = start();
	mp_proxy_t *l = create(m, "list", NULL);
	size_t n = 0;
	expect_ok(mp_proxy_list_len(l, &n)); /* the main thread's channel */
	int fds = count_fds();
	pthread_t tids[4];
	struct th ts[4];
	for (int i = 0; i < 4; i++) {
		ts[i] = (struct th){ l, i * 1000, 0 };
		cr_assert_eq(pthread_create(&tids[i], NULL, appender, &ts[i]),
		    0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(tids[i], NULL);
		expect_ok(ts[i].rv);
	}
	/* Each thread's channel went with its thread. */
	cr_assert_eq(count_fds(), fds);
	expect_ok(mp_proxy_list_len(l, &n));
	cr_assert_eq(n, 200);
	mp_proxy_free(l);
	mp_manager_free(m);
}

static int
child_appends(void *arg)
{
	mp_proxy_t *l = arg;
	mp_obj_t *v = mp_str(mp_process_name(mp_current_process()));
	int rv = mp_proxy_list_append(l, v);
	mp_obj_unref(v);
	mp_proxy_free(l); /* the child's copy: sends nothing */
	return rv == 0 ? 0 : 1;
}

Test(manager_client, forked_children_use_their_own_channels)
{
	mp_manager_t *m = start();
	mp_proxy_t *l = create(m, "list", NULL);
	size_t n = 0;
	expect_ok(mp_proxy_list_len(l, &n)); /* the parent has a channel */
	mp_process_t *ps[3];
	for (int i = 0; i < 3; i++) {
		expect_ok(mp_process_new(child_appends, l, NULL, &ps[i]));
		expect_ok(mp_process_start(ps[i]));
	}
	for (int i = 0; i < 3; i++) {
		int code = -1;
		expect_ok(mp_process_join(ps[i], 20000));
		expect_ok(mp_process_exitcode(ps[i], &code));
		cr_assert_eq(code, 0);
		expect_ok(mp_process_free(ps[i]));
	}
	expect_ok(mp_proxy_list_len(l, &n));
	cr_assert_eq(n, 3);
	expect_objects(m, 1);
	mp_proxy_free(l);
	mp_manager_free(m);
}

/* ---- Life cycle and failures --------------------------------------------- */

Test(manager_client, proxies_after_shutdown_are_closed)
{
	mp_manager_t *m = start();
	mp_proxy_t *l = create(m, "list", NULL);
	expect_ok(mp_manager_shutdown(m));
	expect_err(mp_manager_shutdown(m), MP_ECLOSED);
	size_t n;
	expect_err(mp_proxy_list_len(l, &n), MP_ECLOSED);
	mp_proxy_t *p = NULL;
	expect_err(mp_manager_create(m, "list", NULL, NULL, &p), MP_ECLOSED);
	mp_manager_free(m);
	expect_err(mp_proxy_list_len(l, &n), MP_ECLOSED);
	mp_proxy_free(l);
}

static bool
is_gone_error(int rv)
{
	return rv == MP_EOF || rv == MP_ETRUNCATED || rv == -ECONNRESET ||
	    rv == -EPIPE;
}

Test(manager_client, server_killed_mid_session_fails_fast)
{
	mp_manager_t *m = start();
	mp_proxy_t *q = create(m, "Queue", NULL);
	size_t n;
	expect_ok(mp_proxy_queue_qsize(q, &n));
	cr_assert_eq(kill(mp_manager_server_pid(m), SIGKILL), 0);
	/* A blocked get learns of the death instead of waiting forever. */
	mp_obj_t *x = NULL;
	int rv = mp_proxy_queue_get(q, MP_FOREVER, &x);
	cr_assert(is_gone_error(rv), "get returned %s", mp_err_name(rv));
	/* The next calls connect anew: refused once the dying server's
	 * listening socket is closed, or reset when the connection landed
	 * in its backlog just before (its fds close one by one). */
	rv = mp_proxy_queue_qsize(q, &n);
	cr_assert(rv == -ECONNREFUSED || rv == -ENOENT || is_gone_error(rv),
	    "qsize returned %s", mp_err_name(rv));
	mp_proxy_t *p = NULL;
	rv = mp_manager_create(m, "list", NULL, NULL, &p);
	cr_assert(rv == -ECONNREFUSED || rv == -ENOENT || is_gone_error(rv),
	    "create returned %s", mp_err_name(rv));
	mp_proxy_free(q);
	mp_manager_free(m);
}

/* A server in a thread of this process, on TCP. */
struct tserver {
	mp_manager_server_t *s;
	pthread_t tid;
};

static void *
serve(void *arg)
{
	mp_manager_server_serve(arg);
	return NULL;
}

static void
tserver_start(struct tserver *t, const char *key)
{
	expect_ok(mp_manager_server_open("127.0.0.1:0", key, strlen(key), NULL,
	    &t->s));
	cr_assert_eq(pthread_create(&t->tid, NULL, serve, t->s), 0);
}

static void
tserver_stop(struct tserver *t)
{
	mp_manager_server_shutdown(t->s);
	pthread_join(t->tid, NULL);
	mp_manager_server_close(t->s);
}

Test(manager_client, connect_tcp_wrong_key_and_refused)
{
	struct tserver t;
	tserver_start(&t, "abc");
	const char *addr = mp_manager_server_address(t.s);
	mp_manager_t *m = NULL;
	expect_err(mp_manager_connect(addr, "abd", 3, 5000, &m), MP_EAUTH);
	cr_assert_null(m);
	expect_ok(mp_manager_connect(addr, "abc", 3, 5000, &m));
	cr_assert_str_eq(mp_manager_address(m), addr);
	cr_assert_eq(mp_manager_server_pid(m), 0);
	mp_proxy_t *q = create(m, "Queue", NULL);
	mp_obj_t *v = mp_bytes("x", 1);
	expect_ok(mp_proxy_queue_put(q, v, MP_FOREVER));
	mp_obj_unref(v);
	mp_proxy_free(q);
	mp_manager_free(m);
	tserver_stop(&t);
	/* Nobody listens there now. */
	expect_err(mp_manager_connect("127.0.0.1:1", "abc", 3, 5000, &m),
	    -ECONNREFUSED);
	expect_err(mp_manager_connect("/nonexistent/mgr.sock", "abc", 3, 5000,
	    &m), -ENOENT);
}

/* A server that accepts and never answers: the connect times out. */
Test(manager_client, silent_server_times_out)
{
	mp_listener_t *l = NULL;
	expect_ok(mp_listener_open("127.0.0.1:0", NULL, 0, &l));
	mp_manager_t *m = NULL;
	expect_err(mp_manager_connect(mp_listener_address(l), "k", 1, 100, &m),
	    -ETIMEDOUT);
	mp_listener_close(l);
}

/* Large payloads go through, with no size that stalls. */
Test(manager_client, large_values)
{
	mp_manager_t *m = start();
	mp_proxy_t *q = create(m, "Queue", NULL);
	size_t sizes[] = { 16000, 17000, 100000, 1 << 20 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *buf = calloc(1, sizes[i]);
		mp_obj_t *v = mp_bytes(buf, sizes[i]);
		free(buf);
		expect_ok(mp_proxy_queue_put(q, v, 5000));
		mp_obj_t *back = NULL;
		expect_ok(mp_proxy_queue_get(q, 5000, &back));
		cr_assert(mp_obj_equal(v, back));
		mp_obj_unref(back);
		mp_obj_unref(v);
	}
	mp_proxy_free(q);
	mp_manager_free(m);
}

/* A process that starts a manager and exits without freeing it leaves
 * nothing: the exit handler stops and reaps the server and removes the
 * socket. */
static int
start_and_exit(void *arg)
{
	int fd = *(int *)arg;
	mp_manager_t *m = NULL;
	if (mp_manager_start(&m) != 0) {
		_exit(2);
	}
	char buf[600];
	int n = snprintf(buf, sizeof(buf), "%d %s",
	    (int)mp_manager_server_pid(m), mp_manager_address(m));
	if (write(fd, buf, (size_t)n + 1) != n + 1) {
		_exit(3);
	}
	exit(0); /* runs the exit handlers, unlike returning from a target */
}

Test(manager_client, exit_stops_a_started_server)
{
	int fds[2];
	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	mp_process_t *p = NULL;
	expect_ok(mp_process_new(start_and_exit, &fds[1], NULL, &p));
	expect_ok(mp_process_start(p));
	char buf[600] = { 0 };
	ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
	cr_assert_gt(n, 0);
	expect_ok(mp_process_join(p, 30000));
	int code = -1;
	expect_ok(mp_process_exitcode(p, &code));
	cr_assert_eq(code, 0);
	expect_ok(mp_process_free(p));
	close(fds[0]);
	close(fds[1]);
	int pid = 0;
	char path[560];
	cr_assert_eq(sscanf(buf, "%d %559s", &pid, path), 2);
	cr_assert_eq(kill(pid, 0), -1, "the server still runs");
	struct stat st;
	cr_assert_eq(stat(path, &st), -1, "the socket %s is left", path);
}

struct getter {
	mp_proxy_t *q;
	int rv;
};

static void *
get_forever(void *arg)
{
	struct getter *g = arg;
	mp_obj_t *x = NULL;
	g->rv = mp_proxy_queue_get(g->q, MP_FOREVER, &x);
	mp_obj_unref(x);
	return NULL;
}

/* A thread blocked in a call when the manager shuts down gets
 * MP_ECLOSED (whether its call had reached the server or not). */
Test(manager_client, shutdown_wakes_a_blocked_call)
{
	mp_manager_t *m = start();
	mp_proxy_t *q = create(m, "Queue", NULL);
	struct getter g = { q, 0 };
	pthread_t tid;
	cr_assert_eq(pthread_create(&tid, NULL, get_forever, &g), 0);
	expect_ok(mp_manager_shutdown(m));
	pthread_join(tid, NULL);
	expect_err(g.rv, MP_ECLOSED);
	mp_proxy_free(q);
	mp_manager_free(m);
}

/* Another client reaches a started server with its address and key. */
Test(manager_client, second_client_with_address_and_key)
{
	mp_manager_t *m = start();
	mp_proxy_t *l = create(m, "list", NULL);
	size_t keylen = 0;
	const void *key = mp_manager_authkey(m, &keylen);
	mp_manager_t *other = NULL;
	expect_ok(mp_manager_connect(mp_manager_address(m), key, keylen, 5000,
	    &other));
	cr_assert_eq(mp_manager_server_pid(other), 0);
	expect_objects(other, 1);
	expect_err(mp_manager_connect(mp_manager_address(m), "x", 1, 5000,
	    &other), MP_EAUTH);
	mp_manager_free(other);
	mp_proxy_free(l);
	mp_manager_free(m);
}

/* A server that stops answering (here: stopped by SIGSTOP) costs each
 * call its timeout, never more; once it runs again, calls work. */
Test(manager_client, stopped_server_calls_time_out)
{
	mp_manager_t *m = start();
	mp_proxy_t *l = create(m, "list", NULL);
	size_t n = 0;
	expect_ok(mp_proxy_list_len(l, &n));
	pid_t pid = mp_manager_server_pid(m);
	mp_manager_set_timeout(m, 100);
	cr_assert_eq(kill(pid, SIGSTOP), 0);
	expect_err(mp_proxy_list_len(l, &n), -ETIMEDOUT);
	mp_proxy_t *p = NULL;
	expect_err(mp_manager_create(m, "list", NULL, NULL, &p), -ETIMEDOUT);
	mp_obj_t *r = NULL;
	expect_err(mp_proxy_call(l, "__len__", NULL, NULL, 50, &r), -ETIMEDOUT);
	cr_assert_eq(kill(pid, SIGCONT), 0);
	mp_manager_set_timeout(m, MP_MANAGER_TIMEOUT_DEFAULT_MS);
	expect_ok(mp_proxy_list_len(l, &n));
	cr_assert_eq(n, 0);
	mp_proxy_free(l);
	mp_manager_free(m);
}
