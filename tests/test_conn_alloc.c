/* SPDX-License-Identifier: MIT */
/* test_conn_alloc.c: every allocation of connections failing in turn: sends, receives, handshakes. */
#include "harness/harness.h"
#include "core/internal.h"

#include <pthread.h>

MP_TEST_SUITE(conn_alloc);

#define KEY "secret"
#define KEYLEN 6
#define WAIT_MS 10000

/*
 * A value with containers, a shared item and sizes that make the list
 * batch; big adds a 100 kB body, so the message bypasses the 64 KiB
 * receive buffer (few objects, or the sweep would be quadratic).
 */
static mp_obj_t *
message(bool big)
{
	mp_obj_t *l = mp_list_new();
	for (int i = 0; i < 1005; i++) {
		expect_ok(mp_list_append(l, mp_int(i * 7919)));
	}
	if (big) {
		char *body = calloc(1, 100000);
		cr_assert_not_null(body);
		expect_ok(mp_list_append(l, mp_bytes(body, 100000)));
		free(body);
	}
	mp_obj_t *d = mp_dict_new();
	expect_ok(mp_dict_set(d, mp_str("k"), mp_tuple_of(2, mp_float(0.5),
	    mp_bytes("\x00\x01", 2))));
	mp_obj_t *s = mp_str("shared");
	mp_obj_t *v = mp_tuple_of(5, l, d, mp_obj_ref(s), s, mp_set_new());
	cr_assert_not_null(v);
	return v;
}

/* Nothing is waiting on c. */
static void
expect_nothing(mp_conn_t *c)
{
	cr_assert_eq(mp_conn_poll(c, MP_NOWAIT), 0, "a message was sent");
}

/*
 * An object through a fresh pair, with the sender's (recv false) or the
 * receiver's allocations failing. A send that fails sends nothing; a
 * receive that fails for memory leaves the message in the stream, so the
 * next receive gets it (as mp_conn_recv_bytes does); either way the
 * connection stays usable and the message after it intact.
 */
static void
sweep_object(const char *what, bool big, bool recv)
{
	mp_test_count_start();
	mp_obj_t *v = message(big);
	struct mp_test_sweep s;
	for (mp_test_sweep_start(&s, what); mp_test_sweep_next(&s);) {
		mp_conn_t *a, *b;
		expect_ok(mp_pipe(&a, &b, true));
		mp_obj_t *back = NULL;
		if (recv) {
			expect_ok(mp_conn_send(a, v));
			expect_ok(mp_conn_send_bytes(a, "next", 4));
		}
		mp_test_sweep_arm(&s);
		int rv = recv ? mp_conn_recv(b, WAIT_MS, &back) :
		    mp_conn_send(a, v);
		mp_test_sweep_done(&s, rv, 0, 0);
		if (rv != 0) {
			cr_assert_null(back, "out set on failure");
		}
		if (!recv) {
			if (rv != 0) {
				expect_nothing(b);
				expect_ok(mp_conn_send(a, v));
			}
			expect_ok(mp_conn_send_bytes(a, "next", 4));
		} else if (rv != 0) {
			cr_assert_eq(mp_conn_poll(b, MP_NOWAIT), 1,
			    "the message given back is ready");
		}
		if (back == NULL) {
			expect_ok(mp_conn_recv(b, WAIT_MS, &back));
		}
		cr_assert(mp_obj_equal(back, v), "allocation %lu", s.n);
		mp_obj_unref(back);
		void *buf = NULL;
		size_t len;
		expect_ok(mp_conn_recv_bytes(b, 16, WAIT_MS, &buf, &len));
		cr_assert(len == 4 && memcmp(buf, "next", 4) == 0);
		mp_free(buf);
		mp_conn_close(a);
		mp_conn_close(b);
	}
	mp_obj_unref(v);
	mp_test_count_end();
}

Test(conn_alloc, send_objects)
{
	sweep_object("conn send object", false, false);
	sweep_object("conn send object > 64 KiB", true, false);
}

Test(conn_alloc, receive_objects)
{
	sweep_object("conn recv object", false, true);
	sweep_object("conn recv object > 64 KiB", true, true);
}

