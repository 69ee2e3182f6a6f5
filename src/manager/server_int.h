/* SPDX-License-Identifier: MIT */
/* manager/server_int.h: the manager server's objects, connections, calls and classes (internal). */
#ifndef MP_MANAGER_SERVER_INT_H
#define MP_MANAGER_SERVER_INT_H

#include <mproc/conn.h>
#include <mproc/manager_server.h>

#include "core/buf.h"
#include "core/internal.h"
#include "conn/conn_internal.h"
#include "manager/protocol.h"

/* ---- A map from 64-bit keys to pointers (registry.c) --------------------- */

/*
 * Open addressing with linear probing. Key 0 is "empty" and UINT64_MAX a
 * deleted slot, so keys must lie strictly between them (object ids and
 * connection ids start at 1). Zero-initialised is empty.
 */
struct mp__u64map {
	uint64_t *keys;
	void **vals;
	size_t cap;   /* power of two, or 0 */
	size_t len;   /* live keys */
	size_t used;  /* live + deleted slots */
};

int mp__u64map_put(struct mp__u64map *m, uint64_t key, void *val);
void *mp__u64map_get(const struct mp__u64map *m, uint64_t key);
/* Remove key; returns its value or NULL. */
void *mp__u64map_del(struct mp__u64map *m, uint64_t key);
/* Iterate: *pos starts at 0. */
bool mp__u64map_next(const struct mp__u64map *m, size_t *pos, uint64_t *key,
    void **val);
void mp__u64map_fini(struct mp__u64map *m);

/* ---- Classes: the built-in typeids and registered C types ---------------- */

struct mp__mgr_call;

/* A handler returns 0 (reply set with mp__mgr_ret / mp__mgr_err), this
 * (park the call until the object changes or c->deadline), or a negative
 * error ('#TRACEBACK'). */
#define MP__MGR_PARK 1

struct mp__mgr_method {
	const char *name;
	int (*fn)(struct mp__mgr_call *c);
	const char *result_typeid; /* method_to_typeid, or NULL */
};

struct mp__mgr_class {
	const char *typeid;         /* SyncManager's registration name */
	const char *pyname;         /* class name in repr and messages */
	/* The exposed list the create reply carries, NULL-terminated and
	 * in CPython's order (dict repeats '__iter__', as CPython does). */
	const char *const *exposed;
	const struct mp__mgr_method *methods;
	size_t n_methods;
	/* Build from c->args / c->kwds (the create arguments after the
	 * typeid). 0, MP_EREMOTEERR with c->result an exception, or -errno. */
	int (*create)(struct mp__mgr_call *c, void **impl);
	void (*destroy)(void *impl);
	/* repr (as_str false) or str of the referent, mp_free'd. */
	int (*repr)(void *impl, bool as_str, char **out);
	/* '#GETVALUE': a copy of the referent, or NULL: '#UNSERIALIZABLE'. */
	int (*getvalue)(void *impl, mp_obj_t **out);
	/* A connection that held something of this object (recorded with
	 * mp__mgr_conn_hold) is gone: release it. */
	void (*conn_gone)(void *impl, uint64_t conn_id);
	/* A parked call is dropped (its connection closed): undo what it
	 * counted (a Barrier party). May be NULL. */
	void (*cancel)(struct mp__mgr_call *c);
	/* Registered C types: the user's description. */
	const struct mp_manager_type *user;
};

/* The built-in classes (types_*.c). */
extern const struct mp__mgr_class mp__mgr_class_queue;
extern const struct mp__mgr_class mp__mgr_class_joinable_queue;
extern const struct mp__mgr_class mp__mgr_class_event;
extern const struct mp__mgr_class mp__mgr_class_lock;
extern const struct mp__mgr_class mp__mgr_class_rlock;
extern const struct mp__mgr_class mp__mgr_class_semaphore;
extern const struct mp__mgr_class mp__mgr_class_bounded_semaphore;
extern const struct mp__mgr_class mp__mgr_class_condition;
extern const struct mp__mgr_class mp__mgr_class_barrier;
extern const struct mp__mgr_class mp__mgr_class_list;
extern const struct mp__mgr_class mp__mgr_class_dict;
extern const struct mp__mgr_class mp__mgr_class_iterator;
extern const struct mp__mgr_class mp__mgr_class_value;
extern const struct mp__mgr_class mp__mgr_class_array;
extern const struct mp__mgr_class mp__mgr_class_namespace;

