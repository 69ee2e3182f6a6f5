/* SPDX-License-Identifier: MIT */
/* test_queue.c: Queue, JoinableQueue and SimpleQueue: messages, limits, timeouts, close, names, fork. */
#include "harness/harness.h"

#include "core/internal.h"

#include <mproc/queue.h>
#include <mproc/shared.h>

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/wait.h>

MP_TEST_SUITE(queue);

/*
 * Fork a child that runs fn(arg) and ends with _exit(its return value);
 * it dies with the test if a failed assertion ends the test first.
 */
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

/* Reap a child: its exit code, or -N for signal N. */
static int
reap(pid_t pid)
{
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

static mp_obj_t *
lecture_obj(const char *name)
{
	return mp_list_of(4, mp_str(name), mp_int(42), mp_none(),
	    mp_str("hello"));
}

static char *
repr(const mp_obj_t *o)
{
	char *s;
	expect_ok(mp_obj_repr(o, &s));
	return s;
}

static void
expect_int_pair(mp_obj_t *o, int64_t *a, int64_t *b)
{
	cr_assert_eq(mp_obj_type(o), MP_TYPE_TUPLE);
	expect_ok(mp_int_value(mp_tuple_get(o, 0), a));
	expect_ok(mp_int_value(mp_tuple_get(o, 1), b));
}

Test(queue, put_get_objects_in_order)
{
	mp_queue_t *q;
	expect_ok(mp_queue_new(0, NULL, &q));
	cr_assert(mp_queue_empty(q));
	for (int i = 0; i < 100; i++) {
		mp_obj_t *o = mp_tuple_of(2, mp_int(i), mp_str("x"));
		expect_ok(mp_queue_put(q, o, MP_NOWAIT));
		mp_obj_unref(o);
	}
	cr_assert_eq(mp_queue_qsize(q), 100);
	cr_assert(!mp_queue_empty(q));
	cr_assert(!mp_queue_full(q));
	for (int i = 0; i < 100; i++) {
		mp_obj_t *o;
		expect_ok(mp_queue_get(q, &o, MP_NOWAIT));
		int64_t v;
		expect_ok(mp_int_value(mp_tuple_get(o, 0), &v));
		cr_assert_eq(v, i);
		mp_obj_unref(o);
	}
	cr_assert(mp_queue_empty(q));
	mp_obj_t *o = lecture_obj("Process-1"), *back;
	expect_ok(mp_queue_put(q, o, MP_FOREVER));
	expect_ok(mp_queue_get(q, &back, MP_FOREVER));
	char *s = repr(back);
	cr_assert_str_eq(s, "['Process-1', 42, None, 'hello']");
	mp_free(s);
	mp_obj_unref(o);
	mp_obj_unref(back);
	mp_queue_free(q);
}

/* The put path reuses the thread's pickle buffer: no allocation. */
Test(queue, put_allocates_nothing_once_warm)
{
	mp_queue_t *q;
	expect_ok(mp_queue_new(0, NULL, &q));
	mp_obj_t *o = lecture_obj("warm"), *back;
	expect_ok(mp_queue_put(q, o, MP_NOWAIT));
	expect_ok(mp_queue_get(q, &back, MP_NOWAIT));
	mp_obj_unref(back);
	mp__alloc_fail_after(0);
	for (int i = 0; i < 100; i++) {
		expect_ok(mp_queue_put(q, o, MP_NOWAIT));
		expect_ok(mp_queue_put_bytes(q, "raw", 3, MP_NOWAIT));
	}
	cr_assert_eq(mp__alloc_fail_after(0), 0);
	mp_obj_unref(o);
	mp_queue_free(q);
}

Test(queue, bytes_and_cross_formats)
{
	mp_queue_t *q;
	expect_ok(mp_queue_new(0, NULL, &q));
	expect_ok(mp_queue_put_bytes(q, "abc", 3, MP_NOWAIT));
	expect_ok(mp_queue_put_bytes(q, NULL, 0, MP_NOWAIT));
	expect_err(mp_queue_put_bytes(q, NULL, 3, MP_NOWAIT), -EINVAL);
	void *data;
	size_t len;
	expect_ok(mp_queue_get_bytes(q, &data, &len, MP_NOWAIT));
	cr_assert_eq(len, 3);
	cr_assert_arr_eq(data, "abc", 3);
	mp_free(data);
	expect_ok(mp_queue_get_bytes(q, &data, &len, MP_NOWAIT));
	cr_assert_eq(len, 0);
	cr_assert_not_null(data);
	mp_free(data);

	/* Bytes come out of get as a bytes object... */
	mp_obj_t *o;
	expect_ok(mp_queue_put_bytes(q, "xy", 2, MP_NOWAIT));
	expect_ok(mp_queue_get(q, &o, MP_NOWAIT));
	char *s = repr(o);
	cr_assert_str_eq(s, "b'xy'");
	mp_free(s);
	mp_obj_unref(o);
	/* ...and an object out of get_bytes as its pickle. */
	o = lecture_obj("a");
	void *pickle;
	size_t plen;
	expect_ok(mp_pickle_dumps(o, &pickle, &plen));
	expect_ok(mp_queue_put(q, o, MP_NOWAIT));
	expect_ok(mp_queue_get_bytes(q, &data, &len, MP_NOWAIT));
	cr_assert_eq(len, plen);
	cr_assert_arr_eq(data, pickle, plen);
	mp_free(data);
	mp_free(pickle);
	mp_obj_unref(o);
	mp_queue_free(q);
}

Test(queue, empty_get_nowait_and_timeout)
{
	mp_queue_t *q;
	expect_ok(mp_queue_new(0, NULL, &q));
	mp_obj_t *o = NULL;
	void *data = NULL;
	size_t len = 7;
	expect_err(mp_queue_get(q, &o, MP_NOWAIT), -EAGAIN);
	expect_err(mp_queue_get(q, &o, 30), -ETIMEDOUT);
	expect_err(mp_queue_get_bytes(q, &data, &len, 30), -ETIMEDOUT);
	expect_err(mp_queue_get(q, &o, -2), -EINVAL);
	expect_err(mp_queue_put_bytes(q, "a", 1, -2), -EINVAL);
	cr_assert_null(o);
	cr_assert_null(data);
	cr_assert_eq(len, 7);
	mp_queue_free(q);
}

Test(queue, maxsize_full_nowait_and_timeout)
{
	mp_queue_t *q;
	expect_err(mp_queue_new((size_t)INT32_MAX + 1, NULL, &q), -EINVAL);
	expect_ok(mp_queue_new(3, NULL, &q));
	for (int i = 0; i < 3; i++) {
		cr_assert(!mp_queue_full(q));
		expect_ok(mp_queue_put_bytes(q, "m", 1, MP_NOWAIT));
	}
	cr_assert(mp_queue_full(q));
	cr_assert_eq(mp_queue_qsize(q), 3);
	expect_err(mp_queue_put_bytes(q, "m", 1, MP_NOWAIT), -EAGAIN);
	expect_err(mp_queue_put_bytes(q, "m", 1, 30), -ETIMEDOUT);
	mp_obj_t *o = mp_none();
	expect_err(mp_queue_put(q, o, 30), -ETIMEDOUT);
	void *data;
	size_t len;
	expect_ok(mp_queue_get_bytes(q, &data, &len, MP_NOWAIT));
	mp_free(data);
	expect_ok(mp_queue_put(q, o, MP_NOWAIT));
	cr_assert_eq(mp_queue_qsize(q), 3);
	mp_obj_unref(o);
	mp_queue_free(q);
}

/* With no maxsize, the ring's bytes bound the queue: Full when no room. */
Test(queue, ring_bytes_bound_puts)
{
	struct mp_queue_opts opts = { .buffer_size = 4096 };
	mp_queue_t *q;
	expect_ok(mp_queue_new(0, &opts, &q));
	char msg[100];
	int n = 0;
	for (;; n++) {
		memset(msg, 'a' + n % 26, sizeof(msg));
		int rv = mp_queue_put_bytes(q, msg, sizeof(msg), MP_NOWAIT);
		if (rv != 0) {
			expect_err(rv, -EAGAIN);
			break;
		}
	}
	/* 100 bytes take 112 + 16: 32 records in 4 KiB. */
	cr_assert_eq(n, 32);
	expect_err(mp_queue_put_bytes(q, msg, sizeof(msg), 20), -ETIMEDOUT);
	for (int i = 0; i < n; i++) {
		void *data;
		size_t len;
		expect_ok(mp_queue_get_bytes(q, &data, &len, MP_NOWAIT));
		cr_assert_eq(len, sizeof(msg));
		cr_assert_eq(((char *)data)[99], 'a' + i % 26);
		mp_free(data);
		/* Wraps around the end of the ring. */
		memset(msg, 'A', sizeof(msg));
		expect_ok(mp_queue_put_bytes(q, msg, 37, MP_NOWAIT));
	}
	cr_assert_eq(mp_queue_qsize(q), (size_t)n);
	mp_queue_free(q);
}

static int
get_one(void *arg)
{
	mp_queue_t *q = arg;
	void *data;
	size_t len;
	if (mp_queue_get_bytes(q, &data, &len, 10000) != 0) {
		return 1;
	}
	int ok = len == 5 && memcmp(data, "child", 5) == 0;
	mp_free(data);
	return ok ? 0 : 2;
}

Test(queue, close_is_per_handle)
{
	mp_queue_t *q;
	expect_ok(mp_queue_new(0, NULL, &q));
	expect_ok(mp_queue_put_bytes(q, "child", 5, MP_NOWAIT));
	mp_queue_close(q);
	mp_queue_close(q);
	mp_obj_t *o = mp_none(), *out;
	void *data;
	size_t len;
	expect_err(mp_queue_put(q, o, MP_NOWAIT), MP_ECLOSED);
	expect_err(mp_queue_put_bytes(q, "x", 1, MP_NOWAIT), MP_ECLOSED);
	expect_err(mp_queue_get(q, &out, MP_NOWAIT), MP_ECLOSED);
	expect_err(mp_queue_get_bytes(q, &data, &len, MP_NOWAIT), MP_ECLOSED);
	mp_obj_unref(o);
	mp_queue_close(NULL);
	mp_queue_free(NULL);
	mp_queue_free(q);

	/* A child's handle stays open when the parent closes its own. */
	expect_ok(mp_queue_new(0, NULL, &q));
	pid_t pid = spawn(get_one, q);
	expect_ok(mp_queue_put_bytes(q, "child", 5, MP_FOREVER));
	mp_queue_close(q);
	cr_assert_eq(reap(pid), 0);
	mp_queue_free(q);
}

/*
 * No feeder thread: each child puts and _exits at once (Python's Queue
 * can lose these messages, or hang the exit); every one arrives.
 */
static int
put_and_exit(void *arg)
{
	mp_queue_t *q = arg;
	pid_t me = getpid();
	mp_obj_t *o = mp_tuple_of(2, mp_int(me), mp_str("bye"));
	int rv = mp_queue_put(q, o, 10000);
	mp_obj_unref(o); /* for valgrind's leak check of this child */
	_exit(rv == 0 ? 0 : 1);
}

Test(queue, put_then_exit_loses_nothing)
{
	mp_queue_t *q;
	expect_ok(mp_queue_new(0, NULL, &q));
	enum { N = 20 };
	pid_t pids[N];
	for (int i = 0; i < N; i++) {
		pids[i] = spawn(put_and_exit, q);
	}
	for (int i = 0; i < N; i++) {
		cr_assert_eq(reap(pids[i]), 0);
	}
	cr_assert_eq(mp_queue_qsize(q), N);
	int found = 0;
	for (int i = 0; i < N; i++) {
		mp_obj_t *o;
		expect_ok(mp_queue_get(q, &o, MP_NOWAIT));
		int64_t pid;
		expect_ok(mp_int_value(mp_tuple_get(o, 0), &pid));
		for (int k = 0; k < N; k++) {
			found += pids[k] == pid;
		}
		mp_obj_unref(o);
	}
	cr_assert_eq(found, N);
	mp_queue_free(q);
}

/* Many producers and consumers across fork children. */
enum { NPROD = 3, NCONS = 3, PER_PROD = 20000 };

struct mpmc {
	mp_queue_t *q;
	_Atomic int64_t got[NPROD];     /* messages received per producer */
	_Atomic int64_t order_errors;
};

struct prod_arg {
	struct mpmc *m;
	int id;
};

static int
mpmc_producer(void *arg)
{
	struct prod_arg *a = arg;
	struct mpmc *m = a->m;
	for (int i = 0; i < PER_PROD; i++) {
		mp_obj_t *o = mp_tuple_of(2, mp_int(a->id), mp_int(i));
		int rv = mp_queue_put(m->q, o, 20000);
		mp_obj_unref(o);
		if (rv != 0) {
			return 1;
		}
	}
	return 0;
}

static int
mpmc_consumer(void *arg)
{
	struct mpmc *m = arg;
	int64_t last[NPROD];
	for (int k = 0; k < NPROD; k++) {
		last[k] = -1;
	}
	for (;;) {
		mp_obj_t *o;
		if (mp_queue_get(m->q, &o, 20000) != 0) {
			return 1;
		}
		if (mp_obj_type(o) == MP_TYPE_NONE) {
			return 0;
		}
		int64_t id, seq;
		expect_int_pair(o, &id, &seq);
		mp_obj_unref(o);
		/* One consumer sees each producer's messages in order. */
		if (seq <= last[id]) {
			atomic_fetch_add(&m->order_errors, 1);
		}
		last[id] = seq;
		atomic_fetch_add(&m->got[id], 1);
	}
}

Test(queue, many_producers_many_consumers)
{
	struct mpmc *m;
	expect_ok(mp_shared_alloc(sizeof(*m), (void **)&m));
	struct mp_queue_opts opts = { .buffer_size = 8192 };
	expect_ok(mp_queue_new(0, &opts, &m->q));
	pid_t pids[NPROD + NCONS];
	for (int i = 0; i < NCONS; i++) {
		pids[NPROD + i] = spawn(mpmc_consumer, m);
	}
	struct prod_arg args[NPROD];
	for (int i = 0; i < NPROD; i++) {
		args[i] = (struct prod_arg){ m, i };
		pids[i] = spawn(mpmc_producer, &args[i]);
	}
	for (int i = 0; i < NPROD; i++) {
		cr_assert_eq(reap(pids[i]), 0);
	}
	mp_obj_t *none = mp_none();
	for (int i = 0; i < NCONS; i++) {
		expect_ok(mp_queue_put(m->q, none, MP_FOREVER));
	}
	mp_obj_unref(none);
	for (int i = 0; i < NCONS; i++) {
		cr_assert_eq(reap(pids[NPROD + i]), 0);
	}
	for (int i = 0; i < NPROD; i++) {
		cr_assert_eq(atomic_load(&m->got[i]), PER_PROD);
	}
	cr_assert_eq(atomic_load(&m->order_errors), 0);
	cr_assert(mp_queue_empty(m->q));
	mp_queue_free(m->q);
	mp_shared_free(m);
}

/* Threads of one process share a handle: each has its own buffers. */
struct thread_job {
	mp_queue_t *q;
	int id;
	int64_t sum;
	int failed;
};

static void *
thread_producer(void *arg)
{
	struct thread_job *j = arg;
	for (int i = 0; i < 5000 && !j->failed; i++) {
		mp_obj_t *o = mp_tuple_of(2, mp_int(j->id), mp_int(i));
		j->failed |= mp_queue_put(j->q, o, 20000) != 0;
		mp_obj_unref(o);
	}
	return NULL;
}

static void *
thread_consumer(void *arg)
{
	struct thread_job *j = arg;
	for (int i = 0; i < 5000 && !j->failed; i++) {
		mp_obj_t *o;
		if (mp_queue_get(j->q, &o, 20000) != 0) {
			j->failed = 1;
			break;
		}
		int64_t id, seq;
		expect_int_pair(o, &id, &seq);
		j->sum += seq;
		mp_obj_unref(o);
	}
	return NULL;
}

Test(queue, threads_share_a_handle)
{
	mp_queue_t *q;
	struct mp_queue_opts opts = { .buffer_size = 4096 };
	expect_ok(mp_queue_new(0, &opts, &q));
	pthread_t t[4];
	struct thread_job jobs[4];
	for (int i = 0; i < 4; i++) {
		jobs[i] = (struct thread_job){ q, i, 0, 0 };
		cr_assert_eq(pthread_create(&t[i], NULL, i < 2 ? thread_producer :
		    thread_consumer, &jobs[i]), 0);
	}
	int64_t sum = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(jobs[i].failed, 0);
		sum += jobs[i].sum;
	}
	cr_assert_eq(sum, 2 * (int64_t)4999 * 5000 / 2);
	cr_assert(mp_queue_empty(q));
	mp_queue_free(q);
}

