/* SPDX-License-Identifier: MIT */
/* test_manager_load.c: the manager server with 10,000 clients at once, and 1,000 blocked getters released in order. */
#include "harness/mgr.h"

#include "conn/conn_internal.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>

MP_TEST_SUITE(manager_load);

/*
 * 10,000 clients, all connected at once: non-blocking Unix sockets in
 * this process, each doing the real handshake (both challenges, HMAC with
 * the key), accept_connection and then, once every one of them is in,
 * list.append(its number). The server (a child process) holds them all;
 * the list must end with each number exactly once.
 */
#define N_CLIENTS   10000
#define IN_FLIGHT   64          /* handshakes at once: the backlog is 128 */
#define FRAME_MAX   512

enum step {
	S_NEW,          /* not connected yet */
	S_CHALLENGE,    /* read the server's challenge, answer it */
	S_WELCOME,      /* read its verdict, send our challenge */
	S_ANSWER,       /* check its answer; WELCOME + accept_connection */
	S_ACCEPTED,     /* read accept_connection's reply */
	S_IDLE,         /* a channel, waiting for the test's go */
	S_REPLY,        /* read the append's reply */
	S_DONE,
};

struct nb {
	int fd;
	enum step step;
	size_t inlen;
	uint8_t in[FRAME_MAX];
	uint8_t nonce[MP__AUTH_NONCE_LEN];
};

#define CHALLENGE "#CHALLENGE#"
#define WELCOME "#WELCOME#"

/* Send one whole frame; the socket is fresh, so it does not fill. */
static void
nb_send(struct nb *c, const void *p, size_t n)
{
	uint8_t f[4 + FRAME_MAX];
	cr_assert_leq(n, FRAME_MAX);
	f[0] = (uint8_t)(n >> 24);
	f[1] = (uint8_t)(n >> 16);
	f[2] = (uint8_t)(n >> 8);
	f[3] = (uint8_t)n;
	memcpy(f + 4, p, n);
	cr_assert_eq(send(c->fd, f, n + 4, MSG_NOSIGNAL), (ssize_t)(n + 4),
	    "send: errno %d", errno);
}

static void
nb_send_request(struct nb *c, const char *ident, const char *method,
    mp_obj_t *args)
{
	struct mp__buf b = { 0 };
	mp_obj_t *req = mp__mgr_request(ident, method, args, NULL);
	expect_ok(mp__mgr_encode(&b, req));
	cr_assert_eq(send(c->fd, b.data, b.len, MSG_NOSIGNAL), (ssize_t)b.len);
	mp__buf_fini(&b);
	mp_obj_unref(req);
}

/* One frame of c arrived: take the next step. */
static void
nb_frame(struct nb *c, const uint8_t *p, size_t n)
{
	static const size_t clen = sizeof(CHALLENGE) - 1;
	static const size_t wlen = sizeof(WELCOME) - 1;
	uint8_t out[FRAME_MAX];
	switch (c->step) {
	case S_CHALLENGE: {
		cr_assert(n > clen && memcmp(p, CHALLENGE, clen) == 0);
		size_t r = mp__auth_answer(MP_TEST_MGR_KEY,
		    strlen(MP_TEST_MGR_KEY), p + clen, n - clen, out);
		cr_assert_gt(r, 0);
		nb_send(c, out, r);
		c->step = S_WELCOME;
		break;
	}
	case S_WELCOME:
		cr_assert(n == wlen && memcmp(p, WELCOME, wlen) == 0,
		    "the server refused the answer");
		expect_ok(mp__auth_nonce(c->nonce));
		memcpy(out, CHALLENGE, clen);
		memcpy(out + clen, c->nonce, sizeof(c->nonce));
		nb_send(c, out, clen + sizeof(c->nonce));
		c->step = S_ANSWER;
		break;
	case S_ANSWER:
		cr_assert(mp__auth_verify(MP_TEST_MGR_KEY,
		    strlen(MP_TEST_MGR_KEY), c->nonce, sizeof(c->nonce), p, n),
		    "the server's answer is wrong");
		nb_send(c, WELCOME, wlen);
		nb_send_request(c, NULL, "accept_connection",
		    mp_tuple_of(1, mp_str("MainProcess")));
		c->step = S_ACCEPTED;
		break;
	case S_ACCEPTED:
	case S_REPLY:
		mp_test_mgr_expect_none(p, n);
		c->step = c->step == S_ACCEPTED ? S_IDLE : S_DONE;
		break;
	default:
		cr_assert_fail("a frame in step %d", (int)c->step);
	}
}

