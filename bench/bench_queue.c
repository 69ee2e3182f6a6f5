/* SPDX-License-Identifier: MIT */
/* bench_queue.c: Queue throughput (1P1C, 2P2C, 1 MiB bytes) and put-to-get latency. */
#include <mproc.h>
#include <mproc/event.h>
#include <mproc/queue.h>
#include <mproc/shared.h>
#include <mproc/sync.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * What is measured, as bench/py/bench_queue.py (and research/bench/
 * mpbench.py) measures CPython: the children are started and wait on an Event; the
 * parent takes t0 and sets it; each consumer counts messages until it gets
 * None (one per producer) and records its own finish time. The figure is
 * messages / (max(finish) - t0): process start and join are excluded.
 * Producers put ['name', 42, None, 'hello'], pickled on every put and
 * decoded on every get, as Python does. queue_bytes_1mib sends 1 MiB bytes
 * messages (CPython's twin measures Pipe().send_bytes for this figure).
 * queue_latency is half the round trip of one object sent to a peer on one
 * queue and back on another. The median of REPEAT runs is printed, one
 * line per figure, "RESULT <name> <unit> <value>", for bench/run, which
 * runs this program and bench/py/bench_queue.py alternately.
 */
#define N_SMALL  2000000
#define N_BIG    2000
#define BIG_SIZE ((size_t)1 << 20)
#define N_PING   50000
#define REPEAT   3
#define MAX_PROC 4

struct shared {
	int64_t finish_ns[MAX_PROC];
	int64_t count[MAX_PROC];
};

struct job {
	mp_queue_t *q;
	mp_queue_t *back;       /* latency: the reply queue */
	mp_event_t *go;
	mp_sem_t *ready;
	struct shared *sh;
	int index;
	long n;
	int n_producers;
};

static int64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static mp_obj_t *
small_obj(void)
{
	return mp_list_of(4, mp_str("name"), mp_int(42), mp_none(),
	    mp_str("hello"));
}

static int
producer(void *arg)
{
	struct job *j = arg;
	mp_obj_t *obj = small_obj();
	mp_obj_t *none = mp_none();
	mp_sem_release(j->ready);
	if (mp_event_wait(j->go, MP_FOREVER) != 0) {
		return 1;
	}
	for (long i = 0; i < j->n; i++) {
		if (mp_queue_put(j->q, obj, MP_FOREVER) != 0) {
			return 1;
		}
	}
	int rv = mp_queue_put(j->q, none, MP_FOREVER);
	mp_obj_unref(obj);
	mp_obj_unref(none);
	return rv != 0;
}

static int
consumer(void *arg)
{
	struct job *j = arg;
	mp_sem_release(j->ready);
	if (mp_event_wait(j->go, MP_FOREVER) != 0) {
		return 1;
	}
	int64_t n = 0;
	for (;;) {
		mp_obj_t *o;
		if (mp_queue_get(j->q, &o, MP_FOREVER) != 0) {
			return 1;
		}
		bool end = mp_obj_type(o) == MP_TYPE_NONE;
		mp_obj_unref(o);
		if (end) {
			break;
		}
		n++;
	}
	j->sh->count[j->index] = n;
	j->sh->finish_ns[j->index] = now_ns();
	return 0;
}

static int
big_producer(void *arg)
{
	struct job *j = arg;
	char *buf = malloc(BIG_SIZE);
	if (buf == NULL) {
		return 1;
	}
	memset(buf, 'x', BIG_SIZE);
	mp_sem_release(j->ready);
	if (mp_event_wait(j->go, MP_FOREVER) != 0) {
		return 1;
	}
	for (long i = 0; i < j->n; i++) {
		if (mp_queue_put_bytes(j->q, buf, BIG_SIZE, MP_FOREVER) != 0) {
			return 1;
		}
	}
	free(buf);
	return mp_queue_put_bytes(j->q, "", 0, MP_FOREVER) != 0;
}

static int
big_consumer(void *arg)
{
	struct job *j = arg;
	mp_sem_release(j->ready);
	if (mp_event_wait(j->go, MP_FOREVER) != 0) {
		return 1;
	}
	int64_t total = 0;
	for (;;) {
		void *data;
		size_t len;
		if (mp_queue_get_bytes(j->q, &data, &len, MP_FOREVER) != 0) {
			return 1;
		}
		mp_free(data);
		if (len == 0) {
			break;
		}
		total += (int64_t)len;
	}
	j->sh->count[j->index] = total;
	j->sh->finish_ns[j->index] = now_ns();
	return 0;
}

/* The peer of the latency test: send every object straight back. */
static int
echo(void *arg)
{
	struct job *j = arg;
	mp_sem_release(j->ready);
	for (long i = 0; i < j->n; i++) {
		mp_obj_t *o;
		if (mp_queue_get(j->q, &o, MP_FOREVER) != 0) {
			return 1;
		}
		int rv = mp_queue_put(j->back, o, MP_FOREVER);
		mp_obj_unref(o);
		if (rv != 0) {
			return 1;
		}
	}
	return 0;
}

/* Start the children of one run (fns[k] with jobs[k]). */
static int
start_all(int n, mp_target_fn *fns, struct job *jobs, mp_process_t **p)
{
	for (int k = 0; k < n; k++) {
		if (mp_process_new(fns[k], &jobs[k], NULL, &p[k]) != 0 ||
		    mp_process_start(p[k]) != 0) {
			return -1;
		}
	}
	for (int k = 0; k < n; k++) {
		mp_sem_acquire(jobs[k].ready, MP_FOREVER);
	}
	return 0;
}

static int
join_all(int n, mp_process_t **p)
{
	int failed = 0;
	for (int k = 0; k < n; k++) {
		int code = 1;
		mp_process_join(p[k], MP_FOREVER);
		mp_process_exitcode(p[k], &code);
		failed |= code;
		mp_process_free(p[k]);
	}
	return failed;
}

/* One throughput run; returns items per second (negative on failure). */
static double
run_tput(int nprod, int ncons, bool big, struct shared *sh)
{
	mp_queue_t *q;
	mp_event_t *go;
	mp_sem_t *ready;
	if (mp_queue_new(0, NULL, &q) != 0 || mp_event_new(&go) != 0 ||
	    mp_sem_new(0, &ready) != 0) {
		return -1;
	}
	struct job jobs[MAX_PROC];
	mp_target_fn fns[MAX_PROC];
	mp_process_t *p[MAX_PROC];
	long per = big ? N_BIG : N_SMALL / nprod;
	for (int k = 0; k < nprod + ncons; k++) {
		bool prod = k < nprod;
		jobs[k] = (struct job){ q, NULL, go, ready, sh, k, per, nprod };
		fns[k] = prod ? (big ? big_producer : producer) :
		    (big ? big_consumer : consumer);
		sh->count[k] = 0;
		sh->finish_ns[k] = 0;
	}
	if (start_all(nprod + ncons, fns, jobs, p) != 0) {
		return -1;
	}
	int64_t t0 = now_ns();
	mp_event_set(go);
	int failed = join_all(nprod + ncons, p);
	int64_t end = t0, got = 0;
	for (int k = nprod; k < nprod + ncons; k++) {
		end = sh->finish_ns[k] > end ? sh->finish_ns[k] : end;
		got += sh->count[k];
	}
	mp_queue_free(q);
	mp_event_free(go);
	mp_sem_free(ready);
	int64_t want = big ? (int64_t)(N_BIG * BIG_SIZE) : per * nprod;
	if (failed || got != want) {
		fprintf(stderr, "bench_queue: run failed (got %lld of %lld)\n",
		    (long long)got, (long long)want);
		return -1;
	}
	return (double)got / ((double)(end - t0) / 1e9);
}

/* One latency run; returns microseconds from put to get (one way). */
static double
run_latency(struct shared *sh)
{
	mp_queue_t *q, *back;
	mp_sem_t *ready;
	if (mp_queue_new(0, NULL, &q) != 0 || mp_queue_new(0, NULL, &back) != 0 ||
	    mp_sem_new(0, &ready) != 0) {
		return -1;
	}
	struct job j = { q, back, NULL, ready, sh, 0, N_PING, 1 };
	mp_target_fn fn = echo;
	mp_process_t *p;
	if (start_all(1, &fn, &j, &p) != 0) {
		return -1;
	}
	mp_obj_t *obj = small_obj();
	int64_t t0 = now_ns();
	int rv = 0;
	for (long i = 0; i < N_PING && rv == 0; i++) {
		mp_obj_t *o;
		rv = mp_queue_put(q, obj, MP_FOREVER);
		if (rv == 0) {
			rv = mp_queue_get(back, &o, MP_FOREVER);
		}
		if (rv == 0) {
			mp_obj_unref(o);
		}
	}
	int64_t t1 = now_ns();
	mp_obj_unref(obj);
	int failed = join_all(1, &p);
	mp_queue_free(q);
	mp_queue_free(back);
	mp_sem_free(ready);
	if (rv != 0 || failed) {
		return -1;
	}
	return (double)(t1 - t0) / 1e3 / N_PING / 2;
}

static int
compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int
report(const char *name, const char *unit, double scale, int nprod,
    int ncons, bool big, struct shared *sh)
{
	double v[REPEAT];
	for (int r = 0; r < REPEAT; r++) {
		v[r] = nprod == 0 ? run_latency(sh) :
		    run_tput(nprod, ncons, big, sh);
		if (v[r] < 0) {
			return 1;
		}
	}
	qsort(v, REPEAT, sizeof(v[0]), compare_double);
	printf("RESULT %s %s %.2f\n", name, unit, v[REPEAT / 2] * scale);
	fflush(stdout);
	return 0;
}

int
main(int argc, char **argv)
{
	struct shared *sh;
	if (mp_shared_alloc(sizeof(*sh), (void **)&sh) != 0) {
		return 1;
	}
	const char *only = argc > 1 ? argv[1] : NULL;
	struct {
		const char *name, *unit;
		double scale;
		int nprod, ncons;
		bool big;
	} figs[] = {
		{ "queue_1p1c", "msg/s", 1, 1, 1, false },
		{ "queue_2p2c", "msg/s", 1, 2, 2, false },
		{ "queue_bytes_1mib", "MB/s", 1e-6, 1, 1, true },
		{ "queue_latency", "us", 1, 0, 0, false },
	};
	for (size_t i = 0; i < sizeof(figs) / sizeof(figs[0]); i++) {
		if (only != NULL && strcmp(only, figs[i].name) != 0) {
			continue;
		}
		if (report(figs[i].name, figs[i].unit, figs[i].scale,
		    figs[i].nprod, figs[i].ncons, figs[i].big, sh) != 0) {
			fprintf(stderr, "bench_queue: %s failed\n", figs[i].name);
			return 1;
		}
	}
	mp_shared_free(sh);
	return 0;
}