/* A 64 MiB message through a 1 MiB ring, and small ones around it. */
#define BIG ((size_t)64 << 20)

static uint8_t
pattern(size_t i, int salt)
{
	return (uint8_t)((i * 2654435761u) >> 13) ^ (uint8_t)salt;
}

static int
big_producer(void *arg)
{
	mp_queue_t *q = arg;
	uint8_t *buf = malloc(BIG);
	if (buf == NULL) {
		return 1;
	}
	for (size_t i = 0; i < BIG; i++) {
		buf[i] = pattern(i, 7);
	}
	int rv = mp_queue_put_bytes(q, "before", 6, 20000);
	if (rv == 0) {
		rv = mp_queue_put_bytes(q, buf, BIG, 60000);
	}
	if (rv == 0) {
		rv = mp_queue_put_bytes(q, "after", 5, 20000);
	}
	free(buf);
	return rv == 0 ? 0 : 1;
}

Test(queue, message_larger_than_the_ring)
{
	mp_queue_t *q;
	struct mp_queue_opts opts = { .buffer_size = (size_t)1 << 20 };
	expect_ok(mp_queue_new(0, &opts, &q));
	pid_t pid = spawn(big_producer, q);
	void *data;
	size_t len;
	expect_ok(mp_queue_get_bytes(q, &data, &len, 20000));
	cr_assert_eq(len, 6);
	mp_free(data);
	expect_ok(mp_queue_get_bytes(q, &data, &len, 20000));
	cr_assert_eq(len, BIG);
	const uint8_t *p = data;
	size_t bad = 0;
	for (size_t i = 0; i < BIG; i++) {
		bad += p[i] != pattern(i, 7);
	}
	cr_assert_eq(bad, 0);
	mp_free(data);
	expect_ok(mp_queue_get_bytes(q, &data, &len, 20000));
	cr_assert_eq(len, 5);
	mp_free(data);
	cr_assert_eq(reap(pid), 0);
	cr_assert(mp_queue_empty(q));
	mp_queue_free(q);
}

