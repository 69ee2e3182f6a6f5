/* SPDX-License-Identifier: MIT */
/* test_manager_kill.c: manager clients killed mid-request: the server and the other clients carry on, nothing is delivered twice or half. */
#include "harness/mgr.h"

#include <mproc/manager.h>

#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

MP_TEST_SUITE(manager_kill);

/*
 * A server (in a child, orphan grace 1 ms) holds a list, a queue and an
 * RLock. Four client processes work on them through mproc's proxies: an
 * appender (list.append of unique ints), a producer (queue.put of
 * self-checking bytes, now and then 256 KiB, more than a socket buffer,
 * so that kills land inside a request frame), a consumer (queue.get) and
 * a locker (RLock.acquire, a critical section, release). Every client
 * also creates a list of its own that it never gives back while it runs.
 * The test kills a random client after a random number of operations and
 * a random delay (loop iterations), and starts another in its place, 200
 * times. Then:
 *   - the list holds every int whose append returned exactly once, no int
 *     twice, and no int that was never sent;
 *   - every put that returned was delivered exactly once, whole, except at
 *     most one item per consumer killed with a get in flight (the reply
 *     was on its way; the server cannot know), and nothing twice;
 *   - no two clients were ever inside the RLock's section at once, except
 *     after a holder was killed (the server releases a dead connection's
 *     RLock), and the RLock is free at the end;
 *   - the killed clients' own lists are released (orphan policy): the
 *     object count returns to the test's three;
 *   - the server logged the killed requests it saw half of.
 */
#define KILLS      200
#define N_SLOTS    4
#define MAX_INC    (KILLS + N_SLOTS + 64)  /* kills, finishes */
#define MAX_SEQ    4096
#define LARGE      ((size_t)1 << 20)
#define SMALL_MAX  400

enum role { APPENDER, PRODUCER, CONSUMER, LOCKER };

struct msg_head {
	uint32_t inc;
	uint32_t seq;
	uint32_t len;
	uint32_t check;
};

struct ksweep {
	_Atomic int64_t acked[MAX_INC];      /* last seq whose call returned */
	_Atomic uint8_t seen[MAX_INC][MAX_SEQ]; /* queue deliveries */
	_Atomic int in_get[MAX_INC];
	_Atomic pid_t doomed[MAX_INC];
	_Atomic int ndoomed;
	_Atomic pid_t holder;
	_Atomic uint64_t progress;
	_Atomic int bad;
	_Atomic int overlap;
	_Atomic int stop;
	_Atomic int half_frames;             /* server log: EOF mid-message */
	_Atomic int resets;                  /* server log: reset by peer */
	_Atomic int handshakes;              /* server log: EOF in handshake */
	_Atomic int faults;                  /* server log: anything else */
	uint64_t seed;
	int role[MAX_INC];
};

struct ctx {
	struct ksweep *sw;
	mp_manager_t *m;
	mp_proxy_t *list;
	mp_proxy_t *queue;
	mp_proxy_t *rlock;
	int inc;
};

static uint32_t
msg_len(uint32_t inc, uint32_t seq)
{
	uint32_t h = (inc * 2654435761u) ^ (seq * 40503u);
	if (h % 8 == 0) {
		return (uint32_t)LARGE + h % 1000;
	}
	return (uint32_t)sizeof(struct msg_head) + h % SMALL_MAX;
}

static uint8_t
msg_byte(uint32_t inc, uint32_t seq, size_t i)
{
	return (uint8_t)(inc * 31 + seq * 7 + i * 13);
}

static mp_obj_t *
make_msg(uint32_t inc, uint32_t seq, uint8_t *buf)
{
	uint32_t len = msg_len(inc, seq);
	struct msg_head h = { inc, seq, len, inc ^ seq ^ len };
	memcpy(buf, &h, sizeof(h));
	for (size_t i = sizeof(h); i < len; i++) {
		buf[i] = msg_byte(inc, seq, i);
	}
	return mp_bytes(buf, len);
}

/* The (inc, seq) of a whole, correct message, or false. */
static bool
msg_check(const mp_obj_t *o, struct msg_head *h)
{
	size_t len;
	const uint8_t *p = mp_bytes_data(o, &len);
	if (p == NULL || len < sizeof(*h)) {
		return false;
	}
	memcpy(h, p, sizeof(*h));
	if (h->inc >= MAX_INC || h->seq >= MAX_SEQ || h->len != len ||
	    h->check != (h->inc ^ h->seq ^ h->len) ||
	    msg_len(h->inc, h->seq) != len) {
		return false;
	}
	for (size_t i = sizeof(*h); i < len; i++) {
		if (p[i] != msg_byte(h->inc, h->seq, i)) {
			return false;
		}
	}
	return true;
}

