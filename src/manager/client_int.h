/* SPDX-License-Identifier: MIT */
/* manager/client_int.h: the manager client's state (internal). */
#ifndef MP_MANAGER_CLIENT_INT_H
#define MP_MANAGER_CLIENT_INT_H

#include <mproc/conn.h>
#include <mproc/manager.h>
#include <mproc/process.h>

#include "core/buf.h"
#include "core/internal.h"
#include "manager/protocol.h"

#include <pthread.h>
#include <stdatomic.h>

/* How long a channel polls for a reply before it sleeps (client.c). */
#define MP__MGR_SPIN_NS ((int64_t)100000)
#define MP__MGR_SPIN_BACKOFF_MAX 256

struct mp__mgr_spin {
	unsigned skip;     /* calls left that do not spin */
	unsigned backoff;  /* skip after the next failed spin */
};

/*
 * A method channel: one connection that has sent accept_connection, used
 * by one thread of one process (CPython's per-thread BaseProxy._tls).
 */
struct mp__mgr_chan {
	struct mp__mgr_chan *next;
	mp_conn_t *conn;
	pthread_t thread;
	pid_t pid;
	bool busy;             /* a call is in flight on it */
	bool doomed;           /* closed by shutdown: close after the call */
	struct mp__mgr_spin spin;
	struct mp__buf sbuf;   /* the framed request being sent */
};

struct mp_manager {
	/* One for the user's handle, one per live proxy. */
	atomic_int refs;
	/* Set by shutdown or free: calls return MP_ECLOSED. */
	atomic_bool closed;
	_Atomic int64_t timeout_ms;
	char *address;
	uint8_t *authkey;
	size_t keylen;
	/* The process that made the manager; others are forked children. */
	pid_t owner;

	/* Guards chans (never held across I/O). */
	pthread_mutex_t lock;
	struct mp__mgr_chan *chans;
	/* The process whose channels chans holds (children drop them). */
	pid_t chans_pid;
	/* Each thread's channel, closed when the thread ends. */
	pthread_key_t tkey;
	bool tkey_ok;

	/* mp_manager_start: the server process and where its socket lives. */
	mp_process_t *server;
	char *tmpdir;

	/* Links in the registry of live managers (fork and exit handling). */
	struct mp_manager *reg_prev;
	struct mp_manager *reg_next;
};

struct mp_proxy {
	mp_manager_t *m;
	char *id;
	char *typeid;
	/* The process whose reference the proxy holds. */
	pid_t owner;
};

/*
 * mp__mgr_server_call: call the server function fn(*args) on a one-shot
 * connection of its own. args is stolen (NULL: ()); *result (may be NULL)
 * gets the '#RETURN' value. Remote failures return MP_EREMOTEERR.
 */
int mp__mgr_server_call(mp_manager_t *m, const char *fn, mp_obj_t *args,
    mp_obj_t *kwds, mp_obj_t **result);

/*
 * mp__mgr_method_call: send (ident, method, args, kwds) on the calling
 * thread's channel and wait for the reply until the deadline. args and
 * kwds are borrowed. On 0, *kind and *reply (the whole reply tuple, a new
 * reference) are set.
 */
int mp__mgr_method_call(mp_manager_t *m, const char *ident, const char *method,
    const mp_obj_t *args, const mp_obj_t *kwds, int64_t timeout_ms,
    enum mp__mgr_kind *kind, mp_obj_t **reply);

/* A RemoteError instance holding text (for '#TRACEBACK' replies). */
mp_obj_t *mp__mgr_remote_error(const mp_obj_t *text);

/* Reference counting of the manager struct (proxies hold one each). */
void mp__mgr_ref(mp_manager_t *m);
void mp__mgr_unref(mp_manager_t *m);

/* Start a private server (client_start.c); fills m->server, m->tmpdir,
 * m->address and m->authkey. */
int mp__mgr_start_server(mp_manager_t *m);
/* Stop it: shutdown request, join (kill when late), remove the socket. */
void mp__mgr_stop_server(mp_manager_t *m);

/* Make a manager struct (refs 1, registered). */
int mp__mgr_new(const char *address, const void *key, size_t keylen,
    int64_t timeout_ms, mp_manager_t **out);
/* Close the channels this process owns (and forget inherited ones). */
void mp__mgr_close_chans(mp_manager_t *m);
/* In a child: close the copies of every manager's channels. */
void mp__mgr_drop_inherited(void);

#endif
