/* SPDX-License-Identifier: MIT */
/* mproc/manager.h: manager clients and proxies (Manager(), connect()). */
#ifndef MPROC_MANAGER_H
#define MPROC_MANAGER_H

#include <mproc/common.h>
#include <mproc/obj.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * mp_manager_t is a client of a manager server: the C server of
 * mproc/manager_server.h or CPython's BaseManager / SyncManager server
 * (3.8 to 3.13), over TCP or a Unix socket, speaking CPython's protocol.
 * It creates shared objects on the server and hands out proxies
 * (mp_proxy_t) whose methods run there.
 *
 * Connections follow CPython: each server function (create, decref,
 * shutdown ...) opens a connection of its own for one request; method
 * calls go over one connection per thread, opened at the thread's first
 * call and closed when the thread ends or at mp_manager_free.
 *
 * Nobody hangs on a dead server: every call waits at most its timeout,
 * and a server that dies makes the calls in flight fail with MP_EOF,
 * MP_ETRUNCATED, -ECONNRESET or -EPIPE, and later calls with
 * -ECONNREFUSED (or -ENOENT for a Unix socket removed). Calls that take
 * no timeout argument use the manager's (mp_manager_set_timeout).
 *
 * Threads: safe; any thread may use the manager and its proxies at the
 * same time (each thread has its own method connection), except that
 * mp_manager_free must not race with other calls.
 * Fork: usable in a child. The child does not use its parent's
 * connections: it closes its copies and opens its own at its first call.
 * A manager started with mp_manager_start is shut down only by the
 * process that started it.
 */
typedef struct mp_manager mp_manager_t;

/*
 * mp_proxy_t refers to one shared object on a manager server, as CPython's
 * BaseProxy: its methods are called with mp_proxy_call or the typed
 * wrappers below. A proxy holds one reference on the server, released by
 * mp_proxy_free.
 *
 * Threads: safe (a proxy is immutable; calls use the calling thread's
 * connection). Fork: usable in a child, which borrows its parent's
 * reference: the parent must keep the proxy until the children are done
 * with it (join them first). mp_proxy_free in the child releases only
 * the child's memory.
 */
typedef struct mp_proxy mp_proxy_t;

/* Default timeout of calls that take none: 30 s (CPython has none). */
#define MP_MANAGER_TIMEOUT_DEFAULT_MS ((int64_t)30000)

/*
 * A blocking method given a timeout (Queue.get, Lock.acquire, Event.wait
 * ...) passes it to the server, which answers when it expires; the client
 * waits this much longer for that answer before it gives up.
 */
#define MP_MANAGER_REPLY_SLACK_MS ((int64_t)5000)

/* ---- Managers ------------------------------------------------------------ */

/*
 * mp_manager_connect: BaseManager(address, authkey).connect(): check that
 * a server answers at address ("host:port", "[v6]:port", "/path" or
 * "unix:path") with authkey (keylen bytes, copied; may be empty but not
 * NULL) by calling its server function "dummy". timeout_ms bounds that
 * check and becomes the manager's default timeout (MP_FOREVER: wait as
 * long as it takes). Returns 0 and the manager in *out, or:
 *   -EINVAL, -EHOSTUNREACH  bad or unresolvable address;
 *   -ECONNREFUSED, -ENOENT  no server there;
 *   MP_EAUTH                wrong authkey;
 *   -ETIMEDOUT              no answer in time;
 *   MP_EREMOTEERR           the server refused the call;
 *   -ENOMEM and the other errors of mp_client_connect.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_manager_connect(const char *address, const void *authkey,
    size_t keylen, int64_t timeout_ms, mp_manager_t **out);

/*
 * mp_manager_start: multiprocessing.Manager(): fork a private server (the
 * C server, with SyncManager's typeids) listening on a Unix socket in a
 * new directory under $TMPDIR (or /tmp) with a random 32-byte authkey,
 * and return a manager connected to it. The server ignores SIGINT, as
 * CPython's does. It is stopped by mp_manager_shutdown, mp_manager_free,
 * or at the exit of the process that started it, and then nothing is
 * left: the server is reaped, the socket and its directory removed.
 * Returns 0, or:
 *   -EPERM        the caller is a daemon process (no children);
 *   -EIO          no random bytes for the key;
 *   -ETIMEDOUT    the server did not come up within 10 s;
 *   -EMFILE, -ENOMEM, -EAGAIN and the errors of mp_process_start and
 *                 mp_manager_server_open (which the server reports).
 * Threads: safe. Fork: see mp_manager_t.
 */
