/* SPDX-License-Identifier: MIT */
/* test_manager_server_kill.c: a manager server killed mid-reply: its clients get a clear error, never a hang or half a message. */
#include "harness/mgr.h"

#include <mproc/manager.h>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

MP_TEST_SUITE(manager_server_kill);

/* The shared object every client reads: [n, bytes of n patterned bytes]. */
#define BIG ((size_t)2 << 20)

static uint8_t
big_byte(size_t i)
{
	return (uint8_t)(i * 7 + (i >> 11));
}

static mp_obj_t *
big_value(void)
{
	uint8_t *p = malloc(BIG);
	cr_assert_not_null(p);
	for (size_t i = 0; i < BIG; i++) {
		p[i] = big_byte(i);
	}
	mp_obj_t *v = mp_list_of(2, mp_int((int64_t)BIG), mp_bytes(p, BIG));
	free(p);
	return v;
}

static bool
big_ok(const mp_obj_t *v)
{
	int64_t n;
	size_t len;
	if (mp_obj_type(v) != MP_TYPE_LIST || mp_obj_len(v) != 2 ||
	    mp_int_value(mp_list_get(v, 0), &n) != 0 || n != (int64_t)BIG) {
		return false;
	}
	const uint8_t *p = mp_bytes_data(mp_list_get(v, 1), &len);
	if (p == NULL || len != BIG) {
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		if (p[i] != big_byte(i)) {
			return false;
		}
	}
	return true;
}

static void
register_big(mp_manager_server_t *s, void *arg)
{
	(void)arg;
	mp_obj_t *args = mp_tuple_of(1, big_value());
	if (mp_manager_server_register_shared(s, "big", "list", args) != 0) {
		_exit(30);
	}
	mp_obj_unref(args);
}

/* What the clients saw: index by outcome. */
enum outcome {
	OK_BIG,         /* a whole, exact value */
	OK_SMALL,
	E_EOF,          /* MP_EOF: the connection ended between messages */
	E_TRUNCATED,    /* MP_ETRUNCATED: it ended inside a reply */
	E_RESET,        /* -ECONNRESET or -EPIPE */
	E_GONE,         /* -ECONNREFUSED or -ENOENT: nobody listens */
	E_LATER,        /* a later call that met the dying server */
	E_OTHER,        /* anything else: a failure */
	N_OUTCOMES,
};

static const char *const outcome_names[N_OUTCOMES] = {
	"whole values", "small replies", "MP_EOF", "MP_ETRUNCATED",
	"ECONNRESET/EPIPE", "ECONNREFUSED/ENOENT",
	"later calls that met the dying server", "other",
};

#define N_CLIENTS 3
#define EPOCHS    100

struct skill {
	_Atomic uint64_t calls;
	_Atomic int64_t seen[N_OUTCOMES];
	_Atomic int other_code;
};

static enum outcome
classify(int rv)
{
	switch (rv) {
	case MP_EOF:
		return E_EOF;
	case MP_ETRUNCATED:
		return E_TRUNCATED;
	case -ECONNRESET:
	case -EPIPE:
		return E_RESET;
	case -ECONNREFUSED:
	case -ENOENT:
		return E_GONE;
	default:
		return E_OTHER;
	}
}

static void
note(struct skill *sk, enum outcome o, int rv)
{
	atomic_fetch_add(&sk->seen[o], 1);
	if (o == E_OTHER) {
		atomic_store(&sk->other_code, rv);
	}
}

/*
 * A client: big reads, small calls and now and then a create and free,
 * until a call fails; the call after it must find nobody listening. The
 * manager's timeout is 30 s: a hang shows as -ETIMEDOUT, a failure.
 */
