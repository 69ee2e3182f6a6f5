/* SPDX-License-Identifier: MIT */
/* obj/pickle_dec.c: a bounded pickle decoder that builds data, never behaviour. */
#include "obj/obj_impl.h"
#include "obj/pickle_internal.h"

#include <stdio.h>
#include <string.h>

/*
 * The decoder is CPython's stack machine over a fixed subset of opcodes.
 * A stack slot holds an object (a reference the stack owns) or, with a
 * NULL object, a whitelisted global, which only REDUCE, NEWOBJ or the memo
 * may consume. Every slot carries the nesting depth of its value, so the
 * depth limit holds while building and nothing deeper than max_depth is
 * ever made (freeing, comparing and printing recurse).
 *
 * Shared references and cycles. BINGET and DUP push the same object
 * again, never a copy. CPython writes every APPEND, SETITEM, ADDITEMS and
 * BUILD of a container while saving that container, so in acyclic data a
 * container is only fetched from the memo after it is complete. A
 * container fetched (BINGET, DUP) and then mutated is therefore always a
 * cycle in CPython's output, and is refused: mutable containers that were
 * fetched are "exposed", and mutating an exposed container fails. This
 * also keeps depths exact: a container can only grow while it sits in
 * the one fresh stack slot that made it, whose depth (and memo entry) is
 * updated as it grows.
 */

#define NO_MEMO UINT32_MAX

struct slot_info {
	uint32_t depth;
	uint32_t memo;  /* memo index of a fresh mutable container */
	uint32_t glob;  /* index into opts->globals when the object is NULL */
};

struct memo_ent {
	mp_obj_t *o;    /* NULL: a global */
	uint32_t depth;
	uint32_t glob;
};

struct dec {
	const uint8_t *start;
	const uint8_t *p;
	const uint8_t *end;
	size_t op_off;
	uint8_t op;
	bool reported;
	mp_obj_t **stk;
	struct slot_info *inf;
	size_t sp;
	size_t cap;
	size_t *marks;
	size_t nmarks;
	size_t capmarks;
	struct memo_ent *memo;
	size_t nmemo;
	size_t capmemo;
	const mp_obj_t **exp; /* exposed containers: open addressing set */
	size_t expcap;
	size_t explen;
	size_t items;
	size_t max_depth;
	size_t max_memo;
	size_t max_items;
	size_t max_len;
	const struct mp_pickle_opts *opts;
};

/* Record the first error as "opcode 0x.. at offset N: what". */
static int
fail(struct dec *d, int rv, const char *what)
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

static int
truncated(struct dec *d)
{
	return fail(d, MP_EPICKLE, "truncated input");
}

static bool
is_mutable(const mp_obj_t *o)
{
	return o->type == MP_TYPE_LIST || o->type == MP_TYPE_DICT ||
	    o->type == MP_TYPE_SET || o->type == MP_TYPE_INSTANCE;
}

/* ---- Input ------------------------------------------------------------ */

static const uint8_t *
take(struct dec *d, size_t n)
{
	if ((size_t)(d->end - d->p) < n) {
		return NULL;
	}
	const uint8_t *q = d->p;
	d->p += n;
	return q;
}

static uint64_t
le_load(const uint8_t *q, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++) {
		v |= (uint64_t)q[i] << (8 * i);
	}
	return v;
}

/*
 * A length of width bytes and the body it announces. A length past
 * max_len is a limit; one past the input is truncation. Both are checked
 * before anything is allocated.
 */
static int
take_body(struct dec *d, int width, const uint8_t **body, size_t *n)
{
	const uint8_t *q = take(d, (size_t)width);
	if (q == NULL) {
		return truncated(d);
	}
	uint64_t len = le_load(q, width);
	if (width == 4 && d->op == MP__OP_LONG4 && (len & 0x80000000u)) {
		return fail(d, MP_EPICKLE, "negative length");
	}
	if (len > d->max_len) {
		return fail(d, MP_ELIMIT, "length over max_len");
	}
	*body = take(d, (size_t)len);
	if (*body == NULL) {
		return truncated(d);
	}
	*n = (size_t)len;
	return 0;
}

