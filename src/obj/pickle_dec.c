/* SPDX-License-Identifier: MIT */
/* obj/pickle_dec.c: a bounded pickle decoder: it builds data, never code. */
#include "obj/pickle_dec.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/*
 * The decoder is CPython's stack machine over a fixed subset of opcodes.
 * A stack slot holds an object (a reference the stack owns) or, with a
 * NULL object, a whitelisted global, which only REDUCE, NEWOBJ or the memo
 * may consume. Every slot carries the nesting depth of its value, so the
 * depth limit holds while building and nothing deeper than max_depth is
 * ever made (freeing, comparing and printing recurse).
 */

/* Record the first error as "opcode 0x.. at offset N: what". */
int
mp__pdec_fail(struct mp__pdec *d, int rv, const char *what)
{
	const struct mp_pickle_opts *o = d->opts;
	if (!d->reported && o != NULL && o->errbuf != NULL &&
	    o->errbuf_len > 0) {
		snprintf(o->errbuf, o->errbuf_len,
		    "opcode 0x%02x at offset %zu: %s", d->op, d->op_off, what);
	}
	d->reported = true;
	return rv;
}

int
mp__pdec_truncated(struct mp__pdec *d)
{
	return mp__pdec_fail(d, MP_EPICKLE, "truncated input");
}


/* ---- Input ------------------------------------------------------------ */

const uint8_t *
mp__pdec_take(struct mp__pdec *d, size_t n)
{
	if ((size_t)(d->end - d->p) < n) {
		return NULL;
	}
	const uint8_t *q = d->p;
	d->p += n;
	return q;
}


/*
 * A length of width bytes and the body it announces. A length past
 * max_len is a limit; one past the input is truncation. Both are checked
 * before anything is allocated.
 */
static int
take_body(struct mp__pdec *d, int width, const uint8_t **body, size_t *n)
{
	const uint8_t *q = mp__pdec_take(d, (size_t)width);
	if (q == NULL) {
		return mp__pdec_truncated(d);
	}
	uint64_t len = mp__pdec_le(q, width);
	if (width == 4 && d->op == MP__OP_LONG4 && (len & 0x80000000u)) {
		return mp__pdec_fail(d, MP_EPICKLE, "negative length");
	}
	if (len > d->max_len) {
		return mp__pdec_fail(d, MP_ELIMIT, "length over max_len");
	}
	*body = mp__pdec_take(d, (size_t)len);
	if (*body == NULL) {
		return mp__pdec_truncated(d);
	}
	*n = (size_t)len;
	return 0;
}

/* ---- Stack, marks and the exposed set --------------------------------- */

void *
mp__pdec_grow(void *cur, const void *inl, size_t cap, size_t elem,
    size_t used)
{
	if (cap > SIZE_MAX / elem) {
		return NULL;
	}
	if (cur != inl) {
		return mp__realloc(cur, cap * elem);
	}
	void *p = mp__malloc(cap * elem);
	if (p != NULL) {
		memcpy(p, cur, used * elem);
	}
	return p;
}

/* Push o (stolen; NULL when a constructor ran out of memory). */
int
mp__pdec_push(struct mp__pdec *d, mp_obj_t *o, uint32_t depth)
{
	if (o == NULL) {
		return mp__pdec_fail(d, -ENOMEM, "out of memory");
	}
	if (d->items >= d->max_items) {
		mp_obj_unref(o);
		return mp__pdec_fail(d, MP_ELIMIT, "more items than max_items");
	}
	if (d->sp == d->cap) {
		size_t cap = d->cap * 2;
		mp_obj_t **st = mp__pdec_grow(d->stk, d->stk0, cap,
		    sizeof(*st), d->sp);
		if (st != NULL) {
			d->stk = st;
		}
		struct mp__pdec_slot *in = st == NULL ? NULL :
		    mp__pdec_grow(d->inf, d->inf0, cap, sizeof(*in), d->sp);
		if (in == NULL) {
			mp_obj_unref(o);
			return mp__pdec_fail(d, -ENOMEM, "out of memory");
		}
		d->inf = in;
		d->cap = cap;
	}
	d->stk[d->sp] = o;
	d->inf[d->sp] = (struct mp__pdec_slot){ depth, MP__PDEC_NO_MEMO, 0 };
	d->sp++;
	d->items++;
	return 0;
}

static size_t
fence(const struct mp__pdec *d)
{
	return d->nmarks > 0 ? d->marks[d->nmarks - 1] : 0;
}

/* At least n slots above the innermost mark. */
int
mp__pdec_need(struct mp__pdec *d, size_t n)
{
	if (d->sp - fence(d) < n) {
		return mp__pdec_fail(d, MP_EPICKLE, "stack underflow");
	}
	return 0;
}