/* ---- Objects, clients, connections, calls -------------------------------- */

struct mp__mgr_obj {
	uint64_t id;
	char ident[20];             /* id in hex, as the wire carries it */
	const struct mp__mgr_class *cls;
	void *impl;
	int64_t refs;               /* CPython's id_to_refcount */
	bool pinned;                /* a shared registration keeps it */
	struct mp__mgr_call *wait_head; /* parked calls, oldest first */
	struct mp__mgr_call *wait_tail;
};

/*
 * A client: the processes behind one peer identity (the pid of a Unix
 * socket peer, the address of a TCP peer). It remembers the references
 * taken through its connections, so they can be released after it has
 * had no connection for the grace period.
 */
struct mp__mgr_client {
	char key[64];
	size_t nconns;
	int64_t orphan_since;       /* ns; valid while nconns == 0 */
	struct mp__u64map refs;     /* object id -> (intptr_t) net refs */
	struct mp__mgr_client *next, *prev;         /* all clients */
	struct mp__mgr_client *onext, *oprev;       /* orphans, by age */
	bool orphan;
};

enum mp__mgr_state {
	MP__HS_SEND_CHALLENGE,  /* challenge queued; read the response */
	MP__HS_READ_CHALLENGE,  /* welcomed; read the client's challenge */
	MP__HS_READ_WELCOME,    /* answered; read its verdict */
	MP__ST_ONESHOT,         /* one server-function request */
	MP__ST_CHANNEL,         /* method calls after accept_connection */
	MP__ST_CLOSING,         /* flush what is queued, then close */
};

struct mp__mgr_conn {
	int fd;
	enum mp__mgr_state state;
	uint32_t events;            /* registered with epoll */
	uint64_t id;
	struct mp__buf rbuf;        /* unparsed input; freed when empty */
	struct mp__buf wbuf;        /* queued output; freed when sent */
	size_t wpos;
	uint8_t nonce[MP__AUTH_NONCE_LEN]; /* our challenge ("{sha256}" + 40) */
	struct mp__mgr_client *client;
	struct mp__mgr_call *parked; /* the request being waited on */
	uint64_t *held;             /* objects it holds (RLock owners) */
	size_t nheld;
	int64_t hs_start;           /* ns; for the handshake timeout */
	struct mp__mgr_conn *next, *prev;       /* all connections */
	struct mp__mgr_conn *hnext, *hprev;     /* in handshake, by age */
	bool in_hs;
	bool dead;                  /* closed; freed after the epoll batch */
	bool in_resume;
	bool tcp;                   /* TCP (not Unix): Nagle and ACK tuning */
	struct mp__mgr_conn *rnext; /* queued for mp__mgr_conn_resume */
};

/*
 * A request being served. Most live on the stack for the duration of one
 * handler; a parked one is copied to the heap and linked on its object's
 * wait list and, with a deadline, in the timer heap.
 */
struct mp__mgr_call {
	struct mp_manager_server *srv;
	struct mp__mgr_conn *conn;  /* NULL for calls made by the server */
	struct mp__mgr_obj *obj;
	const struct mp__mgr_class *cls; /* the class being created */
	const struct mp__mgr_method *m;
	size_t method_index;
	mp_obj_t *req;              /* owns args and kwds */
	mp_obj_t *args;
	mp_obj_t *kwds;
	int64_t deadline;           /* ns, -1: none */
	bool timed_out;             /* the deadline passed: finish now */
	int stage;                  /* handler's own progress */
	int64_t n;                  /* handler scratch */
	int64_t n2;
	bool flag;
	enum mp__mgr_kind kind;
	mp_obj_t *result;
	/* A reference taken for the reply (create, incref, a proxy result):
	 * given back when the reply cannot be sent, so the object lives
	 * only if the client learned of it. */
	struct mp__mgr_obj *made;
	struct mp__mgr_call *wprev, *wnext;
	size_t heap_i;
};