/* ---- Stack, marks and the exposed set --------------------------------- */

/* Push o (stolen; NULL when a constructor ran out of memory). */
static int
push(struct dec *d, mp_obj_t *o, uint32_t depth)
{
	if (o == NULL) {
		return fail(d, -ENOMEM, "out of memory");
	}
	if (d->items >= d->max_items) {
		mp_obj_unref(o);
		return fail(d, MP_ELIMIT, "more items than max_items");
	}
	if (d->sp == d->cap) {
		size_t cap = d->cap == 0 ? 32 : d->cap * 2;
		mp_obj_t **s = mp__realloc(d->stk, cap * sizeof(*s));
		if (s != NULL) {
			d->stk = s;
		}
		struct slot_info *in = s == NULL ? NULL :
		    mp__realloc(d->inf, cap * sizeof(*in));
		if (in == NULL) {
			mp_obj_unref(o);
			return fail(d, -ENOMEM, "out of memory");
		}
		d->inf = in;
		d->cap = cap;
	}
	d->stk[d->sp] = o;
	d->inf[d->sp] = (struct slot_info){ depth, NO_MEMO, 0 };
	d->sp++;
	d->items++;
	return 0;
}

static size_t
fence(const struct dec *d)
{
	return d->nmarks > 0 ? d->marks[d->nmarks - 1] : 0;
}

/* At least n slots above the innermost mark. */
static int
need(struct dec *d, size_t n)
{
	if (d->sp - fence(d) < n) {
		return fail(d, MP_EPICKLE, "stack underflow");
	}
	return 0;
}

static int
pop_mark(struct dec *d, size_t *mark)
{
	if (d->nmarks == 0) {
		return fail(d, MP_EPICKLE, "no MARK to pop");
	}
	*mark = d->marks[--d->nmarks];
	return 0;
}

static void
drop(struct dec *d, size_t from)
{
	while (d->sp > from) {
		mp_obj_unref(d->stk[--d->sp]);
	}
}

/* Slots [from, sp) must be objects; their deepest depth goes in *depth. */
static int
check_items(struct dec *d, size_t from, uint32_t *depth)
{
	uint32_t m = 0;
	for (size_t i = from; i < d->sp; i++) {
		if (d->stk[i] == NULL) {
			return fail(d, MP_EPICKLE, "a global used as a value");
		}
		if (d->inf[i].depth > m) {
			m = d->inf[i].depth;
		}
	}
	if ((size_t)m + 1 > d->max_depth) {
		return fail(d, MP_ELIMIT, "nesting deeper than max_depth");
	}
	*depth = m;
	return 0;
}

static size_t
ptr_hash(const void *p)
{
	uint64_t h = (uint64_t)(uintptr_t)p >> 4;
	return (size_t)(h * 0x9e3779b97f4a7c15ull >> 17);
}

static bool
exposed(const struct dec *d, const mp_obj_t *o)
{
	if (d->explen == 0) {
		return false;
	}
	size_t i = ptr_hash(o) & (d->expcap - 1);
	while (d->exp[i] != NULL) {
		if (d->exp[i] == o) {
			return true;
		}
		i = (i + 1) & (d->expcap - 1);
	}
	return false;
}

static int
expose(struct dec *d, const mp_obj_t *o)
{
	if (o == NULL || !is_mutable(o) || exposed(d, o)) {
		return 0;
	}
	if ((d->explen + 1) * 2 > d->expcap) {
		size_t cap = d->expcap == 0 ? 16 : d->expcap * 2;
		const mp_obj_t **t = mp__calloc(cap, sizeof(*t));
		if (t == NULL) {
			return fail(d, -ENOMEM, "out of memory");
		}
		for (size_t i = 0; i < d->expcap; i++) {
			if (d->exp[i] != NULL) {
				size_t j = ptr_hash(d->exp[i]) & (cap - 1);
				while (t[j] != NULL) {
					j = (j + 1) & (cap - 1);
				}
				t[j] = d->exp[i];
			}
		}
		mp__free(d->exp);
		d->exp = t;
		d->expcap = cap;
	}
	size_t i = ptr_hash(o) & (d->expcap - 1);
	while (d->exp[i] != NULL) {
		i = (i + 1) & (d->expcap - 1);
	}
	d->exp[i] = o;
	d->explen++;
	return 0;
}

