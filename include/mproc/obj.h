/* SPDX-License-Identifier: MIT */
/* mproc/obj.h: mp_obj_t, the values that travel (Python's data types), and the pickle codec. */
#ifndef MPROC_OBJ_H
#define MPROC_OBJ_H

#include <mproc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * mp_obj_t is a reference-counted value with Python semantics: None, bool,
 * int (any length: 64-bit fast path, larger values kept exact), float, str
 * (valid UTF-8), bytes, tuple, list, dict (insertion-ordered), set,
 * frozenset, and "instance": an object of a class the pickle decoder was
 * allowed to rebuild (an exception, a manager Token, ...), kept as its
 * class name, constructor arguments and state.
 *
 * OWNERSHIP. The rule is the one of CPython's C API:
 *  - Every function that returns an mp_obj_t * (constructors, mp_obj_ref,
 *    mp_pickle_loads, mp_list_pop, ...) gives the caller a NEW reference,
 *    which the caller releases with mp_obj_unref().
 *  - Accessors that look inside a container (mp_tuple_get, mp_list_get,
 *    mp_dict_get, ...) return a BORROWED reference, valid while the
 *    container holds the item. Take mp_obj_ref() to keep it longer.
 *  - Functions that put an item into a container (mp_list_append,
 *    mp_dict_set, mp_tuple_of, ...) STEAL the item's reference, on success
 *    and on failure alike, so nested constructors compose without leaks:
 *        mp_obj_t *v = mp_list_of(4, mp_str("Process-1"), mp_int(42),
 *            mp_none(), mp_str("hello"));
 *    A NULL item (a constructor that failed) makes the outer call fail and
 *    return NULL (or -ENOMEM), releasing the other items.
 *  - Constructors return NULL only when memory runs out or the input is
 *    invalid (mp_str with bad UTF-8); the _new forms return the reason.
 *
 * Containers may share items (the same object in two lists) but never
 * contain themselves: cycles are refused by the decoder and must not be
 * built by hand.
 *
 * Threads: reference counts are atomic, so an object may be shared between
 * threads and processes' threads; mutating a list, dict or set while another
 * thread reads it needs the caller's own lock. Fork: usable in the child
 * (each process then owns its own copy).
 */
typedef struct mp_obj mp_obj_t;

enum mp_type {
	MP_TYPE_NONE,
	MP_TYPE_BOOL,
	MP_TYPE_INT,
	MP_TYPE_FLOAT,
	MP_TYPE_STR,
	MP_TYPE_BYTES,
	MP_TYPE_TUPLE,
	MP_TYPE_LIST,
	MP_TYPE_DICT,
	MP_TYPE_SET,
	MP_TYPE_FROZENSET,
	MP_TYPE_INSTANCE,
};

/* Reference counting. mp_obj_ref returns o; both accept NULL. */
MP_API mp_obj_t *mp_obj_ref(mp_obj_t *o);
MP_API void mp_obj_unref(mp_obj_t *o);

/* Type of a value (o must not be NULL), and its Python type name ("int"). */
MP_API enum mp_type mp_obj_type(const mp_obj_t *o);
MP_API const char *mp_obj_type_name(const mp_obj_t *o);

/* ---- Scalars ------------------------------------------------------------ */

/* None, True and False are immortal singletons: ref and unref are no-ops. */
MP_API mp_obj_t *mp_none(void);
MP_API mp_obj_t *mp_bool(bool v);
MP_API mp_obj_t *mp_int(int64_t v);
MP_API mp_obj_t *mp_float(double v);

/*
 * mp_int_from_str: parse a decimal integer of any length ("-123", leading
 * '+' or '-', no spaces or underscores). Returns 0, -EINVAL for bad syntax,
 * -ENOMEM.
 */
MP_API int mp_int_from_str(const char *s, mp_obj_t **out);

/*
 * mp_int_from_bytes: an integer from n bytes of little-endian two's
 * complement (pickle's LONG1/LONG4 form; n == 0 is zero).
 * Returns 0 or -ENOMEM.
 */
MP_API int mp_int_from_bytes(const uint8_t *le, size_t n, mp_obj_t **out);

/*
 * mp_int_value: the value of an int (or bool) that fits in int64_t.
 * Returns 0, -ERANGE when it does not fit, MP_ETYPE for other types.
 */
MP_API int mp_int_value(const mp_obj_t *o, int64_t *out);

/*
 * mp_int_to_bytes: minimal little-endian two's complement form of any int,
 * as pickle writes it (0 gives 0 bytes). The buffer is released with
 * mp_free. Returns 0, -ENOMEM, MP_ETYPE.
 */
MP_API int mp_int_to_bytes(const mp_obj_t *o, uint8_t **out, size_t *len);

/* The value of a bool (false for anything that is not a bool). */
MP_API bool mp_bool_value(const mp_obj_t *o);
/* The value of a float, or of an int converted to double (NaN otherwise). */
MP_API double mp_float_value(const mp_obj_t *o);

