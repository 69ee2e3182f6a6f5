/* SPDX-License-Identifier: MIT */
/* test_queue_alloc.c: the queue's memory: thread buffers, and every allocation of put and get failing. */
#include "harness/harness.h"
#include "core/internal.h"

#include <pthread.h>

MP_TEST_SUITE(queue_alloc);

static mp_obj_t *
message(int i)
{
	return mp_list_of(3, mp_str("Process-1"), mp_int(i), mp_tuple_of(1,
	    mp_float(0.5)));
}

static void *
put_get_in_a_thread(void *arg)
{
	mp_queue_t *q = arg;
	mp_obj_t *o = message(1);
	mp_obj_t *back = NULL;
	if (mp_queue_put(q, o, MP_NOWAIT) != 0 ||
	    mp_queue_get(q, &back, MP_NOWAIT) != 0) {
		o = NULL;
	}
	void *raw = NULL;
	size_t len;
	if (mp_queue_put_bytes(q, "raw", 3, MP_NOWAIT) != 0 ||
	    mp_queue_get_bytes(q, &raw, &len, MP_NOWAIT) != 0) {
		o = NULL;
	}
	mp_free(raw);
	mp_obj_unref(back);
	mp_obj_unref(o);
	return o != NULL ? arg : NULL;
}

/*
 * A put and a get keep a buffer per thread for the next call; a thread
 * that ends gives them back (valgrind found them lost, one pair per
 * thread that ever used a queue).
 */
Test(queue_alloc, thread_buffers_are_released_when_the_thread_ends)
{
	mp_test_count_start();
	mp_queue_t *q;
	expect_ok(mp_queue_new(0, NULL, &q));
	long before = mp_test_count_live();
	for (int i = 0; i < 3; i++) {
		pthread_t t;
		void *ok = NULL;
		cr_assert_eq(pthread_create(&t, NULL, put_get_in_a_thread, q),
		    0);
		cr_assert_eq(pthread_join(t, &ok), 0);
		cr_assert_eq(ok, q, "the thread's put and get failed");
		cr_assert_eq(mp_test_count_live(), before,
		    "thread %d left %ld blocks", i,
		    mp_test_count_live() - before);
	}
	mp_queue_free(q);
	mp_test_count_end();
}

/*
 * Each run is a new thread, so its put or get starts without the thread's
 * buffers and their allocation is swept too.
 */
struct job {
	mp_queue_t *q;
	mp_obj_t *o;        /* to put, or what was got */
	int rv;
};

static void *
put_job(void *arg)
{
	struct job *j = arg;
	j->rv = mp_queue_put(j->q, j->o, MP_NOWAIT);
	return NULL;
}

static void *
get_job(void *arg)
{
	struct job *j = arg;
	j->rv = mp_queue_get(j->q, &j->o, MP_NOWAIT);
	return NULL;
}

/* Run fn in a thread of its own: its buffers go when it ends. */
static int
run_thread(void *(*fn)(void *), struct job *j)
{
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, fn, j), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
	return j->rv;
}

static int
in_a_thread(struct mp_test_sweep *s, void *(*fn)(void *), struct job *j)
{
	mp_test_sweep_arm(s);
	return mp_test_sweep_done(s, run_thread(fn, j), 0, 0);
}

/* A put that fails puts nothing; the queue stays usable. */
Test(queue_alloc, put)
{
	mp_test_count_start();
	mp_queue_t *q;
	expect_ok(mp_queue_new(0, NULL, &q));
	mp_obj_t *o = message(7);
	struct mp_test_sweep s;
	for (mp_test_sweep_start(&s, "mp_queue_put (fresh thread)");
	    mp_test_sweep_next(&s);) {
		struct job j = { .q = q, .o = o };
		int rv = in_a_thread(&s, put_job, &j);
		cr_assert_eq(mp_queue_qsize(q), rv == 0 ? 1 : 0);
		if (rv == 0) {
			j.o = NULL;
			expect_ok(run_thread(get_job, &j));
			cr_assert(mp_obj_equal(j.o, o));
			mp_obj_unref(j.o);
		}
	}
	mp_obj_unref(o);
	mp_queue_free(q);
	mp_test_count_end();
}

/*
 * A get that fails before it takes the message leaves it first in the
 * queue; one that fails while decoding it has taken it, and it is lost
 * (as CPython's get loses a message its unpickling fails on). Either way
 * the next message is intact and nothing leaks.
 */
Test(queue_alloc, get)
{
	mp_test_count_start();
	mp_queue_t *q;
	expect_ok(mp_queue_new(0, NULL, &q));
	unsigned kept = 0, lost = 0;
	struct mp_test_sweep s;
	for (mp_test_sweep_start(&s, "mp_queue_get (fresh thread)");
	    mp_test_sweep_next(&s);) {
		mp_obj_t *first = message(1);
		mp_obj_t *second = message(2);
		struct job j = { .q = q, .o = first };
		expect_ok(run_thread(put_job, &j));
		j.o = second;
		expect_ok(run_thread(put_job, &j));
		j.o = NULL;
		int rv = in_a_thread(&s, get_job, &j);
		if (rv != 0) {
			cr_assert_null(j.o);
			expect_ok(run_thread(get_job, &j));
		}
		bool was_first = mp_obj_equal(j.o, first);
		cr_assert(was_first || (rv != 0 && mp_obj_equal(j.o, second)));
		kept += rv != 0 && was_first;
		lost += rv != 0 && !was_first;
		mp_obj_unref(j.o);
		if (was_first) {
			j.o = NULL;
			expect_ok(run_thread(get_job, &j));
			cr_assert(mp_obj_equal(j.o, second));
			mp_obj_unref(j.o);
		}
		cr_assert(mp_queue_empty(q));
		mp_obj_unref(first);
		mp_obj_unref(second);
	}
	fprintf(stderr, "mp_queue_get: %u failures left the message, %u "
	    "lost it while decoding\n", kept, lost);
	mp_queue_free(q);
	mp_test_count_end();
}