/* Large objects too: a list of big strings, decoded whole. */
static int
big_obj_producer(void *arg)
{
	mp_queue_t *q = arg;
	mp_obj_t *l = mp_list_new();
	char *s = malloc(100000);
	if (s == NULL) {
		return 1;
	}
	for (int i = 0; i < 40; i++) {
		memset(s, 'a' + i % 26, 99999);
		s[99999] = '\0';
		mp_list_append(l, mp_str(s));
	}
	free(s);
	int rv = mp_queue_put(q, l, 20000);
	mp_obj_unref(l);
	return rv == 0 ? 0 : 1;
}

Test(queue, large_object_streams_and_decodes)
{
	mp_queue_t *q;
	struct mp_queue_opts opts = { .buffer_size = 65536 };
	expect_ok(mp_queue_new(0, &opts, &q));
	pid_t pid = spawn(big_obj_producer, q);
	mp_obj_t *o;
	expect_ok(mp_queue_get(q, &o, 20000));
	cr_assert_eq(mp_obj_len(o), 40);
	size_t len;
	const char *s = mp_str_data(mp_list_get(o, 39), &len);
	cr_assert_eq(len, 99999);
	cr_assert_eq(s[500], 'a' + 39 % 26);
	mp_obj_unref(o);
	cr_assert_eq(reap(pid), 0);
	mp_queue_free(q);
}

