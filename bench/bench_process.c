/* SPDX-License-Identifier: MIT */
/* bench/bench_process.c: process start+join with a trivial target. */
#include <mproc.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define WARMUP 20
#define N 500

static double
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int
noop(void *arg)
{
	(void)arg;
	return 0;
}

static void
start_join(void)
{
	mp_process_t *p = NULL;
	int rv = mp_process_new(noop, NULL, NULL, &p);
	if (rv == 0) {
		rv = mp_process_start(p);
	}
	if (rv == 0) {
		rv = mp_process_join(p, MP_FOREVER);
	}
	if (rv != 0 || mp_process_free(p) != 0) {
		fprintf(stderr, "bench_process: %s\n", mp_strerror(rv));
		exit(1);
	}
}

int
main(void)
{
	for (int i = 0; i < WARMUP; i++) {
		start_join();
	}
	double t0 = now_us();
	for (int i = 0; i < N; i++) {
		start_join();
	}
	printf("RESULT process_start_join us %.2f\n", (now_us() - t0) / N);
	return 0;
}
