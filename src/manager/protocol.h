/* SPDX-License-Identifier: MIT */
/* manager/protocol.h: CPython's manager messages, Token, exceptions and the decoder whitelist (internal). */
#ifndef MP_MANAGER_PROTOCOL_H
#define MP_MANAGER_PROTOCOL_H

#include <mproc/obj.h>

#include "core/buf.h"
#include "core/internal.h"

/*
 * Both ends of the manager (the server in server*.c and the client's
 * proxies) speak CPython's multiprocessing.managers protocol through this
 * module, so the shapes live in one place:
 *
 *   request  (ident, methodname, args, kwds)   ident None for server
 *                                              functions, else the
 *                                              object's id (a str)
 *   reply    (kind, result)                    kind one of the
 *                                              enum mp__mgr_kind strings
 *
 * Every message is one pickle (protocol 4) in one multiprocessing frame.
 * Decoding goes through mp__mgr_decode, which allows only the globals of
 * mp__mgr_globals (the Token, the exceptions a reply carries and the
 * data helpers CPython's proxies emit), never anything that runs code.
 *
 * Threads: every function is safe (no shared state; the whitelist is
 * constant). Fork: usable.
 */

/* The reply kinds, in CPython's spelling ("#RETURN", ...). */
enum mp__mgr_kind {
	MP__MGR_RETURN,
	MP__MGR_ERROR,
	MP__MGR_TRACEBACK,
	MP__MGR_PROXY,
	MP__MGR_UNSERIALIZABLE,
};

/* "#RETURN" ... for a kind. This function cannot fail. */
const char *mp__mgr_kind_name(enum mp__mgr_kind kind);

/*
 * The exception classes that travel in '#ERROR' replies, with the module
 * and name CPython's pickler writes for them (queue.Empty travels as
 * _queue.Empty, the C accelerator's name for the same class).
 */
enum mp__mgr_exc {
	MP__EXC_KEY,          /* builtins.KeyError */
	MP__EXC_INDEX,        /* builtins.IndexError */
	MP__EXC_VALUE,        /* builtins.ValueError */
	MP__EXC_TYPE,         /* builtins.TypeError */
	MP__EXC_ATTRIBUTE,    /* builtins.AttributeError */
	MP__EXC_RUNTIME,      /* builtins.RuntimeError */
	MP__EXC_STOP,         /* builtins.StopIteration */
	MP__EXC_ASSERTION,    /* builtins.AssertionError */
	MP__EXC_OS,           /* builtins.OSError */
	MP__EXC_OVERFLOW,     /* builtins.OverflowError */
	MP__EXC_NOTIMPL,      /* builtins.NotImplementedError */
	MP__EXC_EXCEPTION,    /* builtins.Exception */
	MP__EXC_EMPTY,        /* _queue.Empty (queue.Empty) */
	MP__EXC_FULL,         /* queue.Full */
	MP__EXC_SHUTDOWN,     /* queue.ShutDown (CPython 3.13+ only) */
	MP__EXC_BROKEN_BARRIER, /* threading.BrokenBarrierError */
	MP__EXC_COUNT,
};

/* Module and class name of an exception kind. This function cannot fail. */
void mp__mgr_exc_names(enum mp__mgr_exc which, const char **module,
    const char **name);

/*
 * mp__mgr_exc: an exception instance of class which with args (a tuple,
 * stolen; NULL means ()), pickled as CPython pickles it (STACK_GLOBAL,
 * args, REDUCE, no state: every version loads that). NULL when memory
 * runs out. A caller that builds args checks it first: NULL is ().
 */
mp_obj_t *mp__mgr_exc(enum mp__mgr_exc which, mp_obj_t *args);

/*
 * mp__mgr_exc_msg: the same with one str argument formatted printf-style,
 * as CPython's exceptions carry their message (args == (message,)).
 */