struct mp_manager_server {
	int epfd;
	int wakefd;                 /* eventfd for mp_manager_server_shutdown */
	mp_listener_t *listener;
	mp_obj_t *address_obj;      /* Token address */
	uint8_t *key;
	size_t keylen;
	struct mp_manager_server_opts opts;
	pid_t owner;
	bool stopping;
	bool serving;
	bool accept_paused;         /* out of fds: listener not watched */
	/* Registry. */
	struct mp__mgr_reg *reg;
	size_t nreg;
	size_t capreg;
	/* Objects by id, and the next id. */
	struct mp__u64map objs;
	size_t nlive;               /* objects with refs > 0 */
	uint64_t next_id;
	/* Connections. */
	struct mp__mgr_conn *conns;
	size_t nconns;
	uint64_t next_conn;
	struct mp__mgr_conn *hs_head, *hs_tail;
	struct mp__mgr_conn *dead;  /* closed in this batch */
	struct mp__mgr_conn *resume_head, *resume_tail;
	/* Clients and the orphan queue. */
	struct mp__mgr_client *clients;
	struct mp__mgr_client *orph_head, *orph_tail;
	/* Parked calls with a deadline: a binary min-heap. */
	struct mp__mgr_call **heap;
	size_t nheap;
	size_t capheap;
	/* Memory for the next parked call, reserved before a handler
	 * runs: parking cannot then fail after the handler changed its
	 * object (counted a Barrier party, released a Condition's lock). */
	struct mp__mgr_call *spare;
	uint8_t scratch[64 << 10];  /* read buffer shared by connections */
};

/* A registry entry: a typeid's class, or a name bound to one object. */
struct mp__mgr_reg {
	char *name;
	const struct mp__mgr_class *cls;
	struct mp__mgr_class *owned; /* allocated for a registered C type */
	struct mp__mgr_obj *shared;  /* register_shared */
};

/* ---- Registry and objects (registry.c) ----------------------------------- */

int mp__mgr_reg_add(struct mp_manager_server *s, const char *name,
    const struct mp__mgr_class *cls, struct mp__mgr_class *owned);
struct mp__mgr_reg *mp__mgr_reg_find(struct mp_manager_server *s,
    const char *name, size_t len);
void mp__mgr_reg_fini(struct mp_manager_server *s);

/* A new object of cls built by c (c->args/kwds); refs 0, not counted. */
int mp__mgr_obj_create(struct mp_manager_server *s,
    const struct mp__mgr_class *cls, struct mp__mgr_call *c,
    struct mp__mgr_obj **out);
struct mp__mgr_obj *mp__mgr_obj_find(struct mp_manager_server *s,
    const char *ident, size_t len);
/* Reference changes; through (may be NULL) records them for a client. */
void mp__mgr_obj_incref(struct mp_manager_server *s, struct mp__mgr_obj *o,
    struct mp__mgr_client *through);
void mp__mgr_obj_decref(struct mp_manager_server *s, struct mp__mgr_obj *o,
    struct mp__mgr_client *through);
void mp__mgr_obj_destroy(struct mp_manager_server *s, struct mp__mgr_obj *o);

struct mp__mgr_client *mp__mgr_client_get(struct mp_manager_server *s,
    const char *key);
void mp__mgr_client_attach(struct mp_manager_server *s,
    struct mp__mgr_client *cl);
void mp__mgr_client_detach(struct mp_manager_server *s,
    struct mp__mgr_client *cl);
/* Release the references of orphans older than the grace; returns the
 * ns until the next one is due, or -1. */