MP_API int mp_manager_start(mp_manager_t **out);

/*
 * mp_manager_address: the address the manager connects to (for a started
 * manager, the Unix socket path). The string belongs to the manager.
 * This function cannot fail.
 */
MP_API const char *mp_manager_address(const mp_manager_t *m);

/*
 * mp_manager_authkey: the authkey (for a started manager, the random one
 * another process needs to connect). Borrowed. This function cannot fail.
 */
MP_API const void *mp_manager_authkey(const mp_manager_t *m, size_t *keylen);

/*
 * mp_manager_server_pid: the pid of the server a manager started, or 0
 * for a manager made by mp_manager_connect. This function cannot fail.
 */
MP_API pid_t mp_manager_server_pid(const mp_manager_t *m);

/*
 * mp_manager_set_timeout: the timeout (milliseconds, or MP_FOREVER) of
 * every call that takes none: server functions, opening a connection, and
 * the typed wrappers of methods that do not block. This function cannot
 * fail. Threads: safe.
 */
MP_API void mp_manager_set_timeout(mp_manager_t *m, int64_t timeout_ms);

/*
 * mp_manager_create: create an object on the server with the server
 * function create(typeid, *args, **kwds), as a call of CPython's
 * manager.list(...) or of a registered name (the lecture's get_queue)
 * does, and return a proxy for it. args is a tuple and kwds a dict with
 * str keys, both borrowed; NULL means () and {}. Typeids of a SyncManager
 * server: "Queue", "JoinableQueue", "Event", "Lock", "RLock",
 * "Semaphore", "BoundedSemaphore", "Condition", "Barrier", "list", "dict",
 * "Value", "Array", "Namespace". Returns 0 and the proxy in *out, or:
 *   MP_EREMOTEERR  the server refused (unknown typeid, bad arguments);
 *   MP_ECLOSED     the manager was shut down or freed;
 *   -EINVAL        args is not a tuple or kwds not a dict;
 *   -EPROTO        a reply of the wrong shape;
 *   the connection errors of mp_manager_t, -ETIMEDOUT, -ENOMEM.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_manager_create(mp_manager_t *m, const char *typeid,
    const mp_obj_t *args, const mp_obj_t *kwds, mp_proxy_t **out);

/*
 * mp_manager_number_of_objects: the server function number_of_objects:
 * how many objects the server holds. Returns 0 and the count, or the
 * errors of mp_manager_create. Threads: safe. Fork: usable.
 */
MP_API int mp_manager_number_of_objects(mp_manager_t *m, size_t *out);

/*
 * mp_manager_shutdown: stop the server. For a started manager: ask the
 * server to shut down, wait for it (killing it after 5 s), reap it and
 * remove its socket. For a connected one: call the server function
 * "shutdown" (CPython's server then exits). Afterwards every call on the
 * manager and its proxies returns MP_ECLOSED; the manager still has to
 * be freed. Returns 0, MP_ECLOSED (already shut down), or the errors of
 * the "shutdown" call (a started server is stopped anyway).
 * Threads: safe. Fork: a child cannot stop its parent's started server
 * (-ECHILD).
 */
MP_API int mp_manager_shutdown(mp_manager_t *m);

/*
 * mp_manager_free: close the manager's connections, shut a started
 * server down (as mp_manager_shutdown) and release the manager. Proxies
 * still alive stay valid as memory but their calls return MP_ECLOSED,
 * and freeing them sends nothing. NULL does nothing. This function cannot
 * fail.
 * Threads: must not race with other calls on m. Fork: in a child, only
 * the child's copies are closed and released.
 */
