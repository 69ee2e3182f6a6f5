/* SPDX-License-Identifier: MIT */
/* manager/protocol.c: requests, replies, Token and exceptions in CPython's manager shapes. */
#include "manager/protocol.h"

#include "conn/addr.h"
#include "obj/pickle_internal.h"

#include <stdarg.h>
#include <string.h>

static const char *const kind_names[] = {
	[MP__MGR_RETURN] = "#RETURN",
	[MP__MGR_ERROR] = "#ERROR",
	[MP__MGR_TRACEBACK] = "#TRACEBACK",
	[MP__MGR_PROXY] = "#PROXY",
	[MP__MGR_UNSERIALIZABLE] = "#UNSERIALIZABLE",
};

const char *
mp__mgr_kind_name(enum mp__mgr_kind kind)
{
	MP_ASSERT((size_t)kind < MP__ARRAY_LEN(kind_names));
	return kind_names[kind];
}

static const struct {
	const char *module;
	const char *name;
} exc_names[MP__EXC_COUNT] = {
	[MP__EXC_KEY] = { "builtins", "KeyError" },
	[MP__EXC_INDEX] = { "builtins", "IndexError" },
	[MP__EXC_VALUE] = { "builtins", "ValueError" },
	[MP__EXC_TYPE] = { "builtins", "TypeError" },
	[MP__EXC_ATTRIBUTE] = { "builtins", "AttributeError" },
	[MP__EXC_RUNTIME] = { "builtins", "RuntimeError" },
	[MP__EXC_STOP] = { "builtins", "StopIteration" },
	[MP__EXC_ASSERTION] = { "builtins", "AssertionError" },
	[MP__EXC_OS] = { "builtins", "OSError" },
	[MP__EXC_OVERFLOW] = { "builtins", "OverflowError" },
	[MP__EXC_NOTIMPL] = { "builtins", "NotImplementedError" },
	[MP__EXC_EXCEPTION] = { "builtins", "Exception" },
	/* What CPython's pickler writes: the class's __module__ is _queue. */
	[MP__EXC_EMPTY] = { "_queue", "Empty" },
	[MP__EXC_FULL] = { "queue", "Full" },
	[MP__EXC_SHUTDOWN] = { "queue", "ShutDown" },
	[MP__EXC_BROKEN_BARRIER] = { "threading", "BrokenBarrierError" },
};

void
mp__mgr_exc_names(enum mp__mgr_exc which, const char **module,
    const char **name)
{
	MP_ASSERT((unsigned)which < MP__EXC_COUNT);
	*module = exc_names[which].module;
	*name = exc_names[which].name;
}

mp_obj_t *
mp__mgr_exc(enum mp__mgr_exc which, mp_obj_t *args)
{
	MP_ASSERT((unsigned)which < MP__EXC_COUNT);
	if (args == NULL) {
		args = mp_tuple_of(0);
		if (args == NULL) {
			return NULL;
		}
	}
	return mp_instance_new(exc_names[which].module, exc_names[which].name,
	    args, NULL, false);
}

mp_obj_t *
mp__mgr_exc_msg(enum mp__mgr_exc which, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		return NULL;
	}
	mp_obj_t *msg;
	if ((size_t)n < sizeof(small)) {
		msg = mp_str(small);
	} else {
		/* Rare (a long key in the message): format again in full. */
		char *big = mp__malloc((size_t)n + 1);
		if (big == NULL) {
			return NULL;
		}
		va_start(ap, fmt);
		vsnprintf(big, (size_t)n + 1, fmt, ap);
		va_end(ap);
		msg = mp_str(big);
		mp__free(big);
	}
	/* A NULL args would mean (): an exception without its message. */
	mp_obj_t *args = mp_tuple_of(1, msg);
	return args == NULL ? NULL : mp__mgr_exc(which, args);
}

int
mp__mgr_exc_which(const mp_obj_t *o)
{
	const char *mod = mp_instance_module(o);
	const char *name = mp_instance_name(o);
	if (mod == NULL) {
		return -1;
	}
	if (strcmp(mod, "queue") == 0 && strcmp(name, "Empty") == 0) {
		return MP__EXC_EMPTY;
	}
	for (int i = 0; i < MP__EXC_COUNT; i++) {
		if (strcmp(mod, exc_names[i].module) == 0 &&
		    strcmp(name, exc_names[i].name) == 0) {
			return i;
		}
	}
	return -1;
}

