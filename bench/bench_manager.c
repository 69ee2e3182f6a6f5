/* SPDX-License-Identifier: MIT */
/* bench/bench_manager.c: manager calls, connections and memory. */
#include <mproc.h>
#include <mproc/manager.h>
#include <mproc/manager_server.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/*
 * Prints "RESULT <figure> <unit> <value>" lines, one measurement each, as
 * the other benchmarks (bench/run takes medians of fresh runs). The twin
 * bench/py/bench_manager.py measures the same figures with CPython's managers:
 *   manager_list_append_1c    Manager().list().append from one client
 *   manager_queue_putget_1c   BaseManager queue over TCP, put+get pairs
 *   manager_queue_putget_50c  the same from 50 client processes at once
 *   manager_queue_putget_50conn  the same from 50 connections driven by one
 *                             process with epoll, the shape of
 *                             redis-benchmark -c 50 (no CPython twin:
 *                             its client is one thread per connection)
 *   manager_connect           one connection opened (connect, handshake,
 *                             one call), milliseconds
 *   manager_putget_17000      put+get of a 17,000-byte bytes (CPython's
 *                             Nagle stall), milliseconds
 *   manager_rss_1000/_10000   server RSS growth per idle method
 *                             connection, KiB
 */

#define KEY "bench"
#define APPEND_N 20000
#define PAIRS_N 10000
#define CLIENTS 50
#define PAIRS_PER_CLIENT 2000
#define CONNECT_N 200
#define BIG_N 50
#define BIG_SIZE 17000

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void
check(int rv, const char *what)
{
	if (rv != 0) {
		fprintf(stderr, "bench_manager: %s: %s (%s)\n", what,
		    mp_strerror(rv), mp_err_name(rv));
		exit(1);
	}
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a;
	double y = *(const double *)b;
	return (x > y) - (x < y);
}

static double
median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- The TCP server: a C server in a child process ----------------------- */

struct srv {
	mp_process_t *proc;
	char address[128];
};

static int
server_main(void *arg)
{
	int fd = *(int *)arg;
	mp_manager_server_t *s = NULL;
	check(mp_manager_server_open("127.0.0.1:0", KEY, strlen(KEY), NULL,
	    &s), "server open");
	check(mp_manager_server_register_shared(s, "get_queue", "Queue", NULL),
	    "register");
	const char *a = mp_manager_server_address(s);
	ssize_t n = write(fd, a, strlen(a) + 1);
	close(fd);
	if (n <= 0) {
		return 1;
	}
	check(mp_manager_server_serve(s), "serve");
	mp_manager_server_close(s);
	return 0;
}

static void
server_start(struct srv *s)
{
	int fds[2];
	check(pipe2(fds, O_CLOEXEC) == 0 ? 0 : -errno, "pipe");
	check(mp_process_new(server_main, &fds[1], NULL, &s->proc), "new");
	check(mp_process_start(s->proc), "start");
	close(fds[1]);
	ssize_t n = read(fds[0], s->address, sizeof(s->address) - 1);
	close(fds[0]);
	check(n > 0 ? 0 : -EPROTO, "server address");
	s->address[n] = '\0';
}

static void
server_stop(struct srv *s)
{
	mp_manager_t *m = NULL;
	check(mp_manager_connect(s->address, KEY, strlen(KEY), 10000, &m),
	    "connect");
	check(mp_manager_shutdown(m), "shutdown");
	mp_manager_free(m);
	check(mp_process_join(s->proc, 10000), "join server");
	check(mp_process_free(s->proc), "free server");
}

static long
rss_kib(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		return -1;
	}
	char line[256];
	long kib = -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kib = strtol(line + 6, NULL, 10);
		}
	}
	fclose(f);
	return kib;
}

/* ---- The figures --------------------------------------------------------- */

