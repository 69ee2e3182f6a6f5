/* SPDX-License-Identifier: MIT */
/* bench_event.c: Event set-to-wake round trip between two processes. */
#include <mproc.h>
#include <mproc/event.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * What is measured, as bench/py/event.py measures CPython: A (the parent)
 * sets e1; B (a child) wakes, clears e1 and sets e2; A wakes and clears
 * e2. That round trip, in microseconds, is the mean over ROUNDS round
 * trips after WARMUP, the median of REPEAT runs, printed as
 * "event_set_to_wake us <value>".
 */
#define ROUNDS 100000
#define WARMUP 100
#define REPEAT 5

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
ping(mp_event_t *e1, mp_event_t *e2, int n)
{
	for (int i = 0; i < n; i++) {
		mp_event_set(e1);
		int rv = mp_event_wait(e2, 30000);
		if (rv != 0) {
			fprintf(stderr, "bench_event: wait: %s\n",
			    mp_strerror(rv));
			return -1;
		}
		mp_event_clear(e2);
	}
	return 0;
}

static int
pong(mp_event_t *e1, mp_event_t *e2, int n)
{
	for (int i = 0; i < n; i++) {
		if (mp_event_wait(e1, 30000) != 0) {
			return -1;
		}
		mp_event_clear(e1);
		mp_event_set(e2);
	}
	return 0;
}

/* One run: microseconds per round trip, or a negative value on failure. */
static double
run_once(void)
{
	mp_event_t *e1, *e2;
	if (mp_event_new(&e1) != 0) {
		return -1;
	}
	if (mp_event_new(&e2) != 0) {
		mp_event_free(e1);
		return -1;
	}
	double us = -1;
	pid_t pid = fork();
	if (pid == 0) {
		_exit(pong(e1, e2, WARMUP + ROUNDS) == 0 ? 0 : 1);
	}
	if (pid > 0 && ping(e1, e2, WARMUP) == 0) {
		double t0 = now_s();
		if (ping(e1, e2, ROUNDS) == 0) {
			us = (now_s() - t0) / ROUNDS * 1e6;
		}
	}
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) != pid ||
	    !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		us = -1;
	}
	mp_event_free(e1);
	mp_event_free(e2);
	return us;
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
	printf("RESULT event_set_to_wake us %.3f\n", v[REPEAT / 2]);
	return 0;
}