bool
mp__mgr_str_eq(const mp_obj_t *o, const char *s)
{
	if (o == NULL || mp_obj_type(o) != MP_TYPE_STR) {
		return false;
	}
	size_t len;
	const char *d = mp_str_data(o, &len);
	return len == strlen(s) && memcmp(d, s, len) == 0;
}

/* ---- Requests and replies ------------------------------------------------ */

mp_obj_t *
mp__mgr_request(const char *ident, const char *method, mp_obj_t *args,
    mp_obj_t *kwds)
{
	if (args == NULL) {
		args = mp_tuple_of(0);
	}
	if (kwds == NULL) {
		kwds = mp_dict_new();
	}
	if (args == NULL || kwds == NULL ||
	    mp_obj_type(args) != MP_TYPE_TUPLE ||
	    mp_obj_type(kwds) != MP_TYPE_DICT) {
		mp_obj_unref(args);
		mp_obj_unref(kwds);
		return NULL;
	}
	return mp_tuple_of(4, ident == NULL ? mp_none() : mp_str(ident),
	    mp_str(method), args, kwds);
}

int
mp__mgr_request_parse(const mp_obj_t *msg, struct mp__mgr_req *r)
{
	if (msg == NULL || mp_obj_type(msg) != MP_TYPE_TUPLE ||
	    mp_obj_len(msg) != 4) {
		return -EPROTO;
	}
	mp_obj_t *ident = mp_tuple_get(msg, 0);
	mp_obj_t *method = mp_tuple_get(msg, 1);
	mp_obj_t *args = mp_tuple_get(msg, 2);
	mp_obj_t *kwds = mp_tuple_get(msg, 3);
	enum mp_type it = mp_obj_type(ident);
	if ((it != MP_TYPE_NONE && it != MP_TYPE_STR) ||
	    mp_obj_type(method) != MP_TYPE_STR ||
	    mp_obj_type(args) != MP_TYPE_TUPLE ||
	    mp_obj_type(kwds) != MP_TYPE_DICT) {
		return -EPROTO;
	}
	size_t pos = 0;
	mp_obj_t *k;
	mp_obj_t *v;
	while (mp_dict_next(kwds, &pos, &k, &v)) {
		if (mp_obj_type(k) != MP_TYPE_STR) {
			return -EPROTO;
		}
	}
	r->ident = NULL;
	r->ident_len = 0;
	if (it == MP_TYPE_STR) {
		r->ident = mp_str_data(ident, &r->ident_len);
	}
	r->method = mp_str_data(method, &r->method_len);
	r->args = args;
	r->kwds = kwds;
	return 0;
}

mp_obj_t *
mp__mgr_reply(enum mp__mgr_kind kind, mp_obj_t *result)
{
	if (result == NULL) {
		return NULL;
	}
	return mp_tuple_of(2, mp_str(mp__mgr_kind_name(kind)), result);
}

int
mp__mgr_reply_parse(const mp_obj_t *msg, enum mp__mgr_kind *kind,
    mp_obj_t **result)
{
	if (msg == NULL || mp_obj_type(msg) != MP_TYPE_TUPLE ||
	    mp_obj_len(msg) != 2) {
		return -EPROTO;
	}
	mp_obj_t *k = mp_tuple_get(msg, 0);
	for (size_t i = 0; i < MP__ARRAY_LEN(kind_names); i++) {
		if (mp__mgr_str_eq(k, kind_names[i])) {
			*kind = (enum mp__mgr_kind)i;
			*result = mp_tuple_get(msg, 1);
			return 0;
		}
	}
	return -EPROTO;
}

/* ---- Token --------------------------------------------------------------- */

mp_obj_t *
mp__mgr_address(const char *address)
{
	struct mp__addr a;
	if (mp__conn_parse_address(address, &a) != 0) {
		return NULL;
	}
	if (a.is_unix) {
		return mp_str(a.sun.sun_path);
	}
	return mp_tuple_of(2, mp_str(a.host), mp_int(atoi(a.port)));
}