/*
 * The container in slot t is about to take items of depth up to
 * item_depth: refuse an exposed one (a cycle), apply the depth limit, and
 * keep its memo entry's depth current.
 */
static int
grow_target(struct dec *d, size_t t, uint32_t item_depth)
{
	mp_obj_t *o = d->stk[t];
	if (exposed(d, o)) {
		return fail(d, MP_EPICKLE,
		    "container changed after it was shared (a cycle)");
	}
	if ((size_t)item_depth + 1 > d->max_depth) {
		return fail(d, MP_ELIMIT, "nesting deeper than max_depth");
	}
	struct slot_info *in = &d->inf[t];
	if (item_depth + 1 > in->depth) {
		in->depth = item_depth + 1;
	}
	if (in->memo != NO_MEMO && in->memo < d->nmemo &&
	    d->memo[in->memo].o == o) {
		d->memo[in->memo].depth = in->depth;
	}
	return 0;
}

/* ---- Scalars, text ---------------------------------------------------- */

static int
op_int(struct dec *d, int width)
{
	const uint8_t *q = take(d, (size_t)width);
	if (q == NULL) {
		return truncated(d);
	}
	int64_t v = (int64_t)le_load(q, width);
	if (width == 4) {
		v = (int32_t)(uint32_t)v;
	}
	return push(d, mp_int(v), 0);
}

static int
op_long(struct dec *d, int width)
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
		return fail(d, rv, "out of memory");
	}
	return push(d, o, 0);
}

static int
op_float(struct dec *d)
{
	const uint8_t *q = take(d, 8);
	if (q == NULL) {
		return truncated(d);
	}
	uint64_t u = 0;
	for (int i = 0; i < 8; i++) {
		u = u << 8 | q[i];
	}
	double v;
	memcpy(&v, &u, sizeof(v));
	return push(d, mp_float(v), 0);
}

static int
op_text(struct dec *d, bool str, int width)
{
	const uint8_t *body;
	size_t n;
	int rv = take_body(d, width, &body, &n);
	if (rv != 0) {
		return rv;
	}
	if (!str) {
		return push(d, mp_bytes(body, n), 0);
	}
	mp_obj_t *o = NULL;
	rv = mp_str_new((const char *)body, n, &o);
	if (rv == -EINVAL) {
		return fail(d, MP_EPICKLE, "invalid UTF-8");
	}
	if (rv != 0) {
		return fail(d, rv, "out of memory");
	}
	return push(d, o, 0);
}

/* ---- Tuples, lists, dicts, sets --------------------------------------- */

/* Replace slots [from, sp) by a tuple of them. */
static int
make_tuple(struct dec *d, size_t from)
{
	uint32_t depth;
	int rv = check_items(d, from, &depth);
	if (rv != 0) {
		return rv;
	}
	size_t n = d->sp - from;
	mp_obj_t *t = mp_tuple_from(d->stk + from, n);
	d->sp = from; /* stolen, even on failure */
	return push(d, t, depth + 1);
}

static int
op_tuple_n(struct dec *d, size_t n)
{
	int rv = need(d, n);
	return rv != 0 ? rv : make_tuple(d, d->sp - n);
}

static int
op_tuple_mark(struct dec *d)
{
	size_t mark = 0;
	int rv = pop_mark(d, &mark);
	return rv != 0 ? rv : make_tuple(d, mark);
}

