/* SPDX-License-Identifier: MIT */
/* harness/mgr.c: a manager server in a child process, and raw channels to it. */
#include "harness/mgr.h"

#include <linux/sockios.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>

static mp_manager_server_t *child_srv;

static void
on_term(int sig)
{
	(void)sig;
	mp_manager_server_shutdown(child_srv);
}

static _Noreturn void
serve_child(const char *path, const struct mp_manager_server_opts *opts,
    mp_test_mgr_setup_fn setup, void *arg, int ready)
{
	int rv = mp_manager_server_open(path, MP_TEST_MGR_KEY,
	    strlen(MP_TEST_MGR_KEY), opts, &child_srv);
	if (rv != 0) {
		mp_test_send_int(ready, rv);
		_exit(1);
	}
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	if (setup != NULL) {
		setup(child_srv, arg);
	}
	mp_test_send_int(ready, 0);
	close(ready);
	rv = mp_manager_server_serve(child_srv);
	mp_manager_server_close(child_srv);
	_exit(rv == 0 ? 0 : 2);
}

void
mp_test_mgr_start(struct mp_test_mgr *m,
    const struct mp_manager_server_opts *opts, mp_test_mgr_setup_fn setup,
    void *arg)
{
	static int n;
	snprintf(m->path, sizeof(m->path), "/tmp/mp-sweep-%d-%d.sock",
	    (int)getpid(), n++);
	unlink(m->path);
	int fds[2];
	mp_test_pipe(fds);
	m->pid = mp_test_fork();
	if (m->pid == 0) {
		close(fds[0]);
		serve_child(m->path, opts, setup, arg, fds[1]);
	}
	close(fds[1]);
	int rv = mp_test_recv_int(fds[0]);
	close(fds[0]);
	cr_assert_eq(rv, 0, "the server did not start: %s", mp_err_name(rv));
}

/*
 * Stop with the server function "shutdown", as a client would, and fall
 * back on SIGTERM when no connection can be made (a server at its
 * connection limit). Not a signal first: under ThreadSanitizer a signal
 * that lands while the server is busy is held until its next intercepted
 * call, and an epoll_wait entered meanwhile holds it up to a minute.
 */
void
mp_test_mgr_stop(struct mp_test_mgr *m)
{
	mp_manager_t *mgr;
	if (mp_manager_connect(m->path, MP_TEST_MGR_KEY,
	    strlen(MP_TEST_MGR_KEY), 5000, &mgr) == 0) {
		int rv = mp_manager_shutdown(mgr);
		mp_manager_free(mgr);
		if (rv != 0) {
			cr_assert_eq(kill(m->pid, SIGTERM), 0);
		}
	} else {
		cr_assert_eq(kill(m->pid, SIGTERM), 0);
	}
	cr_assert_eq(mp_test_reap(m->pid), 0, "the server failed");
	unlink(m->path);
}

void
mp_test_mgr_kill(struct mp_test_mgr *m)
{
	cr_assert_eq(mp_test_kill(m->pid), -SIGKILL);
	unlink(m->path);
}

mp_conn_t *
mp_test_mgr_dial(const char *path)
{
	mp_conn_t *c;
	expect_ok(mp_client_connect(path, MP_TEST_MGR_KEY,
	    strlen(MP_TEST_MGR_KEY), MP_TEST_MGR_WAIT_MS, &c));
	return c;
}

void
mp_test_mgr_send(mp_conn_t *c, const char *ident, const char *method,
    mp_obj_t *args, mp_obj_t *kwds)
{
	mp_obj_t *req = mp__mgr_request(ident, method, args, kwds);
	cr_assert_not_null(req);
	expect_ok(mp_conn_send(c, req));
	mp_obj_unref(req);
}

