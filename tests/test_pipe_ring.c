/* SPDX-License-Identifier: MIT */
/* test_pipe_ring.c: a duplex mp_pipe's shared rings: order with large frames, several senders, EOF, poll/wait, the fileno switch, limits and killed processes. */
#include "harness/harness.h"
#include "conn/pipe_ring.h"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>

MP_TEST_SUITE(pipe_ring);

/* ---- helpers ---------------------------------------------------------- */

#define BIG ((size_t)1 << 20)

/*
 * Message i of sender s: a 12-byte tag (s, i, length) then bytes that
 * depend on all three; lengths mix ring records and MARKER frames.
 */
static size_t
msg_len(uint32_t s, uint32_t i)
{
	uint32_t k = (i * 2654435761u + s) % 100;
	if (k == 0) {
		return BIG;
	}
	if (k < 5) {
		return MP__PRING_REC_MAX + 1 + k * 1000; /* just too big */
	}
	return 12 + k * 3;
}

static void
fill_msg(uint8_t *p, uint32_t s, uint32_t i, size_t len)
{
	uint32_t tag[3] = { s, i, (uint32_t)len };
	memcpy(p, tag, sizeof(tag));
	for (size_t j = sizeof(tag); j < len; j++) {
		p[j] = (uint8_t)(j * 7 + s * 13 + i);
	}
}

static void
check_msg(const uint8_t *p, size_t len, uint32_t s, uint32_t i)
{
	uint32_t tag[3];
	cr_assert_geq(len, sizeof(tag));
	memcpy(tag, p, sizeof(tag));
	cr_assert_eq(tag[0], s);
	cr_assert_eq(tag[1], i, "sender %u: message %u came as %u", s, i,
	    tag[1]);
	cr_assert_eq(len, msg_len(s, i));
	cr_assert_eq(tag[2], len);
	for (size_t j = sizeof(tag); j < len; j++) {
		cr_assert_eq(p[j], (uint8_t)(j * 7 + s * 13 + i),
		    "byte %zu of message %u", j, i);
	}
}

/* In a child: send n messages of sender s on c; 0 or the failing code. */
static int
send_stream(mp_conn_t *c, uint32_t s, uint32_t n)
{
	uint8_t *buf = malloc(BIG);
	if (buf == NULL) {
		return 2;
	}
	for (uint32_t i = 0; i < n; i++) {
		size_t len = msg_len(s, i);
		fill_msg(buf, s, i, len);
		if (mp_conn_send_bytes(c, buf, len) != 0) {
			free(buf);
			return 3;
		}
	}
	free(buf);
	return 0;
}

static struct mp__pring_dir *
dir_of(mp_conn_t *sender)
{
	return &sender->ring->dir[sender->ring_end];
}

/* Yield until the ring sender sends on holds a record; fail after 20 s. */
static void
await_tail(mp_conn_t *sender, uint64_t past)
{
	int64_t end = mp_test_now_ms() + 20000;
	while (atomic_load(&dir_of(sender)->tail) <= past) {
		cr_assert(mp_test_now_ms() < end, "nothing was published");
		sched_yield();
	}
}

static void
expect_msg(mp_conn_t *c, const char *want)
{
	void *buf;
	size_t len;
	expect_ok(mp_conn_recv_bytes(c, BIG, 10000, &buf, &len));
	cr_assert_eq(len, strlen(want));
	cr_assert(memcmp(buf, want, len) == 0);
	mp_free(buf);
}

/* ---- order and delivery ------------------------------------------------- */

/*
 * senders children send n messages each on one end; the parent takes
 * them with the receive forms in turn and checks that each sender's
 * messages come whole, once and in order, then end of file.
 */