static void
bench_list_append(void)
{
	mp_manager_t *m = NULL;
	check(mp_manager_start(&m), "Manager");
	mp_proxy_t *l = NULL;
	check(mp_manager_create(m, "list", NULL, NULL, &l), "list");
	mp_obj_t *v = mp_int(1);
	for (int i = 0; i < 200; i++) {
		check(mp_proxy_list_append(l, v), "append");
	}
	double t0 = now_ms();
	for (int i = 0; i < APPEND_N; i++) {
		check(mp_proxy_list_append(l, v), "append");
	}
	double ms = now_ms() - t0;
	mp_obj_unref(v);
	printf("RESULT manager_list_append_1c ops/s %.0f\n",
	    APPEND_N / ms * 1e3);
	mp_proxy_free(l);
	mp_manager_free(m);
}

static void
pair(mp_proxy_t *q, const mp_obj_t *v)
{
	check(mp_proxy_queue_put(q, v, MP_FOREVER), "put");
	mp_obj_t *back = NULL;
	check(mp_proxy_queue_get(q, MP_FOREVER, &back), "get");
	mp_obj_unref(back);
}

static void
bench_putget_1c(const struct srv *s)
{
	mp_manager_t *m = NULL;
	check(mp_manager_connect(s->address, KEY, strlen(KEY), 10000, &m),
	    "connect");
	mp_proxy_t *q = NULL;
	check(mp_manager_create(m, "get_queue", NULL, NULL, &q), "get_queue");
	mp_obj_t *v = mp_int(1);
	for (int i = 0; i < 200; i++) {
		pair(q, v);
	}
	double t0 = now_ms();
	for (int i = 0; i < PAIRS_N; i++) {
		pair(q, v);
	}
	double ms = now_ms() - t0;
	mp_obj_unref(v);
	printf("RESULT manager_queue_putget_1c pairs/s %.0f\n",
	    PAIRS_N / ms * 1e3);

	/* A payload just above CPython's 16 KiB two-write threshold. */
	char *buf = calloc(1, BIG_SIZE);
	mp_obj_t *big = mp_bytes(buf, BIG_SIZE);
	free(buf);
	double t[BIG_N];
	for (int i = 0; i < BIG_N; i++) {
		double t1 = now_ms();
		pair(q, big);
		t[i] = now_ms() - t1;
	}
	mp_obj_unref(big);
	printf("RESULT manager_putget_17000 ms %.3f\n", median(t, BIG_N));
	mp_proxy_free(q);
	mp_manager_free(m);
}

static void
bench_connect(const struct srv *s)
{
	double t[CONNECT_N];
	for (int i = 0; i < CONNECT_N; i++) {
		double t0 = now_ms();
		mp_manager_t *m = NULL;
		check(mp_manager_connect(s->address, KEY, strlen(KEY), 10000,
		    &m), "connect");
		t[i] = now_ms() - t0;
		mp_manager_free(m);
	}
	printf("RESULT manager_connect ms %.3f\n", median(t, CONNECT_N));
}

struct client_arg {
	const struct srv *s;
	int ready_fd;
	int go_fd;
	int go_wfd;
	int done_fd;
};

/* One of the 50 clients: warm up, say ready, wait for go, run, say done. */
static int
client_main(void *arg)
{
	struct client_arg *a = arg;
	/* Every copy of the write end must close for the go signal. */
	close(a->go_wfd);
	mp_manager_t *m = NULL;
	check(mp_manager_connect(a->s->address, KEY, strlen(KEY), 30000, &m),
	    "connect");
	mp_proxy_t *q = NULL;
	check(mp_manager_create(m, "get_queue", NULL, NULL, &q), "get_queue");
	mp_obj_t *v = mp_int(1);
	pair(q, v);
	char c = 'r';
	check(write(a->ready_fd, &c, 1) == 1 ? 0 : -EPIPE, "ready");
	check(read(a->go_fd, &c, 1) >= 0 ? 0 : -EPIPE, "go");
	for (int i = 0; i < PAIRS_PER_CLIENT; i++) {
		pair(q, v);
	}
	check(write(a->done_fd, &c, 1) == 1 ? 0 : -EPIPE, "done");
	mp_obj_unref(v);
	mp_proxy_free(q);
	mp_manager_free(m);
	return 0;
}