static int
pop_mark(struct mp__pdec *d, size_t *mark)
{
	if (d->nmarks == 0) {
		return mp__pdec_fail(d, MP_EPICKLE, "no MARK to pop");
	}
	*mark = d->marks[--d->nmarks];
	return 0;
}

static void
drop(struct mp__pdec *d, size_t from)
{
	while (d->sp > from) {
		mp_obj_unref(d->stk[--d->sp]);
	}
}

/* Slots [from, sp) must be objects; their deepest depth goes in *depth. */
static int
check_items(struct mp__pdec *d, size_t from, uint32_t *depth)
{
	uint32_t m = 0;
	for (size_t i = from; i < d->sp; i++) {
		if (d->stk[i] == NULL) {
			return mp__pdec_fail(d, MP_EPICKLE,
			    "a global used as a value");
		}
		if (d->inf[i].depth > m) {
			m = d->inf[i].depth;
		}
	}
	if ((size_t)m + 1 > d->max_depth) {
		return mp__pdec_fail(d, MP_ELIMIT,
		    "nesting deeper than max_depth");
	}
	*depth = m;
	return 0;
}

/* ---- Scalars, text ---------------------------------------------------- */

static int
op_int(struct mp__pdec *d, int width)
{
	const uint8_t *q = mp__pdec_take(d, (size_t)width);
	if (q == NULL) {
		return mp__pdec_truncated(d);
	}
	int64_t v = (int64_t)mp__pdec_le(q, width);
	if (width == 4) {
		v = (int32_t)(uint32_t)v;
	}
	return mp__pdec_push(d, mp_int(v), 0);
}

static int
op_long(struct mp__pdec *d, int width)
{
	const uint8_t *body;
	size_t n;
	int rv = take_body(d, width, &body, &n);
	if (rv != 0) {
		return rv;
	}
	mp_obj_t *o = NULL;
	rv = mp_int_from_bytes(body, n, &o);
	if (rv != 0) {
		return mp__pdec_fail(d, rv, "out of memory");
	}
	return mp__pdec_push(d, o, 0);
}

static int
op_float(struct mp__pdec *d)
{
	const uint8_t *q = mp__pdec_take(d, 8);
	if (q == NULL) {
		return mp__pdec_truncated(d);
	}
	uint64_t u = 0;
	for (int i = 0; i < 8; i++) {
		u = u << 8 | q[i];
	}
	double v;
	memcpy(&v, &u, sizeof(v));
	return mp__pdec_push(d, mp_float(v), 0);
}

static int
op_text(struct mp__pdec *d, bool str, int width)
{
	const uint8_t *body;
	size_t n;
	int rv = take_body(d, width, &body, &n);
	if (rv != 0) {
		return rv;
	}
	if (!str) {
		return mp__pdec_push(d, mp_bytes(body, n), 0);
	}
	mp_obj_t *o = NULL;
	rv = mp_str_new((const char *)body, n, &o);
	if (rv == -EINVAL) {
		return mp__pdec_fail(d, MP_EPICKLE, "invalid UTF-8");
	}
	if (rv != 0) {
		return mp__pdec_fail(d, rv, "out of memory");
	}
	return mp__pdec_push(d, o, 0);
}

/* ---- Tuples, lists, dicts, sets --------------------------------------- */

/* Replace slots [from, sp) by a tuple of them. */
static int
make_tuple(struct mp__pdec *d, size_t from)
{
	uint32_t depth;
	int rv = check_items(d, from, &depth);
	if (rv != 0) {
		return rv;
	}
	size_t n = d->sp - from;
	mp_obj_t *t = mp_tuple_from(d->stk + from, n);
	d->sp = from; /* stolen, even on failure */
	return mp__pdec_push(d, t, depth + 1);
}

static int
op_tuple_n(struct mp__pdec *d, size_t n)
{
	int rv = mp__pdec_need(d, n);
	return rv != 0 ? rv : make_tuple(d, d->sp - n);
}

static int
op_tuple_mark(struct mp__pdec *d)
{
	size_t mark = 0;
	int rv = pop_mark(d, &mark);
	return rv != 0 ? rv : make_tuple(d, mark);
}

/* list.extend with items [from, sp), which it takes over on success. */
static int
list_extend(struct mp__pdec *d, mp_obj_t *l, size_t from)
{
	size_t n = d->sp - from;
	size_t len = l->u.seq.len;
	if (n == 0) {
		return 0; /* an empty MARK APPENDS */
	}
	if (mp__list_reserve(l, n) != 0) {
		return mp__pdec_fail(d, -ENOMEM, "out of memory");
	}
	memcpy(l->u.seq.items + len, d->stk + from, n * sizeof(mp_obj_t *));
	l->u.seq.len = len + n;
	d->sp = from;
	return 0;
}

