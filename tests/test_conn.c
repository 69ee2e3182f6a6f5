/* SPDX-License-Identifier: MIT */
/* test_conn.c: framing, buffering, poll/wait, pipes, Listener/Client and the HMAC handshake. */
#include "harness/harness.h"
#include "conn/conn_internal.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

MP_TEST_SUITE(conn);

/* ---- helpers ---------------------------------------------------------- */

static void
raw_write(mp_conn_t *c, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t w = write(mp_conn_fileno(c), b, n);
		cr_assert(w > 0, "write: %s", strerror(errno));
		b += w;
		n -= (size_t)w;
	}
}

/* Read exactly n bytes from c's fd (bypassing the framing). */
static void
raw_read(mp_conn_t *c, void *p, size_t n)
{
	uint8_t *b = p;
	while (n > 0) {
		struct pollfd pfd = { .fd = mp_conn_fileno(c),
			.events = POLLIN };
		cr_assert(poll(&pfd, 1, 10000) == 1, "nothing to read");
		ssize_t r = read(mp_conn_fileno(c), b, n);
		cr_assert(r > 0, "read gave %zd", r);
		b += r;
		n -= (size_t)r;
	}
}

static size_t
unhex(const char *hex, uint8_t *out)
{
	size_t n = 0;
	while (*hex != '\0') {
		if (*hex == ' ') {
			hex++;
			continue;
		}
		unsigned v;
		cr_assert(sscanf(hex, "%2x", &v) == 1);
		out[n++] = (uint8_t)v;
		hex += 2;
	}
	return n;
}

static void
expect_raw(mp_conn_t *c, const char *hex)
{
	uint8_t want[512];
	uint8_t got[512];
	size_t n = unhex(hex, want);
	raw_read(c, got, n);
	cr_assert(memcmp(got, want, n) == 0, "bytes differ from %s", hex);
}

static void
expect_msg(mp_conn_t *c, const char *want)
{
	void *buf;
	size_t len;
	expect_ok(mp_conn_recv_bytes(c, 1 << 20, 10000, &buf, &len));
	cr_assert_eq(len, strlen(want));
	cr_assert(memcmp(buf, want, len) == 0);
	mp_free(buf);
}

/* ---- framing ---------------------------------------------------------- */

Test(conn, header_is_four_bytes_big_endian)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	/* Before the first message: the frames then go through the fd
	 * (a pipe's messages otherwise travel in shared memory). */
	(void)mp_conn_fileno(b);
	expect_ok(mp_conn_send_bytes(a, "abc", 3));
	expect_raw(b, "00000003 616263");
	uint8_t big[300];
	memset(big, 'x', sizeof(big));
	expect_ok(mp_conn_send_bytes(a, big, sizeof(big)));
	expect_raw(b, "0000012c 7878");
	mp_conn_close(a);
	mp_conn_close(b);
}

Test(conn, zero_length_message_is_legal)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	(void)mp_conn_fileno(b); /* the frames go through the fd */
	expect_ok(mp_conn_send_bytes(a, NULL, 0));
	expect_raw(b, "00000000");
	expect_ok(mp_conn_send_bytes(a, "", 0));
	void *buf = NULL;
	size_t len = 99;
	expect_ok(mp_conn_recv_bytes(b, 16, MP_FOREVER, &buf, &len));
	cr_assert_not_null(buf);
	cr_assert_eq(len, 0);
	mp_free(buf);
	mp_conn_close(a);
	mp_conn_close(b);
}

Test(conn, long_header_form_is_accepted_for_any_size)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	uint8_t frame[32];
	size_t n = unhex("ffffffff 0000000000000005 68656c6c6f", frame);
	raw_write(a, frame, n);
	expect_msg(b, "hello");
	/* The same split in single bytes: every header state is resumable. */
	for (size_t i = 0; i < n; i++) {
		raw_write(a, frame + i, 1);
		if (i + 1 < n) {
			void *buf;
			size_t len;
			expect_err(mp_conn_recv_bytes(b, 64, MP_NOWAIT, &buf,
			    &len), -EAGAIN);
		}
	}
	expect_msg(b, "hello");
	mp_conn_close(a);
	mp_conn_close(b);
}

Test(conn, negative_lengths_other_than_minus_one_are_eproto)
{
	const char *bad[] = { "80000000", "fffffffe" };
	for (size_t i = 0; i < MP__ARRAY_LEN(bad); i++) {
		mp_conn_t *a, *b;
		expect_ok(mp_pipe(&a, &b, true));
		uint8_t h[4];
		unhex(bad[i], h);
		raw_write(a, h, 4);
		void *buf;
		size_t len;
		expect_err(mp_conn_recv_bytes(b, 64, 1000, &buf, &len),
		    -EPROTO);
		cr_assert_eq(mp_conn_poll(b, MP_NOWAIT), 1,
		    "a bad header is ready: the receive fails at once");
		mp_conn_close(a);
		mp_conn_close(b);
	}
}

Test(conn, maxlen_refuses_and_keeps_the_message)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	expect_ok(mp_conn_send_bytes(a, "0123456789", 10));
	void *buf;
	size_t len;
	expect_err(mp_conn_recv_bytes(b, 9, 1000, &buf, &len), -EMSGSIZE);
	char small[4];
	expect_err(mp_conn_recv_bytes_into(b, small, sizeof(small), 1000, &len),
	    -EMSGSIZE);
	expect_msg(b, "0123456789");
	mp_conn_close(a);
	mp_conn_close(b);
}