static void
senders_to_one_end(uint32_t senders, uint32_t n)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	cr_assert_not_null(a->ring, "a duplex pipe has rings");
	pid_t pids[8];
	cr_assert_leq(senders, MP__ARRAY_LEN(pids));
	for (uint32_t s = 0; s < senders; s++) {
		pids[s] = mp_test_fork();
		if (pids[s] == 0) {
			mp_conn_close(a);
			_exit(send_stream(b, s, n));
		}
	}
	mp_conn_close(b);
	uint32_t next[8] = { 0 };
	uint8_t *buf = malloc(BIG);
	cr_assert_not_null(buf);
	for (uint32_t k = 0; k < senders * n; k++) {
		void *p = buf;
		size_t len;
		if (k % 3 == 0) {
			expect_ok(mp_conn_recv_bytes_into(a, buf, BIG,
			    MP_FOREVER, &len));
		} else {
			expect_ok(mp_conn_recv_bytes(a, BIG, MP_FOREVER, &p,
			    &len));
		}
		uint32_t s;
		cr_assert_geq(len, 4);
		memcpy(&s, p, 4);
		cr_assert_lt(s, senders);
		check_msg(p, len, s, next[s]++);
		if (p != buf) {
			mp_free(p);
		}
	}
	free(buf);
	for (uint32_t s = 0; s < senders; s++) {
		cr_assert_eq(mp_test_reap(pids[s]), 0);
		cr_assert_eq(next[s], n);
	}
	void *p;
	size_t len;
	expect_err(mp_conn_recv_bytes(a, BIG, MP_FOREVER, &p, &len), MP_EOF);
	mp_conn_close(a);
}

Test(pipe_ring, ring_records_and_marker_frames_keep_their_order)
{
	senders_to_one_end(1, 3000);
}

Test(pipe_ring, several_senders_on_one_end_deliver_each_message_once)
{
	senders_to_one_end(4, 3000);
}

/* In a receiver child: take messages until an empty one; report. */
static int
receive_share(mp_conn_t *c, int out)
{
	uint32_t count = 0;
	uint32_t sum = 0;
	for (;;) {
		void *p;
		size_t len;
		if (mp_conn_recv_bytes(c, BIG, MP_FOREVER, &p, &len) != 0) {
			return 1;
		}
		if (len == 0) {
			mp_free(p);
			break;
		}
		uint32_t tag[2];
		memcpy(tag, p, sizeof(tag));
		if (len != msg_len(tag[0], tag[1])) {
			return 2;
		}
		count++;
		sum += tag[1] + 1;
		mp_free(p);
	}
	/* One write (< PIPE_BUF): the receivers' reports do not mix. */
	uint32_t rep[2] = { count, sum };
	return write(out, rep, sizeof(rep)) == sizeof(rep) ? 0 : 3;
}

Test(pipe_ring, several_receivers_on_one_end_take_each_message_once)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	enum { RECEIVERS = 3, N = 3000 };
	int res[2];
	mp_test_pipe(res);
	pid_t pids[RECEIVERS];
	for (int r = 0; r < RECEIVERS; r++) {
		pids[r] = mp_test_fork();
		if (pids[r] == 0) {
			mp_conn_close(a);
			_exit(receive_share(b, res[1]));
		}
	}
	close(res[1]);
	mp_conn_close(b);
	cr_assert_eq(send_stream(a, 0, N), 0);
	for (int r = 0; r < RECEIVERS; r++) {
		expect_ok(mp_conn_send_bytes(a, "", 0));
	}
	uint32_t count = 0;
	uint32_t sum = 0;
	for (int r = 0; r < RECEIVERS; r++) {
		uint32_t rep[2];
		cr_assert_eq(read(res[0], rep, sizeof(rep)), sizeof(rep));
		count += rep[0];
		sum += rep[1];
	}
	for (int r = 0; r < RECEIVERS; r++) {
		cr_assert_eq(mp_test_reap(pids[r]), 0);
	}
	cr_assert_eq(count, N);
	cr_assert_eq(sum, (uint32_t)N * (N + 1) / 2, "each message once");
	close(res[0]);
	mp_conn_close(a);
}