static int64_t
list_id(int inc, int64_t seq)
{
	return (int64_t)inc * MAX_SEQ + seq;
}

static int
run_appender(struct ctx *x)
{
	for (int64_t seq = 0; seq < MAX_SEQ && !atomic_load(&x->sw->stop);
	    seq++) {
		mp_obj_t *v = mp_int(list_id(x->inc, seq));
		int rv = mp_proxy_list_append(x->list, v);
		mp_obj_unref(v);
		if (rv != 0) {
			return 10;
		}
		atomic_store(&x->sw->acked[x->inc], seq);
		atomic_fetch_add(&x->sw->progress, 1);
	}
	return 0;
}

static int
run_producer(struct ctx *x)
{
	uint8_t *buf = malloc(LARGE + 1000);
	if (buf == NULL) {
		return 11;
	}
	int rv = 0;
	for (uint32_t seq = 0; seq < MAX_SEQ && !atomic_load(&x->sw->stop) &&
	    rv == 0; seq++) {
		mp_obj_t *v = make_msg((uint32_t)x->inc, seq, buf);
		rv = mp_proxy_queue_put(x->queue, v, MP_FOREVER);
		mp_obj_unref(v);
		if (rv == 0) {
			atomic_store(&x->sw->acked[x->inc], seq);
			atomic_fetch_add(&x->sw->progress, 1);
		}
	}
	free(buf);
	return rv == 0 ? 0 : 12;
}

static void
record(struct ksweep *sw, const mp_obj_t *item)
{
	struct msg_head h;
	if (!msg_check(item, &h)) {
		atomic_fetch_add(&sw->bad, 1);
		return;
	}
	atomic_fetch_add(&sw->seen[h.inc][h.seq], 1);
}

static int
run_consumer(struct ctx *x)
{
	for (;;) {
		mp_obj_t *item = NULL;
		atomic_store(&x->sw->in_get[x->inc], 1);
		int rv = mp_proxy_queue_get(x->queue, 100, &item);
		if (rv == 0) {
			record(x->sw, item);
			mp_obj_unref(item);
		}
		atomic_store(&x->sw->in_get[x->inc], 0);
		if (rv == -ETIMEDOUT) {
			if (atomic_load(&x->sw->stop)) {
				return 0;
			}
			continue;
		}
		if (rv != 0) {
			return 13;
		}
		atomic_fetch_add(&x->sw->progress, 1);
	}
}

static bool
is_doomed(struct ksweep *sw, pid_t pid)
{
	int n = atomic_load(&sw->ndoomed);
	for (int i = 0; i < n; i++) {
		if (atomic_load(&sw->doomed[i]) == pid) {
			return true;
		}
	}
	return false;
}

static int
run_locker(struct ctx *x)
{
	pid_t me = getpid();
	uint64_t rng = x->sw->seed ^ (uint64_t)x->inc;
	while (!atomic_load(&x->sw->stop)) {
		if (mp_proxy_lock_acquire(x->rlock, MP_FOREVER) != 0) {
			return 14;
		}
		pid_t was = atomic_exchange(&x->sw->holder, me);
		if (was != 0 && !is_doomed(x->sw, was)) {
			atomic_fetch_add(&x->sw->overlap, 1);
		}
		mp_test_spin(mp_test_rand_below(&rng, 20000));
		pid_t mine = me;
		if (!atomic_compare_exchange_strong(&x->sw->holder, &mine, 0)) {
			atomic_fetch_add(&x->sw->overlap, 1);
		}
		if (mp_proxy_lock_release(x->rlock) != 0) {
			return 15;
		}
		atomic_fetch_add(&x->sw->progress, 1);
	}
	return 0;
}

/*
 * A worker: its own list (kept while it runs), then its role. Its method
 * channel is opened first: a client with no connection is an orphan, and
 * with a grace of 1 ms its new list could go before it is used.
 */