Test(conn, many_small_frames_arrive_in_order)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	for (uint32_t i = 0; i < 5000; i++) {
		expect_ok(mp_conn_send_bytes(a, &i, sizeof(i)));
	}
	for (uint32_t i = 0; i < 5000; i++) {
		uint32_t v;
		size_t len;
		expect_ok(mp_conn_recv_bytes_into(b, &v, sizeof(v), MP_FOREVER,
		    &len));
		cr_assert_eq(len, sizeof(v));
		cr_assert_eq(v, i);
	}
	mp_conn_close(a);
	mp_conn_close(b);
}

Test(conn, large_messages_both_receive_forms)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	/* Past MP__CONN_ALLOC_AHEAD: the buffer grows as bytes arrive. */
	size_t n = 9 << 20;
	uint8_t *m = malloc(n);
	for (size_t i = 0; i < n; i++) {
		m[i] = (uint8_t)(i * 7);
	}
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		mp_conn_close(b);
		int rv = mp_conn_send_bytes(a, "s", 1);
		rv = rv ? rv : mp_conn_send_bytes(a, m, n);
		rv = rv ? rv : mp_conn_send_bytes(a, m, n);
		rv = rv ? rv : mp_conn_send_bytes(a, "e", 1);
		/* Freed so that valgrind's leak check of the child passes. */
		mp_conn_close(a);
		free(m);
		_exit(rv == 0 ? 0 : 1);
	}
	mp_conn_close(a);
	expect_msg(b, "s");
	void *buf;
	size_t len;
	expect_ok(mp_conn_recv_bytes(b, n, 10000, &buf, &len));
	cr_assert_eq(len, n);
	cr_assert(memcmp(buf, m, n) == 0);
	memset(buf, 0, n);
	expect_ok(mp_conn_recv_bytes_into(b, buf, n, 10000, &len));
	cr_assert_eq(len, n);
	cr_assert(memcmp(buf, m, n) == 0);
	mp_free(buf);
	expect_msg(b, "e");
	expect_err(mp_conn_recv_bytes(b, 16, 10000, &buf, &len), MP_EOF);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	mp_conn_close(b);
	free(m);
}

/* The largest block asked of the allocator while it is tracked. */
static atomic_size_t biggest;

static void *
track_malloc(size_t n)
{
	size_t b = atomic_load(&biggest);
	while (n > b && !atomic_compare_exchange_weak(&biggest, &b, n)) {
	}
	return malloc(n);
}

static void *
track_realloc(void *p, size_t n)
{
	size_t b = atomic_load(&biggest);
	while (n > b && !atomic_compare_exchange_weak(&biggest, &b, n)) {
	}
	return realloc(p, n);
}

/*
 * A peer's header announcing 200 MiB, then 5 bytes and the end: the
 * receiver must not allocate what was announced (found by
 * tests/fuzz/fuzz_frame), and reports the truncation.
 */
Test(conn, a_header_alone_allocates_little)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	uint8_t frame[16];
	size_t n = unhex("0c800000 68656c6c6f", frame);
	raw_write(a, frame, n);
	mp_conn_close(a);
	atomic_store(&biggest, 0);
	mp_set_allocator(track_malloc, track_realloc, free);
	void *buf;
	size_t len;
	int rv = mp_conn_recv_bytes(b, MP_CONN_MAX_MESSAGE_DEFAULT,
	    MP_FOREVER, &buf, &len);
	mp_set_allocator(NULL, NULL, NULL);
	expect_err(rv, MP_ETRUNCATED);
	cr_assert_leq(atomic_load(&biggest), MP__CONN_ALLOC_AHEAD);
	mp_conn_close(b);
}

/* ---- end of stream ----------------------------------------------------- */

Test(conn, eof_at_a_boundary_is_mp_eof)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	expect_ok(mp_conn_send_bytes(a, "last", 4));
	mp_conn_close(a);
	expect_msg(b, "last");
	void *buf;
	size_t len;
	expect_err(mp_conn_recv_bytes(b, 16, 1000, &buf, &len), MP_EOF);
	expect_err(mp_conn_recv_bytes(b, 16, MP_FOREVER, &buf, &len), MP_EOF);
	cr_assert_eq(mp_conn_poll(b, MP_NOWAIT), 1);
	mp_conn_close(b);
}

static void
truncated_case(const char *hex, size_t extra_payload)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	uint8_t frame[64];
	size_t n = unhex(hex, frame);
	raw_write(a, frame, n);
	if (extra_payload > 0) {
		uint8_t *p = calloc(1, extra_payload);
		raw_write(a, p, extra_payload);
		free(p);
	}
	mp_conn_close(a);
	void *buf;
	size_t len;
	expect_err(mp_conn_recv_bytes(b, 1 << 21, MP_FOREVER, &buf, &len),
	    MP_ETRUNCATED);
	mp_conn_close(b);
}

Test(conn, eof_mid_frame_is_mp_etruncated)
{
	truncated_case("0000", 0);                   /* in the header */
	truncated_case("ffffffff 0000", 0);          /* in the long header */
	truncated_case("0000000a 616263", 0);        /* in a small payload */
	truncated_case("00100000", 100000);          /* in a large payload */
}