mp_obj_t *mp__mgr_exc_msg(enum mp__mgr_exc which, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * mp__mgr_exc_which: the kind of an exception instance received in an
 * '#ERROR' reply (either spelling of queue.Empty), or -1 when o is not
 * one of the known classes. This function cannot fail.
 */
int mp__mgr_exc_which(const mp_obj_t *o);

/* ---- Requests and replies ------------------------------------------------ */

/*
 * mp__mgr_request: the tuple (ident, method, args, kwds). ident NULL gives
 * None (a server function); args and kwds are stolen, NULL gives () and {}.
 * NULL when memory runs out or args is not a tuple or kwds not a dict.
 */
mp_obj_t *mp__mgr_request(const char *ident, const char *method,
    mp_obj_t *args, mp_obj_t *kwds);

/* A parsed request; every pointer borrows from the message. */
struct mp__mgr_req {
	const char *ident;     /* NULL for None (server functions) */
	size_t ident_len;
	const char *method;
	size_t method_len;
	mp_obj_t *args;        /* a tuple */
	mp_obj_t *kwds;        /* a dict whose keys are all str */
};

/*
 * mp__mgr_request_parse: check that msg is a 4-tuple (None or str, str,
 * tuple, dict of str keys) and point r at its parts. Returns 0 or
 * -EPROTO (anything else). This function does not allocate.
 */
int mp__mgr_request_parse(const mp_obj_t *msg, struct mp__mgr_req *r);

/*
 * mp__mgr_reply: the tuple (kind, result); result is stolen (NULL when
 * its constructor failed makes this return NULL). NULL on no memory.
 */
mp_obj_t *mp__mgr_reply(enum mp__mgr_kind kind, mp_obj_t *result);

/*
 * mp__mgr_reply_parse: the kind and result (borrowed) of a reply. Returns
 * 0 or -EPROTO (not a 2-tuple starting with a known kind).
 */
int mp__mgr_reply_parse(const mp_obj_t *msg, enum mp__mgr_kind *kind,
    mp_obj_t **result);

/* ---- Token --------------------------------------------------------------- */

/*
 * mp__mgr_address: a manager address as CPython's Token carries it: the
 * tuple (host, port) for "host:port" and "[v6]:port", the path str for
 * "/path" or "unix:path". NULL for an address that does not parse or no
 * memory.
 */
mp_obj_t *mp__mgr_address(const char *address);

/*
 * mp__mgr_token: multiprocessing.managers.Token(typeid, address, id),
 * pickled as CPython does: STACK_GLOBAL, (), NEWOBJ, then BUILD with the
 * state tuple (typeid, address, id). address (from mp__mgr_address) is
 * stolen. NULL on no memory.
 */
mp_obj_t *mp__mgr_token(const char *typeid, mp_obj_t *address,
    const char *id);

/*
 * mp__mgr_token_parse: the fields of a decoded Token: *typeid and *id
 * borrow the str data, *address (may be NULL) the address object. Accepts
 * the NEWOBJ + BUILD form and the REDUCE form (Token(typeid, address,
 * id)). Returns 0 or -EPROTO (not a Token, or fields of the wrong types).
 */
int mp__mgr_token_parse(const mp_obj_t *o, const char **typeid,
    mp_obj_t **address, const char **id);

/* ---- Pickles in frames --------------------------------------------------- */

/* The decoder whitelist both sides use (see protocol.c for each entry). */
extern const struct mp_pickle_global mp__mgr_globals[];
extern const size_t mp__mgr_n_globals;

/*
 * mp__mgr_encode: append one framed message (the multiprocessing length
 * header, then the protocol-4 pickle of msg) to b. On failure b keeps its
 * old length. Returns 0, -ENOMEM, -EINVAL (msg cannot be pickled).
 */
int mp__mgr_encode(struct mp__buf *b, const mp_obj_t *msg);

/*
 * mp__mgr_decode: unpickle one message payload with the manager
 * whitelist; max_len bounds one str, bytes or int body (0: the pickle
 * default). errbuf (may be NULL) receives the decoder's reason. Returns 0
 * and a new reference, or the errors of mp_pickle_loads.
 */
int mp__mgr_decode(const void *data, size_t len, size_t max_len,
    mp_obj_t **out, char *errbuf, size_t errbuf_len);

/*
 * mp__mgr_str_eq: whether the str o equals the NUL-terminated s. This
 * function cannot fail.
 */
bool mp__mgr_str_eq(const mp_obj_t *o, const char *s);

#endif
