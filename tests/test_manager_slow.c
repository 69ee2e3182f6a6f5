/* SPDX-License-Identifier: MIT */
/* test_manager_slow.c: slow-sending and oversize-frame clients do not stall the manager server's other clients. */
#include "harness/mgr.h"

#include "conn/conn_internal.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

MP_TEST_SUITE(manager_slow);

/*
 * Every step is synchronised through the sockets, never by time: a byte
 * sent by a slow client is known to be taken by the server when its
 * socket's send queue is empty (mp_test_mgr_drained), and only then do
 * the other clients make their calls, so each of those calls completes
 * while the slow client is in the middle of its frame.
 */
#define N_GOOD 8

struct good {
	mp_conn_t *c[N_GOOD];
	char list[32];
	int64_t next;   /* the next int the good clients append */
};

static void
good_open(struct good *g, const char *path)
{
	mp_test_mgr_create(path, "list", NULL, g->list, sizeof(g->list));
	for (int i = 0; i < N_GOOD; i++) {
		g->c[i] = mp_test_mgr_channel(path);
	}
	g->next = 0;
}

/* Every good client makes one complete call. */
static void
good_round(struct good *g)
{
	for (int i = 0; i < N_GOOD; i++) {
		mp_obj_unref(mp_test_mgr_call(g->c[i], g->list, "append",
		    mp_tuple_of(1, mp_int(g->next++)), NULL));
	}
}

/* The list holds 0 .. next-1 in order, then the extra items given. */
static void
good_check(struct good *g, const char *const *extra, size_t n_extra)
{
	mp_obj_t *all = mp_test_mgr_call(g->c[0], g->list, "#GETVALUE", NULL,
	    NULL);
	cr_assert_eq(mp_obj_len(all), (size_t)g->next + n_extra);
	size_t e = 0;
	int64_t want = 0;
	for (size_t i = 0; i < mp_obj_len(all); i++) {
		mp_obj_t *it = mp_list_get(all, (ssize_t)i);
		if (mp_obj_type(it) == MP_TYPE_STR) {
			cr_assert_lt(e, n_extra);
			cr_assert_str_eq(mp_str_data(it, NULL), extra[e]);
			e++;
			continue;
		}
		int64_t v;
		expect_ok(mp_int_value(it, &v));
		cr_assert_eq(v, want++);
	}
	cr_assert_eq(e, n_extra);
	mp_obj_unref(all);
}

static void
good_close(struct good *g)
{
	for (int i = 0; i < N_GOOD; i++) {
		mp_conn_close(g->c[i]);
	}
}

/* Write p one byte at a time; after each, the others make a round. */
static void
trickle(int fd, const uint8_t *p, size_t n, struct good *g)
{
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(write(fd, p + i, 1), 1);
		mp_test_mgr_drained(fd);
		good_round(g);
	}
}

static int
raw_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* One whole frame from a blocking fd, into buf; its length. */
static size_t
raw_frame(int fd, uint8_t *buf, size_t cap)
{
	uint8_t h[4];
	cr_assert_eq(recv(fd, h, 4, MSG_WAITALL), 4);
	size_t n = (size_t)h[0] << 24 | (size_t)h[1] << 16 |
	    (size_t)h[2] << 8 | h[3];
	cr_assert_leq(n, cap);
	cr_assert_eq(recv(fd, buf, n, MSG_WAITALL), (ssize_t)n);
	return n;
}

static size_t
framed(uint8_t *out, const void *p, size_t n)
{
	out[0] = (uint8_t)(n >> 24);
	out[1] = (uint8_t)(n >> 16);
	out[2] = (uint8_t)(n >> 8);
	out[3] = (uint8_t)n;
	memcpy(out + 4, p, n);
	return n + 4;
}

/*
 * The handshake by hand, with the answer to the server's challenge sent
 * one byte at a time; returns the fd, authenticated.
 */
static int
slow_handshake(const char *path, struct good *g)
{
	static const char ch[] = "#CHALLENGE#";
	static const char wl[] = "#WELCOME#";
	const size_t clen = sizeof(ch) - 1;
	const size_t wlen = sizeof(wl) - 1;
	int fd = raw_connect(path);
	uint8_t in[300];
	uint8_t out[300];
	uint8_t ans[MP__AUTH_RESPONSE_MAX];
	size_t n = raw_frame(fd, in, sizeof(in));
	cr_assert(n > clen && memcmp(in, ch, clen) == 0);
	size_t a = mp__auth_answer(MP_TEST_MGR_KEY, strlen(MP_TEST_MGR_KEY),
	    in + clen, n - clen, ans);
	cr_assert_gt(a, 0);
	trickle(fd, out, framed(out, ans, a), g);
	n = raw_frame(fd, in, sizeof(in));
	cr_assert(n == wlen && memcmp(in, wl, wlen) == 0);
	uint8_t nonce[MP__AUTH_NONCE_LEN];
	expect_ok(mp__auth_nonce(nonce));
	memcpy(in, ch, clen);
	memcpy(in + clen, nonce, sizeof(nonce));
	trickle(fd, out, framed(out, in, clen + sizeof(nonce)), g);
	n = raw_frame(fd, in, sizeof(in));
	cr_assert(mp__auth_verify(MP_TEST_MGR_KEY, strlen(MP_TEST_MGR_KEY),
	    nonce, sizeof(nonce), in, n));
	trickle(fd, out, framed(out, wl, wlen), g);
	return fd;
}