Test(conn, send_to_a_closed_peer_is_epipe_without_sigpipe)
{
	for (int duplex = 0; duplex <= 1; duplex++) {
		mp_conn_t *a, *b;
		expect_ok(mp_pipe(&a, &b, duplex));
		/* b writes in both kinds; a is the read end of a plain pipe. */
		mp_conn_close(a);
		expect_err(mp_conn_send_bytes(b, "x", 1), -EPIPE);
		uint8_t *big = calloc(1, 1 << 20);
		expect_err(mp_conn_send_bytes(b, big, 1 << 20), -EPIPE);
		free(big);
		sigset_t pending;
		sigpending(&pending);
		cr_assert(!sigismember(&pending, SIGPIPE));
		mp_conn_close(b);
	}
}

/* ---- timeouts, poll and wait ----------------------------------------- */

Test(conn, receive_timeouts)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	void *buf;
	size_t len;
	char small[8];
	expect_err(mp_conn_recv_bytes(b, 16, MP_NOWAIT, &buf, &len), -EAGAIN);
	expect_err(mp_conn_recv_bytes(b, 16, 20, &buf, &len), -ETIMEDOUT);
	expect_err(mp_conn_recv_bytes_into(b, small, 8, 20, &len), -ETIMEDOUT);
	cr_assert_eq(mp_conn_poll(b, MP_NOWAIT), 0);
	cr_assert_eq(mp_conn_poll(b, 20), 0);
	mp_conn_close(a);
	mp_conn_close(b);
}

Test(conn, timeout_mid_message_keeps_the_part)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	raw_write(a, "\0\0\0\x05he", 6);
	void *buf;
	size_t len;
	expect_err(mp_conn_recv_bytes(b, 16, 20, &buf, &len), -ETIMEDOUT);
	cr_assert_eq(mp_conn_poll(b, MP_NOWAIT), 0);
	raw_write(a, "llo", 3);
	expect_msg(b, "hello");

	/* A large one, parked in the connection by the _into form. */
	size_t n = 200000;
	uint8_t *m = malloc(n);
	for (size_t i = 0; i < n; i++) {
		m[i] = (uint8_t)(i ^ (i >> 8));
	}
	uint8_t h[4] = { 0, (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };
	raw_write(a, h, 4);
	raw_write(a, m, 150000);
	uint8_t *dst = malloc(n);
	expect_err(mp_conn_recv_bytes_into(b, dst, n, 20, &len), -ETIMEDOUT);
	expect_err(mp_conn_recv_bytes(b, n, MP_NOWAIT, &buf, &len), -EAGAIN);
	raw_write(a, m + 150000, n - 150000);
	expect_ok(mp_conn_recv_bytes(b, n, 10000, &buf, &len));
	cr_assert_eq(len, n);
	cr_assert(memcmp(buf, m, n) == 0);
	mp_free(buf);
	free(dst);
	free(m);
	mp_conn_close(a);
	mp_conn_close(b);
}

Test(conn, poll_sees_buffered_messages)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	expect_ok(mp_conn_send_bytes(a, "one", 3));
	expect_ok(mp_conn_send_bytes(a, "two", 3));
	cr_assert_eq(mp_conn_poll(b, 1000), 1);
	expect_msg(b, "one"); /* the read took both frames */
	struct pollfd pfd = { .fd = mp_conn_fileno(b), .events = POLLIN };
	cr_assert_eq(poll(&pfd, 1, 0), 0, "the fd itself is drained");
	cr_assert_eq(mp_conn_poll(b, MP_NOWAIT), 1);
	bool ready[1];
	cr_assert_eq(mp_conn_wait(&b, 1, MP_FOREVER, ready), 1);
	cr_assert(ready[0]);
	expect_msg(b, "two");
	cr_assert_eq(mp_conn_poll(b, MP_NOWAIT), 0);
	mp_conn_close(a);
	mp_conn_close(b);
}

Test(conn, wait_on_many)
{
	mp_conn_t *a[3], *b[3];
	for (int i = 0; i < 3; i++) {
		expect_ok(mp_pipe(&b[i], &a[i], i != 1));
	}
	bool ready[3] = { true, true, true };
	cr_assert_eq(mp_conn_wait(b, 3, 20, ready), 0);
	cr_assert(!ready[0] && !ready[1] && !ready[2]);
	cr_assert_eq(mp_conn_wait(b, 3, MP_NOWAIT, ready), 0);
	expect_ok(mp_conn_send_bytes(a[1], "x", 1));
	cr_assert_eq(mp_conn_wait(b, 3, MP_FOREVER, ready), 1);
	cr_assert(!ready[0] && ready[1] && !ready[2]);
	expect_ok(mp_conn_send_bytes(a[2], "y", 1));
	expect_ok(mp_conn_send_bytes(a[2], "z", 1));
	expect_msg(b[2], "y");
	/* b[2] now holds "z" in its buffer only; b[1] is readable on its fd. */
	cr_assert_eq(mp_conn_wait(b, 3, 1000, ready), 2);
	cr_assert(!ready[0] && ready[1] && ready[2]);
	mp_conn_close(a[0]); /* EOF counts as ready */
	cr_assert_eq(mp_conn_wait(b, 1, 1000, ready), 1);
	expect_err(mp_conn_wait(b, 0, MP_FOREVER, ready), -EINVAL);
	cr_assert_eq(mp_conn_wait(b, 0, 0, ready), 0);
	mp_conn_close(b[0]);
	for (int i = 1; i < 3; i++) {
		mp_conn_close(a[i]);
		mp_conn_close(b[i]);
	}
}

