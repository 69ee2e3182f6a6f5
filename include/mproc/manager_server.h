/* SPDX-License-Identifier: MIT */
/* mproc/manager_server.h: a manager server that CPython's BaseManager and SyncManager clients use. */
#ifndef MPROC_MANAGER_SERVER_H
#define MPROC_MANAGER_SERVER_H

#include <mproc/common.h>
#include <mproc/obj.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * mp_manager_server_t holds shared objects and serves them over TCP or a
 * Unix socket, speaking CPython's multiprocessing.managers protocol: a
 * CPython BaseManager or SyncManager connects with the same address and
 * authkey and uses the objects through its own proxy classes, unchanged.
 *
 * Every server offers SyncManager's typeids (Queue, JoinableQueue, Event,
 * Lock, RLock, Semaphore, BoundedSemaphore, Condition, Barrier, list,
 * dict, Value, Array, Namespace, and Iterator for dict iteration), as
 * objects in the server process. More typeids are added with
 * mp_manager_server_register (C constructors and methods), and a name
 * can stand for one shared object (mp_manager_server_register_shared:
 * Python's register('get_queue', callable=lambda: queue)).
 *
 * The server is one event loop (epoll) in the thread that calls
 * mp_manager_server_serve. A method that blocks in Python (Queue.get,
 * Lock.acquire, Event.wait, Condition.wait, Barrier.wait,
 * JoinableQueue.join) waits without blocking anybody else: its reply is
 * sent when the object changes or its timeout expires.
 *
 * Reference counts follow CPython (create gives 1, incref, decref, the
 * object is dropped at 0). A client that disappears without its decrefs
 * does not keep its objects forever: the references taken through a
 * client's connections are released when that client has had no
 * connection for opts.orphan_grace_ms (see docs/internals/manager.md for
 * what "a client" is).
 *
 * Threads: mp_manager_server_shutdown may be called from any thread (and
 * from a signal handler); every other call, including registration, is
 * made by one thread and not while another thread is in serve.
 * Fork: the server belongs to the process that opened it. A child that
 * inherited one (forked while no thread was inside serve: a fork in the
 * middle of a loop iteration copies half-updated state) may only
 * mp_manager_server_close it, which releases its memory and fds without
 * touching the clients, the shared epoll set or the Unix socket path.
 */
typedef struct mp_manager_server mp_manager_server_t;

/* Log levels of mp_manager_server_opts.log. */
enum mp_manager_log_level {
	MP_MANAGER_LOG_ERROR,   /* a connection was dropped for a fault */
	MP_MANAGER_LOG_INFO,    /* connections opened and closed */
	MP_MANAGER_LOG_DEBUG,   /* every request */
};

/*
 * Options for mp_manager_server_open. Zero-initialise and set what you
 * need; a zero field takes the default shown, NULL opts takes them all.
 */
struct mp_manager_server_opts {
	/* Largest request frame; a larger one closes that connection.
	 * Also the most items a list repeat (l * n, l *= n) may make:
	 * more could not have been sent in one request. Default 64 MiB. */
	size_t max_message;
	/* Time a new connection has to finish the authentication
	 * handshake before it is closed. Default 10000 ms. */
	int64_t handshake_timeout_ms;
	/* Grace before the references of a client with no connection left
	 * are released. Default 60000 ms; a negative value keeps them
	 * forever (CPython's behaviour). */
	int64_t orphan_grace_ms;
	/* Connections served at once; more are accepted and closed at
	 * once. Default 65536. */
	size_t max_connections;
	/* Receives log lines (without newline), or NULL for silence. */
	void (*log)(void *user, enum mp_manager_log_level level,
	    const char *line);
	void *log_user;
	/* Most verbose level passed to log. Default MP_MANAGER_LOG_ERROR
	 * (0); set MP_MANAGER_LOG_INFO to see connections. */
	enum mp_manager_log_level log_level;
};

/*
 * mp_manager_server_open: bind address ("host:port", "[v6]:port",
 * ":port" for every IPv4 interface, "/path" or "unix:path"; port 0 picks
 * a free one) and prepare to serve with authkey (keylen bytes, copied;
 * an empty key is allowed: managers always authenticate, as CPython's
 * do). SyncManager's typeids are registered. Nothing is served until
 * mp_manager_server_serve. Returns 0 and the server in *out, or
 * -EINVAL (bad address or options), -EADDRINUSE, -EACCES, -EHOSTUNREACH
 * and the other errors of mp_listener_open, -EMFILE, -ENOMEM.
 * Threads: safe. Fork: see mp_manager_server_t.
 */
MP_API int mp_manager_server_open(const char *address, const void *authkey,
    size_t keylen, const struct mp_manager_server_opts *opts,
    mp_manager_server_t **out);

/*
 * mp_manager_server_address: the bound address in the form
 * mp_client_connect takes ("127.0.0.1:41234", "/tmp/m.sock"), with the
 * real port. The string belongs to the server. This function cannot fail.
 */
MP_API const char *mp_manager_server_address(const mp_manager_server_t *s);

/*
 * mp_manager_server_serve: serve clients until the server function
 * "shutdown" is called by a client (its reply is sent first) or
 * mp_manager_server_shutdown is called. Returns 0 then; the objects
 * stay until mp_manager_server_close, and serve may be called again.
 * Returns -ENOMEM or -errno from epoll when the loop itself fails (a
 * failing client only loses its connection).
 * Threads: one thread at a time. Fork: the owning process only.
 */
MP_API int mp_manager_server_serve(mp_manager_server_t *s);

/*
 * mp_manager_server_shutdown: make serve return as soon as the replies
 * already queued are written, or at once when the server is not serving
 * (a later serve then returns at once; it re-arms afterwards).
 * Async-signal-safe (a write to an eventfd). This function cannot fail.
 * Threads: safe, from any thread or a signal handler.
 */
MP_API void mp_manager_server_shutdown(mp_manager_server_t *s);

/*
 * mp_manager_server_close: close every connection and the listening
 * socket (unlinking a Unix socket path in the opening process), and
 * release every object. NULL does nothing. This function cannot fail.
 * Threads: not while serve runs. Fork: see mp_manager_server_t.
 */
MP_API void mp_manager_server_close(mp_manager_server_t *s);

/*
 * mp_manager_server_number_of_objects: the count the server function
 * "number_of_objects" returns: objects with a reference count above 0.
 * This function cannot fail. Threads: not while serve runs.
 */
MP_API size_t mp_manager_server_number_of_objects(
    const mp_manager_server_t *s);

/* ---- Registering typeids ------------------------------------------------- */

/*
 * A method of a registered type. call gets the object, the positional
 * arguments (a tuple) and the keyword arguments (a dict with str keys),
 * all borrowed. It returns:
 *   0              with *result a new reference: the reply '#RETURN'
 *                  (or, when result_typeid is set, the result becomes a
 *                  new object of that typeid and the reply '#PROXY',
 *                  Python's method_to_typeid);
 *   MP_EREMOTEERR  with *result an exception instance (mp_instance_new
 *                  ("builtins", "KeyError", args, NULL, false)): the
 *                  reply '#ERROR', which a CPython client raises;
 *   another negative error, *result untouched: the reply '#TRACEBACK'
 *                  naming the error.
 * Methods must not block; they run inside the event loop.
 */
struct mp_manager_method {
	const char *name;
	int (*call)(void *obj, const mp_obj_t *args, const mp_obj_t *kwds,
	    mp_obj_t **result);
	const char *result_typeid; /* NULL: the result is returned as is */
};

/*
 * A registered type: how to build, show and release an object, and its
 * methods. The method names, in order, are the "exposed" list the create
 * reply carries, which is the whole API of CPython's AutoProxy.
 */
struct mp_manager_type {
	/* Class name, for the default repr "<name object>". */
	const char *name;
	const struct mp_manager_method *methods;
	size_t n_methods;
	/*
	 * Build an object from the create arguments (borrowed, after the
	 * typeid). Returns 0 and *obj, MP_EREMOTEERR with *error an
	 * exception instance (sent as '#TRACEBACK' text, as CPython does
	 * for a failing constructor), or another negative error.
	 */
	int (*create)(const mp_obj_t *args, const mp_obj_t *kwds, void **obj,
	    mp_obj_t **error);
	/* Release an object whose reference count reached 0. May be NULL. */
	void (*free)(void *obj);
	/* repr(obj) into a string released with mp_free. NULL: default. */
	int (*repr)(void *obj, char **out);
	/* The referent for proxy._getvalue(). NULL: '#UNSERIALIZABLE'. */
	int (*getvalue)(void *obj, mp_obj_t **out);
};

/*
 * mp_manager_server_register: BaseManager.register(typeid, callable) for
 * a C type: a client's create(typeid, ...) builds an object with
 * type->create. The type is borrowed and must outlive the server; the
 * typeid is copied. Returns 0, -EEXIST (the name is registered already,
 * SyncManager's typeids included), -EINVAL (empty typeid, no create, a
 * method without name or call, more than 60 methods), -ENOMEM.
 * Threads: not while serve runs. Fork: usable.
 */
MP_API int mp_manager_server_register(mp_manager_server_t *s,
    const char *typeid, const struct mp_manager_type *type);

/*
 * mp_manager_server_register_shared: make name stand for one object of
 * typeid, created now with args (a tuple, borrowed; NULL for none), as
 * Python's register(name, callable=lambda: obj) with one obj the
 * callable returns each time. Every create(name) returns that object's
 * ident and adds one reference; the object is never released while the
 * server lives (the registration holds it). Returns 0, -ENOENT (unknown
 * typeid), -EEXIST (name taken), -EINVAL (empty name, or the constructor
 * refused args), -ENOMEM.
 * Threads: not while serve runs. Fork: usable.
 */
MP_API int mp_manager_server_register_shared(mp_manager_server_t *s,
    const char *name, const char *typeid, const mp_obj_t *args);

#ifdef __cplusplus
}
#endif
#endif
