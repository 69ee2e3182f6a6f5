/* SPDX-License-Identifier: MIT */
/* test_queue_crash.c: producers and consumers killed mid-put and mid-get never corrupt or block a Queue. */
#include "harness/harness.h"

#include "queue/queue_internal.h"

#include <mproc/queue.h>
#include <mproc/shared.h>

#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

MP_TEST_SUITE(queue_crash);

/* Fork fn(arg); the child dies with the test if the test fails first. */
static pid_t
spawn(int (*fn)(void *), void *arg)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent) {
			_exit(127);
		}
		_exit(fn(arg));
	}
	return pid;
}

static int
reap(pid_t pid)
{
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

static void
kill_and_reap(pid_t pid)
{
	kill(pid, SIGKILL);
	cr_assert_eq(reap(pid), -SIGKILL);
}

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Poll (yielding, never sleeping) until cond(q) holds; fail after 20 s. */
static void
await(bool (*cond)(mp_queue_t *), mp_queue_t *q, const char *what)
{
	int64_t end = now_ms() + 20000;
	while (!cond(q)) {
		cr_assert(now_ms() < end, "timed out waiting: %s", what);
		sched_yield();
	}
}

/* A child holds a side's lock until it is killed. */
struct holder {
	mp_queue_t *q;
	bool get_side;
	bool scribble;      /* also write a record it never publishes */
	int ready[2];
};

static int
hold_lock(void *arg)
{
	struct holder *h = arg;
	struct mp__queue_shared *sh = h->q->sh;
	struct mp_lock *l = h->get_side ? &sh->get_lock : &sh->put_lock;
	if (mp_lock_acquire(l, MP_FOREVER) != 0) {
		return 1;
	}
	if (h->scribble) {
		/* Half a put: bytes at the head, pub never moved. */
		uint32_t head = (uint32_t)atomic_load(&sh->pub);
		struct mp__rec r = { .len = 3, .type = MP__REC_WHOLE,
		    .fmt = MP__FMT_BYTES };
		memcpy(h->q->ring + head, &r, sizeof(r));
		memcpy(h->q->ring + head + sizeof(r), "bad", 3);
	}
	(void)!write(h->ready[1], "x", 1);
	for (;;) {
		pause();
	}
}

static void
dead_holder(bool get_side, bool scribble)
{
	struct holder h = { .get_side = get_side, .scribble = scribble };
	expect_ok(mp_queue_new(0, NULL, &h.q));
	expect_ok(mp_queue_put_bytes(h.q, "one", 3, MP_NOWAIT));
	cr_assert_eq(pipe(h.ready), 0);
	pid_t pid = spawn(hold_lock, &h);
	char c;
	cr_assert_eq(read(h.ready[0], &c, 1), 1);
	close(h.ready[0]);
	close(h.ready[1]);
	kill_and_reap(pid);
	/* The next user takes the lock over and finds whole records only. */
	expect_ok(mp_queue_put_bytes(h.q, "two", 3, 5000));
	void *data;
	size_t len;
	expect_ok(mp_queue_get_bytes(h.q, &data, &len, 5000));
	cr_assert(len == 3 && memcmp(data, "one", 3) == 0);
	mp_free(data);
	expect_ok(mp_queue_get_bytes(h.q, &data, &len, 5000));
	cr_assert(len == 3 && memcmp(data, "two", 3) == 0);
	mp_free(data);
	expect_err(mp_queue_get_bytes(h.q, &data, &len, MP_NOWAIT), -EAGAIN);
	/* And the lock works on. */
	expect_ok(mp_queue_put_bytes(h.q, "three", 5, 5000));
	expect_ok(mp_queue_get_bytes(h.q, &data, &len, 5000));
	mp_free(data);
	mp_queue_free(h.q);
}

Test(queue_crash, producer_killed_holding_the_put_lock)
{
	dead_holder(false, false);
}

Test(queue_crash, producer_killed_mid_write_publishes_nothing)
{
	dead_holder(false, true);
}

Test(queue_crash, consumer_killed_holding_the_get_lock)
{
	dead_holder(true, false);
}

/* Streams cut by a death. */
#define RING ((size_t)65536)
#define BIG ((size_t)8 << 20)

static int
put_big_then_after(void *arg)
{
	mp_queue_t *q = arg;
	uint8_t *buf = calloc(1, BIG);
	if (buf == NULL) {
		return 1;
	}
	int rv = mp_queue_put_bytes(q, buf, BIG, 30000);
	free(buf);
	if (rv == 0) {
		rv = mp_queue_put_bytes(q, "after", 5, 30000);
	}
	return rv == 0 ? 0 : 2;
}

/* Returns 0 when the first message this consumer gets is "after". */
static int
get_expect_after(void *arg)
{
	mp_queue_t *q = arg;
	void *data;
	size_t len;
	if (mp_queue_get_bytes(q, &data, &len, 30000) != 0) {
		return 1;
	}
	int ok = len == 5 && memcmp(data, "after", 5) == 0;
	mp_free(data);
	return ok ? 0 : 2;
}

static bool
stream_started(mp_queue_t *q)
{
	return (uint32_t)atomic_load(&q->sh->pub) != 0;
}

/* A consumer took fragments, and all that were published. */
static bool
stream_drained(mp_queue_t *q)
{
	uint64_t c = atomic_load(&q->sh->con);
	return (uint32_t)c != 0 && c == atomic_load(&q->sh->pub);
}

Test(queue_crash, producer_killed_mid_stream_no_consumer)
{
	mp_queue_t *q;
	struct mp_queue_opts opts = { .buffer_size = RING };
	expect_ok(mp_queue_new(0, &opts, &q));
	pid_t pid = spawn(put_big_then_after, q);
	await(stream_started, q, "first fragment");
	kill_and_reap(pid);
	/* The fragments in the ring are read, the dead producer noticed. */
	void *data;
	size_t len;
	expect_err(mp_queue_get_bytes(q, &data, &len, MP_NOWAIT), -EAGAIN);
	expect_ok(mp_queue_put_bytes(q, "after", 5, 5000));
	expect_ok(mp_queue_get_bytes(q, &data, &len, 5000));
	cr_assert(len == 5 && memcmp(data, "after", 5) == 0);
	mp_free(data);
	cr_assert(mp_queue_empty(q));
	mp_queue_free(q);
}

/*
 * Stop the producer part-way through the big message (with no consumer it
 * cannot finish: the ring is full), then let a consumer read everything
 * published so far: it is then inside the stream, waiting for the rest.
 */
static void
consumer_inside_stream(mp_queue_t *q, pid_t *prod, pid_t *cons)
{
	*prod = spawn(put_big_then_after, q);
	await(stream_started, q, "first fragment");
	cr_assert_eq(kill(*prod, SIGSTOP), 0);
	int status;
	cr_assert_eq(waitpid(*prod, &status, WUNTRACED), *prod);
	cr_assert(WIFSTOPPED(status));
	*cons = spawn(get_expect_after, q);
	await(stream_drained, q, "consumer in the stream");
}

Test(queue_crash, producer_killed_while_a_consumer_assembles)
{
	mp_queue_t *q;
	struct mp_queue_opts opts = { .buffer_size = RING };
	expect_ok(mp_queue_new(0, &opts, &q));
	pid_t prod, cons;
	consumer_inside_stream(q, &prod, &cons);
	kill_and_reap(prod);
	/* The consumer drops the half message and takes the next one. */
	expect_ok(mp_queue_put_bytes(q, "after", 5, 5000));
	cr_assert_eq(reap(cons), 0);
	cr_assert(mp_queue_empty(q));
	mp_queue_free(q);
}

Test(queue_crash, consumer_killed_mid_stream_loses_only_its_message)
{
	mp_queue_t *q;
	struct mp_queue_opts opts = { .buffer_size = RING };
	expect_ok(mp_queue_new(0, &opts, &q));
	pid_t prod, cons;
	consumer_inside_stream(q, &prod, &cons);
	kill_and_reap(cons);
	cr_assert_eq(kill(prod, SIGCONT), 0);
	/* The rest of the big message is skipped; the producer finishes. */
	void *data;
	size_t len;
	expect_ok(mp_queue_get_bytes(q, &data, &len, 30000));
	cr_assert(len == 5 && memcmp(data, "after", 5) == 0);
	mp_free(data);
	cr_assert_eq(reap(prod), 0);
	cr_assert(mp_queue_empty(q));
	mp_queue_free(q);
}

/*
 * 200 random kills. Producers put numbered messages (small ones and,
 * now and then, one larger than the ring) and record each put that
 * returned; consumers check every message's bytes and count it. The
 * parent kills a random child after a random amount of progress and
 * starts another in its place. Afterwards: no message is corrupt or
 * delivered twice, and every acknowledged message arrived, except at most
 * one per consumer killed (the message it held).
 */
#define KILLS     200
#define N_PROD    2
#define N_CONS    2
#define MAX_INC   (KILLS + N_PROD + N_CONS + 8)
#define MAX_SEQ   4096
#define KILL_RING ((size_t)16384)
#define LARGE     ((size_t)40000)

struct stress {
	mp_queue_t *q;
	_Atomic int64_t acked[MAX_INC];
	_Atomic uint8_t seen[MAX_INC][MAX_SEQ];
	_Atomic uint64_t progress;
	_Atomic int64_t bad;
	_Atomic int stop;
};

struct msg_head {
	uint32_t inc;
	uint32_t seq;
	uint32_t len;
	uint32_t check;
};

static uint32_t
msg_len(uint32_t inc, uint32_t seq)
{
	uint32_t h = (inc * 2654435761u) ^ (seq * 40503u);
	if (h % 53 == 0) {
		return (uint32_t)LARGE + h % 1000;
	}
	return (uint32_t)sizeof(struct msg_head) + h % 300;
}

static uint8_t
msg_byte(uint32_t inc, uint32_t seq, size_t i)
{
	return (uint8_t)(inc * 31 + seq * 7 + i * 13);
}

static int g_inc;

static int
stress_producer(void *arg)
{
	struct stress *st = arg;
	uint32_t inc = (uint32_t)g_inc;
	uint8_t *buf = malloc(LARGE + 1000);
	if (buf == NULL) {
		return 1;
	}
	for (uint32_t seq = 0; seq < MAX_SEQ && !atomic_load(&st->stop);) {
		uint32_t len = msg_len(inc, seq);
		struct msg_head h = { inc, seq, len, inc ^ seq ^ len };
		memcpy(buf, &h, sizeof(h));
		for (size_t i = sizeof(h); i < len; i++) {
			buf[i] = msg_byte(inc, seq, i);
		}
		int rv = mp_queue_put_bytes(st->q, buf, len, 200);
		if (rv == -ETIMEDOUT) {
			continue;       /* withdrawn: put the same one again */
		}
		if (rv != 0) {
			return 2;
		}
		atomic_store(&st->acked[inc], seq);
		atomic_fetch_add(&st->progress, 1);
		seq++;
	}
	free(buf);
	return 0;
}

static bool
msg_ok(const uint8_t *p, size_t len)
{
	struct msg_head h;
	if (len < sizeof(h)) {
		return false;
	}
	memcpy(&h, p, sizeof(h));
	if (h.inc >= MAX_INC || h.seq >= MAX_SEQ || h.len != len ||
	    h.check != (h.inc ^ h.seq ^ h.len) ||
	    msg_len(h.inc, h.seq) != len) {
		return false;
	}
	for (size_t i = sizeof(h); i < len; i++) {
		if (p[i] != msg_byte(h.inc, h.seq, i)) {
			return false;
		}
	}
	return true;
}

static int
stress_consumer(void *arg)
{
	struct stress *st = arg;
	for (;;) {
		void *data;
		size_t len;
		int rv = mp_queue_get_bytes(st->q, &data, &len, 100);
		if (rv == -ETIMEDOUT) {
			if (atomic_load(&st->stop)) {
				return 0;
			}
			continue;
		}
		if (rv != 0) {
			return 1;
		}
		if (msg_ok(data, len)) {
			struct msg_head h;
			memcpy(&h, data, sizeof(h));
			atomic_fetch_add(&st->seen[h.inc][h.seq], 1);
		} else {
			atomic_fetch_add(&st->bad, 1);
			struct msg_head h = { 0 };
			memcpy(&h, data, len < sizeof(h) ? len : sizeof(h));
			fprintf(stderr, "bad message: %zu bytes, inc %u seq %u "
			    "len %u (want %u)\n", len, h.inc, h.seq, h.len,
			    h.inc < MAX_INC ? msg_len(h.inc, h.seq) : 0);
		}
		mp_free(data);
		atomic_fetch_add(&st->progress, 1);
	}
}

static pid_t
start_role(struct stress *st, int slot)
{
	if (slot < N_PROD) {
		cr_assert_lt(g_inc, MAX_INC);
		pid_t pid = spawn(stress_producer, st);
		g_inc++;
		return pid;
	}
	return spawn(stress_consumer, st);
}

/* A producer that reached MAX_SEQ ends: start another in its slot. */
static void
respawn_finished(struct stress *st, pid_t *pids)
{
	for (int s = 0; s < N_PROD + N_CONS; s++) {
		int status;
		if (waitpid(pids[s], &status, WNOHANG) == pids[s]) {
			cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			    "child %d ended with status %#x", (int)pids[s],
			    status);
			pids[s] = start_role(st, s);
		}
	}
}