static _Noreturn void
client_main(const char *path, struct skill *sk, uint64_t seed)
{
	mp_manager_t *m;
	mp_proxy_t *big = NULL;
	int rv = mp_manager_connect(path, MP_TEST_MGR_KEY,
	    strlen(MP_TEST_MGR_KEY), MP_TEST_MGR_WAIT_MS, &m);
	if (rv != 0) {
		/* Killed before we were in: the same outcomes. */
		note(sk, classify(rv), rv);
		for (int i = 0; i < 5 && classify(rv) != E_GONE; i++) {
			rv = mp_manager_connect(path, MP_TEST_MGR_KEY,
			    strlen(MP_TEST_MGR_KEY), MP_TEST_MGR_WAIT_MS, &m);
			if (classify(rv) != E_GONE) {
				note(sk, classify(rv) == E_OTHER ? E_OTHER :
				    E_LATER, rv);
			}
		}
		note(sk, classify(rv) == E_GONE ? E_GONE : E_OTHER, rv);
		_exit(0);
	}
	rv = mp_manager_create(m, "big", NULL, NULL, &big);
	while (rv == 0) {
		uint64_t pick = mp_test_rand_below(&seed, 8);
		mp_obj_t *v = NULL;
		if (pick < 5) {
			rv = mp_proxy_getvalue(big, &v);
			if (rv == 0) {
				note(sk, big_ok(v) ? OK_BIG : E_OTHER, 0);
			}
		} else if (pick < 7) {
			size_t n;
			rv = mp_proxy_list_len(big, &n);
			if (rv == 0) {
				note(sk, n == 2 ? OK_SMALL : E_OTHER, 0);
			}
		} else {
			mp_proxy_t *p = NULL;
			rv = mp_manager_create(m, "dict", NULL, NULL, &p);
			mp_proxy_free(p);
		}
		mp_obj_unref(v);
		atomic_fetch_add(&sk->calls, 1);
	}
	note(sk, classify(rv), rv);
	/*
	 * The server is dead: later calls fail at once too. One may still
	 * find a connection of the dying server (a channel the failed call
	 * did not use, or a connect that reached its backlog before its
	 * listener was closed) and fail as a call in flight; then nobody
	 * listens.
	 */
	for (int i = 0; i < 5; i++) {
		size_t n;
		rv = big != NULL ? mp_proxy_list_len(big, &n) :
		    mp_manager_create(m, "big", NULL, NULL, &big);
		enum outcome o = classify(rv);
		if (o == E_GONE) {
			break;
		}
		note(sk, o == E_OTHER ? E_OTHER : E_LATER, rv);
	}
	note(sk, classify(rv) == E_GONE ? E_GONE : E_OTHER, rv);
	mp_proxy_free(big);
	mp_manager_free(m);
	_exit(0);
}

Test(manager_server_kill, server_killed_at_random_points, .timeout = 300)
{
	uint64_t rng = mp_test_seed("manager_server_kill");
	struct skill *sk = mp_test_shared_map(sizeof(*sk));
	int64_t start = mp_test_now_ms();
	int64_t slowest = 0;
	for (int e = 0; e < EPOCHS; e++) {
		int64_t t0 = mp_test_now_ms();
		struct mp_test_mgr srv;
		mp_test_mgr_start(&srv, NULL, register_big, NULL);
		pid_t kids[N_CLIENTS];
		uint64_t before = atomic_load(&sk->calls);
		for (int i = 0; i < N_CLIENTS; i++) {
			uint64_t seed = mp_test_rand(&rng);
			kids[i] = mp_test_fork();
			if (kids[i] == 0) {
				client_main(srv.path, sk, seed);
			}
		}
		uint64_t target = before + mp_test_rand_below(&rng, 12);
		int64_t end = mp_test_now_ms() + 30000;
		while (atomic_load(&sk->calls) < target) {
			cr_assert_lt(mp_test_now_ms(), end, "no progress");
			sched_yield();
		}
		mp_test_spin(mp_test_rand_below(&rng, 3000000));
		mp_test_mgr_kill(&srv);
		for (int i = 0; i < N_CLIENTS; i++) {
			cr_assert_eq(mp_test_reap(kids[i]), 0, "client %d", i);
		}
		int64_t took = mp_test_now_ms() - t0;
		slowest = took > slowest ? took : slowest;
	}
	char line[512];
	size_t off = 0;
	for (int o = 0; o < N_OUTCOMES; o++) {
		off += (size_t)snprintf(line + off, sizeof(line) - off,
		    "%s%s %lld", o > 0 ? ", " : "", outcome_names[o],
		    (long long)atomic_load(&sk->seen[o]));
	}
	cr_log_info("%d server kills, %d clients each, %lld ms (slowest "
	    "kill %lld ms from start to the last client's exit): %s", EPOCHS,
	    N_CLIENTS, (long long)(mp_test_now_ms() - start),
	    (long long)slowest, line);
	cr_assert_eq(atomic_load(&sk->seen[E_OTHER]), 0, "a call failed "
	    "otherwise: %s", mp_err_name(atomic_load(&sk->other_code)));
	/* One failure and one refusal per client and kill. */
	cr_assert_eq(atomic_load(&sk->seen[E_GONE]) +
	    atomic_load(&sk->seen[E_EOF]) +
	    atomic_load(&sk->seen[E_TRUNCATED]) +
	    atomic_load(&sk->seen[E_RESET]), 2 * EPOCHS * N_CLIENTS);
	cr_assert_gt(atomic_load(&sk->seen[E_TRUNCATED]), 0,
	    "no kill landed inside a reply");
	munmap(sk, sizeof(*sk));
}

/* ---- A server that stops inside its reply -------------------------------- */

/*
 * A fake server on the manager protocol: it answers server functions, and
 * on method channel k it ends its reply as modes[k] says, then closes.
 */
enum cut { CUT_HALF, CUT_HEADER, CUT_NOTHING, CUT_NONE };

struct fake {
	mp_listener_t *l;
	const enum cut *modes;
	size_t nmodes;
	int rv;
};