static void
bench_putget_50c(const struct srv *s)
{
	int ready[2], go[2], done[2];
	check(pipe2(ready, O_CLOEXEC) == 0 && pipe2(go, O_CLOEXEC) == 0 &&
	    pipe2(done, O_CLOEXEC) == 0 ? 0 : -errno, "pipes");
	struct client_arg a = { s, ready[1], go[0], go[1], done[1] };
	mp_process_t *ps[CLIENTS];
	for (int i = 0; i < CLIENTS; i++) {
		check(mp_process_new(client_main, &a, NULL, &ps[i]), "new");
		check(mp_process_start(ps[i]), "start");
	}
	char c;
	for (int i = 0; i < CLIENTS; i++) {
		check(read(ready[0], &c, 1) == 1 ? 0 : -EPIPE, "ready");
	}
	double t0 = now_ms();
	close(go[1]); /* end of file wakes every client at once */
	for (int i = 0; i < CLIENTS; i++) {
		check(read(done[0], &c, 1) == 1 ? 0 : -EPIPE, "done");
	}
	double ms = now_ms() - t0;
	printf("RESULT manager_queue_putget_50c pairs/s %.0f\n",
	    CLIENTS * PAIRS_PER_CLIENT / ms * 1e3);
	for (int i = 0; i < CLIENTS; i++) {
		check(mp_process_join(ps[i], MP_FOREVER), "join");
		check(mp_process_free(ps[i]), "free");
	}
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(done[0]);
	close(done[1]);
}

/* A request tuple (ident, method, args, {}) pickled once. */
static void
request_bytes(const char *ident, const char *method, mp_obj_t *args,
    void **out, size_t *len)
{
	mp_obj_t *req = mp_tuple_of(4, mp_str(ident), mp_str(method), args,
	    mp_dict_new());
	check(req != NULL ? mp_pickle_dumps(req, out, len) : -ENOMEM,
	    "request");
	mp_obj_unref(req);
}

/* A reply must be ('#RETURN', want): anything else stops the bench. */
static void
expect_return(mp_conn_t *c, const mp_obj_t *want)
{
	mp_obj_t *reply = NULL;
	check(mp_conn_recv(c, 10000, &reply), "reply");
	mp_obj_t *kind = mp_tuple_get(reply, 0);
	bool ok = mp_obj_len(reply) == 2 && kind != NULL &&
	    mp_obj_type(kind) == MP_TYPE_STR &&
	    strcmp(mp_str_data(kind, NULL), "#RETURN") == 0 &&
	    mp_obj_equal(mp_tuple_get(reply, 1), want);
	mp_obj_unref(reply);
	check(ok ? 0 : -EPROTO, "reply value");
}

/*
 * 50 method channels to one queue, each with one request in flight, all
 * driven by this process: put, get, put, get... The server sees what
 * redis-benchmark -c 50 gives Redis.
 */