static _Noreturn void
worker(struct ctx *x, enum role role)
{
	mp_proxy_t *own = NULL;
	size_t n;
	if (mp_proxy_list_len(x->list, &n) != 0 ||
	    mp_manager_create(x->m, "list", NULL, NULL, &own) != 0) {
		_exit(16);
	}
	mp_obj_t *v = mp_int(x->inc);
	int rv = mp_proxy_list_append(own, v);
	mp_obj_unref(v);
	if (rv != 0) {
		_exit(17);
	}
	switch (role) {
	case APPENDER:
		rv = run_appender(x);
		break;
	case PRODUCER:
		rv = run_producer(x);
		break;
	case CONSUMER:
		rv = run_consumer(x);
		break;
	default:
		rv = run_locker(x);
		break;
	}
	mp_proxy_free(own);
	_exit(rv);
}

static pid_t
start_worker(struct ctx *x, int slot)
{
	cr_assert_lt(x->inc, MAX_INC);
	x->sw->role[x->inc] = slot;
	pid_t pid = mp_test_fork();
	if (pid == 0) {
		worker(x, (enum role)slot);
	}
	x->inc++;
	return pid;
}

/* An appender or producer that reached MAX_SEQ ends: replace it. */
static void
respawn_finished(struct ctx *x, pid_t *pids, int *incs)
{
	for (int s = 0; s < N_SLOTS; s++) {
		int status;
		if (waitpid(pids[s], &status, WNOHANG) == pids[s]) {
			cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			    "worker %d (slot %d) ended with status %#x",
			    (int)pids[s], s, status);
			incs[s] = x->inc;
			pids[s] = start_worker(x, s);
		}
	}
}

static void
count_log(void *user, enum mp_manager_log_level level, const char *line)
{
	struct ksweep *sw = user;
	(void)level;
	if (strstr(line, "end of file inside a message") != NULL) {
		atomic_fetch_add(&sw->half_frames, 1);
	} else if (strstr(line, "reset by peer") != NULL) {
		atomic_fetch_add(&sw->resets, 1);
	} else if (strstr(line, "during the handshake") != NULL) {
		atomic_fetch_add(&sw->handshakes, 1);
	} else {
		atomic_fetch_add(&sw->faults, 1);
	}
}

struct verdict {
	int64_t delivered, lost, dups, extra, appended, unacked_in;
};

static void
check_list(struct ctx *x, struct verdict *v)
{
	mp_obj_t *all = NULL;
	expect_ok(mp_proxy_getvalue(x->list, &all));
	size_t n = mp_obj_len(all);
	uint8_t *count = calloc((size_t)MAX_INC * MAX_SEQ, 1);
	cr_assert_not_null(count);
	for (size_t i = 0; i < n; i++) {
		int64_t id;
		expect_ok(mp_int_value(mp_list_get(all, (ssize_t)i), &id));
		cr_assert(id >= 0 && id < (int64_t)MAX_INC * MAX_SEQ);
		cr_assert_eq(count[id], 0, "list item %lld appended twice",
		    (long long)id);
		count[id] = 1;
	}
	for (int inc = 0; inc < x->inc; inc++) {
		if (x->sw->role[inc] != APPENDER) {
			continue;
		}
		int64_t acked = atomic_load(&x->sw->acked[inc]);
		for (int64_t seq = 0; seq < MAX_SEQ; seq++) {
			bool in = count[list_id(inc, seq)] != 0;
			if (seq <= acked) {
				cr_assert(in, "acknowledged append %d/%lld "
				    "lost", inc, (long long)seq);
				v->appended++;
			} else if (seq == acked + 1) {
				v->unacked_in += in;
			} else {
				cr_assert_not(in, "append %d/%lld never sent",
				    inc, (long long)seq);
			}
		}
	}
	free(count);
	mp_obj_unref(all);
}

static void
check_queue(struct ctx *x, struct verdict *v)
{
	/* What is left in the queue is delivered to the test. */
	for (;;) {
		mp_obj_t *item = NULL;
		int rv = mp_proxy_queue_get(x->queue, MP_NOWAIT, &item);
		if (rv == -EAGAIN) {
			break;
		}
		expect_ok(rv);
		record(x->sw, item);
		mp_obj_unref(item);
	}
	cr_assert_eq(atomic_load(&x->sw->bad), 0, "corrupt or half items");
	for (int inc = 0; inc < x->inc; inc++) {
		int64_t acked = x->sw->role[inc] == PRODUCER ?
		    atomic_load(&x->sw->acked[inc]) : -1;
		for (int64_t seq = 0; seq < MAX_SEQ; seq++) {
			int n = atomic_load(&x->sw->seen[inc][seq]);
			v->dups += n > 1;
			if (seq <= acked) {
				v->delivered += n == 1;
				v->lost += n == 0;
			} else if (seq > acked + 1) {
				v->extra += n != 0;
			}
		}
	}
}