mp_obj_t *
mp__mgr_token(const char *typeid, mp_obj_t *address, const char *id)
{
	mp_obj_t *state = mp_tuple_of(3, mp_str(typeid), address, mp_str(id));
	if (state == NULL) {
		return NULL;
	}
	return mp_instance_new("multiprocessing.managers", "Token",
	    mp_tuple_of(0), state, true);
}

static bool
address_ok(const mp_obj_t *a)
{
	if (mp_obj_type(a) == MP_TYPE_STR || mp_obj_type(a) == MP_TYPE_NONE) {
		return true;
	}
	return mp_obj_type(a) == MP_TYPE_TUPLE && mp_obj_len(a) == 2 &&
	    mp_obj_type(mp_tuple_get(a, 0)) == MP_TYPE_STR &&
	    mp_obj_type(mp_tuple_get(a, 1)) == MP_TYPE_INT;
}

int
mp__mgr_token_parse(const mp_obj_t *o, const char **typeid,
    mp_obj_t **address, const char **id)
{
	const char *mod = mp_instance_module(o);
	if (mod == NULL || strcmp(mod, "multiprocessing.managers") != 0 ||
	    strcmp(mp_instance_name(o), "Token") != 0) {
		return -EPROTO;
	}
	/* NEWOBJ + BUILD carries the fields as state, REDUCE as args. */
	mp_obj_t *f = mp_instance_state(o);
	if (f == NULL) {
		f = mp_instance_args(o);
	}
	if (mp_obj_type(f) != MP_TYPE_TUPLE || mp_obj_len(f) != 3 ||
	    mp_obj_type(mp_tuple_get(f, 0)) != MP_TYPE_STR ||
	    mp_obj_type(mp_tuple_get(f, 2)) != MP_TYPE_STR ||
	    !address_ok(mp_tuple_get(f, 1))) {
		return -EPROTO;
	}
	*typeid = mp_str_data(mp_tuple_get(f, 0), NULL);
	*address = mp_tuple_get(f, 1);
	*id = mp_str_data(mp_tuple_get(f, 2), NULL);
	return 0;
}

/* ---- The decoder whitelist ----------------------------------------------- */

/* builtins.list(x): dict views arrive as list REDUCE of a list. */
static int
reduce_list(const mp_obj_t *args, mp_obj_t **out, void *user)
{
	(void)user;
	mp_obj_t *x = mp_tuple_get(args, 0);
	if (mp_obj_len(args) != 1 || mp_obj_type(x) != MP_TYPE_LIST) {
		return MP_EPICKLE;
	}
	*out = mp_obj_ref(x);
	return 0;
}

/* builtins.slice(start, stop, step): three ints or Nones. */
static int
reduce_slice(const mp_obj_t *args, mp_obj_t **out, void *user)
{
	(void)user;
	if (mp_obj_len(args) != 3) {
		return MP_EPICKLE;
	}
	for (size_t i = 0; i < 3; i++) {
		enum mp_type t = mp_obj_type(mp_tuple_get(args, (ssize_t)i));
		if (t != MP_TYPE_NONE && t != MP_TYPE_INT &&
		    t != MP_TYPE_BOOL) {
			return MP_EPICKLE;
		}
	}
	*out = mp_instance_new("builtins", "slice",
	    mp_obj_ref((mp_obj_t *)args), NULL, false);
	return *out == NULL ? -ENOMEM : 0;
}

/* A class rebuilt from one primitive (bytes, str, (typecode, bytes), ...). */
static bool
primitive(const mp_obj_t *o)
{
	switch (mp_obj_type(o)) {
	case MP_TYPE_TUPLE:
	case MP_TYPE_LIST:
	case MP_TYPE_DICT:
	case MP_TYPE_SET:
	case MP_TYPE_FROZENSET:
	case MP_TYPE_INSTANCE:
		return false;
	default:
		return true;
	}
}

static int
reduce_primitives(const mp_obj_t *args, mp_obj_t **out, void *user)
{
	const char *const *name = user;
	for (size_t i = 0; i < mp_obj_len(args); i++) {
		if (!primitive(mp_tuple_get(args, (ssize_t)i))) {
			return MP_EPICKLE;
		}
	}
	*out = mp_instance_new(name[0], name[1], mp_obj_ref((mp_obj_t *)args),
	    NULL, false);
	return *out == NULL ? -ENOMEM : 0;
}