/* Encode request (ident, method, args) as a frame into b. */
static void
encode_request(struct mp__buf *b, const char *ident, const char *method,
    mp_obj_t *args)
{
	mp_obj_t *req = mp__mgr_request(ident, method, args, NULL);
	expect_ok(mp__mgr_encode(b, req));
	mp_obj_unref(req);
}

static void
raw_expect_none(int fd)
{
	uint8_t buf[512];
	size_t n = raw_frame(fd, buf, sizeof(buf));
	mp_test_mgr_expect_none(buf, n);
}

Test(manager_slow, a_client_sending_byte_by_byte_stalls_nobody)
{
	struct mp_test_mgr srv;
	mp_test_mgr_start(&srv, NULL, NULL, NULL);
	struct good g;
	good_open(&g, srv.path);
	/* Its handshake, its accept_connection and a request, each byte
	 * followed by a call of every other client. */
	int fd = slow_handshake(srv.path, &g);
	struct mp__buf b = { 0 };
	encode_request(&b, NULL, "accept_connection",
	    mp_tuple_of(1, mp_str("Slow")));
	trickle(fd, b.data, b.len, &g);
	raw_expect_none(fd);
	char text[301];
	memset(text, 's', 300);
	text[300] = '\0';
	b.len = 0;
	encode_request(&b, g.list, "append", mp_tuple_of(1, mp_str(text)));
	size_t bytes = b.len;
	trickle(fd, b.data, b.len, &g);
	raw_expect_none(fd);
	mp__buf_fini(&b);
	const char *extra[] = { text };
	/* The slow item came last, after all the others' calls. */
	good_check(&g, extra, 1);
	cr_log_info("one client sent its handshake and a %zu-byte request "
	    "one byte at a time; the %d others completed %lld calls "
	    "meanwhile", bytes, N_GOOD, (long long)g.next);
	close(fd);
	good_close(&g);
	mp_test_mgr_stop(&srv);
}

/*
 * Sixteen slow clients at once, each in the middle of its own request:
 * every round, each sends one more byte, then the others make a call.
 */
#define N_SLOW 16

Test(manager_slow, many_slow_clients_in_the_middle_of_their_frames)
{
	struct mp_test_mgr srv;
	mp_test_mgr_start(&srv, NULL, NULL, NULL);
	struct good g;
	good_open(&g, srv.path);
	mp_conn_t *slow[N_SLOW];
	struct mp__buf b[N_SLOW];
	char texts[N_SLOW][32];
	const char *extra[N_SLOW];
	size_t longest = 0;
	for (int i = 0; i < N_SLOW; i++) {
		slow[i] = mp_test_mgr_channel(srv.path);
		snprintf(texts[i], sizeof(texts[i]), "slow%*d", 1 + i, i);
		extra[i] = texts[i];
		memset(&b[i], 0, sizeof(b[i]));
		encode_request(&b[i], g.list, "append",
		    mp_tuple_of(1, mp_str(texts[i])));
		longest = b[i].len > longest ? b[i].len : longest;
	}
	for (size_t at = 0; at < longest; at++) {
		for (int i = 0; i < N_SLOW; i++) {
			if (at < b[i].len) {
				int fd = mp_conn_fileno(slow[i]);
				cr_assert_eq(write(fd, b[i].data + at, 1), 1);
				mp_test_mgr_drained(fd);
			}
		}
		good_round(&g);
	}
	/* The shorter requests completed first: their items come in the
	 * order of their lengths, which grow with i. */
	for (int i = 0; i < N_SLOW; i++) {
		enum mp__mgr_kind kind;
		mp_obj_unref(mp_test_mgr_recv(slow[i], &kind));
		cr_assert_eq(kind, MP__MGR_RETURN);
		mp_conn_close(slow[i]);
		mp__buf_fini(&b[i]);
	}
	mp_obj_t *all = mp_test_mgr_call(g.c[0], g.list, "#GETVALUE", NULL,
	    NULL);
	size_t strs = 0;
	for (size_t i = 0; i < mp_obj_len(all); i++) {
		mp_obj_t *it = mp_list_get(all, (ssize_t)i);
		if (mp_obj_type(it) == MP_TYPE_STR) {
			cr_assert_lt(strs, N_SLOW);
			cr_assert_str_eq(mp_str_data(it, NULL), extra[strs]);
			strs++;
		}
	}
	cr_assert_eq(strs, N_SLOW);
	cr_assert_eq(mp_obj_len(all), (size_t)g.next + N_SLOW);
	mp_obj_unref(all);
	good_close(&g);
	mp_test_mgr_stop(&srv);
}

