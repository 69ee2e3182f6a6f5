/* SPDX-License-Identifier: MIT */
/* test_interop_conn.c: mp_conn against every CPython's multiprocessing.connection, both roles. */
#include "harness/harness.h"

MP_TEST_SUITE(interop_conn);

#define KEY "secret"
#define KEYLEN 6
#define WAIT_MS 20000

/* What conn_peer.py prints for FIXED. */
#define FIXED_REPR "['name', 42, None, 'hello', 3.5, b'\\x00\\xff', (1, 2), " \
	"{'k': [True]}, 1180591620717411303424, -1, '']"

static void
expect_line(struct mp_test_child *ch, const char *prefix, const char *py)
{
	char line[1024];
	ssize_t n = mp_test_read_line(ch->out_fd, line, sizeof(line), WAIT_MS);
	cr_assert(n >= 0, "python %s: no line (wanted \"%s\")", py, prefix);
	cr_assert(strncmp(line, prefix, strlen(prefix)) == 0,
	    "python %s printed \"%s\", wanted \"%s...\"", py, line, prefix);
}

static void
finish(struct mp_test_child *ch, const char *py)
{
	int st = mp_test_wait(ch, WAIT_MS);
	cr_assert_eq(st, 0, "python %s exited with %d", py, st);
}

/* Start conn_peer.py as a Listener and connect to it. */
static int
connect_to_python(const struct mp_test_python *py, const char *key,
    const char *mode, struct mp_test_child *ch, mp_conn_t **c)
{
	const char *args[] = { "listen", KEY, mode, NULL };
	mp_test_spawn_py(py->path, "conn_peer.py", args, ch);
	char line[128];
	ssize_t n = mp_test_read_line(ch->out_fd, line, sizeof(line), WAIT_MS);
	cr_assert(n > 5 && strncmp(line, "PORT ", 5) == 0,
	    "python %s did not print its port", py->label);
	char addr[160];
	snprintf(addr, sizeof(addr), "127.0.0.1:%s", line + 5);
	return mp_client_connect(addr, key, strlen(key), WAIT_MS, c);
}

/* Open a C Listener and start conn_peer.py as its Client. */
static mp_listener_t *
python_connects(const struct mp_test_python *py, const char *key,
    const char *mode, struct mp_test_child *ch)
{
	mp_listener_t *l;
	expect_ok(mp_listener_open("127.0.0.1:0", KEY, KEYLEN, &l));
	const char *addr = mp_listener_address(l);
	char port[16];
	snprintf(port, sizeof(port), "%s", strrchr(addr, ':') + 1);
	const char *args[] = { "connect", "127.0.0.1", port, key, mode, NULL };
	mp_test_spawn_py(py->path, "conn_peer.py", args, ch);
	return l;
}

/* The "bytes" exchange, from the C side. */
static void
bytes_exchange(mp_conn_t *c, struct mp_test_child *ch, const char *py)
{
	expect_ok(mp_conn_send_bytes(c, "hi from c", 9));
	expect_line(ch, "GOT 68692066726f6d2063", py);
	void *buf;
	size_t len;
	expect_ok(mp_conn_recv_bytes(c, 1024, WAIT_MS, &buf, &len));
	cr_assert_eq(len, 12);
	cr_assert(memcmp(buf, "py:hi from c", 12) == 0);
	mp_free(buf);
	mp_conn_close(c);
	expect_line(ch, "EOF", py);
}

/* The "objs" exchange, from the C side. */
static void
objs_exchange(mp_conn_t *c, struct mp_test_child *ch, const char *py)
{
	mp_obj_t *o = mp_list_of(5, mp_str("name"), mp_int(42), mp_none(),
	    mp_str("h\xc3\xa9llo"), mp_tuple_of(2, mp_float(0.5),
	    mp_bytes("\x01", 1)));
	cr_assert_not_null(o);
	expect_ok(mp_conn_send(c, o));
	expect_line(ch,
	    "OBJ ['name', 42, None, 'h\xc3\xa9llo', (0.5, b'\\x01')]", py);
	mp_obj_t *back = NULL;
	expect_ok(mp_conn_recv(c, WAIT_MS, &back));
	cr_assert(mp_obj_equal(o, back), "python %s changed the object", py);
	mp_obj_unref(back);
	mp_obj_unref(o);
	expect_ok(mp_conn_recv(c, WAIT_MS, &back));
	char *text;
	expect_ok(mp_obj_repr(back, &text));
	cr_assert_str_eq(text, FIXED_REPR);
	mp_free(text);
	mp_obj_unref(back);
	mp_conn_close(c);
	expect_line(ch, "EOF", py);
}

static void
each_python(void (*fn)(const struct mp_test_python *))
{
	const struct mp_test_python *list;
	size_t n = mp_test_pythons(&list);
	cr_assert(n > 0, "no CPython found");
	for (size_t i = 0; i < n; i++) {
		fn(&list[i]);
		fprintf(stderr, "ok python %s\n", list[i].label);
	}
}