Test(pipe_ring, one_thread_may_send_more_than_the_ring_then_receive)
{
	/* The socket's buffer takes what the ring cannot, as before. */
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	uint32_t n = (uint32_t)(2 * MP__PRING_CAP / 16);
	for (uint32_t i = 0; i < n; i++) {
		expect_ok(mp_conn_send_bytes(a, &i, sizeof(i)));
	}
	for (uint32_t i = 0; i < n; i++) {
		uint32_t v;
		size_t len;
		expect_ok(mp_conn_recv_bytes_into(b, &v, sizeof(v), MP_NOWAIT,
		    &len));
		cr_assert_eq(v, i);
	}
	mp_conn_close(a);
	mp_conn_close(b);
}

Test(pipe_ring, messages_in_the_ring_come_before_the_end_of_file)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	expect_ok(mp_conn_send_bytes(a, "one", 3));
	expect_ok(mp_conn_send_bytes(a, "two", 3));
	mp_conn_close(a);
	cr_assert_eq(mp_conn_poll(b, MP_NOWAIT), 1);
	expect_msg(b, "one");
	expect_msg(b, "two");
	void *p;
	size_t len;
	expect_err(mp_conn_recv_bytes(b, 16, MP_FOREVER, &p, &len), MP_EOF);
	expect_err(mp_conn_recv_bytes(b, 16, MP_NOWAIT, &p, &len), MP_EOF);
	cr_assert_eq(mp_conn_poll(b, MP_NOWAIT), 1, "end of file is ready");
	mp_conn_close(b);

	/* A child that sends and exits without closing: the same. */
	expect_ok(mp_pipe(&a, &b, true));
	pid_t pid = mp_test_fork();
	if (pid == 0) {
		mp_conn_close(b);
		_exit(mp_conn_send_bytes(a, "last", 4) == 0 ? 0 : 1);
	}
	mp_conn_close(a);
	cr_assert_eq(mp_test_reap(pid), 0);
	expect_msg(b, "last");
	expect_err(mp_conn_recv_bytes(b, 16, MP_FOREVER, &p, &len), MP_EOF);
	mp_conn_close(b);
}

Test(pipe_ring, a_peer_gone_without_closing_is_epipe_once_the_ring_fills)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	int go[2];
	mp_test_pipe(go);
	pid_t pid = mp_test_fork();
	if (pid == 0) {
		mp_conn_close(a);
		mp_test_recv_byte(go[0]);
		_exit(0); /* holds b until it ends, never closes it */
	}
	close(go[0]);
	mp_conn_close(b);
	/* A close that was not the last: sends go on. */
	expect_ok(mp_conn_send_bytes(a, "x", 1));
	mp_test_send_byte(go[1], 'g');
	cr_assert_eq(mp_test_reap(pid), 0);
	close(go[1]);
	int rv = 0;
	uint64_t sent = 1;
	while (rv == 0) {
		rv = mp_conn_send_bytes(a, "x", 1);
		sent++;
		cr_assert_leq(sent, MP__PRING_CAP, "no -EPIPE");
	}
	expect_err(rv, -EPIPE);
	mp_conn_close(a);
}

/* ---- receive forms and limits ------------------------------------------ */

Test(pipe_ring, maxlen_refuses_and_keeps_ring_and_marker_messages)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	size_t sizes[] = { 10, MP__PRING_REC_MAX + 1 };
	for (size_t k = 0; k < MP__ARRAY_LEN(sizes); k++) {
		size_t n = sizes[k];
		uint8_t *m = malloc(n);
		memset(m, 'a' + (int)k, n);
		expect_ok(mp_conn_send_bytes(a, m, n));
		expect_ok(mp_conn_send_bytes(a, "after", 5));
		void *p;
		size_t len;
		expect_err(mp_conn_recv_bytes(b, n - 1, 1000, &p, &len),
		    -EMSGSIZE);
		char small[4];
		expect_err(mp_conn_recv_bytes_into(b, small, sizeof(small),
		    MP_NOWAIT, &len), -EMSGSIZE);
		mp_conn_set_max_message(b, n - 1);
		mp_obj_t *o = NULL;
		expect_err(mp_conn_recv(b, 1000, &o), -EMSGSIZE);
		mp_conn_set_max_message(b, 0);
		cr_assert_eq(mp_conn_poll(b, MP_NOWAIT), 1);
		expect_ok(mp_conn_recv_bytes(b, n, 1000, &p, &len));
		cr_assert_eq(len, n);
		cr_assert(memcmp(p, m, n) == 0);
		mp_free(p);
		expect_msg(b, "after");
		free(m);
	}
	mp_conn_close(a);
	mp_conn_close(b);
}