/* ---- Strings and bytes -------------------------------------------------- */

/*
 * mp_str_new: a str from len bytes of UTF-8, which are validated (overlong
 * forms and surrogates are refused, as CPython's strict decoder does).
 * Returns 0, -EINVAL for invalid UTF-8, -ENOMEM.
 */
MP_API int mp_str_new(const char *s, size_t len, mp_obj_t **out);
/* A str from a NUL-terminated UTF-8 string; NULL if invalid or no memory. */
MP_API mp_obj_t *mp_str(const char *s);
/* The UTF-8 bytes of a str (NUL-terminated; *len excludes the NUL). */
MP_API const char *mp_str_data(const mp_obj_t *o, size_t *len);

/* Bytes (copied); NULL only when memory runs out. */
MP_API mp_obj_t *mp_bytes(const void *data, size_t len);
MP_API const uint8_t *mp_bytes_data(const mp_obj_t *o, size_t *len);

/* ---- Tuples and lists --------------------------------------------------- */

/* mp_tuple_of(n, items...) / mp_list_of(n, items...): steal the items. */
MP_API mp_obj_t *mp_tuple_of(size_t n, ...);
MP_API mp_obj_t *mp_list_of(size_t n, ...);
/* From an array of n items (stolen). */
MP_API mp_obj_t *mp_tuple_from(mp_obj_t **items, size_t n);
MP_API mp_obj_t *mp_list_from(mp_obj_t **items, size_t n);
MP_API mp_obj_t *mp_list_new(void);

/* Number of items of a tuple, list, dict, set or frozenset (0 otherwise). */
MP_API size_t mp_obj_len(const mp_obj_t *o);

/* Item i (negative i counts from the end, as Python); NULL when out of range. */
MP_API mp_obj_t *mp_tuple_get(const mp_obj_t *tuple, ssize_t i);
MP_API mp_obj_t *mp_list_get(const mp_obj_t *list, ssize_t i);

/* List mutation. They steal item. Return 0, -ENOMEM, -EINVAL (index out of
 * range for set), MP_ETYPE. */
MP_API int mp_list_append(mp_obj_t *list, mp_obj_t *item);
MP_API int mp_list_set(mp_obj_t *list, ssize_t i, mp_obj_t *item);
MP_API int mp_list_insert(mp_obj_t *list, ssize_t i, mp_obj_t *item);
/* Remove item i and hand its reference to *out. Returns 0, -EINVAL. */
MP_API int mp_list_pop(mp_obj_t *list, ssize_t i, mp_obj_t **out);

/* ---- Dicts and sets ----------------------------------------------------- */

MP_API mp_obj_t *mp_dict_new(void);
/*
 * mp_dict_set: d[key] = value, stealing both. Keys must be hashable (None,
 * bool, int, float, str, bytes, frozenset, tuples of hashables): others give
 * MP_ETYPE. 1, 1.0 and True are the same key, as in Python. Returns 0,
 * -ENOMEM, MP_ETYPE.
 */
MP_API int mp_dict_set(mp_obj_t *d, mp_obj_t *key, mp_obj_t *value);
/* Borrowed value for key, or NULL. */
MP_API mp_obj_t *mp_dict_get(const mp_obj_t *d, const mp_obj_t *key);
MP_API mp_obj_t *mp_dict_get_str(const mp_obj_t *d, const char *key);
/* Remove key. Returns 0, -ENOENT when absent. */
MP_API int mp_dict_del(mp_obj_t *d, const mp_obj_t *key);
/*
 * mp_dict_next: iterate in insertion order. Start with *pos = 0; each call
 * gives borrowed key and value and returns true, then false at the end.
 * The dict must not change during the iteration.
 */
MP_API bool mp_dict_next(const mp_obj_t *d, size_t *pos, mp_obj_t **key,
    mp_obj_t **value);

MP_API mp_obj_t *mp_set_new(void);
MP_API mp_obj_t *mp_frozenset_new(void);
/* Add item (stolen) to a set or a frozenset being built. 0, -ENOMEM, MP_ETYPE. */
MP_API int mp_set_add(mp_obj_t *set, mp_obj_t *item);
MP_API bool mp_set_contains(const mp_obj_t *set, const mp_obj_t *item);
/* Iterate a set or frozenset like mp_dict_next. */
MP_API bool mp_set_next(const mp_obj_t *set, size_t *pos, mp_obj_t **item);

/* ---- Instances ---------------------------------------------------------- */

/*
 * mp_instance_new: an object of class module.name (for example
 * "builtins"."KeyError" or "multiprocessing.managers"."Token") built by
 * calling the class with args (a tuple, stolen) and then given state
 * (stolen, may be NULL) as pickle's BUILD does. The encoder writes it as
 * STACK_GLOBAL, args, REDUCE (NEWOBJ when new_style), then BUILD when state
 * is not NULL. NULL when memory runs out or args is not a tuple.
 */
MP_API mp_obj_t *mp_instance_new(const char *module, const char *name,
    mp_obj_t *args, mp_obj_t *state, bool new_style);