Test(conn, wait_wakes_when_another_process_sends)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	mp_conn_t *ga, *gb; /* the child waits for "go" before it sends */
	expect_ok(mp_pipe(&ga, &gb, false));
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		void *buf;
		size_t len;
		int rv = mp_conn_recv_bytes(ga, 16, 10000, &buf, &len);
		rv = rv ? rv : mp_conn_send_bytes(a, "late", 4);
		_exit(rv == 0 ? 0 : 1);
	}
	mp_conn_close(ga);
	bool ready[1];
	cr_assert_eq(mp_conn_wait(&b, 1, MP_NOWAIT, ready), 0);
	expect_ok(mp_conn_send_bytes(gb, "go", 2));
	cr_assert_eq(mp_conn_wait(&b, 1, 10000, ready), 1);
	expect_msg(b, "late");
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	mp_conn_close(gb);
	mp_conn_close(a);
	mp_conn_close(b);
}

/* ---- pipes and fds ----------------------------------------------------- */

Test(conn, one_way_pipe_is_read_end_then_write_end)
{
	mp_conn_t *r, *w;
	expect_ok(mp_pipe(&r, &w, false));
	cr_assert(mp_conn_readable(r) && !mp_conn_writable(r));
	cr_assert(!mp_conn_readable(w) && mp_conn_writable(w));
	expect_err(mp_conn_send_bytes(r, "x", 1), -EBADF);
	void *buf;
	size_t len;
	expect_err(mp_conn_recv_bytes(w, 16, 0, &buf, &len), -EBADF);
	expect_err(mp_conn_poll(w, 0), -EBADF);
	expect_ok(mp_conn_send_bytes(w, "through", 7));
	expect_msg(r, "through");
	cr_assert(fcntl(mp_conn_fileno(r), F_GETFD) & FD_CLOEXEC);
	cr_assert(fcntl(mp_conn_fileno(w), F_GETFD) & FD_CLOEXEC);
	mp_conn_close(r);
	mp_conn_close(w);
}

Test(conn, duplex_pipe_goes_both_ways)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	cr_assert(mp_conn_readable(a) && mp_conn_writable(a));
	expect_ok(mp_conn_send_bytes(a, "ping", 4));
	expect_msg(b, "ping");
	expect_ok(mp_conn_send_bytes(b, "pong", 4));
	expect_msg(a, "pong");
	cr_assert(fcntl(mp_conn_fileno(a), F_GETFD) & FD_CLOEXEC);
	mp_conn_close(a);
	mp_conn_close(b);
	mp_conn_close(NULL);
}

Test(conn, open_fd_takes_a_socket_and_refuses_a_closed_fd)
{
	int sv[2];
	cr_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	mp_conn_t *a, *b;
	expect_ok(mp_conn_open_fd(sv[0], &a));
	expect_ok(mp_conn_open_fd(sv[1], &b));
	cr_assert_eq(mp_conn_fileno(a), sv[0]);
	expect_ok(mp_conn_send_bytes(a, "fd", 2));
	expect_msg(b, "fd");
	mp_conn_close(a);
	mp_conn_close(b);
	mp_conn_t *c = NULL;
	expect_err(mp_conn_open_fd(sv[0], &c), -EBADF);
	cr_assert_null(c);
}

Test(conn, max_message_setting)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	cr_assert_eq(mp_conn_max_message(a), MP_CONN_MAX_MESSAGE_DEFAULT);
	mp_conn_set_max_message(a, 100);
	cr_assert_eq(mp_conn_max_message(a), 100);
	mp_conn_set_max_message(a, 0);
	cr_assert_eq(mp_conn_max_message(a), MP_CONN_MAX_MESSAGE_DEFAULT);
	mp_conn_close(a);
	mp_conn_close(b);
}

/* ---- the handshake, byte for byte (research §2.7, key "secret") -------- */

#define KEY "secret"
#define KEYLEN 6
#define LEGACY_CHALLENGE "0000001f 234348414c4c454e474523 " \
	"000102030405060708090a0b0c0d0e0f10111213"
#define MD5_RESPONSE "00000010 7defa9cc46abc3583325d17ccda75190"
#define MODERN_CHALLENGE "0000003b 234348414c4c454e474523 7b7368613235367d " \
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" \
	"2021222324252627"
#define SHA256_RESPONSE "00000028 7b7368613235367d fc57fbe650d6124b98215e7b" \
	"5d197d5807ad69982d275a9735ea2d56f1fa6989"
#define MD5_TO_MODERN "00000010 8e48d2bb349b4b72b9382999ed5b62eb"
#define WELCOME_FRAME "00000009 2357454c434f4d4523"
#define FAILURE_FRAME "00000009 234641494c55524523"

static void
raw_hex(mp_conn_t *c, const char *hex)
{
	uint8_t b[512];
	size_t n = unhex(hex, b);
	raw_write(c, b, n);
}

Test(conn, answer_legacy_challenge_with_raw_md5)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	raw_hex(a, LEGACY_CHALLENGE);
	raw_hex(a, WELCOME_FRAME);
	expect_ok(mp_conn_answer_challenge(b, KEY, KEYLEN, 5000));
	expect_raw(a, MD5_RESPONSE);
	mp_conn_close(a);
	mp_conn_close(b);
}

Test(conn, answer_modern_challenge_with_sha256)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	raw_hex(a, MODERN_CHALLENGE);
	raw_hex(a, WELCOME_FRAME);
	expect_ok(mp_conn_answer_challenge(b, KEY, KEYLEN, 5000));
	expect_raw(a, SHA256_RESPONSE);
	mp_conn_close(a);
	mp_conn_close(b);
}