/* Bytes, small and large, through a fresh pair each time. */
Test(conn_alloc, bytes_both_ways)
{
	mp_test_count_start();
	size_t sizes[] = { 0, 100, 200000 };
	uint8_t *data = malloc(200000);
	cr_assert_not_null(data);
	for (size_t i = 0; i < 200000; i++) {
		data[i] = (uint8_t)(i * 31);
	}
	const char *what[] = { "conn bytes 0 B", "conn bytes 100 B",
		"conn bytes 200 kB" };
	for (size_t k = 0; k < MP__ARRAY_LEN(sizes); k++) {
		struct mp_test_sweep s;
		for (mp_test_sweep_start(&s, what[k]);
		    mp_test_sweep_next(&s);) {
			mp_conn_t *a, *b;
			expect_ok(mp_pipe(&a, &b, true));
			mp_test_sweep_arm(&s);
			void *buf = NULL;
			size_t len = 0;
			int rv = mp_conn_send_bytes(a, data, sizes[k]);
			if (rv == 0) {
				rv = mp_conn_recv_bytes(b, 1 << 20, WAIT_MS,
				    &buf, &len);
			}
			mp_test_sweep_done(&s, rv, 0, 0);
			if (rv != 0 && mp_conn_poll(b, MP_NOWAIT) == 1) {
				/* Sent, not received: still there. */
				expect_ok(mp_conn_recv_bytes(b, 1 << 20,
				    WAIT_MS, &buf, &len));
			}
			if (buf != NULL) {
				cr_assert_eq(len, sizes[k]);
				cr_assert(memcmp(buf, data, len) == 0);
			}
			mp_free(buf);
			mp_conn_close(a);
			mp_conn_close(b);
		}
	}
	free(data);
	mp_test_count_end();
}

/*
 * A large message cut by a timeout is kept inside the connection; when
 * even that copy cannot be made the message is lost and the stream says
 * so with -EPROTO (documented), never with a wrong message.
 */
Test(conn_alloc, a_timed_out_large_message_parked)
{
	mp_test_count_start();
	enum { N = 100000 };
	uint8_t *buf = malloc(N);
	cr_assert_not_null(buf);
	memset(buf, 'x', N);
	bool lost = false;
	struct mp_test_sweep s;
	for (mp_test_sweep_start(&s, "conn park a cut message");
	    mp_test_sweep_next(&s);) {
		mp_conn_t *a, *b;
		expect_ok(mp_pipe(&a, &b, true));
		/* Only the header and part of the body. */
		uint8_t h[4] = { 0, (uint8_t)(N >> 16), (uint8_t)(N >> 8),
			(uint8_t)N };
		cr_assert_eq(write(mp_conn_fileno(a), h, 4), 4);
		cr_assert_eq(write(mp_conn_fileno(a), buf, 1000), 1000);
		mp_test_sweep_arm(&s);
		size_t len;
		int rv = mp_conn_recv_bytes_into(b, buf, N, 50, &len);
		mp_test_sweep_done(&s, rv, -ETIMEDOUT, 0);
		cr_assert_eq(write(mp_conn_fileno(a), buf, N - 1000),
		    N - 1000);
		/* Whole, or lost (after -ENOMEM only) and said so. */
		rv = mp_conn_recv_bytes_into(b, buf, N, WAIT_MS, &len);
		if (rv == -EPROTO && s.hit) {
			lost = true;
		} else {
			expect_ok(rv);
			cr_assert_eq(len, N);
		}
		mp_conn_close(a);
		mp_conn_close(b);
	}
	cr_assert(lost, "the copy of the part was never refused");
	free(buf);
	mp_test_count_end();
}

Test(conn_alloc, wait_on_many)
{
	mp_test_count_start();
	enum { N = 40 };
	mp_conn_t *r[N], *w[N];
	for (int i = 0; i < N; i++) {
		expect_ok(mp_pipe(&r[i], &w[i], false));
	}
	expect_ok(mp_conn_send_bytes(w[33], "x", 1));
	bool ready[N];
	struct mp_test_sweep s;
	for (mp_test_sweep_start(&s, "conn wait 40"); mp_test_sweep_next(&s);) {
		mp_test_sweep_arm(&s);
		int rv = mp_conn_wait(r, N, WAIT_MS, ready);
		mp_test_sweep_done(&s, rv < 0 ? rv : 0, 0, 0);
		cr_assert(rv == 1 || rv == -ENOMEM);
		if (rv == 1) {
			cr_assert(ready[33]);
		}
	}
	for (int i = 0; i < N; i++) {
		mp_conn_close(r[i]);
		mp_conn_close(w[i]);
	}
	mp_test_count_end();
}