MP_API void mp_manager_free(mp_manager_t *m);

/* ---- Proxies ------------------------------------------------------------- */

/*
 * mp_proxy_call: call method on the object with the positional args (a
 * tuple) and keyword args (a dict with str keys), borrowed, NULL for ()
 * and {}; exactly what a CPython proxy sends for
 * proxy.method(*args, **kwds). Waits at most timeout_ms for the reply
 * (MP_FOREVER: as long as the server lives). Returns:
 *   0              *result holds the returned value (new reference);
 *   MP_EREMOTEERR  the method raised: *result holds the exception, an
 *                  instance (mp_instance_name gives "KeyError", "Empty",
 *                  "Full", "BrokenBarrierError" ...; mp_instance_args its
 *                  arguments); a server-side failure that is no exception
 *                  of the method ('#TRACEBACK', '#UNSERIALIZABLE') gives
 *                  an instance of class "RemoteError" holding the text.
 *                  This is the one error after which *result is set;
 *   MP_ETYPE       the method returned a proxy: use mp_proxy_call_proxy
 *                  (the server's reference is released);
 *   -ETIMEDOUT     no reply within timeout_ms. The request stays sent
 *                  and may still take effect: the thread's connection is
 *                  closed so a late reply cannot be taken for another's;
 *   MP_ECLOSED     the manager was shut down or freed;
 *   -EINVAL        args not a tuple or kwds not a dict;
 *   MP_EOF, MP_ETRUNCATED, -ECONNRESET, -EPIPE  the server went away
 *                  (the connection is dropped; the next call reconnects);
 *   -ECONNREFUSED, -ENOENT  no server to reconnect to;
 *   -EPROTO, MP_EPICKLE, MP_EFORBIDDEN  a reply that is not a valid
 *                  manager reply (the connection is dropped);
 *   -ENOMEM.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_proxy_call(mp_proxy_t *p, const char *method,
    const mp_obj_t *args, const mp_obj_t *kwds, int64_t timeout_ms,
    mp_obj_t **result);

/*
 * mp_proxy_call_proxy: mp_proxy_call for a method whose result is a new
 * shared object (CPython's method_to_typeid: a dict's __iter__ gives an
 * Iterator). Returns 0 and a new proxy in *out (it adopts the reference
 * the server took; the address in the server's Token is ignored), MP_ETYPE
 * when the method returned a plain value, or the errors of mp_proxy_call
 * (MP_EREMOTEERR then leaves no exception: call mp_proxy_call to see it).
 */
MP_API int mp_proxy_call_proxy(mp_proxy_t *p, const char *method,
    const mp_obj_t *args, const mp_obj_t *kwds, int64_t timeout_ms,
    mp_proxy_t **out);

/*
 * mp_proxy_free: release the proxy and its reference on the server (the
 * server function decref, on a connection of its own, bounded by the
 * manager's timeout; its failure is ignored, as CPython's finalizers do).
 * Nothing is sent when the manager is closed or in a child process. NULL
 * does nothing. This function cannot fail.
 * Threads: must not race with calls on p. Fork: see mp_proxy_t.
 */
MP_API void mp_proxy_free(mp_proxy_t *p);

/* The object's id on the server and its typeid ("list", "get_queue"). */
MP_API const char *mp_proxy_id(const mp_proxy_t *p);
MP_API const char *mp_proxy_typeid(const mp_proxy_t *p);

/*
 * mp_proxy_repr: str(proxy) in CPython: repr of the referent, computed by
 * the server ("[0, 1]", "<Queue object>"), in a string released with
 * mp_free. Returns 0 or the errors of mp_proxy_call.
 */
MP_API int mp_proxy_repr(mp_proxy_t *p, char **out);

/*
 * mp_proxy_getvalue: proxy._getvalue(): a copy of the referent (a list,
 * a dict, ...). Returns 0 and a new reference, or the errors of
 * mp_proxy_call (MP_EREMOTEERR for referents that cannot be copied, such
 * as a Lock).
 */