static void
deliver_case(const char *nonce_hex, const char *challenge, const char *resp,
    int want, const char *verdict)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	uint8_t nonce[64];
	size_t n = unhex(nonce_hex, nonce);
	raw_hex(a, resp);
	expect_err(mp__conn_deliver_nonce(b, KEY, KEYLEN, nonce, n,
	    mp__deadline_from_timeout(5000)), want);
	expect_raw(a, challenge);
	expect_raw(a, verdict);
	mp_conn_close(a);
	mp_conn_close(b);
}

#define NONCE20 "000102030405060708090a0b0c0d0e0f10111213"
#define NONCE48 "7b7368613235367d" \
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" \
	"2021222324252627"

Test(conn, deliver_accepts_every_version_s_response)
{
	/* 3.12+ client: {sha256} + HMAC-SHA256. */
	deliver_case(NONCE48, MODERN_CHALLENGE, SHA256_RESPONSE, 0,
	    WELCOME_FRAME);
	/* 3.8 to 3.11 client: raw HMAC-MD5 over the whole 48 bytes. */
	deliver_case(NONCE48, MODERN_CHALLENGE, MD5_TO_MODERN, 0,
	    WELCOME_FRAME);
	/* The legacy 20-byte challenge and its raw MD5 answer. */
	deliver_case(NONCE20, LEGACY_CHALLENGE, MD5_RESPONSE, 0,
	    WELCOME_FRAME);
}

Test(conn, deliver_refuses_wrong_responses_with_failure)
{
	/* The MD5 of another nonce. */
	deliver_case(NONCE48, MODERN_CHALLENGE, MD5_RESPONSE, MP_EAUTH,
	    FAILURE_FRAME);
	/* A sha256 MAC relabelled as sha384 (wrong length for it). */
	deliver_case(NONCE48, MODERN_CHALLENGE, "00000028 7b7368613338347d "
	    "fc57fbe650d6124b98215e7b5d197d5807ad69982d275a9735ea2d56f1fa6989",
	    MP_EAUTH, FAILURE_FRAME);
	/* An unknown digest, garbage, and an empty response. */
	deliver_case(NONCE48, MODERN_CHALLENGE, "00000009 7b736861317d414243",
	    MP_EAUTH, FAILURE_FRAME);
	deliver_case(NONCE48, MODERN_CHALLENGE, "00000003 414243", MP_EAUTH,
	    FAILURE_FRAME);
	deliver_case(NONCE48, MODERN_CHALLENGE, "00000000", MP_EAUTH,
	    FAILURE_FRAME);
}

Test(conn, deliver_refuses_an_oversized_response)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	uint8_t big[4 + 257] = { 0, 0, 1, 1 };
	raw_write(a, big, sizeof(big));
	expect_err(mp_conn_deliver_challenge(b, KEY, KEYLEN, 5000), MP_EAUTH);
	uint8_t ch[4 + 59];
	raw_read(a, ch, sizeof(ch));
	cr_assert(memcmp(ch + 4, "#CHALLENGE#{sha256}", 19) == 0);
	expect_raw(a, FAILURE_FRAME);
	mp_conn_close(a);
	mp_conn_close(b);
}

static void
answer_refuses(const char *hex)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	raw_hex(a, hex);
	expect_err(mp_conn_answer_challenge(b, KEY, KEYLEN, 5000), MP_EAUTH);
	struct pollfd pfd = { .fd = mp_conn_fileno(a), .events = POLLIN };
	cr_assert_eq(poll(&pfd, 1, 0), 0, "no response was sent");
	mp_conn_close(a);
	mp_conn_close(b);
}

Test(conn, answer_refuses_garbage_challenges)
{
	answer_refuses("00000005 68656c6c6f");                /* no prefix */
	answer_refuses("00000000");                           /* empty */
	/* 19 bytes of payload: too short. */
	answer_refuses("0000001e 234348414c4c454e474523 "
	    "000102030405060708090a0b0c0d0e0f101112");
	/* 21 bytes, no {name}: 3.12+ refuse it, and so do we. */
	answer_refuses("00000020 234348414c4c454e474523 "
	    "000102030405060708090a0b0c0d0e0f1011121314");
	/* {sha1} is not in the allowed list. */
	answer_refuses("00000023 234348414c4c454e474523 7b736861317d "
	    "000102030405060708090a0b0c0d0e0f1011121314");
}

Test(conn, answer_refuses_an_oversized_challenge)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	uint8_t big[4 + 300] = { 0, 0, 1, 44 };
	memcpy(big + 4, "#CHALLENGE#{sha256}", 19);
	raw_write(a, big, sizeof(big));
	expect_err(mp_conn_answer_challenge(b, KEY, KEYLEN, 5000), MP_EAUTH);
	mp_conn_close(a);
	mp_conn_close(b);
}

Test(conn, answer_reports_failure_as_eauth)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	raw_hex(a, LEGACY_CHALLENGE);
	raw_hex(a, FAILURE_FRAME);
	expect_err(mp_conn_answer_challenge(b, KEY, KEYLEN, 5000), MP_EAUTH);
	mp_conn_close(a);
	mp_conn_close(b);
}