Test(manager_kill, clients_killed_at_random_points, .timeout = 300)
{
	struct ksweep *sw = mp_test_shared_map(sizeof(*sw));
	uint64_t rng = mp_test_seed("manager_kill");
	sw->seed = rng;
	for (int i = 0; i < MAX_INC; i++) {
		atomic_store(&sw->acked[i], -1);
	}
	struct mp_manager_server_opts opts = { .orphan_grace_ms = 1,
		.log = count_log, .log_user = sw };
	struct mp_test_mgr srv;
	mp_test_mgr_start(&srv, &opts, NULL, NULL);
	struct ctx x = { .sw = sw };
	/* Open while the test runs: the test's client is never an orphan. */
	mp_conn_t *anchor = mp_test_mgr_dial(srv.path);
	expect_ok(mp_manager_connect(srv.path, MP_TEST_MGR_KEY,
	    strlen(MP_TEST_MGR_KEY), MP_TEST_MGR_WAIT_MS, &x.m));
	expect_ok(mp_manager_create(x.m, "list", NULL, NULL, &x.list));
	expect_ok(mp_manager_create(x.m, "Queue", NULL, NULL, &x.queue));
	expect_ok(mp_manager_create(x.m, "RLock", NULL, NULL, &x.rlock));
	pid_t pids[N_SLOTS];
	int incs[N_SLOTS];
	for (int s = 0; s < N_SLOTS; s++) {
		incs[s] = x.inc;
		pids[s] = start_worker(&x, s);
	}
	int kills[N_SLOTS] = { 0 };
	int getting = 0;
	int64_t start = mp_test_now_ms();
	for (int k = 0; k < KILLS; k++) {
		uint64_t target = atomic_load(&sw->progress) + 1 +
		    mp_test_rand_below(&rng, 40);
		int64_t end = mp_test_now_ms() + 20000;
		while (atomic_load(&sw->progress) < target) {
			respawn_finished(&x, pids, incs);
			cr_assert_lt(mp_test_now_ms(), end, "no progress "
			    "before kill %d", k);
			sched_yield();
		}
		mp_test_spin(mp_test_rand_below(&rng, 200000));
		int s = (int)mp_test_rand_below(&rng, N_SLOTS);
		atomic_store(&sw->doomed[atomic_load(&sw->ndoomed)], pids[s]);
		atomic_fetch_add(&sw->ndoomed, 1);
		kill(pids[s], SIGKILL);
		getting += s == CONSUMER && atomic_load(&sw->in_get[incs[s]]);
		int code = mp_test_reap(pids[s]);
		cr_assert(code == -SIGKILL || code == 0, "worker exited %d",
		    code);
		kills[s]++;
		incs[s] = x.inc;
		pids[s] = start_worker(&x, s);
	}
	atomic_store(&sw->stop, 1);
	for (int s = 0; s < N_SLOTS; s++) {
		cr_assert_eq(mp_test_reap(pids[s]), 0, "slot %d failed", s);
	}
	struct verdict v = { 0 };
	check_list(&x, &v);
	check_queue(&x, &v);
	cr_assert_eq(v.dups, 0, "queue items delivered twice");
	cr_assert_eq(v.extra, 0, "queue items never put were delivered");
	cr_assert_leq(v.lost, getting, "%lld acknowledged items lost, %d "
	    "consumers killed with a get in flight", (long long)v.lost,
	    getting);
	cr_assert_eq(atomic_load(&sw->overlap), 0, "two lockers at once");
	/* Whoever held the RLock when killed, it is free now. */
	expect_ok(mp_proxy_lock_acquire(x.rlock, MP_NOWAIT));
	expect_ok(mp_proxy_lock_release(x.rlock));
	/* The killed workers' own lists go; the test's three stay. */
	int64_t end = mp_test_now_ms() + 20000;
	size_t objs;
	for (;;) {
		expect_ok(mp_manager_number_of_objects(x.m, &objs));
		if (objs == 3) {
			break;
		}
		cr_assert_lt(mp_test_now_ms(), end, "%zu objects left", objs);
		sched_yield();
	}
	cr_log_info("%d kills in %lld ms (appender %d, producer %d, consumer "
	    "%d of which %d with a get in flight, locker %d); %lld appends "
	    "acknowledged, all present once (%lld unacknowledged in-flight "
	    "appends took effect); %lld acknowledged puts delivered once, "
	    "%lld lost with a killed consumer. The server logged %d requests "
	    "cut mid-frame, %d resets (replies left unread), %d handshakes "
	    "cut, %d other faults",
	    KILLS, (long long)(mp_test_now_ms() - start), kills[APPENDER],
	    kills[PRODUCER], kills[CONSUMER], getting, kills[LOCKER],
	    (long long)v.appended, (long long)v.unacked_in,
	    (long long)v.delivered, (long long)v.lost,
	    atomic_load(&sw->half_frames), atomic_load(&sw->resets),
	    atomic_load(&sw->handshakes), atomic_load(&sw->faults));
	cr_assert_gt(v.delivered, 0);
	cr_assert_gt(v.appended, 0);
	mp_proxy_free(x.list);
	mp_proxy_free(x.queue);
	mp_proxy_free(x.rlock);
	mp_manager_free(x.m);
	mp_conn_close(anchor);
	mp_test_mgr_stop(&srv);
	munmap(sw, sizeof(*sw));
}