int
mp_test_mgr_try_recv(mp_conn_t *c, enum mp__mgr_kind *kind, mp_obj_t **result)
{
	void *buf = NULL;
	size_t len;
	int rv = mp_conn_recv_bytes(c, (size_t)1 << 28, MP_TEST_MGR_WAIT_MS,
	    &buf, &len);
	mp_obj_t *msg = NULL;
	if (rv == 0) {
		rv = mp__mgr_decode(buf, len, 0, &msg, NULL, 0);
	}
	mp_free(buf);
	mp_obj_t *r;
	if (rv == 0) {
		rv = mp__mgr_reply_parse(msg, kind, &r);
	}
	if (rv == 0) {
		*result = mp_obj_ref(r);
	}
	mp_obj_unref(msg);
	return rv;
}

mp_obj_t *
mp_test_mgr_recv(mp_conn_t *c, enum mp__mgr_kind *kind)
{
	mp_obj_t *result = NULL;
	expect_ok(mp_test_mgr_try_recv(c, kind, &result));
	return result;
}

void
mp_test_mgr_expect_none(const void *payload, size_t n)
{
	mp_obj_t *msg;
	expect_ok(mp__mgr_decode(payload, n, 0, &msg, NULL, 0));
	enum mp__mgr_kind kind;
	mp_obj_t *result;
	expect_ok(mp__mgr_reply_parse(msg, &kind, &result));
	cr_assert_eq(kind, MP__MGR_RETURN);
	cr_assert_eq(mp_obj_type(result), MP_TYPE_NONE);
	mp_obj_unref(msg);
}

mp_obj_t *
mp_test_mgr_call(mp_conn_t *c, const char *ident, const char *method,
    mp_obj_t *args, mp_obj_t *kwds)
{
	mp_test_mgr_send(c, ident, method, args, kwds);
	enum mp__mgr_kind kind;
	mp_obj_t *r = mp_test_mgr_recv(c, &kind);
	if (kind != MP__MGR_RETURN) {
		char *text = NULL;
		(void)mp_obj_repr(r, &text);
		cr_assert_fail("%s: %s %s", method, mp__mgr_kind_name(kind),
		    text != NULL ? text : "?");
	}
	return r;
}

mp_conn_t *
mp_test_mgr_channel(const char *path)
{
	mp_conn_t *c = mp_test_mgr_dial(path);
	mp_obj_unref(mp_test_mgr_call(c, NULL, "accept_connection",
	    mp_tuple_of(1, mp_str("MainProcess")), NULL));
	return c;
}

void
mp_test_mgr_create(const char *path, const char *typeid, mp_obj_t *args,
    char *id, size_t size)
{
	size_t n = args != NULL ? mp_obj_len(args) : 0;
	mp_obj_t *items[8];
	cr_assert_leq(n + 1, 8);
	items[0] = mp_str(typeid);
	for (size_t i = 0; i < n; i++) {
		items[i + 1] = mp_obj_ref(mp_tuple_get(args, (ssize_t)i));
	}
	mp_obj_unref(args);
	mp_conn_t *c = mp_test_mgr_dial(path);
	mp_obj_t *r = mp_test_mgr_call(c, NULL, "create",
	    mp_tuple_from(items, n + 1), NULL);
	snprintf(id, size, "%s", mp_str_data(mp_tuple_get(r, 0), NULL));
	mp_obj_unref(r);
	mp_conn_close(c);
}

int64_t
mp_test_mgr_objects(const char *path)
{
	mp_conn_t *c = mp_test_mgr_dial(path);
	mp_obj_t *r = mp_test_mgr_call(c, NULL, "number_of_objects", NULL,
	    NULL);
	int64_t n;
	expect_ok(mp_int_value(r, &n));
	mp_obj_unref(r);
	mp_conn_close(c);
	return n;
}

void
mp_test_mgr_drained(int fd)
{
	int64_t end = mp_test_now_ms() + MP_TEST_MGR_WAIT_MS;
	for (;;) {
		int queued = 0;
		cr_assert_eq(ioctl(fd, SIOCOUTQ, &queued), 0);
		if (queued == 0) {
			return;
		}
		cr_assert_lt(mp_test_now_ms(), end, "the server left %d bytes "
		    "unread", queued);
		sched_yield();
	}
}