Test(conn, handshake_halves_time_out)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	expect_err(mp_conn_answer_challenge(b, KEY, KEYLEN, 20), -ETIMEDOUT);
	expect_err(mp_conn_deliver_challenge(b, KEY, KEYLEN, 20), -ETIMEDOUT);
	/* A half-sent challenge times out too (no hang on a stalled peer). */
	raw_hex(a, "0000003b 2343");
	expect_err(mp_conn_answer_challenge(b, KEY, KEYLEN, 20), -ETIMEDOUT);
	mp_conn_close(a);
	mp_conn_close(b);
}

Test(conn, both_halves_agree_with_each_other)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		mp_conn_close(b);
		int rv = mp_conn_answer_challenge(a, "", 0, 10000);
		rv = rv ? rv : mp_conn_deliver_challenge(a, "", 0, 10000);
		_exit(rv == 0 ? 0 : 1);
	}
	mp_conn_close(a);
	expect_ok(mp_conn_deliver_challenge(b, "", 0, 10000));
	expect_ok(mp_conn_answer_challenge(b, "", 0, 10000));
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	mp_conn_close(b);
}

/* ---- Listener and Client ---------------------------------------------- */

/*
 * A child that connects to address with key, sends "hi", expects "ho" and
 * reports the first error (or 0) as an int on a pipe.
 */
struct client_child {
	pid_t pid;
	int result_fd;
};

static void
start_client(const char *address, const char *key, struct client_child *cc)
{
	int fds[2];
	cr_assert(pipe2(fds, O_CLOEXEC) == 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		mp_conn_t *c = NULL;
		int rv = mp_client_connect(address, key,
		    key ? strlen(key) : 0, 10000, &c);
		rv = rv ? rv : mp_conn_send_bytes(c, "hi", 2);
		void *buf = NULL;
		size_t len;
		rv = rv ? rv : mp_conn_recv_bytes(c, 16, 10000, &buf, &len);
		if (rv == 0 && (len != 2 || memcmp(buf, "ho", 2) != 0)) {
			rv = -EBADMSG;
		}
		mp_free(buf);
		mp_conn_close(c);
		ssize_t w = write(fds[1], &rv, sizeof(rv));
		_exit(w == sizeof(rv) ? 0 : 1);
	}
	close(fds[1]);
	cc->pid = pid;
	cc->result_fd = fds[0];
}

static int
finish_client(struct client_child *cc)
{
	int rv = -12345;
	ssize_t r = read(cc->result_fd, &rv, sizeof(rv));
	cr_assert_eq(r, (ssize_t)sizeof(rv), "the client child died");
	close(cc->result_fd);
	int st;
	cr_assert_eq(waitpid(cc->pid, &st, 0), cc->pid);
	return rv;
}

static void
serve_one(mp_listener_t *l, const char *client_key, int want_accept,
    int want_client)
{
	struct client_child cc;
	start_client(mp_listener_address(l), client_key, &cc);
	mp_conn_t *c = NULL;
	expect_err(mp_listener_accept(l, 10000, &c), want_accept);
	if (c != NULL) {
		expect_msg(c, "hi");
		expect_ok(mp_conn_send_bytes(c, "ho", 2));
		mp_conn_close(c);
	}
	expect_err(finish_client(&cc), want_client);
}

Test(conn, tcp_v4_listener_and_client)
{
	mp_listener_t *l;
	expect_ok(mp_listener_open("127.0.0.1:0", KEY, KEYLEN, &l));
	const char *addr = mp_listener_address(l);
	cr_assert(strncmp(addr, "127.0.0.1:", 10) == 0, "address %s", addr);
	cr_assert(atoi(addr + 10) > 0);
	serve_one(l, KEY, 0, 0);
	serve_one(l, KEY, 0, 0);
	mp_listener_close(l);
	mp_listener_close(NULL);
}

Test(conn, tcp_v6_listener_and_client)
{
	mp_listener_t *l;
	int rv = mp_listener_open("[::1]:0", KEY, KEYLEN, &l);
	if (rv == -EADDRNOTAVAIL || rv == -EAFNOSUPPORT ||
	    rv == -EHOSTUNREACH) {
		cr_skip_test("::1 is not available here (%s)", mp_err_name(rv));
	}
	expect_ok(rv);
	cr_assert(strncmp(mp_listener_address(l), "[::1]:", 6) == 0);
	serve_one(l, KEY, 0, 0);
	mp_listener_close(l);
}

Test(conn, unix_listener_and_client_unlinks_its_path)
{
	char path[128];
	snprintf(path, sizeof(path), "/tmp/mproc-test-conn-%d.sock",
	    (int)getpid());
	char addr[140];
	snprintf(addr, sizeof(addr), "unix:%s", path);
	mp_listener_t *l;
	expect_ok(mp_listener_open(addr, KEY, KEYLEN, &l));
	cr_assert_str_eq(mp_listener_address(l), path);
	serve_one(l, KEY, 0, 0);
	mp_listener_t *l2;
	expect_err(mp_listener_open(path, NULL, 0, &l2), -EADDRINUSE);
	mp_listener_close(l);
	struct stat st;
	cr_assert(stat(path, &st) != 0 && errno == ENOENT);
}

Test(conn, listener_without_key_skips_the_handshake)
{
	mp_listener_t *l;
	expect_ok(mp_listener_open("localhost:0", NULL, 0, &l));
	serve_one(l, NULL, 0, 0);
	mp_listener_close(l);
}

Test(conn, wrong_key_fails_on_both_sides)
{
	mp_listener_t *l;
	expect_ok(mp_listener_open("127.0.0.1:0", KEY, KEYLEN, &l));
	serve_one(l, "wrong", MP_EAUTH, MP_EAUTH);
	/* The listener survives a failed handshake. */
	serve_one(l, KEY, 0, 0);
	mp_listener_close(l);
}