/* list.extend with items [from, sp), which it takes over on success. */
static int
list_extend(struct dec *d, mp_obj_t *l, size_t from)
{
	size_t n = d->sp - from;
	size_t len = l->u.seq.len;
	if (len + n > l->u.seq.cap) {
		size_t cap = l->u.seq.cap + l->u.seq.cap / 2 + 4;
		if (cap < len + n) {
			cap = len + n;
		}
		mp_obj_t **items = mp__realloc(l->u.seq.items,
		    cap * sizeof(*items));
		if (items == NULL) {
			return fail(d, -ENOMEM, "out of memory");
		}
		l->u.seq.items = items;
		l->u.seq.cap = cap;
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
fill(struct dec *d, size_t from)
{
	if (from == 0 || from - 1 < fence(d) || d->stk[from - 1] == NULL) {
		return fail(d, MP_EPICKLE, "no container below the items");
	}
	mp_obj_t *t = d->stk[from - 1];
	enum mp_type want = d->op == MP__OP_APPEND || d->op ==
	    MP__OP_APPENDS ? MP_TYPE_LIST : d->op == MP__OP_ADDITEMS ?
	    MP_TYPE_SET : MP_TYPE_DICT;
	if (t->type != want) {
		return fail(d, MP_EPICKLE, "items added to the wrong type");
	}
	uint32_t depth;
	int rv = check_items(d, from, &depth);
	if (rv == 0 && from < d->sp) {
		rv = grow_target(d, from - 1, depth);
	}
	if (rv != 0) {
		return rv;
	}
	if (want == MP_TYPE_LIST) {
		return list_extend(d, t, from);
	}
	if (want == MP_TYPE_DICT && (d->sp - from) % 2 != 0) {
		return fail(d, MP_EPICKLE, "odd number of items for a dict");
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
			return fail(d, rv == MP_ETYPE ? MP_EPICKLE : rv,
			    rv == MP_ETYPE ? "unhashable key" :
			    "out of memory");
		}
	}
	return 0;
}

static int
op_fill_mark(struct dec *d)
{
	size_t mark = 0;
	int rv = pop_mark(d, &mark);
	return rv != 0 ? rv : fill(d, mark);
}

static int
op_fill_n(struct dec *d, size_t n)
{
	int rv = need(d, n + 1);
	return rv != 0 ? rv : fill(d, d->sp - n);
}

static int
op_frozenset(struct dec *d)
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
		return fail(d, -ENOMEM, "out of memory");
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
			return fail(d, rv == MP_ETYPE ? MP_EPICKLE : rv,
			    rv == MP_ETYPE ? "unhashable item" :
			    "out of memory");
		}
	}
	return push(d, fs, depth + 1);
}

/* ---- Memo ------------------------------------------------------------- */

/* MEMOIZE (index = memo size) and BINPUT / LONG_BINPUT. */
static int
op_put(struct dec *d, int width)
{
	uint64_t idx = d->nmemo;
	if (width > 0) {
		const uint8_t *q = take(d, (size_t)width);
		if (q == NULL) {
			return truncated(d);
		}
		idx = le_load(q, width);
	}
	int rv = need(d, 1);
	if (rv != 0) {
		return rv;
	}
	if (idx >= d->max_memo) {
		return fail(d, MP_ELIMIT, "memo larger than max_memo");
	}
	/* Picklers number the memo densely; a gap is refused, which keeps
	 * a 5-byte LONG_BINPUT from allocating a huge table. */
	if (idx > d->nmemo) {
		return fail(d, MP_EPICKLE, "memo index out of sequence");
	}
	size_t t = d->sp - 1;
	mp_obj_t *o = d->stk[t];
	if (o != NULL && is_mutable(o) && !exposed(d, o)) {
		if (d->inf[t].memo != NO_MEMO) {
			return fail(d, MP_EPICKLE, "container memoized twice");
		}
		d->inf[t].memo = (uint32_t)idx;
	}
	if (idx == d->nmemo) {
		if (d->nmemo == d->capmemo) {
			size_t cap = d->capmemo == 0 ? 16 : d->capmemo * 2;
			struct memo_ent *m = mp__realloc(d->memo,
			    cap * sizeof(*m));
			if (m == NULL) {
				return fail(d, -ENOMEM, "out of memory");
			}
			d->memo = m;
			d->capmemo = cap;
		}
		d->nmemo++;
	} else {
		mp_obj_unref(d->memo[idx].o);
	}
	d->memo[idx] = (struct memo_ent){ mp_obj_ref(o), d->inf[t].depth,
		d->inf[t].glob };
	return 0;
}