Test(queue_crash, two_hundred_random_kills, .timeout = 300)
{
	struct stress *st;
	expect_ok(mp_shared_alloc(sizeof(*st), (void **)&st));
	for (int i = 0; i < MAX_INC; i++) {
		atomic_store(&st->acked[i], -1);
	}
	struct mp_queue_opts opts = { .buffer_size = KILL_RING };
	expect_ok(mp_queue_new(0, &opts, &st->q));
	/* Printed, and replayable with MP_TEST_SEED (harness.h). */
	uint64_t rng = mp_test_seed("queue_crash");
	pid_t pids[N_PROD + N_CONS];
	for (int s = 0; s < N_PROD + N_CONS; s++) {
		pids[s] = start_role(st, s);
	}
	int consumer_kills = 0;
	for (int k = 0; k < KILLS; k++) {
		uint64_t target = atomic_load(&st->progress) + 1 +
		    mp_test_rand_below(&rng, 40);
		int64_t end = now_ms() + 20000;
		while (atomic_load(&st->progress) < target) {
			respawn_finished(st, pids);
			cr_assert(now_ms() < end, "no progress after kill %d",
			    k);
			sched_yield();
		}
		int s = (int)mp_test_rand_below(&rng, N_PROD + N_CONS);
		kill(pids[s], SIGKILL);
		int code = reap(pids[s]);
		cr_assert(code == -SIGKILL || code == 0, "child exited %d",
		    code);
		consumer_kills += s >= N_PROD;
		pids[s] = start_role(st, s);
	}
	atomic_store(&st->stop, 1);
	for (int s = 0; s < N_PROD + N_CONS; s++) {
		cr_assert_eq(reap(pids[s]), 0);
	}
	cr_assert(mp_queue_empty(st->q));

	int64_t delivered = 0, lost = 0, dups = 0, extra = 0;
	for (int i = 0; i < g_inc; i++) {
		int64_t acked = atomic_load(&st->acked[i]);
		for (int64_t seq = 0; seq < MAX_SEQ; seq++) {
			int n = atomic_load(&st->seen[i][seq]);
			dups += n > 1;
			if (seq <= acked) {
				delivered += n == 1;
				lost += n == 0;
			} else if (seq > acked + 1) {
				extra += n != 0;
			}
		}
	}
	cr_log_info("%d kills (%d consumers): %lld acknowledged messages "
	    "delivered, %lld lost with a killed consumer",
	    KILLS, consumer_kills, (long long)delivered, (long long)lost);
	cr_assert_eq(atomic_load(&st->bad), 0, "corrupt messages");
	cr_assert_eq(dups, 0, "messages delivered twice");
	cr_assert_eq(extra, 0, "messages never put were delivered");
	cr_assert_leq(lost, consumer_kills, "lost %lld messages, %d consumer "
	    "kills", (long long)lost, consumer_kills);
	cr_assert_gt(delivered, KILLS);
	mp_queue_free(st->q);
	mp_shared_free(st);
}