Test(pipe_ring, empty_ring_receives_time_out_or_would_block)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	void *p;
	size_t len;
	expect_err(mp_conn_recv_bytes(b, 16, MP_NOWAIT, &p, &len), -EAGAIN);
	expect_err(mp_conn_recv_bytes(b, 16, 20, &p, &len), -ETIMEDOUT);
	mp_obj_t *o = NULL;
	expect_err(mp_conn_recv(b, MP_NOWAIT, &o), -EAGAIN);
	cr_assert_eq(mp_conn_poll(b, 20), 0);
	expect_ok(mp_conn_send_bytes(a, "", 0));
	expect_ok(mp_conn_recv_bytes(b, 16, MP_NOWAIT, &p, &len));
	cr_assert_eq(len, 0);
	mp_free(p);
	/* Objects decode from the ring. */
	mp_obj_t *l = mp_list_of(2, mp_str("x"), mp_int(7));
	expect_ok(mp_conn_send(a, l));
	expect_ok(mp_conn_recv(b, 1000, &o));
	cr_assert(mp_obj_equal(o, l));
	mp_obj_unref(o);
	mp_obj_unref(l);
	mp_conn_close(a);
	mp_conn_close(b);
}

/* ---- poll and wait ------------------------------------------------------- */

Test(pipe_ring, poll_and_wait_wake_for_a_ring_message_from_another_process)
{
	mp_conn_t *a, *b, *c, *d;
	expect_ok(mp_pipe(&a, &b, true));
	expect_ok(mp_pipe(&c, &d, true));
	int go[2];
	mp_test_pipe(go);
	pid_t pid = mp_test_fork();
	if (pid == 0) {
		for (int k = 0; k < 2; k++) {
			mp_test_recv_byte(go[0]);
			if (mp_conn_send_bytes(a, "late", 4) != 0) {
				_exit(1);
			}
		}
		_exit(0);
	}
	close(go[0]);
	cr_assert_eq(mp_conn_poll(b, MP_NOWAIT), 0);
	mp_test_send_byte(go[1], 'g');
	cr_assert_eq(mp_conn_poll(b, 10000), 1);
	expect_msg(b, "late");
	/* A doorbell the wake-up left behind is no message. */
	cr_assert_eq(mp_conn_poll(b, MP_NOWAIT), 0);
	mp_conn_t *set[2] = { d, b };
	bool ready[2];
	cr_assert_eq(mp_conn_wait(set, 2, MP_NOWAIT, ready), 0);
	mp_test_send_byte(go[1], 'g');
	cr_assert_eq(mp_conn_wait(set, 2, 10000, ready), 1);
	cr_assert(!ready[0] && ready[1]);
	expect_msg(b, "late");
	cr_assert_eq(mp_conn_wait(set, 2, MP_NOWAIT, ready), 0);
	expect_ok(mp_conn_send_bytes(c, "mine", 4));
	cr_assert_eq(mp_conn_wait(set, 2, MP_NOWAIT, ready), 1);
	cr_assert(ready[0] && !ready[1]);
	expect_msg(d, "mine");
	cr_assert_eq(mp_test_reap(pid), 0);
	close(go[1]);
	mp_conn_close(a);
	mp_conn_close(b);
	mp_conn_close(c);
	mp_conn_close(d);
}

/* ---- the fileno switch --------------------------------------------------- */

