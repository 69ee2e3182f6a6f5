/* SPDX-License-Identifier: MIT */
/* bench_lock.c: Lock, RLock, Semaphore against a pshared pthread mutex. */
#include <mproc.h>
#include <mproc/sync.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * Figures, each "<figure> <unit> <value>", the median of REPEAT runs, the
 * runs of the mproc and pthread variants interleaved so that noise from
 * the (shared, 2-vCPU) machine hits both alike. Uncontended figures count
 * the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), as bench/py/lock.py
 * does, so that time spent preempted on a busy machine does not count;
 * on an idle machine it equals the wall time. Contended figures include
 * sleeping, so they are wall time:
 *   lock_uncontended ns          mp_lock_acquire + mp_lock_release
 *   pthread_mutex_pshared ns     pthread_mutex_lock + unlock, pshared
 *   pthread_mutex_robust ns      the same, also PTHREAD_MUTEX_ROBUST
 *   rlock_uncontended ns         an RLock at depth 1
 *   sem_uncontended ns           mp_sem_acquire + mp_sem_release
 *   lock_contended_2proc ns      per locked increment, 2 processes x CONTENDED
 *   pthread_contended_2proc ns   the same with the pshared pthread mutex
 * CPython's twin is bench/py/lock.py.
 */
#define UNCONTENDED 5000000
#define CONTENDED 1000000
#define REPEAT 7

static double
clock_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double
cpu_ns(void)
{
	return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

static double
now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

static void
die(const char *what, int rv)
{
	fprintf(stderr, "bench_lock: %s: %s\n", what, mp_strerror(rv));
	exit(1);
}

static double
time_lock(mp_lock_t *l, int n)
{
	double t0 = cpu_ns();
	for (int i = 0; i < n; i++) {
		int rv = mp_lock_acquire(l, MP_FOREVER);
		if (rv != 0) {
			die("acquire", rv);
		}
		rv = mp_lock_release(l);
		if (rv != 0) {
			die("release", rv);
		}
	}
	return (cpu_ns() - t0) / n;
}

static double
time_sem(mp_sem_t *s, int n)
{
	double t0 = cpu_ns();
	for (int i = 0; i < n; i++) {
		int rv = mp_sem_acquire(s, MP_FOREVER);
		if (rv != 0) {
			die("sem acquire", rv);
		}
		rv = mp_sem_release(s);
		if (rv != 0) {
			die("sem release", rv);
		}
	}
	return (cpu_ns() - t0) / n;
}

static double
time_mutex(pthread_mutex_t *m, int n)
{
	double t0 = cpu_ns();
	for (int i = 0; i < n; i++) {
		if (pthread_mutex_lock(m) != 0) {
			die("pthread_mutex_lock", -1);
		}
		pthread_mutex_unlock(m);
	}
	return (cpu_ns() - t0) / n;
}

static void
mutex_init(pthread_mutex_t *m, bool robust)
{
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	if (robust) {
		pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	}
	pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
}

struct shared {
	pthread_mutex_t m;
	volatile uint64_t counter;
};

/* Two processes each add CONTENDED under the lock; ns per increment. */
static double
contended(mp_lock_t *l, struct shared *sh)
{
	sh->counter = 0;
	double t0 = now_ns();
	pid_t pid = fork();
	if (pid < 0) {
		die("fork", -1);
	}
	for (int i = 0; i < CONTENDED; i++) {
		if (l != NULL) {
			mp_lock_acquire(l, MP_FOREVER);
		} else {
			pthread_mutex_lock(&sh->m);
		}
		sh->counter = sh->counter + 1;
		if (l != NULL) {
			mp_lock_release(l);
		} else {
			pthread_mutex_unlock(&sh->m);
		}
	}
	if (pid == 0) {
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	double per = (now_ns() - t0) / (2.0 * CONTENDED);
	if (sh->counter != 2 * CONTENDED) {
		fprintf(stderr, "bench_lock: lost increments\n");
		exit(1);
	}
	return per;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double
median(double *v)
{
	qsort(v, REPEAT, sizeof(double), cmp_double);
	return v[REPEAT / 2];
}

int
main(void)
{
	mp_lock_t *l;
	mp_rlock_t *r;
	mp_sem_t *s;
	int rv = mp_lock_new(&l);
	if (rv == 0) {
		rv = mp_rlock_new(&r);
	}
	if (rv == 0) {
		rv = mp_sem_new(1, &s);
	}
	if (rv != 0) {
		die("new", rv);
	}
	struct shared *sh = mmap(NULL, 2 * sizeof(*sh), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		die("mmap", -1);
	}
	mutex_init(&sh[0].m, false);
	mutex_init(&sh[1].m, true);
	/* Warm up caches and the thread-id cache. */
	time_lock(l, 100000);
	time_mutex(&sh[0].m, 100000);
	double lk[REPEAT], pm[REPEAT], rb[REPEAT], rl[REPEAT], sm[REPEAT];
	double lc[REPEAT], pc[REPEAT];
	for (int i = 0; i < REPEAT; i++) {
		lk[i] = time_lock(l, UNCONTENDED);
		pm[i] = time_mutex(&sh[0].m, UNCONTENDED);
		rb[i] = time_mutex(&sh[1].m, UNCONTENDED);
		rl[i] = time_lock(r, UNCONTENDED);
		sm[i] = time_sem(s, UNCONTENDED);
	}
	for (int i = 0; i < REPEAT; i++) {
		lc[i] = contended(l, &sh[0]);
		pc[i] = contended(NULL, &sh[0]);
	}
	printf("RESULT lock_uncontended ns %.2f\n", median(lk));
	printf("RESULT pthread_mutex_pshared ns %.2f\n", median(pm));
	printf("RESULT pthread_mutex_robust ns %.2f\n", median(rb));
	printf("RESULT rlock_uncontended ns %.2f\n", median(rl));
	printf("RESULT sem_uncontended ns %.2f\n", median(sm));
	printf("RESULT lock_contended_2proc ns %.2f\n", median(lc));
	printf("RESULT pthread_contended_2proc ns %.2f\n", median(pc));
	munmap(sh, 2 * sizeof(*sh));
	mp_lock_free(l);
	mp_rlock_free(r);
	mp_sem_free(s);
	return 0;
}
