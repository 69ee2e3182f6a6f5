/* SPDX-License-Identifier: MIT */
/* test_manager_volume.c: 8 manager clients x 100,000 operations, nothing lost or doubled. */
#include "harness/mgr.h"

#include <mproc/manager.h>

#include <stdatomic.h>
#include <sys/mman.h>

MP_TEST_SUITE(manager_volume);

/*
 * Eight client processes, each with its own mp_manager_t, make 100,000
 * calls each on one server (a child process): four append unique ints to
 * one list, two put unique ints on one queue, two get from it. Then the
 * list must hold each appended int exactly once, and every int put must
 * have been got exactly once, with the queue empty.
 */
#define N_OPS     100000
#define APPENDERS 4
#define PUTTERS   2
#define GETTERS   2
#define N_KIDS    (APPENDERS + PUTTERS + GETTERS)

struct volume {
	_Atomic uint8_t got[PUTTERS * N_OPS];
	_Atomic int bad;
};

static int
kid_main(const char *path, const char *list_id, const char *queue_id,
    struct volume *v, int k)
{
	mp_manager_t *m;
	mp_proxy_t *list;
	mp_proxy_t *queue;
	if (mp_manager_connect(path, MP_TEST_MGR_KEY, strlen(MP_TEST_MGR_KEY),
	    MP_TEST_MGR_WAIT_MS, &m) != 0 ||
	    mp_manager_create(m, "get_list", NULL, NULL, &list) != 0 ||
	    mp_manager_create(m, "get_queue", NULL, NULL, &queue) != 0) {
		return 50;
	}
	if (strcmp(mp_proxy_id(list), list_id) != 0 ||
	    strcmp(mp_proxy_id(queue), queue_id) != 0) {
		return 51;
	}
	int rv = 0;
	for (int64_t i = 0; i < N_OPS && rv == 0; i++) {
		if (k < APPENDERS) {
			mp_obj_t *x = mp_int(k * N_OPS + i);
			rv = mp_proxy_list_append(list, x);
			mp_obj_unref(x);
		} else if (k < APPENDERS + PUTTERS) {
			mp_obj_t *x = mp_int((k - APPENDERS) * N_OPS + i);
			rv = mp_proxy_queue_put(queue, x, MP_TEST_MGR_WAIT_MS);
			mp_obj_unref(x);
		} else {
			mp_obj_t *x = NULL;
			int64_t id = -1;
			rv = mp_proxy_queue_get(queue, MP_TEST_MGR_WAIT_MS, &x);
			if (rv == 0 && (mp_int_value(x, &id) != 0 || id < 0 ||
			    id >= PUTTERS * N_OPS)) {
				atomic_fetch_add(&v->bad, 1);
			} else if (rv == 0) {
				atomic_fetch_add(&v->got[id], 1);
			}
			mp_obj_unref(x);
		}
	}
	mp_proxy_free(list);
	mp_proxy_free(queue);
	mp_manager_free(m);
	return rv == 0 ? 0 : 52;
}

static void
register_names(mp_manager_server_t *s, void *arg)
{
	(void)arg;
	if (mp_manager_server_register_shared(s, "get_list", "list",
	    NULL) != 0 || mp_manager_server_register_shared(s, "get_queue",
	    "Queue", NULL) != 0) {
		_exit(53);
	}
}

Test(manager_volume, eight_clients_times_100000_operations, .timeout = 600)
{
	struct volume *v = mp_test_shared_map(sizeof(*v));
	struct mp_test_mgr srv;
	mp_test_mgr_start(&srv, NULL, register_names, NULL);
	char list[32];
	char queue[32];
	mp_test_mgr_create(srv.path, "get_list", NULL, list, sizeof(list));
	mp_test_mgr_create(srv.path, "get_queue", NULL, queue, sizeof(queue));
	int64_t t0 = mp_test_now_ms();
	pid_t kids[N_KIDS];
	for (int k = 0; k < N_KIDS; k++) {
		kids[k] = mp_test_fork();
		if (kids[k] == 0) {
			_exit(kid_main(srv.path, list, queue, v, k));
		}
	}
	for (int k = 0; k < N_KIDS; k++) {
		cr_assert_eq(mp_test_reap(kids[k]), 0, "client %d failed", k);
	}
	int64_t t1 = mp_test_now_ms();
	cr_assert_eq(atomic_load(&v->bad), 0, "items that were never put");
	for (int64_t id = 0; id < PUTTERS * N_OPS; id++) {
		cr_assert_eq(atomic_load(&v->got[id]), 1, "item %lld got %d "
		    "times", (long long)id, atomic_load(&v->got[id]));
	}
	mp_conn_t *c = mp_test_mgr_channel(srv.path);
	mp_obj_t *n = mp_test_mgr_call(c, queue, "qsize", NULL, NULL);
	int64_t left;
	expect_ok(mp_int_value(n, &left));
	cr_assert_eq(left, 0);
	mp_obj_unref(n);
	mp_obj_t *all = mp_test_mgr_call(c, list, "#GETVALUE", NULL, NULL);
	cr_assert_eq(mp_obj_len(all), APPENDERS * N_OPS);
	uint8_t *seen = calloc(APPENDERS * N_OPS, 1);
	cr_assert_not_null(seen);
	for (size_t i = 0; i < APPENDERS * N_OPS; i++) {
		int64_t id;
		expect_ok(mp_int_value(mp_list_get(all, (ssize_t)i), &id));
		cr_assert(id >= 0 && id < APPENDERS * N_OPS && !seen[id],
		    "list item %lld", (long long)id);
		seen[id] = 1;
	}
	free(seen);
	mp_obj_unref(all);
	mp_conn_close(c);
	cr_log_info("%d clients x %d calls (%d appending, %d putting, %d "
	    "getting) in %lld ms: %lld calls/s; list and queue exact",
	    N_KIDS, N_OPS, APPENDERS, PUTTERS, GETTERS, (long long)(t1 - t0),
	    (long long)((int64_t)N_KIDS * N_OPS * 1000 / (t1 - t0 + 1)));
	mp_test_mgr_stop(&srv);
	munmap(v, sizeof(*v));
}