static int
fake_reply(mp_conn_t *c, mp_obj_t *result, enum cut cut)
{
	struct mp__buf b = { 0 };
	mp_obj_t *msg = mp__mgr_reply(MP__MGR_RETURN, result);
	int rv = msg == NULL ? -ENOMEM : mp__mgr_encode(&b, msg);
	mp_obj_unref(msg);
	size_t n = cut == CUT_HALF ? b.len / 2 : cut == CUT_HEADER ? 2 :
	    cut == CUT_NOTHING ? 0 : b.len;
	for (size_t off = 0; rv == 0 && off < n;) {
		ssize_t w = write(mp_conn_fileno(c), b.data + off, n - off);
		if (w <= 0) {
			rv = -EIO;
			break;
		}
		off += (size_t)w;
	}
	mp__buf_fini(&b);
	return rv;
}

/* The method of the next request, into name. */
static int
fake_request(mp_conn_t *c, char *name, size_t size)
{
	void *buf;
	size_t len;
	int rv = mp_conn_recv_bytes(c, 1 << 20, MP_TEST_MGR_WAIT_MS, &buf,
	    &len);
	if (rv != 0) {
		return rv;
	}
	mp_obj_t *req = NULL;
	struct mp__mgr_req r;
	rv = mp__mgr_decode(buf, len, 0, &req, NULL, 0);
	mp_free(buf);
	if (rv == 0) {
		rv = mp__mgr_request_parse(req, &r);
	}
	if (rv == 0) {
		snprintf(name, size, "%.*s", (int)r.method_len, r.method);
	}
	mp_obj_unref(req);
	return rv;
}

static int
fake_serve_one(struct fake *f, size_t *channel, bool *done)
{
	mp_conn_t *c;
	char name[64];
	int rv = mp_listener_accept(f->l, MP_TEST_MGR_WAIT_MS, &c);
	if (rv != 0) {
		return rv;
	}
	rv = fake_request(c, name, sizeof(name));
	if (rv == 0 && strcmp(name, "create") == 0) {
		rv = fake_reply(c, mp_tuple_of(2, mp_str("7f01"),
		    mp_tuple_of(1, mp_str("__len__"))), CUT_NONE);
	} else if (rv == 0 && strcmp(name, "accept_connection") == 0) {
		rv = fake_reply(c, mp_none(), CUT_NONE);
		if (rv == 0) {
			rv = fake_request(c, name, sizeof(name));
		}
		if (rv == 0) {
			rv = fake_reply(c, big_value(), f->modes[*channel]);
		}
		*done = ++*channel == f->nmodes;
	} else if (rv == 0) {
		rv = fake_reply(c, mp_none(), CUT_NONE); /* dummy */
	}
	mp_conn_close(c);
	return rv;
}

static void *
fake_server(void *arg)
{
	struct fake *f = arg;
	size_t channel = 0;
	bool done = false;
	while (!done && f->rv == 0) {
		f->rv = fake_serve_one(f, &channel, &done);
	}
	return NULL;
}

Test(manager_server_kill, a_reply_cut_short_is_an_error_not_half_a_value)
{
	static const enum cut modes[] = {
		CUT_HALF, CUT_HEADER, CUT_NOTHING, CUT_NONE,
	};
	char path[64];
	snprintf(path, sizeof(path), "/tmp/mp-sweep-fake-%d.sock",
	    (int)getpid());
	struct fake f = { .modes = modes, .nmodes = 4 };
	expect_ok(mp_listener_open(path, MP_TEST_MGR_KEY,
	    strlen(MP_TEST_MGR_KEY), &f.l));
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, fake_server, &f), 0);
	mp_manager_t *m;
	expect_ok(mp_manager_connect(path, MP_TEST_MGR_KEY,
	    strlen(MP_TEST_MGR_KEY), MP_TEST_MGR_WAIT_MS, &m));
	mp_proxy_t *p;
	expect_ok(mp_manager_create(m, "list", NULL, NULL, &p));
	mp_obj_t *v = NULL;
	/* Each failure drops the channel; the next call opens another. */
	expect_err(mp_proxy_getvalue(p, &v), MP_ETRUNCATED);
	expect_err(mp_proxy_getvalue(p, &v), MP_ETRUNCATED);
	expect_err(mp_proxy_getvalue(p, &v), MP_EOF);
	cr_assert_null(v);
	expect_ok(mp_proxy_getvalue(p, &v));
	cr_assert(big_ok(v));
	mp_obj_unref(v);
	v = NULL;
	cr_assert_eq(pthread_join(t, NULL), 0);
	expect_ok(f.rv);
	mp_listener_close(f.l);
	/* The kept channel's server end is closed; then nobody listens. */
	int rv = mp_proxy_getvalue(p, &v);
	cr_assert(rv == MP_EOF || rv == -EPIPE || rv == -ECONNRESET, "%s",
	    mp_err_name(rv));
	rv = mp_proxy_getvalue(p, &v);
	cr_assert(rv == -ENOENT || rv == -ECONNREFUSED, "%s",
	    mp_err_name(rv));
	cr_assert_null(v);
	mp_proxy_free(p);
	mp_manager_free(m);
}