/* ---- Listener and Client ------------------------------------------------ */

/* The other half of a handshake, in a thread: then "hi" and "ho". */
struct peer {
	pthread_t tid;
	mp_listener_t *l;
	const char *address;
	int rv;
};

static int
exchange(mp_conn_t *c, bool first)
{
	void *buf = NULL;
	size_t len;
	int rv = first ? mp_conn_send_bytes(c, "hi", 2) : 0;
	if (rv == 0) {
		rv = mp_conn_recv_bytes(c, 16, WAIT_MS, &buf, &len);
	}
	if (rv == 0 && !first) {
		rv = mp_conn_send_bytes(c, "ho", 2);
	}
	mp_free(buf);
	return rv;
}

static void *
accept_one(void *arg)
{
	struct peer *p = arg;
	mp_conn_t *c = NULL;
	p->rv = mp_listener_accept(p->l, WAIT_MS, &c);
	if (p->rv == 0) {
		p->rv = exchange(c, false);
		mp_conn_close(c);
	}
	return NULL;
}

static void *
connect_one(void *arg)
{
	struct peer *p = arg;
	mp_conn_t *c = NULL;
	p->rv = mp_client_connect(p->address, KEY, KEYLEN, WAIT_MS, &c);
	if (p->rv == 0) {
		p->rv = exchange(c, true);
		mp_conn_close(c);
	}
	return NULL;
}

/* What one side sees when the other failed in the handshake. */
static bool
peer_gone(int rv)
{
	return rv == MP_EOF || rv == MP_ETRUNCATED || rv == -ECONNRESET ||
	    rv == -EPIPE || rv == MP_EAUTH || rv == -ENOMEM;
}

/*
 * The side that fails runs in this thread, and only this thread's
 * allocations count; the other side runs in a thread of its own. A side
 * that fails ends with -ENOMEM and the other sees the connection go.
 */
static void
sweep_handshake(const char *what, bool fail_client)
{
	mp_test_count_start();
	mp_listener_t *l;
	expect_ok(mp_listener_open("127.0.0.1:0", KEY, KEYLEN, &l));
	struct peer srv = { .l = l };
	struct peer cli = { .address = mp_listener_address(l) };
	struct peer *mine = fail_client ? &cli : &srv;
	struct peer *other = fail_client ? &srv : &cli;
	pthread_t self = pthread_self();
	mp__alloc_fail_only(&self);
	struct mp_test_sweep s;
	for (mp_test_sweep_start(&s, what); mp_test_sweep_next(&s);) {
		cr_assert_eq(pthread_create(&other->tid, NULL, fail_client ?
		    accept_one : connect_one, other), 0);
		mp_test_sweep_arm(&s);
		(fail_client ? connect_one : accept_one)(mine);
		mp_test_sweep_done(&s, mine->rv, 0, 0);
		cr_assert_eq(pthread_join(other->tid, NULL), 0);
		cr_assert(other->rv == 0 || (mine->rv != 0 &&
		    peer_gone(other->rv)), "allocation %lu: the other side "
		    "got %s", s.n, mp_err_name(other->rv));
	}
	mp__alloc_fail_only(NULL);
	/* The listener is still usable. */
	cr_assert_eq(pthread_create(&cli.tid, NULL, connect_one, &cli), 0);
	accept_one(&srv);
	cr_assert_eq(pthread_join(cli.tid, NULL), 0);
	expect_ok(srv.rv);
	expect_ok(cli.rv);
	mp_listener_close(l);
	mp_test_count_end();
}

Test(conn_alloc, client_connect)
{
	sweep_handshake("client connect + hi/ho", true);
}

Test(conn_alloc, listener_accept)
{
	sweep_handshake("listener accept + hi/ho", false);
}
