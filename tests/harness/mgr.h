/* SPDX-License-Identifier: MIT */
/* harness/mgr.h: a manager server in a child process, and raw channels to it, for the manager sweeps. */
#ifndef MP_TEST_MGR_H
#define MP_TEST_MGR_H

#include "harness/harness.h"
#include "manager/protocol.h"

#include <mproc/manager_server.h>

#define MP_TEST_MGR_KEY "sweep-key"
#define MP_TEST_MGR_WAIT_MS 30000

/*
 * A server serving a fresh Unix socket (/tmp/mp-sweep-<pid>-<n>.sock) in
 * a forked child, so that the test can kill it. setup (may be NULL) runs
 * in the child after mp_manager_server_open and before serve, to register
 * names. mp_test_mgr_start returns once the server listens.
 */
struct mp_test_mgr {
	pid_t pid;
	char path[108];
};

typedef void (*mp_test_mgr_setup_fn)(mp_manager_server_t *s, void *arg);

void mp_test_mgr_start(struct mp_test_mgr *m,
    const struct mp_manager_server_opts *opts, mp_test_mgr_setup_fn setup,
    void *arg);
/* SIGTERM: the child shuts the server down; asserts it exited 0. */
void mp_test_mgr_stop(struct mp_test_mgr *m);
/* SIGKILL, reap, remove the socket the dead server left. */
void mp_test_mgr_kill(struct mp_test_mgr *m);

/* A connection that passed the handshake, and a method channel. */
mp_conn_t *mp_test_mgr_dial(const char *path);
mp_conn_t *mp_test_mgr_channel(const char *path);
/* Send (ident, method, args, kwds); args and kwds are stolen. */
void mp_test_mgr_send(mp_conn_t *c, const char *ident, const char *method,
    mp_obj_t *args, mp_obj_t *kwds);
/* One reply: *kind and a new reference to its result. */
mp_obj_t *mp_test_mgr_recv(mp_conn_t *c, enum mp__mgr_kind *kind);
/* The same without assertions (for children): 0 or the error. */
int mp_test_mgr_try_recv(mp_conn_t *c, enum mp__mgr_kind *kind,
    mp_obj_t **result);
/* A reply payload (after its frame header) must be '#RETURN' None. */
void mp_test_mgr_expect_none(const void *payload, size_t n);
/* Both, asserting a '#RETURN'. */
mp_obj_t *mp_test_mgr_call(mp_conn_t *c, const char *ident,
    const char *method, mp_obj_t *args, mp_obj_t *kwds);
/* create(typeid, *args) on its own connection: the ident into id. */
void mp_test_mgr_create(const char *path, const char *typeid, mp_obj_t *args,
    char *id, size_t size);
/* The server function number_of_objects. */
int64_t mp_test_mgr_objects(const char *path);
/*
 * Wait until the peer has read every byte written on the Unix socket fd
 * (SIOCOUTQ reaches 0: the server's single thread has taken them, and
 * handles them before it reads anything else).
 */
void mp_test_mgr_drained(int fd);

#endif