/* Readable: take what arrived, handle whole frames. */
static void
nb_read(struct nb *c)
{
	for (;;) {
		ssize_t r = recv(c->fd, c->in + c->inlen,
		    sizeof(c->in) - c->inlen, 0);
		if (r < 0 && errno == EAGAIN) {
			return;
		}
		cr_assert_gt(r, 0, "client %d: the server closed (errno %d)",
		    c->fd, errno);
		c->inlen += (size_t)r;
		while (c->inlen >= 4) {
			size_t n = (size_t)c->in[0] << 24 |
			    (size_t)c->in[1] << 16 | (size_t)c->in[2] << 8 |
			    c->in[3];
			cr_assert_leq(n, FRAME_MAX - 4);
			if (c->inlen < 4 + n) {
				break;
			}
			nb_frame(c, c->in + 4, n);
			c->inlen -= 4 + n;
			memmove(c->in, c->in + 4 + n, c->inlen);
		}
	}
}

/* Connect c (false: the backlog is full, try later). */
static bool
nb_connect(struct nb *c, const struct sockaddr_un *sa, int ep)
{
	if (c->fd < 0) {
		c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		cr_assert_geq(c->fd, 0, "socket: errno %d", errno);
	}
	if (connect(c->fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0) {
		cr_assert_eq(errno, EAGAIN, "connect: errno %d", errno);
		return false;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev), 0);
	c->step = S_CHALLENGE;
	return true;
}

/* Serve readiness events until count(clients) says all moved on. */
static void
nb_pump(int ep, size_t *busy)
{
	struct epoll_event evs[256];
	int n = epoll_wait(ep, evs, 256, MP_TEST_MGR_WAIT_MS);
	cr_assert_gt(n, 0, "no client heard from the server for %d s",
	    MP_TEST_MGR_WAIT_MS / 1000);
	for (int i = 0; i < n; i++) {
		struct nb *c = evs[i].data.ptr;
		enum step before = c->step;
		nb_read(c);
		if (before != c->step && (c->step == S_IDLE ||
		    c->step == S_DONE)) {
			(*busy)--;
		}
	}
}

Test(manager_load, ten_thousand_clients_at_once, .timeout = 300)
{
	mp_test_raise_nofile(N_CLIENTS + 200);
	struct mp_test_mgr srv;
	mp_test_mgr_start(&srv, NULL, NULL, NULL);
	char list[32];
	mp_test_mgr_create(srv.path, "list", NULL, list, sizeof(list));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", srv.path);
	struct nb *cs = calloc(N_CLIENTS, sizeof(*cs));
	cr_assert_not_null(cs);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	cr_assert_geq(ep, 0);
	int64_t t0 = mp_test_now_ms();
	size_t next = 0;
	size_t busy = 0;
	for (size_t i = 0; i < N_CLIENTS; i++) {
		cs[i].fd = -1;
	}
	while (next < N_CLIENTS || busy > 0) {
		while (next < N_CLIENTS && busy < IN_FLIGHT &&
		    nb_connect(&cs[next], &sa, ep)) {
			next++;
			busy++;
		}
		nb_pump(ep, &busy);
	}
	int64_t t1 = mp_test_now_ms();
	/* All 10,000 are channels now; each makes one call. */
	for (size_t i = 0; i < N_CLIENTS; i++) {
		nb_send_request(&cs[i], list, "append",
		    mp_tuple_of(1, mp_int((int64_t)i)));
		cs[i].step = S_REPLY;
	}
	busy = N_CLIENTS;
	while (busy > 0) {
		nb_pump(ep, &busy);
	}
	int64_t t2 = mp_test_now_ms();
	/* Still every connection open: the list holds each number once. */
	mp_conn_t *c = mp_test_mgr_channel(srv.path);
	mp_obj_t *all = mp_test_mgr_call(c, list, "#GETVALUE", NULL, NULL);
	cr_assert_eq(mp_obj_len(all), N_CLIENTS);
	uint8_t *seen = calloc(N_CLIENTS, 1);
	cr_assert_not_null(seen);
	for (size_t i = 0; i < N_CLIENTS; i++) {
		int64_t v;
		expect_ok(mp_int_value(mp_list_get(all, (ssize_t)i), &v));
		cr_assert(v >= 0 && v < N_CLIENTS && !seen[v]);
		seen[v] = 1;
	}
	free(seen);
	mp_obj_unref(all);
	mp_conn_close(c);
	for (size_t i = 0; i < N_CLIENTS; i++) {
		close(cs[i].fd);
	}
	close(ep);
	free(cs);
	cr_log_info("%d clients: connected and authenticated in %lld ms, "
	    "one append each (all %d open) in %lld ms", N_CLIENTS,
	    (long long)(t1 - t0), N_CLIENTS, (long long)(t2 - t1));
	mp_test_mgr_stop(&srv);
}