/* A streamed put that times out is withdrawn: nobody sees part of it. */
Test(queue, timed_out_stream_is_withdrawn)
{
	mp_queue_t *q;
	struct mp_queue_opts opts = { .buffer_size = 65536 };
	expect_ok(mp_queue_new(0, &opts, &q));
	size_t n = 1 << 20;
	char *buf = calloc(1, n);
	cr_assert_not_null(buf);
	expect_err(mp_queue_put_bytes(q, buf, n, 50), -ETIMEDOUT);
	expect_err(mp_queue_put_bytes(q, buf, n, MP_NOWAIT), -EAGAIN);
	free(buf);
	cr_assert_eq(mp_queue_qsize(q), 0);
	void *data;
	size_t len;
	expect_err(mp_queue_get_bytes(q, &data, &len, MP_NOWAIT), -EAGAIN);
	expect_ok(mp_queue_put_bytes(q, "ok", 2, MP_NOWAIT));
	expect_ok(mp_queue_get_bytes(q, &data, &len, MP_NOWAIT));
	cr_assert_eq(len, 2);
	mp_free(data);
	expect_err(mp_queue_get_bytes(q, &data, &len, 20), -ETIMEDOUT);
	mp_queue_free(q);
}

/* JoinableQueue. */
static int
worker_done(void *arg)
{
	mp_queue_t *q = arg;
	for (int i = 0; i < 5; i++) {
		mp_obj_t *o;
		if (mp_queue_get(q, &o, 10000) != 0) {
			return 1;
		}
		mp_obj_unref(o);
		if (mp_queue_task_done(q) != 0) {
			return 2;
		}
	}
	return 0;
}