/*
 * APPEND(S), SETITEM(S), ADDITEMS: the items are slots [from, sp) and the
 * target is the slot below them.
 */
static int
fill(struct mp__pdec *d, size_t from)
{
	if (from == 0 || from - 1 < fence(d) || d->stk[from - 1] == NULL) {
		return mp__pdec_fail(d, MP_EPICKLE,
		    "no container below the items");
	}
	mp_obj_t *t = d->stk[from - 1];
	enum mp_type want = d->op == MP__OP_APPEND || d->op ==
	    MP__OP_APPENDS ? MP_TYPE_LIST : d->op == MP__OP_ADDITEMS ?
	    MP_TYPE_SET : MP_TYPE_DICT;
	if (t->type != want) {
		return mp__pdec_fail(d, MP_EPICKLE,
		    "items added to the wrong type");
	}
	uint32_t depth;
	int rv = check_items(d, from, &depth);
	if (rv == 0 && from < d->sp) {
		rv = mp__pdec_grow_target(d, from - 1, depth);
	}
	if (rv != 0) {
		return rv;
	}
	if (want == MP_TYPE_LIST) {
		return list_extend(d, t, from);
	}
	if (want == MP_TYPE_DICT && (d->sp - from) % 2 != 0) {
		return mp__pdec_fail(d, MP_EPICKLE,
		    "odd number of items for a dict");
	}
	/* Take the items off the stack; each call below steals its own. */
	size_t end = d->sp;
	d->sp = from;
	for (size_t i = from; i < end; i += want == MP_TYPE_DICT ? 2 : 1) {
		rv = want == MP_TYPE_DICT ?
		    mp_dict_set(t, d->stk[i], d->stk[i + 1]) :
		    mp_set_add(t, d->stk[i]);
		if (rv != 0) {
			for (size_t j = i + (want == MP_TYPE_DICT ? 2 : 1);
			    j < end; j++) {
				mp_obj_unref(d->stk[j]);
			}
			if (rv == MP_ETYPE) {
				return mp__pdec_fail(d, MP_EPICKLE,
				    "unhashable key");
			}
			return mp__pdec_fail(d, rv, "out of memory");
		}
	}
	return 0;
}

static int
op_fill_mark(struct mp__pdec *d)
{
	size_t mark = 0;
	int rv = pop_mark(d, &mark);
	return rv != 0 ? rv : fill(d, mark);
}

static int
op_fill_n(struct mp__pdec *d, size_t n)
{
	int rv = mp__pdec_need(d, n + 1);
	return rv != 0 ? rv : fill(d, d->sp - n);
}

static int
op_frozenset(struct mp__pdec *d)
{
	size_t mark = 0;
	uint32_t depth;
	int rv = pop_mark(d, &mark);
	if (rv == 0) {
		rv = check_items(d, mark, &depth);
	}
	if (rv != 0) {
		return rv;
	}
	mp_obj_t *fs = mp_frozenset_new();
	if (fs == NULL) {
		return mp__pdec_fail(d, -ENOMEM, "out of memory");
	}
	size_t end = d->sp;
	d->sp = mark;
	for (size_t i = mark; i < end; i++) {
		rv = mp_set_add(fs, d->stk[i]);
		if (rv != 0) {
			for (size_t j = i + 1; j < end; j++) {
				mp_obj_unref(d->stk[j]);
			}
			mp_obj_unref(fs);
			if (rv == MP_ETYPE) {
				return mp__pdec_fail(d, MP_EPICKLE,
				    "unhashable item");
			}
			return mp__pdec_fail(d, rv, "out of memory");
		}
	}
	return mp__pdec_push(d, fs, depth + 1);
}

static int
op_pop(struct mp__pdec *d)
{
	if (d->sp > fence(d)) {
		drop(d, d->sp - 1);
		return 0;
	}
	size_t mark = 0;
	return pop_mark(d, &mark);
}

static int
op_pop_mark(struct mp__pdec *d)
{
	size_t mark = 0;
	int rv = pop_mark(d, &mark);
	if (rv == 0) {
		drop(d, mark);
	}
	return rv;
}

/* ---- Dispatch --------------------------------------------------------- */