static const char *const n_bytearray[] = { "builtins", "bytearray" };
static const char *const n_complex[] = { "builtins", "complex" };
static const char *const n_array[] = { "array", "array" };

/*
 * The rules of the research notes (§6): the Token (NEWOBJ + BUILD, its
 * fields checked by mp__mgr_token_parse), the exceptions an '#ERROR'
 * carries (instances of data only, an optional dict state as 3.12+'s
 * AttributeError), and the data helpers CPython's proxies put on the
 * wire: list (dict views), slice (list and Array indexing), bytearray,
 * complex, array.array, reversed (a list's __reversed__), and the
 * #GETVALUE forms of a managed Value and Namespace. RebuildProxy, and
 * with it a proxy passed as an argument, is refused: it would make this
 * process connect to an address a peer chose.
 */
const struct mp_pickle_global mp__mgr_globals[] = {
	{ "multiprocessing.managers", "Token", NULL, NULL },
	{ "multiprocessing.managers", "Value", NULL, NULL },
	{ "multiprocessing.managers", "Namespace", NULL, NULL },
	{ "builtins", "KeyError", NULL, NULL },
	{ "builtins", "IndexError", NULL, NULL },
	{ "builtins", "ValueError", NULL, NULL },
	{ "builtins", "TypeError", NULL, NULL },
	{ "builtins", "AttributeError", NULL, NULL },
	{ "builtins", "RuntimeError", NULL, NULL },
	{ "builtins", "StopIteration", NULL, NULL },
	{ "builtins", "AssertionError", NULL, NULL },
	{ "builtins", "OSError", NULL, NULL },
	{ "builtins", "OverflowError", NULL, NULL },
	{ "builtins", "NotImplementedError", NULL, NULL },
	{ "builtins", "Exception", NULL, NULL },
	{ "_queue", "Empty", NULL, NULL },
	{ "queue", "Empty", NULL, NULL },
	{ "queue", "Full", NULL, NULL },
	{ "queue", "ShutDown", NULL, NULL },
	{ "threading", "BrokenBarrierError", NULL, NULL },
	{ "builtins", "list", reduce_list, NULL },
	{ "builtins", "slice", reduce_slice, NULL },
	{ "builtins", "bytearray", reduce_primitives, (void *)n_bytearray },
	{ "builtins", "complex", reduce_primitives, (void *)n_complex },
	{ "array", "array", reduce_primitives, (void *)n_array },
	{ "builtins", "reversed", NULL, NULL },
};

const size_t mp__mgr_n_globals = MP__ARRAY_LEN(mp__mgr_globals);

/* ---- Pickles in frames --------------------------------------------------- */

int
mp__mgr_encode(struct mp__buf *b, const mp_obj_t *msg)
{
	size_t start = b->len;
	int rv = mp__buf_reserve(b, 4);
	if (rv != 0) {
		return rv;
	}
	b->len += 4;
	rv = mp__pickle_encode(b, msg);
	if (rv != 0) {
		b->len = start;
		return rv;
	}
	size_t n = b->len - start - 4;
	uint8_t *h = b->data + start;
	if (n <= 0x7FFFFFFF) {
		h[0] = (uint8_t)(n >> 24);
		h[1] = (uint8_t)(n >> 16);
		h[2] = (uint8_t)(n >> 8);
		h[3] = (uint8_t)n;
		return 0;
	}
	/* Above 2 GiB: -1, then a u64 length (CPython 3.8+ reads it). */
	rv = mp__buf_reserve(b, 8);
	if (rv != 0) {
		b->len = start;
		return rv;
	}
	h = b->data + start;
	memmove(h + 12, h + 4, n);
	b->len += 8;
	memset(h, 0xFF, 4);
	for (int i = 0; i < 8; i++) {
		h[4 + i] = (uint8_t)(n >> (56 - 8 * i));
	}
	return 0;
}

int
mp__mgr_decode(const void *data, size_t len, size_t max_len, mp_obj_t **out,
    char *errbuf, size_t errbuf_len)
{
	struct mp_pickle_opts o = {
		.max_len = max_len,
		.globals = mp__mgr_globals,
		.n_globals = mp__mgr_n_globals,
		.errbuf = errbuf,
		.errbuf_len = errbuf_len,
	};
	return mp_pickle_loads(data, len, &o, out);
}