static void
bench_putget_50conn(const struct srv *s)
{
	mp_manager_t *m = NULL;
	check(mp_manager_connect(s->address, KEY, strlen(KEY), 10000, &m),
	    "connect");
	mp_proxy_t *q = NULL;
	check(mp_manager_create(m, "get_queue", NULL, NULL, &q), "get_queue");
	void *put, *get, *hello;
	size_t put_len, get_len, hello_len;
	request_bytes(mp_proxy_id(q), "put", mp_tuple_of(1, mp_int(1)), &put,
	    &put_len);
	request_bytes(mp_proxy_id(q), "get", mp_tuple_of(0), &get, &get_len);
	mp_obj_t *accept = mp_tuple_of(4, mp_none(),
	    mp_str("accept_connection"), mp_tuple_of(1, mp_str("bench")),
	    mp_dict_new());
	check(accept != NULL ? mp_pickle_dumps(accept, &hello, &hello_len) :
	    -ENOMEM, "accept_connection");
	mp_obj_unref(accept);
	mp_obj_t *none = mp_none(), *one = mp_int(1);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	check(ep >= 0 ? 0 : -errno, "epoll");
	mp_conn_t *cs[CLIENTS];
	int done[CLIENTS] = { 0 }; /* requests answered per connection */
	for (int i = 0; i < CLIENTS; i++) {
		check(mp_client_connect(s->address, KEY, strlen(KEY), 10000,
		    &cs[i]), "method channel");
		check(mp_conn_send_bytes(cs[i], hello, hello_len), "hello");
		expect_return(cs[i], none);
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 =
			(uint32_t)i };
		check(epoll_ctl(ep, EPOLL_CTL_ADD, mp_conn_fileno(cs[i]), &ev) ==
		    0 ? 0 : -errno, "epoll_ctl");
	}
	const int per_conn = 2 * PAIRS_PER_CLIENT;
	int left = CLIENTS;
	double t0 = now_ms();
	for (int i = 0; i < CLIENTS; i++) {
		check(mp_conn_send_bytes(cs[i], put, put_len), "put");
	}
	while (left > 0) {
		struct epoll_event evs[CLIENTS];
		int n = epoll_wait(ep, evs, CLIENTS, 10000);
		check(n > 0 ? 0 : -ETIMEDOUT, "epoll_wait");
		for (int k = 0; k < n; k++) {
			int i = (int)evs[k].data.u32;
			/* Even requests are puts (reply None), odd gets (1). */
			expect_return(cs[i], done[i] % 2 == 0 ? none : one);
			if (++done[i] == per_conn) {
				left--;
				continue;
			}
			check(done[i] % 2 == 0 ?
			    mp_conn_send_bytes(cs[i], put, put_len) :
			    mp_conn_send_bytes(cs[i], get, get_len), "request");
		}
	}
	double ms = now_ms() - t0;
	printf("RESULT manager_queue_putget_50conn pairs/s %.0f\n",
	    CLIENTS * PAIRS_PER_CLIENT / ms * 1e3);
	for (int i = 0; i < CLIENTS; i++) {
		mp_conn_close(cs[i]);
	}
	close(ep);
	mp_obj_unref(none);
	mp_obj_unref(one);
	mp_free(put);
	mp_free(get);
	mp_free(hello);
	mp_proxy_free(q);
	mp_manager_free(m);
}

/* Open n method channels (handshake + accept_connection), measure, close. */
static void
bench_rss(const struct srv *s, int n)
{
	pid_t pid = mp_process_pid(s->proc);
	mp_conn_t **cs = calloc((size_t)n, sizeof(*cs));
	mp_obj_t *req = mp_tuple_of(4, mp_none(), mp_str("accept_connection"),
	    mp_tuple_of(1, mp_str("bench")), mp_dict_new());
	check(cs != NULL && req != NULL ? 0 : -ENOMEM, "alloc");
	long before = rss_kib(pid);
	int opened = 0;
	for (; opened < n; opened++) {
		int rv = mp_client_connect(s->address, KEY, strlen(KEY), 10000,
		    &cs[opened]);
		if (rv != 0) {
			fprintf(stderr, "bench_manager: connection %d: %s\n",
			    opened, mp_err_name(rv));
			break;
		}
		mp_obj_t *reply = NULL;
		check(mp_conn_send(cs[opened], req), "accept_connection");
		check(mp_conn_recv(cs[opened], 10000, &reply), "reply");
		mp_obj_unref(reply);
	}
	long after = rss_kib(pid);
	if (opened == n && before > 0 && after > 0) {
		printf("RESULT manager_rss_%d KiB/conn %.2f\n", n,
		    (double)(after - before) / n);
	}
	for (int i = 0; i < opened; i++) {
		mp_conn_close(cs[i]);
	}
	mp_obj_unref(req);
	free(cs);
}

static void
raise_nofile(void)
{
	struct rlimit r;
	if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &r);
	}
}

int
main(void)
{
	/* Before the server forks, so that it inherits the limit too. */
	raise_nofile();
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct srv s;
	server_start(&s);
	bench_list_append();
	bench_putget_1c(&s);
	bench_connect(&s);
	bench_putget_50c(&s);
	bench_putget_50conn(&s);
	bench_rss(&s, 1000);
	bench_rss(&s, 10000);
	server_stop(&s);
	return 0;
}