Test(queue, joinable_task_done_and_join)
{
	mp_queue_t *q;
	expect_ok(mp_joinable_queue_new(0, NULL, &q));
	expect_err(mp_queue_task_done(q), -EINVAL);
	expect_ok(mp_queue_join(q, MP_NOWAIT));
	mp_obj_t *o = mp_int(1);
	for (int i = 0; i < 2; i++) {
		expect_ok(mp_queue_put(q, o, MP_NOWAIT));
	}
	expect_err(mp_queue_join(q, MP_NOWAIT), -EAGAIN);
	expect_err(mp_queue_join(q, 30), -ETIMEDOUT);
	expect_err(mp_queue_join(q, -5), -EINVAL);
	/* Python counts task_done against puts, not gets. */
	expect_ok(mp_queue_task_done(q));
	expect_ok(mp_queue_task_done(q));
	expect_err(mp_queue_task_done(q), -EINVAL);
	expect_ok(mp_queue_join(q, MP_NOWAIT));

	/*
	 * A worker process marks the tasks done; join waits for it. The two
	 * items above are still queued with their tasks done, so the five
	 * new ones are put before the worker starts: otherwise it could take
	 * an old item and call task_done before any new put, which is one
	 * task_done too many (-EINVAL), as in Python.
	 */
	for (int i = 0; i < 5; i++) {
		expect_ok(mp_queue_put(q, o, MP_FOREVER));
	}
	pid_t pid = spawn(worker_done, q);
	expect_ok(mp_queue_join(q, 20000));
	cr_assert_eq(reap(pid), 0);
	mp_obj_unref(o);
	mp_queue_close(q);
	expect_err(mp_queue_task_done(q), MP_ECLOSED);
	expect_err(mp_queue_join(q, 0), MP_ECLOSED);
	mp_queue_free(q);

	expect_ok(mp_queue_new(0, NULL, &q));
	expect_err(mp_queue_task_done(q), -ENOTSUP);
	expect_err(mp_queue_join(q, 0), -ENOTSUP);
	mp_queue_free(q);
}