static void
c_client_bytes(const struct mp_test_python *py)
{
	struct mp_test_child ch;
	mp_conn_t *c = NULL;
	expect_ok(connect_to_python(py, KEY, "bytes", &ch, &c));
	bytes_exchange(c, &ch, py->label);
	finish(&ch, py->label);
}

Test(interop_conn, c_client_authenticates_with_python_listener)
{
	each_python(c_client_bytes);
}

static void
c_listener_bytes(const struct mp_test_python *py)
{
	struct mp_test_child ch;
	mp_listener_t *l = python_connects(py, KEY, "bytes", &ch);
	mp_conn_t *c = NULL;
	expect_ok(mp_listener_accept(l, WAIT_MS, &c));
	bytes_exchange(c, &ch, py->label);
	finish(&ch, py->label);
	mp_listener_close(l);
}

Test(interop_conn, c_listener_authenticates_python_client)
{
	each_python(c_listener_bytes);
}

static void
c_client_objs(const struct mp_test_python *py)
{
	struct mp_test_child ch;
	mp_conn_t *c = NULL;
	expect_ok(connect_to_python(py, KEY, "objs", &ch, &c));
	objs_exchange(c, &ch, py->label);
	finish(&ch, py->label);
}

Test(interop_conn, objects_round_trip_with_python_listener)
{
	each_python(c_client_objs);
}

static void
c_listener_objs(const struct mp_test_python *py)
{
	struct mp_test_child ch;
	mp_listener_t *l = python_connects(py, KEY, "objs", &ch);
	mp_conn_t *c = NULL;
	expect_ok(mp_listener_accept(l, WAIT_MS, &c));
	objs_exchange(c, &ch, py->label);
	finish(&ch, py->label);
	mp_listener_close(l);
}

Test(interop_conn, objects_round_trip_with_python_client)
{
	each_python(c_listener_objs);
}

static void
c_client_wrong_key(const struct mp_test_python *py)
{
	struct mp_test_child ch;
	mp_conn_t *c = NULL;
	expect_err(connect_to_python(py, "wrong", "bytes", &ch, &c), MP_EAUTH);
	cr_assert_null(c);
	expect_line(&ch, "AUTHERR", py->label);
	finish(&ch, py->label);
}

Test(interop_conn, wrong_key_fails_both_sides_with_python_listener)
{
	each_python(c_client_wrong_key);
}

static void
c_listener_wrong_key(const struct mp_test_python *py)
{
	struct mp_test_child ch;
	mp_listener_t *l = python_connects(py, "wrong", "bytes", &ch);
	mp_conn_t *c = NULL;
	expect_err(mp_listener_accept(l, WAIT_MS, &c), MP_EAUTH);
	cr_assert_null(c);
	expect_line(&ch, "AUTHERR", py->label);
	finish(&ch, py->label);
	mp_listener_close(l);
}

Test(interop_conn, wrong_key_fails_both_sides_with_python_client)
{
	each_python(c_listener_wrong_key);
}

static void
c_client_truncated(const struct mp_test_python *py)
{
	struct mp_test_child ch;
	mp_conn_t *c = NULL;
	expect_ok(connect_to_python(py, KEY, "half", &ch, &c));
	expect_line(&ch, "HALF", py->label);
	void *buf;
	size_t len;
	expect_err(mp_conn_recv_bytes(c, 1024, WAIT_MS, &buf, &len),
	    MP_ETRUNCATED);
	mp_conn_close(c);
	finish(&ch, py->label);
}

Test(interop_conn, python_closing_mid_frame_is_truncated)
{
	each_python(c_client_truncated);
}

static void
c_unix_listener_big(const struct mp_test_python *py)
{
	char path[128];
	snprintf(path, sizeof(path), "/tmp/mproc-interop-conn-%d.sock",
	    (int)getpid());
	mp_listener_t *l;
	expect_ok(mp_listener_open(path, KEY, KEYLEN, &l));
	struct mp_test_child ch;
	const char *args[] = { "connect", "unix", path, KEY, "big", NULL };
	mp_test_spawn_py(py->path, "conn_peer.py", args, &ch);
	mp_conn_t *c = NULL;
	expect_ok(mp_listener_accept(l, WAIT_MS, &c));
	/* Large both ways: Python writes header and payload separately. */
	size_t n = (3 << 20) + 7;
	uint8_t *m = malloc(n);
	for (size_t i = 0; i < n; i++) {
		m[i] = (uint8_t)(i * 31 + (i >> 12));
	}
	expect_ok(mp_conn_send_bytes(c, m, n));
	char want[32];
	snprintf(want, sizeof(want), "LEN %zu", n);
	expect_line(&ch, want, py->label);
	void *buf;
	size_t len;
	expect_ok(mp_conn_recv_bytes(c, n, WAIT_MS, &buf, &len));
	cr_assert_eq(len, n);
	cr_assert(memcmp(buf, m, n) == 0);
	mp_free(buf);
	free(m);
	mp_conn_close(c);
	expect_line(&ch, "EOF", py->label);
	finish(&ch, py->label);
	mp_listener_close(l);
}

Test(interop_conn, large_messages_over_a_unix_socket)
{
	each_python(c_unix_listener_big);
}