/* ---- What a killed client held ------------------------------------------- */

/* In a child: one request, 0 when the reply is '#RETURN' True or None. */
static int
child_call(mp_conn_t *c, const char *ident, const char *method, mp_obj_t *args)
{
	mp_obj_t *req = mp__mgr_request(ident, method, args, NULL);
	int rv = req == NULL ? -ENOMEM : mp_conn_send(c, req);
	mp_obj_unref(req);
	enum mp__mgr_kind kind;
	mp_obj_t *res = NULL;
	if (rv == 0) {
		rv = mp_test_mgr_try_recv(c, &kind, &res);
	}
	if (rv == 0 && (kind != MP__MGR_RETURN ||
	    (mp_obj_type(res) == MP_TYPE_BOOL && !mp_bool_value(res)))) {
		rv = -EPROTO;
	}
	mp_obj_unref(res);
	return rv;
}

static mp_conn_t *
child_channel(const char *path)
{
	mp_conn_t *c = NULL;
	if (mp_client_connect(path, MP_TEST_MGR_KEY, strlen(MP_TEST_MGR_KEY),
	    MP_TEST_MGR_WAIT_MS, &c) != 0 || child_call(c, NULL,
	    "accept_connection", mp_tuple_of(1, mp_str("Victim"))) != 0) {
		_exit(20);
	}
	return c;
}

struct held {
	char lock[32], rlock[32], cond[32], sem[32], barrier[32], queue[32];
};

/*
 * The victim takes a Lock, an RLock (twice), a Condition's lock and a
 * Semaphore, then parks a Barrier.wait and a Queue.get on two more
 * channels, says so, and waits to be killed.
 */
static _Noreturn void
victim_main(const char *path, const struct held *h, int ready)
{
	mp_conn_t *c = child_channel(path);
	const char *take[] = { h->lock, h->rlock, h->rlock, h->cond, h->sem };
	for (size_t i = 0; i < 5; i++) {
		if (child_call(c, take[i], "acquire", NULL) != 0) {
			_exit(21);
		}
	}
	mp_conn_t *b = child_channel(path);
	mp_conn_t *q = child_channel(path);
	mp_obj_t *r1 = mp__mgr_request(h->barrier, "wait", NULL, NULL);
	mp_obj_t *r2 = mp__mgr_request(h->queue, "get", NULL, NULL);
	if (mp_conn_send(b, r1) != 0 || mp_conn_send(q, r2) != 0) {
		_exit(22);
	}
	mp_test_mgr_drained(mp_conn_fileno(b));
	mp_test_mgr_drained(mp_conn_fileno(q));
	mp_test_send_byte(ready, 'r');
	for (;;) {
		pause();
	}
}

static bool
try_acquire(mp_conn_t *c, const char *id)
{
	mp_obj_t *r = mp_test_mgr_call(c, id, "acquire",
	    mp_tuple_of(1, mp_bool(false)), NULL);
	bool got = mp_bool_value(r);
	mp_obj_unref(r);
	return got;
}