int64_t mp__mgr_clients_expire(struct mp_manager_server *s, int64_t now);
void mp__mgr_clients_fini(struct mp_manager_server *s);

/* ---- Dispatch (server_dispatch.c), waiting (server_wait.c) -------------- */

/* Serve one decoded request on conn; queues the reply or parks. */
int mp__mgr_dispatch(struct mp_manager_server *s, struct mp__mgr_conn *conn,
    mp_obj_t *req);
/* Retry the parked calls of o after it changed. */
void mp__mgr_obj_changed(struct mp_manager_server *s, struct mp__mgr_obj *o);
/* Finish parked calls whose deadline passed; ns until the next, or -1. */
int64_t mp__mgr_timers_run(struct mp_manager_server *s, int64_t now);
/* Drop conn's parked call (the connection is closing). */
void mp__mgr_call_cancel(struct mp_manager_server *s, struct mp__mgr_call *c);
/* Fail every call parked on o (it is being destroyed). */
void mp__mgr_obj_fail_waiters(struct mp_manager_server *s,
    struct mp__mgr_obj *o);
/*
 * Reserve what parking one call needs (its heap copy, a timer slot), so
 * that mp__mgr_park cannot fail afterwards. 0 or -ENOMEM.
 */
int mp__mgr_park_reserve(struct mp_manager_server *s);
/* Park the stack call c (copied into the reserved memory). */
void mp__mgr_park(struct mp_manager_server *s, struct mp__mgr_call *c);
/* Queue the reply of a finished call (rv as its handler returned). */
void mp__mgr_reply_call(struct mp_manager_server *s, struct mp__mgr_call *c,
    int rv);

/* ---- The loop (server.c) and connections (server_conn.c) ----------------- */

/* The epoll tags of the listener and the wake fd (server.c). */
extern char mp__mgr_tag_listener;
extern char mp__mgr_tag_wake;
/* Accept every waiting connection (pausing when out of fds). */
void mp__mgr_accept_all(struct mp_manager_server *s);
/* Handle epoll events ev of c. May close c. */
void mp__mgr_conn_event(struct mp_manager_server *s, struct mp__mgr_conn *c,
    uint32_t ev);
/*
 * Serve fd (a connected, non-blocking stream socket) as if the listener
 * had accepted it: its challenge is queued (and sent when the socket has
 * room) and it starts in the handshake or, with authenticated, as a
 * one-shot connection past it. For tests/fuzz, which feed a server its
 * connections' bytes in-process, driving mp__mgr_conn_event by hand.
 */
int mp__mgr_conn_adopt(struct mp_manager_server *s, int fd, bool authenticated,
    struct mp__mgr_conn **out);
/* Close c (why: a logged reason, or NULL for an orderly close); its
 * memory waits for mp__mgr_reap, after the epoll batch. */
void mp__mgr_conn_close(struct mp_manager_server *s, struct mp__mgr_conn *c,
    const char *why);
void mp__mgr_reap(struct mp_manager_server *s);
/* Write what c has queued: 0 (maybe with some left) or -errno. */
int mp__mgr_conn_flush(struct mp__mgr_conn *c);
/* Close handshakes past their timeout; ns until the next, or -1. */
int64_t mp__mgr_handshakes_expire(struct mp_manager_server *s, int64_t now);
/* Queue one reply on conn (encoding it) and try to send it. */
int mp__mgr_conn_reply(struct mp_manager_server *s, struct mp__mgr_conn *c,
    enum mp__mgr_kind kind, mp_obj_t *result);
/*
 * A parked call of c was answered (its reply is queued): c goes back to
 * reading and serves what arrived meanwhile. May close c.
 */