static int
op_get(struct dec *d, int width)
{
	const uint8_t *q = take(d, (size_t)width);
	if (q == NULL) {
		return truncated(d);
	}
	uint64_t idx = le_load(q, width);
	if (idx >= d->nmemo) {
		return fail(d, MP_EPICKLE, "memo index not defined");
	}
	const struct memo_ent *m = &d->memo[idx];
	int rv = expose(d, m->o);
	if (rv != 0) {
		return rv;
	}
	if (m->o == NULL) {
		/* A global: the push of a NULL object is done by hand. */
		rv = push(d, mp_none(), 0);
		if (rv == 0) {
			d->stk[d->sp - 1] = NULL;
			d->inf[d->sp - 1].glob = m->glob;
		}
		return rv;
	}
	return push(d, mp_obj_ref(m->o), m->depth);
}

static int
op_dup(struct dec *d)
{
	int rv = need(d, 1);
	if (rv != 0) {
		return rv;
	}
	size_t t = d->sp - 1;
	mp_obj_t *o = d->stk[t];
	struct slot_info in = d->inf[t];
	rv = expose(d, o);
	if (rv == 0) {
		rv = push(d, o == NULL ? mp_none() : mp_obj_ref(o), in.depth);
	}
	if (rv == 0) {
		d->stk[d->sp - 1] = o;
		d->inf[d->sp - 1].glob = in.glob;
	}
	return rv;
}

static int
op_pop(struct dec *d)
{
	if (d->sp > fence(d)) {
		drop(d, d->sp - 1);
		return 0;
	}
	size_t mark = 0;
	return pop_mark(d, &mark);
}

static int
op_pop_mark(struct dec *d)
{
	size_t mark = 0;
	int rv = pop_mark(d, &mark);
	if (rv == 0) {
		drop(d, mark);
	}
	return rv;
}

/* ---- Globals and instances -------------------------------------------- */

static bool
name_is(const char *want, const uint8_t *s, size_t n)
{
	return strlen(want) == n && memcmp(want, s, n) == 0;
}

static int
push_global(struct dec *d, const uint8_t *mod, size_t mlen,
    const uint8_t *name, size_t nlen)
{
	const struct mp_pickle_opts *o = d->opts;
	size_t n = o == NULL || o->globals == NULL ? 0 : o->n_globals;
	for (size_t i = 0; i < n; i++) {
		const struct mp_pickle_global *g = &o->globals[i];
		if (g->module != NULL && g->name != NULL &&
		    name_is(g->module, mod, mlen) &&
		    name_is(g->name, name, nlen)) {
			int rv = push(d, mp_none(), 0);
			if (rv == 0) {
				d->stk[d->sp - 1] = NULL;
				d->inf[d->sp - 1].glob = (uint32_t)i;
			}
			return rv;
		}
	}
	return fail(d, MP_EFORBIDDEN, "global not in the whitelist");
}

static int
op_stack_global(struct dec *d)
{
	int rv = need(d, 2);
	if (rv != 0) {
		return rv;
	}
	const mp_obj_t *mod = d->stk[d->sp - 2];
	const mp_obj_t *name = d->stk[d->sp - 1];
	if (mod == NULL || name == NULL || mod->type != MP_TYPE_STR ||
	    name->type != MP_TYPE_STR) {
		return fail(d, MP_EPICKLE, "STACK_GLOBAL needs two str");
	}
	/* Look up before dropping: the names live in the two objects. */
	size_t base = d->sp - 2;
	rv = push_global(d, (const uint8_t *)mod->u.s.data, mod->u.s.len,
	    (const uint8_t *)name->u.s.data, name->u.s.len);
	if (rv != 0) {
		return rv;
	}
	d->stk[base] = NULL;
	d->inf[base] = d->inf[d->sp - 1];
	mp_obj_unref((mp_obj_t *)mod);
	mp_obj_unref((mp_obj_t *)name);
	d->sp = base + 1;
	return 0;
}