MP_API int mp_proxy_getvalue(mp_proxy_t *p, mp_obj_t **out);

/*
 * Typed wrappers. Items and values are borrowed; results are new
 * references. Calls that block on the server take timeout_ms (MP_NOWAIT,
 * MP_FOREVER or milliseconds), which the server applies; the others use
 * the manager's timeout. Besides the codes listed, each returns the
 * errors of mp_proxy_call, and MP_EREMOTEERR for other exceptions.
 */

/*
 * Queue (a SyncManager Queue, or a BaseManager's registered queue, of
 * queue.Queue or multiprocessing.Queue). put: -EAGAIN (MP_NOWAIT) or
 * -ETIMEDOUT when the queue stays full. get: -EAGAIN (MP_NOWAIT) or
 * -ETIMEDOUT when it stays empty. qsize cannot tell more than Python.
 */
MP_API int mp_proxy_queue_put(mp_proxy_t *q, const mp_obj_t *item,
    int64_t timeout_ms);
MP_API int mp_proxy_queue_get(mp_proxy_t *q, int64_t timeout_ms,
    mp_obj_t **item);
MP_API int mp_proxy_queue_qsize(mp_proxy_t *q, size_t *out);

/* list: append; getitem (negative i counts from the end; -EINVAL out of
 * range, Python's IndexError); len. */
MP_API int mp_proxy_list_append(mp_proxy_t *l, const mp_obj_t *item);
MP_API int mp_proxy_list_get(mp_proxy_t *l, ssize_t i, mp_obj_t **out);
MP_API int mp_proxy_list_len(mp_proxy_t *l, size_t *out);

/* dict: d[key] = value; d[key] (-ENOENT: KeyError); len(d). */
MP_API int mp_proxy_dict_set(mp_proxy_t *d, const mp_obj_t *key,
    const mp_obj_t *value);
MP_API int mp_proxy_dict_get(mp_proxy_t *d, const mp_obj_t *key,
    mp_obj_t **out);
MP_API int mp_proxy_dict_len(mp_proxy_t *d, size_t *out);

/* Value: v.value and v.value = x. */
MP_API int mp_proxy_value_get(mp_proxy_t *v, mp_obj_t **out);
MP_API int mp_proxy_value_set(mp_proxy_t *v, const mp_obj_t *value);

/* Namespace: ns.name (-ENOENT: AttributeError) and ns.name = value;
 * -EINVAL when name is not valid UTF-8. */
MP_API int mp_proxy_ns_get(mp_proxy_t *ns, const char *name, mp_obj_t **out);
MP_API int mp_proxy_ns_set(mp_proxy_t *ns, const char *name,
    const mp_obj_t *value);

/*
 * Lock, RLock, Semaphore, BoundedSemaphore, Condition: acquire returns
 * -EAGAIN (MP_NOWAIT) or -ETIMEDOUT when the lock stays taken; release
 * returns -EPERM when the lock is not held (RuntimeError; ValueError for
 * a BoundedSemaphore released too often).
 */
MP_API int mp_proxy_lock_acquire(mp_proxy_t *l, int64_t timeout_ms);
MP_API int mp_proxy_lock_release(mp_proxy_t *l);

/* Event: set, clear, is_set (*out), and wait (-ETIMEDOUT / -EAGAIN when
 * it stays clear). */
MP_API int mp_proxy_event_set(mp_proxy_t *e);
MP_API int mp_proxy_event_clear(mp_proxy_t *e);
MP_API int mp_proxy_event_is_set(mp_proxy_t *e, bool *out);
MP_API int mp_proxy_event_wait(mp_proxy_t *e, int64_t timeout_ms);

/*
 * Barrier: wait for the parties; *index (may be NULL) gets Python's
 * return value. MP_EBROKEN when the barrier is or becomes broken, which a
 * timeout also causes (threading.BrokenBarrierError).
 */
MP_API int mp_proxy_barrier_wait(mp_proxy_t *b, int64_t timeout_ms,
    int64_t *index);

#ifdef __cplusplus
}
#endif
#endif