Test(conn, accept_and_connect_time_out)
{
	mp_listener_t *l;
	expect_ok(mp_listener_open("127.0.0.1:0", KEY, KEYLEN, &l));
	mp_conn_t *c = NULL;
	expect_err(mp_listener_accept(l, MP_NOWAIT, &c), -EAGAIN);
	expect_err(mp_listener_accept(l, 20, &c), -ETIMEDOUT);
	/* A client whose server never speaks: the handshake times out. */
	expect_err(mp_client_connect(mp_listener_address(l), KEY, KEYLEN, 50,
	    &c), -ETIMEDOUT);
	cr_assert_null(c);
	mp_listener_close(l);
}

Test(conn, connect_to_nobody_is_refused)
{
	mp_listener_t *l;
	expect_ok(mp_listener_open("127.0.0.1:0", NULL, 0, &l));
	char addr[64];
	snprintf(addr, sizeof(addr), "%s", mp_listener_address(l));
	mp_listener_close(l);
	mp_conn_t *c = NULL;
	expect_err(mp_client_connect(addr, NULL, 0, 5000, &c), -ECONNREFUSED);
	expect_err(mp_client_connect("/nonexistent/mproc.sock", NULL, 0, 5000,
	    &c), -ENOENT);
}

Test(conn, bad_addresses_are_einval)
{
	const char *bad[] = { "", "noport", "1.2.3.4:", "1.2.3.4:99999",
		"1.2.3.4:12a", "::1:80", "[::1]80", "unix:" };
	for (size_t i = 0; i < MP__ARRAY_LEN(bad); i++) {
		mp_listener_t *l = NULL;
		expect_err(mp_listener_open(bad[i], NULL, 0, &l), -EINVAL);
		mp_conn_t *c = NULL;
		expect_err(mp_client_connect(bad[i], NULL, 0, 100, &c),
		    -EINVAL);
	}
	mp_listener_t *l = NULL;
	expect_err(mp_listener_open("no-such-host.invalid:0", NULL, 0, &l),
	    -EHOSTUNREACH);
}

/* ---- objects ------------------------------------------------------------ */

static mp_obj_t *
sample(void)
{
	return mp_list_of(4, mp_str("name"), mp_int(42), mp_none(),
	    mp_str("hello"));
}

Test(conn, objects_travel_as_framed_pickles)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	mp_obj_t *o = sample();
	expect_ok(mp_conn_send(a, o));
	void *want;
	size_t wlen;
	expect_ok(mp_pickle_dumps(o, &want, &wlen));
	/* The frame is exactly the header and what pickle.dumps gives. */
	void *got;
	size_t glen;
	expect_ok(mp_conn_recv_bytes(b, 1 << 20, 5000, &got, &glen));
	cr_assert_eq(glen, wlen);
	cr_assert(memcmp(got, want, wlen) == 0);
	mp_free(got);
	expect_ok(mp_conn_send_bytes(a, want, wlen));
	mp_free(want);
	mp_obj_t *back = NULL;
	expect_ok(mp_conn_recv(b, 5000, &back));
	cr_assert(mp_obj_equal(o, back));
	mp_obj_unref(back);
	/* Many in a row: decoded in place from the receive buffer. */
	for (int i = 0; i < 1000; i++) {
		expect_ok(mp_conn_send(a, o));
	}
	for (int i = 0; i < 1000; i++) {
		expect_ok(mp_conn_recv(b, 5000, &back));
		cr_assert(mp_obj_equal(o, back));
		mp_obj_unref(back);
	}
	mp_obj_unref(o);
	mp_conn_close(a);
	mp_conn_close(b);
}

Test(conn, large_objects_and_the_max_message_cap)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	size_t n = 300000;
	uint8_t *raw = malloc(n);
	memset(raw, 'q', n);
	mp_obj_t *o = mp_bytes(raw, n);
	free(raw);
	expect_ok(mp_conn_send(a, o));
	mp_conn_set_max_message(b, 1000);
	mp_obj_t *back = NULL;
	expect_err(mp_conn_recv(b, 5000, &back), -EMSGSIZE);
	mp_conn_set_max_message(b, 0);
	expect_ok(mp_conn_recv(b, 5000, &back));
	cr_assert(mp_obj_equal(o, back));
	mp_obj_unref(back);
	mp_obj_unref(o);
	back = NULL;
	expect_err(mp_conn_recv(b, 20, &back), -ETIMEDOUT);
	cr_assert_null(back);
	mp_conn_close(a);
	mp_conn_close(b);
}

Test(conn, a_bad_pickle_is_consumed_and_the_stream_stays_framed)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	expect_ok(mp_conn_send_bytes(a, "not a pickle", 12));
	mp_obj_t *o = mp_int(7);
	expect_ok(mp_conn_send(a, o));
	mp_obj_t *back = NULL;
	int rv = mp_conn_recv(b, 5000, &back);
	cr_assert(rv == MP_EPICKLE || rv == MP_EFORBIDDEN, "got %s",
	    mp_err_name(rv));
	expect_ok(mp_conn_recv(b, 5000, &back));
	cr_assert(mp_obj_equal(o, back));
	mp_obj_unref(back);
	mp_obj_unref(o);
	mp_conn_close(a);
	mp_conn_close(b);
}

/* ---- allocation failures ------------------------------------------------ */