/* GLOBAL: "module\nname\n" in the operand. */
static int
op_global(struct dec *d)
{
	const uint8_t *mod = d->p;
	const uint8_t *nl = memchr(mod, '\n', (size_t)(d->end - mod));
	if (nl == NULL) {
		return truncated(d);
	}
	const uint8_t *name = nl + 1;
	const uint8_t *nl2 = memchr(name, '\n', (size_t)(d->end - name));
	if (nl2 == NULL) {
		return truncated(d);
	}
	d->p = nl2 + 1;
	return push_global(d, mod, (size_t)(nl - mod), name,
	    (size_t)(nl2 - name));
}

/*
 * REDUCE and NEWOBJ: a whitelisted global and an args tuple. The
 * global's hook builds the value; without one the result is an instance.
 */
static int
op_reduce(struct dec *d)
{
	int rv = need(d, 2);
	if (rv != 0) {
		return rv;
	}
	size_t base = d->sp - 2;
	mp_obj_t *args = d->stk[base + 1];
	if (d->stk[base] != NULL) {
		return fail(d, MP_EPICKLE, "call of an object, not a global");
	}
	if (args == NULL || args->type != MP_TYPE_TUPLE) {
		return fail(d, MP_EPICKLE, "arguments are not a tuple");
	}
	const struct mp_pickle_global *g =
	    &d->opts->globals[d->inf[base].glob];
	uint32_t depth = d->inf[base + 1].depth;
	mp_obj_t *o = NULL;
	d->sp = base;
	if (g->reduce != NULL) {
		rv = g->reduce(args, &o, g->user);
		mp_obj_unref(args);
		if (rv != 0 || o == NULL) {
			mp_obj_unref(o);
			return fail(d, rv < 0 ? rv : MP_EPICKLE,
			    "reduce hook refused the arguments");
		}
	} else {
		if ((size_t)depth + 1 > d->max_depth) {
			mp_obj_unref(args);
			return fail(d, MP_ELIMIT, "nesting deeper than max_depth");
		}
		depth++;
		o = mp_instance_new(g->module, g->name, args, NULL,
		    d->op == MP__OP_NEWOBJ);
	}
	return push(d, o, depth);
}

/* BUILD: state for an instance that has none yet. */
static int
op_build(struct dec *d)
{
	int rv = need(d, 2);
	if (rv != 0) {
		return rv;
	}
	size_t t = d->sp - 2;
	mp_obj_t *o = d->stk[t];
	mp_obj_t *state = d->stk[t + 1];
	if (o == NULL || o->type != MP_TYPE_INSTANCE) {
		return fail(d, MP_EFORBIDDEN, "BUILD on a non-instance");
	}
	if (state == NULL) {
		return fail(d, MP_EPICKLE, "a global used as a value");
	}
	if (o->u.inst.state != NULL) {
		return fail(d, MP_EPICKLE, "BUILD on an instance twice");
	}
	rv = grow_target(d, t, d->inf[t + 1].depth);
	if (rv != 0) {
		return rv;
	}
	o->u.inst.state = state;
	d->sp--;
	return 0;
}

/* ---- Dispatch --------------------------------------------------------- */

static int
op_stop(struct dec *d, mp_obj_t **out)
{
	if (d->sp != 1 || d->nmarks != 0) {
		return fail(d, MP_EPICKLE, "stack not exactly one item at STOP");
	}
	if (d->stk[0] == NULL) {
		return fail(d, MP_EPICKLE, "a global as the result");
	}
	if (d->p != d->end) {
		return fail(d, MP_EPICKLE, "trailing bytes after STOP");
	}
	*out = d->stk[0];
	d->sp = 0;
	return 0;
}