/* SimpleQueue. */
static int
simple_child(void *arg)
{
	mp_simple_queue_t *q = arg;
	mp_obj_t *o = lecture_obj("child");
	int rv = mp_simple_queue_put(q, o, 10000);
	mp_obj_unref(o);
	if (rv == 0) {
		rv = mp_simple_queue_put_bytes(q, "raw", 3, 10000);
	}
	return rv == 0 ? 0 : 1;
}

Test(queue, simple_queue)
{
	mp_simple_queue_t *q;
	expect_ok(mp_simple_queue_new(NULL, &q));
	cr_assert(mp_simple_queue_empty(q));
	pid_t pid = spawn(simple_child, q);
	mp_obj_t *o;
	expect_ok(mp_simple_queue_get(q, &o, 10000));
	char *s = repr(o);
	cr_assert_str_eq(s, "['child', 42, None, 'hello']");
	mp_free(s);
	mp_obj_unref(o);
	void *data;
	size_t len;
	expect_ok(mp_simple_queue_get_bytes(q, &data, &len, 10000));
	cr_assert_eq(len, 3);
	mp_free(data);
	cr_assert_eq(reap(pid), 0);
	cr_assert(mp_simple_queue_empty(q));
	expect_err(mp_simple_queue_get(q, &o, 20), -ETIMEDOUT);
	mp_simple_queue_close(q);
	expect_err(mp_simple_queue_get(q, &o, MP_NOWAIT), MP_ECLOSED);
	expect_err(mp_simple_queue_put_bytes(q, "x", 1, MP_NOWAIT), MP_ECLOSED);
	mp_simple_queue_free(q);

	/* A put waits only for ring bytes: MP_NOWAIT and timeouts. */
	struct mp_queue_opts opts = { .buffer_size = 4096, .joinable = true };
	expect_ok(mp_simple_queue_new(&opts, &q));
	/* Four records of 16 + 992 bytes leave 64: room for two Nones. */
	char buf[990] = { 0 };
	for (int i = 0; i < 4; i++) {
		expect_ok(mp_simple_queue_put_bytes(q, buf, sizeof(buf),
		    MP_NOWAIT));
	}
	expect_err(mp_simple_queue_put_bytes(q, buf, sizeof(buf), MP_NOWAIT),
	    -EAGAIN);
	expect_err(mp_simple_queue_put_bytes(q, buf, sizeof(buf), 20),
	    -ETIMEDOUT);
	o = mp_none();
	expect_ok(mp_simple_queue_put(q, o, 20));
	expect_ok(mp_simple_queue_put(q, o, MP_NOWAIT));
	expect_err(mp_simple_queue_put(q, o, 20), -ETIMEDOUT);
	mp_obj_unref(o);
	cr_assert(!mp_simple_queue_empty(q));
	mp_simple_queue_free(q);
	mp_simple_queue_free(NULL);
}