Test(pipe_ring, fileno_moves_both_directions_to_the_socket_in_order)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	expect_ok(mp_conn_send_bytes(a, "ring", 4)); /* before the switch */
	int fd = mp_conn_fileno(b);
	cr_assert(atomic_load(&a->ring->dir[0].kernel) &&
	    atomic_load(&a->ring->dir[1].kernel), "both directions switched");
	/* The documented corner: the ring's message is not on the fd. */
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	cr_assert_eq(poll(&pfd, 1, 0), 0);
	cr_assert_eq(mp_conn_poll(b, MP_NOWAIT), 1);
	expect_ok(mp_conn_send_bytes(a, "sock", 4));
	cr_assert_eq(poll(&pfd, 1, 10000), 1, "a later message is on the fd");
	/* A frame written by hand behind them. */
	const uint8_t raw[] = { 0, 0, 0, 3, 'r', 'a', 'w' };
	cr_assert_eq(write(mp_conn_fileno(a), raw, sizeof(raw)),
	    (ssize_t)sizeof(raw));
	expect_msg(b, "ring");
	expect_msg(b, "sock");
	expect_msg(b, "raw");
	/* The other direction too, both large and small. */
	uint8_t *big = calloc(1, MP__PRING_REC_MAX * 2);
	expect_ok(mp_conn_send_bytes(b, "back", 4));
	expect_ok(mp_conn_send_bytes(b, big, MP__PRING_REC_MAX * 2));
	free(big);
	struct pollfd pa = { .fd = mp_conn_fileno(a), .events = POLLIN };
	cr_assert_eq(poll(&pa, 1, 0), 1);
	expect_msg(a, "back");
	void *p;
	size_t len;
	expect_ok(mp_conn_recv_bytes(a, BIG, 1000, &p, &len));
	cr_assert_eq(len, MP__PRING_REC_MAX * 2);
	mp_free(p);
	mp_conn_close(a);
	mp_conn_close(b);
}

Test(pipe_ring, fileno_before_any_message_puts_every_frame_on_the_fd)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	int fd = mp_conn_fileno(b);
	expect_ok(mp_conn_send_bytes(a, "abc", 3));
	uint8_t got[7];
	cr_assert_eq(read(fd, got, sizeof(got)), (ssize_t)sizeof(got));
	cr_assert(memcmp(got, "\0\0\0\3abc", 7) == 0);
	/* A header of -2 written by hand is the bad header it always was. */
	const uint8_t bad[] = { 0xFF, 0xFF, 0xFF, 0xFE };
	cr_assert_eq(write(mp_conn_fileno(a), bad, 4), 4);
	void *p;
	size_t len;
	expect_err(mp_conn_recv_bytes(b, 16, 1000, &p, &len), -EPROTO);
	mp_conn_close(a);
	mp_conn_close(b);
}

/* ---- killed processes ---------------------------------------------------- */

/*
 * The children below stop at an exact point of the protocol, holding what
 * a process killed there would hold, say so over a pipe and wait to be
 * killed: the kill points are deterministic.
 */
/*
 * Fork a child that runs stop(a, b), says so and waits; kill it. stop
 * returns false when it failed (the child then exits, and the case
 * fails on the status).
 */
static void
kill_stopped_child(mp_conn_t *a, mp_conn_t *b,
    bool (*stop)(mp_conn_t *, mp_conn_t *))
{
	int rd[2];
	mp_test_pipe(rd);
	pid_t pid = mp_test_fork();
	if (pid == 0) {
		if (!stop(a, b)) {
			_exit(1);
		}
		mp_test_send_byte(rd[1], 'r');
		for (;;) {
			pause();
		}
	}
	close(rd[1]);
	char c;
	ssize_t r = read(rd[0], &c, 1);
	close(rd[0]);
	cr_assert_eq(r, 1, "the child did not reach its stop");
	cr_assert_eq(mp_test_kill(pid), -SIGKILL);
}

/* Take the send lock, write half a record, never publish it. */
static bool
stop_mid_record(mp_conn_t *a, mp_conn_t *b)
{
	(void)b;
	struct mp__pring_dir *d = dir_of(a);
	if (mp_lock_acquire(&d->send_lock, MP_FOREVER) != 0) {
		return false;
	}
	uint64_t pos = atomic_load(&d->tail) & (MP__PRING_CAP - 1);
	uint8_t *data = (uint8_t *)a->ring + MP__PRING_DATA_OFF;
	struct mp__prec h = { 5, MP__PREC_DATA };
	memcpy(data + pos, &h, sizeof(h));
	memcpy(data + pos + sizeof(h), "ha", 2);
	return true;
}