/* The server closed fd (after what it sent before); fails after 30 s. */
static void
expect_closed(int fd)
{
	uint8_t buf[4096];
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		cr_assert_eq(poll(&p, 1, MP_TEST_MGR_WAIT_MS), 1,
		    "the server kept the connection open");
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			return;
		}
		cr_assert_gt(n, 0);
	}
}

#define MAX_MESSAGE ((size_t)1 << 20)
#define N_EACH      25

enum bad {
	BIG_4,          /* 4-byte header: max_message + 1 */
	BIG_12,         /* -1, then a 64-bit length of 2^40 */
	NEGATIVE,       /* a 4-byte header below -1 */
	HS_BIG,         /* a 257-byte handshake message */
	N_BAD,
};

/* Open a connection of kind k and send its header. */
static int
bad_open(const char *path, enum bad k)
{
	static const uint8_t h4[4] = { 0x00, 0x10, 0x00, 0x01 };
	static const uint8_t h12[12] = { 0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0,
		0, 0, 0, 0 };
	static const uint8_t neg[4] = { 0x80, 0, 0, 0x05 };
	static const uint8_t hs[4] = { 0, 0, 0x01, 0x01 };
	_Static_assert(MAX_MESSAGE + 1 == 0x00100001, "h4 is the cap + 1");
	int fd;
	if (k == HS_BIG) {
		fd = raw_connect(path);
	} else {
		mp_conn_t *c = mp_test_mgr_channel(path);
		fd = dup(mp_conn_fileno(c));
		cr_assert_geq(fd, 0);
		mp_conn_close(c);
	}
	const uint8_t *p = k == BIG_4 ? h4 : k == BIG_12 ? h12 :
	    k == NEGATIVE ? neg : hs;
	size_t n = k == BIG_12 ? 12 : 4;
	cr_assert_eq(write(fd, p, n), (ssize_t)n);
	return fd;
}

Test(manager_slow, oversize_frames_are_refused_and_stall_nobody)
{
	struct mp_manager_server_opts opts = { .max_message = MAX_MESSAGE };
	struct mp_test_mgr srv;
	mp_test_mgr_start(&srv, &opts, NULL, NULL);
	struct good g;
	good_open(&g, srv.path);
	/*
	 * A frame of exactly the cap, announced and then stalled half-way:
	 * allowed, and it must not hold anybody up while it waits.
	 */
	mp_conn_t *half = mp_test_mgr_channel(srv.path);
	size_t body = MAX_MESSAGE;
	uint8_t *frame = calloc(1, 4 + body / 2);
	cr_assert_not_null(frame);
	frame[1] = (uint8_t)(body >> 16);
	cr_assert_eq(send(mp_conn_fileno(half), frame, 4 + body / 2,
	    MSG_NOSIGNAL), (ssize_t)(4 + body / 2));
	free(frame);
	mp_test_mgr_drained(mp_conn_fileno(half));
	good_round(&g);
	/* Bad headers of every kind, interleaved with the others' calls. */
	int fds[N_BAD * N_EACH];
	for (int i = 0; i < N_BAD * N_EACH; i++) {
		fds[i] = bad_open(srv.path, (enum bad)(i % N_BAD));
		mp_test_mgr_drained(fds[i]);
		good_round(&g);
	}
	for (int i = 0; i < N_BAD * N_EACH; i++) {
		expect_closed(fds[i]);
		close(fds[i]);
	}
	good_round(&g);
	/* The stalled frame's connection is still served (nothing came). */
	struct pollfd p = { .fd = mp_conn_fileno(half), .events = POLLIN };
	cr_assert_eq(poll(&p, 1, 0), 0, "the half frame's connection was "
	    "answered or closed");
	mp_conn_close(half);
	good_round(&g);
	good_check(&g, NULL, 0);
	cr_log_info("%d oversize or malformed headers (%d of each kind) "
	    "closed, a cap-sized frame stalled half-way; %d other clients "
	    "completed %lld calls meanwhile", N_BAD * N_EACH, N_EACH, N_GOOD,
	    (long long)g.next);
	good_close(&g);
	mp_test_mgr_stop(&srv);
}