/*
 * 1,000 getters block on one manager Queue, one after the other (each
 * get is sent only once the server has read the previous one: SIOCOUTQ),
 * and every tenth hangs up while it waits. Then 900 items are put. The
 * server retries a changed object's parked calls oldest first
 * (server_wait.c), so the k-th getter still waiting receives item k:
 * strict FIFO. (CPython's server blocks one thread per getter on a
 * Condition; notify wakes the longest waiter first, but a woken thread
 * must retake the queue's mutex, so the order is usual there, not
 * promised.)
 */
#define N_GETTERS 1000

Test(manager_load, thousand_blocked_getters_are_served_in_order,
    .timeout = 300)
{
	mp_test_raise_nofile(N_GETTERS + 200);
	struct mp_test_mgr srv;
	mp_test_mgr_start(&srv, NULL, NULL, NULL);
	char q[32];
	mp_test_mgr_create(srv.path, "Queue", NULL, q, sizeof(q));
	mp_conn_t **g = calloc(N_GETTERS, sizeof(*g));
	cr_assert_not_null(g);
	int64_t t0 = mp_test_now_ms();
	for (int i = 0; i < N_GETTERS; i++) {
		g[i] = mp_test_mgr_channel(srv.path);
		mp_test_mgr_send(g[i], q, "get", NULL, NULL);
		mp_test_mgr_drained(mp_conn_fileno(g[i]));
	}
	int live = 0;
	for (int i = 0; i < N_GETTERS; i++) {
		if (i % 10 == 3) {
			mp_conn_close(g[i]);
			g[i] = NULL;
		} else {
			live++;
		}
	}
	mp_conn_t *ctl = mp_test_mgr_channel(srv.path);
	for (int k = 0; k < live; k++) {
		mp_obj_unref(mp_test_mgr_call(ctl, q, "put",
		    mp_tuple_of(1, mp_int(k)), NULL));
	}
	int k = 0;
	for (int i = 0; i < N_GETTERS; i++) {
		if (g[i] == NULL) {
			continue;
		}
		enum mp__mgr_kind kind;
		mp_obj_t *r = mp_test_mgr_recv(g[i], &kind);
		cr_assert_eq(kind, MP__MGR_RETURN);
		int64_t v;
		expect_ok(mp_int_value(r, &v));
		cr_assert_eq(v, k, "getter %d (the %d-th waiting) got item "
		    "%lld", i, k, (long long)v);
		mp_obj_unref(r);
		mp_conn_close(g[i]);
		k++;
	}
	mp_obj_t *n = mp_test_mgr_call(ctl, q, "qsize", NULL, NULL);
	int64_t left;
	expect_ok(mp_int_value(n, &left));
	cr_assert_eq(left, 0);
	mp_obj_unref(n);
	cr_log_info("%d getters blocked (%d hung up), %d items reached them "
	    "in order, %lld ms", N_GETTERS, N_GETTERS - live, live,
	    (long long)(mp_test_now_ms() - t0));
	mp_conn_close(ctl);
	free(g);
	mp_test_mgr_stop(&srv);
}