static int
op_stop(struct mp__pdec *d, mp_obj_t **out)
{
	if (d->sp != 1 || d->nmarks != 0) {
		return mp__pdec_fail(d, MP_EPICKLE,
		    "stack not exactly one item at STOP");
	}
	if (d->stk[0] == NULL) {
		return mp__pdec_fail(d, MP_EPICKLE, "a global as the result");
	}
	if (d->p != d->end) {
		return mp__pdec_fail(d, MP_EPICKLE,
		    "trailing bytes after STOP");
	}
	*out = d->stk[0];
	d->sp = 0;
	return 0;
}

static int
op_mark(struct mp__pdec *d)
{
	if (d->nmarks >= d->max_depth) {
		return mp__pdec_fail(d, MP_ELIMIT,
		    "marks nested deeper than max_depth");
	}
	if (d->nmarks == d->capmarks) {
		size_t *m = mp__pdec_grow(d->marks, d->marks0,
		    d->capmarks * 2, sizeof(*m), d->nmarks);
		if (m == NULL) {
			return mp__pdec_fail(d, -ENOMEM, "out of memory");
		}
		d->marks = m;
		d->capmarks *= 2;
	}
	d->marks[d->nmarks++] = d->sp;
	return 0;
}

static int
op_frame(struct mp__pdec *d, bool proto)
{
	const uint8_t *q = mp__pdec_take(d, proto ? 1 : 8);
	if (q == NULL) {
		return mp__pdec_truncated(d);
	}
	if (proto) {
		return q[0] > 5 ? mp__pdec_fail(d, MP_EPICKLE,
		    "protocol above 5") : 0;
	}
	/* Frames are only a read-ahead hint: check the length, go on. */
	if (mp__pdec_le(q, 8) > (uint64_t)(d->end - d->p)) {
		return mp__pdec_truncated(d);
	}
	return 0;
}

static int
step(struct mp__pdec *d)
{
	switch (d->op) {
	case MP__OP_NONE:
		return mp__pdec_push(d, mp_none(), 0);
	case MP__OP_NEWTRUE:
	case MP__OP_NEWFALSE:
		return mp__pdec_push(d, mp_bool(d->op == MP__OP_NEWTRUE), 0);
	case MP__OP_BININT1:
		return op_int(d, 1);
	case MP__OP_BININT2:
		return op_int(d, 2);
	case MP__OP_BININT:
		return op_int(d, 4);
	case MP__OP_LONG1:
		return op_long(d, 1);
	case MP__OP_LONG4:
		return op_long(d, 4);
	case MP__OP_BINFLOAT:
		return op_float(d);
	case MP__OP_SHORT_BINUNICODE:
		return op_text(d, true, 1);
	case MP__OP_BINUNICODE:
		return op_text(d, true, 4);
	case MP__OP_BINUNICODE8:
		return op_text(d, true, 8);
	case MP__OP_SHORT_BINBYTES:
		return op_text(d, false, 1);
	case MP__OP_BINBYTES:
		return op_text(d, false, 4);
	case MP__OP_BINBYTES8:
		return op_text(d, false, 8);
	case MP__OP_EMPTY_TUPLE:
		return mp__pdec_push(d, mp_tuple_from(NULL, 0), 1);
	case MP__OP_TUPLE1:
	case MP__OP_TUPLE2:
	case MP__OP_TUPLE3:
		return op_tuple_n(d, (size_t)(d->op - MP__OP_TUPLE1 + 1));
	case MP__OP_TUPLE:
		return op_tuple_mark(d);
	case MP__OP_EMPTY_LIST:
		return mp__pdec_push(d, mp_list_new(), 1);
	case MP__OP_EMPTY_DICT:
		return mp__pdec_push(d, mp_dict_new(), 1);
	case MP__OP_EMPTY_SET:
		return mp__pdec_push(d, mp_set_new(), 1);
	case MP__OP_APPEND:
		return op_fill_n(d, 1);
	case MP__OP_SETITEM:
		return op_fill_n(d, 2);
	case MP__OP_APPENDS:
	case MP__OP_SETITEMS:
	case MP__OP_ADDITEMS:
		return op_fill_mark(d);
	case MP__OP_FROZENSET:
		return op_frozenset(d);
	case MP__OP_MARK:
		return op_mark(d);
	case MP__OP_MEMOIZE:
		return mp__pdec_op_put(d, 0);
	case MP__OP_BINPUT:
		return mp__pdec_op_put(d, 1);
	case MP__OP_LONG_BINPUT:
		return mp__pdec_op_put(d, 4);
	case MP__OP_BINGET:
		return mp__pdec_op_get(d, 1);
	case MP__OP_LONG_BINGET:
		return mp__pdec_op_get(d, 4);
	case MP__OP_POP:
		return op_pop(d);
	case MP__OP_POP_MARK:
		return op_pop_mark(d);
	case MP__OP_DUP:
		return mp__pdec_op_dup(d);
	case MP__OP_STACK_GLOBAL:
		return mp__pdec_op_stack_global(d);
	case MP__OP_GLOBAL:
		return mp__pdec_op_global(d);
	case MP__OP_REDUCE:
	case MP__OP_NEWOBJ:
		return mp__pdec_op_reduce(d);
	case MP__OP_BUILD:
		return mp__pdec_op_build(d);
	case MP__OP_PROTO:
		return op_frame(d, true);
	case MP__OP_FRAME:
		return op_frame(d, false);
	case MP__OP_INST:
	case MP__OP_OBJ:
	case MP__OP_PERSID:
	case MP__OP_BINPERSID:
	case MP__OP_EXT1:
	case MP__OP_EXT2:
	case MP__OP_EXT4:
	case MP__OP_NEWOBJ_EX:
	case MP__OP_BYTEARRAY8:
	case MP__OP_NEXT_BUFFER:
	case MP__OP_READONLY_BUFFER:
		return mp__pdec_fail(d, MP_EFORBIDDEN, "opcode not allowed");
	default:
		return mp__pdec_fail(d, MP_EPICKLE,
		    "unknown or unsupported opcode");
	}
}

