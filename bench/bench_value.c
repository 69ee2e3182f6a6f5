/* SPDX-License-Identifier: MIT */
/* bench_value.c: the lecture's Value and Array loops, 2 processes x 100,000 locked increments each. */
#include <mproc.h>
#include <mproc/event.h>
#include <mproc/shared.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/*
 * What is measured, as bench/py/value.py (and research/bench/mpbench.py)
 * measures CPython: two children are started and wait on an Event; the
 * parent takes t0 and sets it; each child runs its loop and records its
 * own finish time. The figure is max(finish) - t0, in seconds: process
 * start and join are excluded. Each loop body is Python's
 *     with v.get_lock(): v.value += 1        (Value('i', 0))
 *     with a.get_lock(): a[0] += 1           (Array('i', 10))
 * written as lock, increment through the pointer, unlock. The median of
 * REPEAT runs is printed, one line per figure: "<name> s <seconds>".
 */
#define N_INCS  100000
#define N_PROCS 2
#define REPEAT  5

struct shared {
	int64_t finish_ns[N_PROCS];
};

struct job {
	mp_value_t *value;      /* one of value, array */
	mp_array_t *array;
	mp_event_t *go;
	mp_sem_t *ready;
	struct shared *sh;
	int index;
};

static int64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
worker(void *arg)
{
	struct job *j = arg;
	mp_sem_release(j->ready);
	if (mp_event_wait(j->go, MP_FOREVER) != 0) {
		return 1;
	}
	if (j->value != NULL) {
		int *v = mp_value_ptr(j->value);
		for (int i = 0; i < N_INCS; i++) {
			mp_value_lock(j->value, MP_FOREVER);
			*v += 1;
			mp_value_unlock(j->value);
		}
	} else {
		int *a = mp_array_ptr(j->array);
		for (int i = 0; i < N_INCS; i++) {
			mp_array_lock(j->array, MP_FOREVER);
			a[0] += 1;
			mp_array_unlock(j->array);
		}
	}
	j->sh->finish_ns[j->index] = now_ns();
	return 0;
}

/* One run; returns seconds, or a negative value on failure. */
static double
run_once(mp_value_t *value, mp_array_t *array, struct shared *sh)
{
	mp_event_t *go;
	mp_sem_t *ready;
	if (mp_event_new(&go) != 0 || mp_sem_new(0, &ready) != 0) {
		return -1;
	}
	struct job jobs[N_PROCS];
	mp_process_t *p[N_PROCS];
	for (int k = 0; k < N_PROCS; k++) {
		jobs[k] = (struct job){ value, array, go, ready, sh, k };
		if (mp_process_new(worker, &jobs[k], NULL, &p[k]) != 0 ||
		    mp_process_start(p[k]) != 0) {
			return -1;
		}
	}
	for (int k = 0; k < N_PROCS; k++) {
		mp_sem_acquire(ready, MP_FOREVER);
	}
	int64_t t0 = now_ns();
	mp_event_set(go);
	int64_t end = t0;
	int failed = 0;
	for (int k = 0; k < N_PROCS; k++) {
		int code = 1;
		mp_process_join(p[k], MP_FOREVER);
		mp_process_exitcode(p[k], &code);
		failed |= code;
		mp_process_free(p[k]);
		end = sh->finish_ns[k] > end ? sh->finish_ns[k] : end;
	}
	mp_event_free(go);
	mp_sem_free(ready);
	return failed ? -1 : (double)(end - t0) / 1e9;
}

static int
compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int
bench(const char *name, bool use_array)
{
	struct shared *sh;
	if (mp_shared_alloc(sizeof(*sh), (void **)&sh) != 0) {
		return 1;
	}
	double t[REPEAT];
	for (int r = 0; r < REPEAT; r++) {
		mp_value_t *value = NULL;
		mp_array_t *array = NULL;
		int rv = use_array ? mp_array_new('i', 10, NULL, NULL, &array) :
		    mp_value_new('i', NULL, NULL, &value);
		if (rv != 0) {
			return 1;
		}
		t[r] = run_once(value, array, sh);
		int64_t total = -1;
		if (use_array) {
			mp_array_get_long(array, 0, &total);
		} else {
			mp_value_get_long(value, &total);
		}
		mp_value_free(value);
		mp_array_free(array);
		if (t[r] < 0 || total != (int64_t)N_PROCS * N_INCS) {
			fprintf(stderr,
			    "bench_value: %s: run failed (total %lld)\n", name,
			    (long long)total);
			return 1;
		}
	}
	qsort(t, REPEAT, sizeof(t[0]), compare_double);
	printf("RESULT %s s %.6f\n", name, t[REPEAT / 2]);
	fflush(stdout);
	mp_shared_free(sh);
	return 0;
}

int
main(void)
{
	if (bench("value_example", false) != 0 ||
	    bench("array_example", true) != 0) {
		return 1;
	}
	return 0;
}
