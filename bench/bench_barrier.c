/* SPDX-License-Identifier: MIT */
/* bench_barrier.c: Barrier(2) rounds per second between two processes. */
#include <mproc.h>
#include <mproc/barrier.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * What is measured, as bench/py/barrier.py (and research/bench/mpbench.py)
 * measures CPython: a 2-party barrier, a child that waits on it in a loop,
 * the parent meets it once (both alive), then times ROUNDS waits of its
 * own. The figure is ROUNDS / elapsed, the median of REPEAT runs, printed
 * as "barrier2_rounds rounds/s <value>".
 */
#define ROUNDS 200000
#define REPEAT 5

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
run_waits(mp_barrier_t *b, int n)
{
	for (int i = 0; i < n; i++) {
		int rv = mp_barrier_wait(b, 30000, NULL);
		if (rv != 0) {
			fprintf(stderr, "bench_barrier: wait: %s\n",
			    mp_strerror(rv));
			return -1;
		}
	}
	return 0;
}

/* One run: rounds per second, or a negative value on failure. */
static double
run_once(void)
{
	mp_barrier_t *b;
	if (mp_barrier_new(2, NULL, NULL, MP_FOREVER, &b) != 0) {
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		mp_barrier_free(b);
		return -1;
	}
	if (pid == 0) {
		_exit(run_waits(b, ROUNDS + 1) == 0 ? 0 : 1);
	}
	double rate = -1;
	if (run_waits(b, 1) == 0) {
		double t0 = now_s();
		if (run_waits(b, ROUNDS) == 0) {
			rate = ROUNDS / (now_s() - t0);
		}
	}
	int status;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		rate = -1;
	}
	mp_barrier_free(b);
	return rate;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int
main(void)
{
	double v[REPEAT];
	for (int i = 0; i < REPEAT; i++) {
		v[i] = run_once();
		if (v[i] < 0) {
			return 1;
		}
	}
	qsort(v, REPEAT, sizeof(v[0]), cmp_double);
	printf("RESULT barrier2_rounds rounds/s %.0f\n", v[REPEAT / 2]);
	return 0;
}