static void
dec_fini(struct mp__pdec *d)
{
	drop(d, 0);
	for (size_t i = 0; i < d->nmemo; i++) {
		mp__pdec_memo_drop(d, &d->memo[i]);
	}
	if (d->stk != d->stk0) {
		mp__free(d->stk);
	}
	if (d->inf != d->inf0) {
		mp__free(d->inf);
	}
	if (d->marks != d->marks0) {
		mp__free(d->marks);
	}
	if (d->memo != d->memo0) {
		mp__free(d->memo);
	}
	mp__free(d->exp);
}

static size_t
pick(size_t v, size_t dflt)
{
	return v != 0 ? v : dflt;
}

int
mp_pickle_loads(const void *data, size_t len,
    const struct mp_pickle_opts *opts, mp_obj_t **out)
{
	static const uint8_t empty[1];
	MP_ASSERT(out != NULL && (data != NULL || len == 0));
	if (data == NULL) {
		data = empty; /* no arithmetic on a null pointer */
	}
	/*
	 * Field by field, not a memset of the header: for a small message
	 * the memset's "rep stos" alone cost ~7% of a decode.
	 */
	struct mp__pdec d;
	d.op_off = 0;
	d.op = 0;
	d.reported = false;
	d.hook_ran = false;
	d.sp = 0;
	d.nmarks = 0;
	d.nmemo = 0;
	d.exp = NULL;
	d.expcap = 0;
	d.explen = 0;
	d.items = 0;
	d.stk = d.stk0;
	d.inf = d.inf0;
	d.cap = MP__PDEC_INLINE;
	d.marks = d.marks0;
	d.capmarks = MP__PDEC_INLINE;
	d.memo = d.memo0;
	d.capmemo = MP__PDEC_INLINE;
	d.start = data;
	d.p = data;
	d.end = d.start + len;
	d.opts = opts;
	d.max_depth = pick(opts == NULL ? 0 : opts->max_depth,
	    MP__PICKLE_MAX_DEPTH);
	d.max_memo = pick(opts == NULL ? 0 : opts->max_memo, (size_t)1 << 20);
	d.max_items = pick(opts == NULL ? 0 : opts->max_items,
	    (size_t)1 << 24);
	d.max_len = pick(opts == NULL ? 0 : opts->max_len, (size_t)1 << 30);
	/* Depths and memo indexes are kept in 32 bits. */
	if (d.max_depth > UINT32_MAX - 1) {
		d.max_depth = UINT32_MAX - 1;
	}
	if (d.max_memo > UINT32_MAX - 1) {
		d.max_memo = UINT32_MAX - 1;
	}
	mp_obj_t *result = NULL;
	int rv;
	for (;;) {
		if (d.p == d.end) {
			/* Reported as opcode 0x00 at the end of the input. */
			d.op = 0;
			d.op_off = len;
			rv = mp__pdec_fail(&d, MP_EPICKLE,
			    "truncated input: no STOP");
			break;
		}
		d.op_off = (size_t)(d.p - d.start);
		d.op = *d.p++;
		if (d.op == MP__OP_STOP) {
			rv = op_stop(&d, &result);
			break;
		}
		rv = step(&d);
		if (rv != 0) {
			break;
		}
	}
	dec_fini(&d);
	if (rv != 0) {
		return rv;
	}
	*out = result;
	return 0;
}