Test(pipe_ring, a_sender_killed_mid_record_delivers_nothing_of_it)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	expect_ok(mp_conn_send_bytes(a, "before", 6));
	kill_stopped_child(a, b, stop_mid_record);
	expect_msg(b, "before");
	void *p;
	size_t len;
	expect_err(mp_conn_recv_bytes(b, 16, MP_NOWAIT, &p, &len), -EAGAIN);
	/* The next sender repairs the lock and writes over the half. */
	expect_ok(mp_conn_send_bytes(a, "after", 5));
	expect_msg(b, "after");
	mp_conn_close(a);
	mp_conn_close(b);
}

Test(pipe_ring, a_sender_killed_inside_a_large_frame_breaks_the_direction)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	expect_ok(mp_conn_send_bytes(a, "before", 6));
	uint64_t tail = atomic_load(&dir_of(a)->tail);
	pid_t pid = mp_test_fork();
	if (pid == 0) {
		/* More than the socket holds: the write blocks mid-frame. */
		size_t n = (size_t)64 << 20;
		uint8_t *m = calloc(1, n);
		_exit(m != NULL && mp_conn_send_bytes(a, m, n) == 0 ? 0 : 1);
	}
	await_tail(a, tail); /* the MARKER is out, the frame under way */
	cr_assert_eq(mp_test_kill(pid), -SIGKILL);
	expect_msg(b, "before");
	void *p;
	size_t len;
	expect_err(mp_conn_recv_bytes(b, (size_t)128 << 20, MP_FOREVER, &p,
	    &len), -EPROTO);
	expect_err(mp_conn_send_bytes(a, "x", 1), -EPROTO);
	expect_err(mp_conn_recv_bytes(b, 16, MP_FOREVER, &p, &len), -EPROTO);
	/* The other direction is unharmed. */
	expect_ok(mp_conn_send_bytes(b, "back", 4));
	expect_msg(a, "back");
	mp_conn_close(a);
	mp_conn_close(b);
}

/* Take the receive lock, as a receiver about to look at the record. */
static bool
stop_holding_recv_lock(mp_conn_t *a, mp_conn_t *b)
{
	(void)b;
	return mp_lock_acquire(&dir_of(a)->recv_lock, MP_FOREVER) == 0;
}

Test(pipe_ring, a_receiver_killed_holding_its_lock_loses_nothing)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	expect_ok(mp_conn_send_bytes(a, "kept", 4));
	kill_stopped_child(a, b, stop_holding_recv_lock);
	expect_msg(b, "kept");
	expect_ok(mp_conn_send_bytes(a, "next", 4));
	expect_msg(b, "next");
	mp_conn_close(a);
	mp_conn_close(b);
}

/* Take the MARKER and read half of its frame's header. */
static bool
stop_mid_frame_read(mp_conn_t *a, mp_conn_t *b)
{
	struct mp__pring_dir *d = dir_of(a);
	if (mp_lock_acquire(&d->recv_lock, MP_FOREVER) != 0) {
		return false;
	}
	atomic_store(&d->recv_frame, 1);
	atomic_fetch_add(&d->head, sizeof(struct mp__prec));
	uint8_t h[2];
	return read(b->fd, h, 2) == 2;
}

Test(pipe_ring, a_receiver_killed_inside_a_large_frame_breaks_the_direction)
{
	mp_conn_t *a, *b;
	expect_ok(mp_pipe(&a, &b, true));
	size_t n = MP__PRING_REC_MAX + 100;
	uint8_t *m = calloc(1, n);
	expect_ok(mp_conn_send_bytes(a, m, n));
	free(m);
	kill_stopped_child(a, b, stop_mid_frame_read);
	void *p;
	size_t len;
	expect_err(mp_conn_recv_bytes(b, BIG, 1000, &p, &len), -EPROTO);
	expect_err(mp_conn_send_bytes(a, "x", 1), -EPROTO);
	mp_conn_close(a);
	mp_conn_close(b);
}