void mp__mgr_conn_resume(struct mp_manager_server *s, struct mp__mgr_conn *c);
/* Resume the connections whose parked call was answered. */
void mp__mgr_resume_all(struct mp_manager_server *s);
/* Make serve return after this batch ("shutdown"). */
void mp__mgr_server_stop(struct mp_manager_server *s);
/*
 * Close every connection and destroy every object (shared registrations'
 * ones too: their names then create anew), so the server is as it was
 * opened; mp_manager_server_close starts with this. tests/fuzz resets one
 * server between inputs instead of opening one per input.
 */
void mp__mgr_server_reset(struct mp_manager_server *s);
/* Register SyncManager's typeids (types_*.c, in server_dispatch.c). */
int mp__mgr_register_builtins(struct mp_manager_server *s);
/* Record that conn holds obj (an RLock it owns), for conn_gone. */
int mp__mgr_conn_hold(struct mp__mgr_conn *c, uint64_t obj_id);
void mp__mgr_log(struct mp_manager_server *s, enum mp_manager_log_level lvl,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- Helpers for handlers (server_wait.c) -------------------------------- */

/* Set the reply: '#RETURN' v / '#ERROR' exc (stolen). 0 or -ENOMEM. */
int mp__mgr_ret(struct mp__mgr_call *c, mp_obj_t *v);
int mp__mgr_err(struct mp__mgr_call *c, mp_obj_t *exc);
/* '#ERROR' with an exception of kind which and a formatted message. */
int mp__mgr_errf(struct mp__mgr_call *c, enum mp__mgr_exc which,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/*
 * Argument i (positional) or keyword name (may be NULL), borrowed, or
 * NULL when absent. Fails the call with TypeError when more than max
 * positional arguments or an unknown keyword came: check with
 * mp__mgr_args_check first.
 */
mp_obj_t *mp__mgr_arg(const struct mp__mgr_call *c, size_t i,
    const char *name);
/* TypeError unless args fit max positionals and the NULL-terminated
 * keyword names. Returns 0, or 1 with the error reply set. */
int mp__mgr_args_check(struct mp__mgr_call *c, size_t max,
    const char *const *names);
/* What a negative timeout means: ValueError(msg), forever, or now. */
enum mp__mgr_neg { MP__NEG_ERROR, MP__NEG_FOREVER, MP__NEG_NOW };
/*
 * A Python timeout (None: forever, else seconds, int or float) into an
 * absolute deadline in c->deadline. Returns 0, or 1 with the error reply
 * set.
 */
int mp__mgr_timeout(struct mp__mgr_call *c, const mp_obj_t *t,
    enum mp__mgr_neg neg, const char *msg);
/* Whether o is a builtins.slice instance (decoded by protocol.c). */
bool mp__mgr_is_slice(const mp_obj_t *o);
/* The start, step and item count of slice sl over len items, as
 * PySlice_AdjustIndices. 0, or -EINVAL for a zero step. */
int mp__mgr_slice(const mp_obj_t *sl, size_t len, int64_t *start,
    int64_t *step, size_t *count);
/*
 * mp__mgr_slice for a handler: true with the indices, or false with the
 * call's ValueError reply set and *rv what the handler returns.
 */
bool mp__mgr_slice_arg(struct mp__mgr_call *c, const mp_obj_t *sl, size_t len,
    int64_t *start, int64_t *step, size_t *count, int *rv);
/* Index i (an int, negative from the end) into len items. */
bool mp__mgr_index(const mp_obj_t *i, size_t len, size_t *out);
/* Python truthiness of a primitive (None, bool, int, float, str, ...). */
bool mp__mgr_truthy(const mp_obj_t *o);
/*
 * acquire(blocking=True, timeout=...) as threading's Lock, RLock,
 * Semaphore and Condition parse it: take(c) tries to take the object for
 * the caller; a blocking call that cannot is parked until its deadline
 * and take is tried again each time it is woken (stage 1). With
 * minus_one_forever, timeout=-1 means "no timeout" (Lock, RLock); for
 * semaphores only None does. Returns what a handler returns.
 */
int mp__mgr_acquire(struct mp__mgr_call *c,
    bool (*take)(struct mp__mgr_call *c), bool minus_one_forever);

#endif
