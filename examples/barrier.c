/* SPDX-License-Identifier: MIT */
/* barrier.c: the lecture's Barrier example: two processes nap, then meet at a Barrier(2). */
#include <mproc.h>
#include <mproc/barrier.h>

#include <stdio.h>
#include <sys/time.h>
#include <time.h>

/* class MeuProcesso(Process): its fields; run() is the target below. */
struct meu_processo {
	mp_barrier_t *barreira;
	double tempo;          /* seconds (the lecture's 5 and 10, shortened) */
};

static void
sleep_seconds(double s)
{
	struct timespec ts = { .tv_sec = (time_t)s };
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0) {
		continue;
	}
}

/* datetime.fromtimestamp(t): local time, microseconds only when not zero. */
static void
format_timestamp(const struct timeval *tv, char *buf, size_t size)
{
	struct tm tm;
	time_t secs = tv->tv_sec;
	localtime_r(&secs, &tm);
	size_t n = strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
	if (tv->tv_usec != 0) {
		snprintf(buf + n, size - n, ".%06ld", (long)tv->tv_usec);
	}
}

static int
run(void *arg)
{
	struct meu_processo *self = arg;
	const char *name = mp_process_name(mp_current_process());
	printf("%s iniciando!!\n", name);
	sleep_seconds(self->tempo);
	printf("%s acordei!!\n", name);
	struct timeval agora;
	gettimeofday(&agora, NULL);
	int rv = mp_barrier_wait(self->barreira, MP_BARRIER_DEFAULT, NULL);
	if (rv != 0) {
		fprintf(stderr, "%s: barrier: %s\n", name, mp_strerror(rv));
		return 1;
	}
	char when[64];
	format_timestamp(&agora, when, sizeof(when));
	printf("%s - %s continuando processamento!!!\n", name, when);
	return 0;
}

static int
fail(const char *what, int rv)
{
	fprintf(stderr, "barrier: %s: %s\n", what, mp_strerror(rv));
	return 1;
}

int
main(void)
{
	mp_barrier_t *barreira;
	int rv = mp_barrier_new(2, NULL, NULL, MP_FOREVER, &barreira);
	if (rv != 0) {
		return fail("Barrier", rv);
	}
	/* Python names a Process subclass after its class: MeuProcesso-N. */
	struct meu_processo self[2] = { { barreira, 0.05 }, { barreira, 0.1 } };
	const char *names[2] = { "MeuProcesso-1", "MeuProcesso-2" };
	mp_process_t *p[2];
	for (int i = 0; i < 2; i++) {
		struct mp_process_opts opts = { .name = names[i] };
		rv = mp_process_new(run, &self[i], &opts, &p[i]);
		if (rv == 0) {
			rv = mp_process_start(p[i]);
		}
		if (rv != 0) {
			return fail("start", rv);
		}
	}
	int status = 0;
	for (int i = 0; i < 2; i++) {
		int code = 1;
		mp_process_join(p[i], MP_FOREVER);
		mp_process_exitcode(p[i], &code);
		status |= code;
		mp_process_free(p[i]);
	}
	mp_barrier_free(barreira);
	return status == 0 ? 0 : 1;
}