MP_API const char *mp_instance_module(const mp_obj_t *o);
MP_API const char *mp_instance_name(const mp_obj_t *o);
/* Borrowed; args is always a tuple, state may be NULL. */
MP_API mp_obj_t *mp_instance_args(const mp_obj_t *o);
MP_API mp_obj_t *mp_instance_state(const mp_obj_t *o);

/* ---- Comparison and text ------------------------------------------------ */

/*
 * mp_obj_equal: Python's ==, deep: 1 == 1.0 == True, NaN != NaN, a list is
 * never equal to a tuple, set == frozenset with the same items, dicts
 * compare regardless of order. This function cannot fail. A container
 * held many times over is compared once per pair: two equal nests
 * t = (t, t), 60 deep, built apart, compare in 60 steps, not 2^60.
 */
MP_API bool mp_obj_equal(const mp_obj_t *a, const mp_obj_t *b);

/*
 * mp_obj_hash: a hash consistent with mp_obj_equal (equal values hash
 * equal). Returns 0, MP_ETYPE for unhashable values (list, dict, set).
 */
MP_API int mp_obj_hash(const mp_obj_t *o, uint64_t *out);

/*
 * mp_obj_repr: the text CPython's repr() gives for the same value, such as
 * "['Process-1', 42, None, 'hello']", "{'a': (1,)}", "b'\x00'", "-0.0",
 * "inf", "\"it's\"". mp_obj_str: what str() gives (the text itself for a
 * str, the message for an exception of module builtins, as
 * BaseException.__str__ builds it, repr otherwise), which is what print()
 * shows. The NUL-terminated string is released with mp_free. Return 0 or
 * -ENOMEM (also when the text would pass 16 MiB, as a value that holds one
 * container many times over, nested, would print: 2^depth copies).
 */
MP_API int mp_obj_repr(const mp_obj_t *o, char **out);
MP_API int mp_obj_str(const mp_obj_t *o, char **out);

/* ---- Pickle codec ------------------------------------------------------- */

/*
 * A global the decoder may resolve (STACK_GLOBAL / GLOBAL). Globals not in
 * the table are refused with MP_EFORBIDDEN. When reduce is NULL, a REDUCE,
 * NEWOBJ or BUILD on the global builds an MP_TYPE_INSTANCE. When reduce is
 * set it is called with the args tuple (borrowed) and returns the object to
 * use instead (new reference), or a negative error that aborts the decode
 * (for example builtins.list turns its argument into a list; builtins.slice
 * checks its three items).
 */
struct mp_pickle_global {
	const char *module;
	const char *name;
	int (*reduce)(const mp_obj_t *args, mp_obj_t **out, void *user);
	void *user;
};

/*
 * Limits and whitelist for mp_pickle_loads. A zero field takes the default
 * (shown). Exceeding a limit fails with MP_ELIMIT.
 */
struct mp_pickle_opts {
	size_t max_depth;  /* container nesting, default 1000 */
	size_t max_memo;   /* memo entries, default 1 << 20 */
	size_t max_items;  /* objects built in all, default 1 << 24 */
	size_t max_len;    /* one str, bytes or int body, default 1 GiB */
	const struct mp_pickle_global *globals; /* default: none allowed */
	size_t n_globals;
	/* Optional diagnostic: a message naming the opcode and offset of the
	 * first error (NUL-terminated, truncated to fit). */
	char *errbuf;
	size_t errbuf_len;
};

/*
 * mp_pickle_dumps: encode o as CPython's pickle.dumps(o, protocol=4) does,
 * byte for byte for the supported types (PROTO 4, FRAME, MEMOIZE, BINGET
 * for an object met twice). The buffer is released with mp_free. Returns 0,
 * -ENOMEM, -EINVAL (a value pickle cannot encode).
 * Threads: safe on objects no other thread mutates. Fork: usable.
 */
MP_API int mp_pickle_dumps(const mp_obj_t *o, void **out, size_t *len);

/*
 * mp_pickle_loads: decode one pickle (protocols 2 to 5) of the supported
 * types. The decoder builds data, never behaviour: globals resolve only
 * through opts->globals. opts may be NULL for the defaults. Returns 0 and a
 * new reference in *out, or:
 *   MP_EPICKLE     malformed or truncated input, unknown opcode, stack or
 *                  mark misuse, trailing bytes after STOP, invalid UTF-8,
 *                  a cycle (a container inside itself);
 *   MP_EFORBIDDEN  a global not in the whitelist, or an opcode that runs
 *                  code (INST, OBJ, PERSID, EXT*, NEWOBJ_EX, ...);
 *   MP_ELIMIT      a limit of opts exceeded;
 *   -ENOMEM.
 * Never crashes, whatever the input. Threads: safe. Fork: usable.
 */
MP_API int mp_pickle_loads(const void *data, size_t len,
    const struct mp_pickle_opts *opts, mp_obj_t **out);

#ifdef __cplusplus
}
#endif
#endif