static int
op_mark(struct dec *d)
{
	if (d->nmarks >= d->max_depth) {
		return fail(d, MP_ELIMIT, "marks nested deeper than max_depth");
	}
	if (d->nmarks == d->capmarks) {
		size_t cap = d->capmarks == 0 ? 16 : d->capmarks * 2;
		size_t *m = mp__realloc(d->marks, cap * sizeof(*m));
		if (m == NULL) {
			return fail(d, -ENOMEM, "out of memory");
		}
		d->marks = m;
		d->capmarks = cap;
	}
	d->marks[d->nmarks++] = d->sp;
	return 0;
}

static int
op_frame(struct dec *d, bool proto)
{
	const uint8_t *q = take(d, proto ? 1 : 8);
	if (q == NULL) {
		return truncated(d);
	}
	if (proto) {
		return q[0] > 5 ? fail(d, MP_EPICKLE, "protocol above 5") : 0;
	}
	/* Frames are only a read-ahead hint: check the length, go on. */
	if (le_load(q, 8) > (uint64_t)(d->end - d->p)) {
		return truncated(d);
	}
	return 0;
}

static int
step(struct dec *d)
{
	switch (d->op) {
	case MP__OP_NONE:
		return push(d, mp_none(), 0);
	case MP__OP_NEWTRUE:
	case MP__OP_NEWFALSE:
		return push(d, mp_bool(d->op == MP__OP_NEWTRUE), 0);
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
		return push(d, mp_tuple_from(NULL, 0), 1);
	case MP__OP_TUPLE1:
	case MP__OP_TUPLE2:
	case MP__OP_TUPLE3:
		return op_tuple_n(d, (size_t)(d->op - MP__OP_TUPLE1 + 1));
	case MP__OP_TUPLE:
		return op_tuple_mark(d);
	case MP__OP_EMPTY_LIST:
		return push(d, mp_list_new(), 1);
	case MP__OP_EMPTY_DICT:
		return push(d, mp_dict_new(), 1);
	case MP__OP_EMPTY_SET:
		return push(d, mp_set_new(), 1);
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
		return op_put(d, 0);
	case MP__OP_BINPUT:
		return op_put(d, 1);
	case MP__OP_LONG_BINPUT:
		return op_put(d, 4);
	case MP__OP_BINGET:
		return op_get(d, 1);
	case MP__OP_LONG_BINGET:
		return op_get(d, 4);
	case MP__OP_POP:
		return op_pop(d);
	case MP__OP_POP_MARK:
		return op_pop_mark(d);
	case MP__OP_DUP:
		return op_dup(d);
	case MP__OP_STACK_GLOBAL:
		return op_stack_global(d);
	case MP__OP_GLOBAL:
		return op_global(d);
	case MP__OP_REDUCE:
	case MP__OP_NEWOBJ:
		return op_reduce(d);
	case MP__OP_BUILD:
		return op_build(d);
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
		return fail(d, MP_EFORBIDDEN, "opcode not allowed");
	default:
		return fail(d, MP_EPICKLE, "unknown or unsupported opcode");
	}
}

static void
dec_fini(struct dec *d)
{
	drop(d, 0);
	for (size_t i = 0; i < d->nmemo; i++) {
		mp_obj_unref(d->memo[i].o);
	}
	mp__free(d->stk);
	mp__free(d->inf);
	mp__free(d->marks);
	mp__free(d->memo);
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
	struct dec d;
	memset(&d, 0, sizeof(d));
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
	if (d.max_depth > UINT32_MAX - 1) {
		d.max_depth = UINT32_MAX - 1;
	}
	if (data == NULL && len > 0) {
		return -EINVAL;
	}
	mp_obj_t *result = NULL;
	int rv;
	for (;;) {
		if (d.p == d.end) {
			rv = truncated(&d);
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