Test(conn, every_allocation_failure_is_enomem_and_leaks_nothing)
{
	/* Fail the 1st, 2nd, ... allocation until the call succeeds. */
	for (unsigned long n = 1;; n++) {
		mp__alloc_fail_after(n);
		mp_conn_t *a = NULL, *b = NULL;
		int rv = mp_pipe(&a, &b, n % 2 == 0);
		mp__alloc_fail_after(0);
		if (rv == 0) {
			mp_conn_close(a);
			mp_conn_close(b);
			break;
		}
		expect_err(rv, -ENOMEM);
		cr_assert(a == NULL && b == NULL);
		cr_assert(n < 100);
	}
	for (unsigned long n = 1;; n++) {
		mp__alloc_fail_after(n);
		mp_listener_t *l = NULL;
		int rv = mp_listener_open("127.0.0.1:0", KEY, KEYLEN, &l);
		mp__alloc_fail_after(0);
		if (rv == 0) {
			mp_listener_close(l);
			break;
		}
		expect_err(rv, -ENOMEM);
		cr_assert(n < 100);
	}
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	for (unsigned long n = 1;; n++) {
		expect_ok(mp_conn_send_bytes(a, "kept", 4));
		mp__alloc_fail_after(n);
		void *buf = NULL;
		size_t len;
		int rv = mp_conn_recv_bytes(b, 16, 1000, &buf, &len);
		mp__alloc_fail_after(0);
		if (rv == 0) {
			cr_assert_eq(len, 4);
			mp_free(buf);
			break;
		}
		expect_err(rv, -ENOMEM);
		/* The message is still there for the next try. */
		expect_msg(b, "kept");
		cr_assert(n < 100);
	}
	mp_conn_close(a);
	mp_conn_close(b);
}

/* ---- hostile streams ---------------------------------------------------- */

Test(conn, random_streams_end_in_a_clean_error)
{
	unsigned seed = 12345;
	for (int round = 0; round < 300; round++) {
		mp_conn_t *a, *b;
		expect_ok(mp_pipe(&a, &b, true));
		uint8_t junk[512];
		size_t n = (size_t)(rand_r(&seed) % sizeof(junk));
		for (size_t i = 0; i < n; i++) {
			/* Small lengths are likely: the high bytes are mostly 0. */
			junk[i] = (uint8_t)(rand_r(&seed) % 4 == 0 ?
			    rand_r(&seed) : rand_r(&seed) % 3);
		}
		raw_write(a, junk, n);
		mp_conn_close(a);
		int rv;
		int frames = 0;
		for (;;) {
			void *buf;
			size_t len;
			rv = mp_conn_recv_bytes(b, 1 << 16, 1000, &buf, &len);
			if (rv != 0) {
				break;
			}
			mp_free(buf);
			frames++;
			cr_assert(frames <= 512);
		}
		cr_assert(rv == MP_EOF || rv == MP_ETRUNCATED || rv == -EPROTO ||
		    rv == -EMSGSIZE, "round %d ended with %s", round,
		    mp_err_name(rv));
		mp_conn_close(b);
	}
}

Test(conn, globals_need_a_whitelist)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	mp_obj_t *e = mp_instance_new("builtins", "KeyError",
	    mp_tuple_of(1, mp_str("k")), NULL, false);
	cr_assert_not_null(e);
	expect_ok(mp_conn_send(a, e));
	expect_ok(mp_conn_send(a, e));
	mp_obj_t *back = NULL;
	expect_err(mp_conn_recv(b, 5000, &back), MP_EFORBIDDEN);
	static const struct mp_pickle_global allow[] = {
		{ "builtins", "KeyError", NULL, NULL },
	};
	struct mp_pickle_opts opts = { .globals = allow, .n_globals = 1 };
	expect_ok(mp_conn_recv_opts(b, 5000, &opts, &back));
	cr_assert_str_eq(mp_instance_name(back), "KeyError");
	cr_assert(mp_obj_equal(e, back));
	mp_obj_unref(back);
	mp_obj_unref(e);
	mp_conn_close(a);
	mp_conn_close(b);
}

Test(conn, wait_on_more_connections_than_fit_on_the_stack)
{
	enum { N = 40 };
	mp_conn_t *r[N], *w[N];
	for (int i = 0; i < N; i++) {
		expect_ok(mp_pipe(&r[i], &w[i], false));
	}
	bool ready[N];
	cr_assert_eq(mp_conn_wait(r, N, MP_NOWAIT, ready), 0);
	expect_ok(mp_conn_send_bytes(w[37], "x", 1));
	cr_assert_eq(mp_conn_wait(r, N, 5000, ready), 1);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(ready[i], i == 37, "ready[%d]", i);
	}
	for (int i = 0; i < N; i++) {
		mp_conn_close(r[i]);
		mp_conn_close(w[i]);
	}
}

Test(conn, host_names_resolve_to_ipv4_like_cpython)
{
	mp_listener_t *l;
	expect_ok(mp_listener_open("localhost:0", NULL, 0, &l));
	const char *addr = mp_listener_address(l);
	cr_assert(strncmp(addr, "127.0.0.1:", 10) == 0, "address %s", addr);
	mp_listener_close(l);
	expect_ok(mp_listener_open(":0", NULL, 0, &l));
	addr = mp_listener_address(l);
	cr_assert(strncmp(addr, "0.0.0.0:", 8) == 0, "address %s", addr);
	serve_one(l, NULL, 0, 0);
	mp_listener_close(l);
}