/* Named queues: an unrelated process opens the queue by its name. */
static char qname[64];

static int
named_child(void *arg)
{
	(void)arg;
	mp_queue_t *q;
	if (mp_queue_open(qname, 0, 0, NULL, &q) != 0) {
		return 1;
	}
	int rv = mp_queue_put_bytes(q, "hi", 2, 10000);
	mp_queue_free(q);
	return rv == 0 ? 0 : 2;
}

static bool
shm_exists(const char *name)
{
	char path[128];
	snprintf(path, sizeof(path), "/dev/shm/mproc.queue.%s", name);
	return access(path, F_OK) == 0;
}

Test(queue, named_queue)
{
	snprintf(qname, sizeof(qname), "test-%d", (int)getpid());
	mp_queue_t *q, *q2;
	expect_err(mp_queue_open(qname, 0, 0, NULL, &q), -ENOENT);
	expect_err(mp_queue_open("a/b", MP_CREATE, 0, NULL, &q), -EINVAL);
	expect_err(mp_queue_open(qname, 0x40, 0, NULL, &q), -EINVAL);
	expect_ok(mp_queue_open(qname, MP_CREATE | MP_EXCL, 2, NULL, &q));
	cr_assert(shm_exists(qname));
	expect_err(mp_queue_open(qname, MP_CREATE | MP_EXCL, 0, NULL, &q2),
	    -EEXIST);
	struct mp_queue_opts small = { .buffer_size = 8192 };
	expect_err(mp_queue_open(qname, 0, 0, &small, &q2), -EPROTO);
	/* A second handle in this process sees the creator's maxsize. */
	expect_ok(mp_queue_open(qname, MP_CREATE, 0, NULL, &q2));
	pid_t pid = spawn(named_child, NULL);
	void *data;
	size_t len;
	expect_ok(mp_queue_get_bytes(q, &data, &len, 10000));
	cr_assert_eq(len, 2);
	mp_free(data);
	cr_assert_eq(reap(pid), 0);
	expect_ok(mp_queue_put_bytes(q2, "a", 1, MP_NOWAIT));
	expect_ok(mp_queue_put_bytes(q2, "b", 1, MP_NOWAIT));
	expect_err(mp_queue_put_bytes(q2, "c", 1, MP_NOWAIT), -EAGAIN);
	cr_assert(mp_queue_full(q));
	mp_queue_free(q2);
	mp_queue_free(q);
	expect_ok(mp_queue_unlink(qname));
	cr_assert(!shm_exists(qname));
	expect_err(mp_queue_unlink(qname), -ENOENT);
	expect_err(mp_queue_unlink(""), -EINVAL);
}