static int64_t
barrier_index(mp_conn_t *c)
{
	enum mp__mgr_kind kind;
	mp_obj_t *r = mp_test_mgr_recv(c, &kind);
	cr_assert_eq(kind, MP__MGR_RETURN);
	int64_t i;
	expect_ok(mp_int_value(r, &i));
	mp_obj_unref(r);
	return i;
}

/*
 * docs/internals/manager.md, "Leaving": a killed client's parked calls
 * are dropped (a Barrier party uncounted), its RLock and Condition are
 * released; a plain Lock stays held (CPython lets another client release
 * it) and a Semaphore's count stays taken (it has no owner).
 */
Test(manager_kill, what_a_killed_client_held)
{
	struct mp_test_mgr srv;
	mp_test_mgr_start(&srv, NULL, NULL, NULL);
	struct held h;
	mp_test_mgr_create(srv.path, "Lock", NULL, h.lock, sizeof(h.lock));
	mp_test_mgr_create(srv.path, "RLock", NULL, h.rlock, sizeof(h.rlock));
	mp_test_mgr_create(srv.path, "Condition", NULL, h.cond,
	    sizeof(h.cond));
	mp_test_mgr_create(srv.path, "Semaphore", mp_tuple_of(1, mp_int(1)),
	    h.sem, sizeof(h.sem));
	mp_test_mgr_create(srv.path, "Barrier", mp_tuple_of(1, mp_int(3)),
	    h.barrier, sizeof(h.barrier));
	mp_test_mgr_create(srv.path, "Queue", NULL, h.queue, sizeof(h.queue));
	int up[2];
	mp_test_pipe(up);
	pid_t pid = mp_test_fork();
	if (pid == 0) {
		victim_main(srv.path, &h, up[1]);
	}
	cr_assert_eq(mp_test_recv_byte(up[0]), 'r');
	close(up[0]);
	close(up[1]);
	/* A second party waits behind the victim (index 1)... */
	mp_conn_t *b1 = mp_test_mgr_channel(srv.path);
	mp_test_mgr_send(b1, h.barrier, "wait", NULL, NULL);
	mp_test_mgr_drained(mp_conn_fileno(b1));
	mp_conn_t *c = mp_test_mgr_channel(srv.path);
	cr_assert_not(try_acquire(c, h.rlock));
	cr_assert_eq(mp_test_kill(pid), -SIGKILL);
	/* ... and two more fill the round once the victim is counted out. */
	mp_conn_t *b2 = mp_test_mgr_channel(srv.path);
	mp_test_mgr_send(b2, h.barrier, "wait", NULL, NULL);
	mp_conn_t *b3 = mp_test_mgr_channel(srv.path);
	mp_test_mgr_send(b3, h.barrier, "wait", NULL, NULL);
	int64_t i1 = barrier_index(b1);
	int64_t i2 = barrier_index(b2);
	int64_t i3 = barrier_index(b3);
	cr_assert(i1 != i2 && i1 != i3 && i2 != i3 && i1 + i2 + i3 == 3,
	    "arrival indices %lld %lld %lld", (long long)i1, (long long)i2,
	    (long long)i3);
	/* RLock and Condition: released with the dead connection. */
	cr_assert(try_acquire(c, h.rlock));
	cr_assert(try_acquire(c, h.cond));
	/* Lock: still held; anyone may release it, as in CPython. */
	cr_assert_not(try_acquire(c, h.lock));
	mp_obj_unref(mp_test_mgr_call(c, h.lock, "release", NULL, NULL));
	cr_assert(try_acquire(c, h.lock));
	/* Semaphore: what was taken stays taken. */
	cr_assert_not(try_acquire(c, h.sem));
	/* The dead client's parked get is gone: the item comes here. */
	mp_obj_unref(mp_test_mgr_call(c, h.queue, "put",
	    mp_tuple_of(1, mp_str("x")), NULL));
	mp_obj_t *r = mp_test_mgr_call(c, h.queue, "get", NULL, NULL);
	cr_assert_str_eq(mp_str_data(r, NULL), "x");
	mp_obj_unref(r);
	mp_conn_close(b1);
	mp_conn_close(b2);
	mp_conn_close(b3);
	mp_conn_close(c);
	mp_test_mgr_stop(&srv);
}
