/* SPDX-License-Identifier: MIT */
/* obj/pickle_dec_ref.c: memo, shared references, globals and instances. */
#include "obj/pickle_dec.h"

#include <string.h>

/*
 * BINGET and DUP push the same object again, never a copy (a copy would
 * make [[x] * 2] * 2 ... exponential). CPython writes every APPEND,
 * SETITEM, ADDITEMS and BUILD of a container while it saves that
 * container, so in acyclic data a container is fetched from the memo only
 * once it is complete. A container fetched (BINGET, DUP) and then changed
 * is therefore always a cycle in CPython's output, and is refused:
 * fetched mutable containers are "exposed", and changing an exposed one
 * fails with MP_EPICKLE. This is cheap (the set is empty unless a
 * container is fetched) and keeps depths exact: a container only grows
 * while it sits in the one fresh stack slot that made it, whose depth,
 * and the memo entry made from that slot, follow its growth.
 */

static size_t
ptr_hash(const void *p)
{
	uint64_t h = (uint64_t)(uintptr_t)p >> 4;
	return (size_t)(h * 0x9e3779b97f4a7c15ull >> 17);
}

static bool
exposed(const struct mp__pdec *d, const mp_obj_t *o)
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
expose(struct mp__pdec *d, const mp_obj_t *o)
{
	if (o == NULL || !mp__pdec_mutable(o) || exposed(d, o)) {
		return 0;
	}
	if ((d->explen + 1) * 2 > d->expcap) {
		size_t cap = d->expcap == 0 ? 16 : d->expcap * 2;
		const mp_obj_t **t = mp__calloc(cap, sizeof(*t));
		if (t == NULL) {
			return mp__pdec_fail(d, -ENOMEM, "out of memory");
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
int
mp__pdec_grow_target(struct mp__pdec *d, size_t t, uint32_t item_depth)
{
	mp_obj_t *o = d->stk[t];
	if (exposed(d, o)) {
		return mp__pdec_fail(d, MP_EPICKLE,
		    "container changed after it was shared (a cycle)");
	}
	if ((size_t)item_depth + 1 > d->max_depth) {
		return mp__pdec_fail(d, MP_ELIMIT,
		    "nesting deeper than max_depth");
	}
	struct mp__pdec_slot *in = &d->inf[t];
	if (item_depth + 1 > in->depth) {
		in->depth = item_depth + 1;
	}
	if (in->memo != MP__PDEC_NO_MEMO && in->memo < d->nmemo &&
	    d->memo[in->memo].o == o) {
		d->memo[in->memo].depth = in->depth;
	}
	return 0;
}

/* ---- Memo ------------------------------------------------------------- */

/* MEMOIZE (index = memo size) and BINPUT / LONG_BINPUT. */
int
mp__pdec_op_put(struct mp__pdec *d, int width)
{
	uint64_t idx = d->nmemo;
	if (width > 0) {
		const uint8_t *q = mp__pdec_take(d, (size_t)width);
		if (q == NULL) {
			return mp__pdec_truncated(d);
		}
		idx = mp__pdec_le(q, width);
	}
	int rv = mp__pdec_need(d, 1);
	if (rv != 0) {
		return rv;
	}
	if (idx >= d->max_memo) {
		return mp__pdec_fail(d, MP_ELIMIT, "memo larger than max_memo");
	}
	/* Picklers number the memo densely; a gap is refused, which keeps
	 * a 5-byte LONG_BINPUT from allocating a huge table. */
	if (idx > d->nmemo) {
		return mp__pdec_fail(d, MP_EPICKLE,
		    "memo index out of sequence");
	}
	size_t t = d->sp - 1;
	mp_obj_t *o = d->stk[t];
	if (o != NULL && mp__pdec_mutable(o) && !exposed(d, o)) {
		if (d->inf[t].memo != MP__PDEC_NO_MEMO) {
			return mp__pdec_fail(d, MP_EPICKLE,
			    "container memoized twice");
		}
		d->inf[t].memo = (uint32_t)idx;
	}
	if (idx == d->nmemo) {
		if (d->nmemo == d->capmemo) {
			struct mp__pdec_memo *m = mp__pdec_grow(d->memo,
			    d->memo0, d->capmemo * 2, sizeof(*m), d->nmemo);
			if (m == NULL) {
				return mp__pdec_fail(d, -ENOMEM,
				    "out of memory");
			}
			d->memo = m;
			d->capmemo *= 2;
		}
		d->nmemo++;
	} else {
		mp__pdec_memo_drop(d, &d->memo[idx]);
	}
	/*
	 * Memoizing is on the path of every container and string of a
	 * protocol 4 pickle: a count of 1 is ours alone, and a plain
	 * increment spares the locked instruction.
	 */
	bool private_ref = o != NULL && !o->immortal &&
	    atomic_load_explicit(&o->refs, memory_order_relaxed) == 1;
	if (private_ref) {
		atomic_store_explicit(&o->refs, 2, memory_order_relaxed);
	} else {
		mp_obj_ref(o);
	}
	d->memo[idx] = (struct mp__pdec_memo){ o, d->inf[t].depth,
		d->inf[t].glob, private_ref };
	return 0;
}

void
mp__pdec_memo_drop(struct mp__pdec *d, struct mp__pdec_memo *m)
{
	mp_obj_t *o = m->o;
	if (o == NULL) {
		return;
	}
	size_t refs = atomic_load_explicit(&o->refs, memory_order_relaxed);
	if (m->private_ref && !d->hook_ran && refs > 1) {
		/* Only this thread ever saw o: see struct mp__pdec_memo. */
		atomic_store_explicit(&o->refs, refs - 1, memory_order_relaxed);
		return;
	}
	mp_obj_unref(o);
}

int
mp__pdec_op_get(struct mp__pdec *d, int width)
{
	const uint8_t *q = mp__pdec_take(d, (size_t)width);
	if (q == NULL) {
		return mp__pdec_truncated(d);
	}
	uint64_t idx = mp__pdec_le(q, width);
	if (idx >= d->nmemo) {
		return mp__pdec_fail(d, MP_EPICKLE, "memo index not defined");
	}
	const struct mp__pdec_memo *m = &d->memo[idx];
	int rv = expose(d, m->o);
	if (rv != 0) {
		return rv;
	}
	if (m->o == NULL) {
		/* A global: the push of a NULL object is done by hand. */
		rv = mp__pdec_push(d, mp_none(), 0);
		if (rv == 0) {
			d->stk[d->sp - 1] = NULL;
			d->inf[d->sp - 1].glob = m->glob;
		}
		return rv;
	}
	return mp__pdec_push(d, mp_obj_ref(m->o), m->depth);
}

int
mp__pdec_op_dup(struct mp__pdec *d)
{
	int rv = mp__pdec_need(d, 1);
	if (rv != 0) {
		return rv;
	}
	size_t t = d->sp - 1;
	mp_obj_t *o = d->stk[t];
	struct mp__pdec_slot in = d->inf[t];
	rv = expose(d, o);
	if (rv == 0) {
		rv = mp__pdec_push(d, o == NULL ? mp_none() : mp_obj_ref(o),
		    in.depth);
	}
	if (rv == 0) {
		d->stk[d->sp - 1] = o;
		d->inf[d->sp - 1].glob = in.glob;
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
push_global(struct mp__pdec *d, const uint8_t *mod, size_t mlen,
    const uint8_t *name, size_t nlen)
{
	const struct mp_pickle_opts *o = d->opts;
	size_t n = o == NULL || o->globals == NULL ? 0 : o->n_globals;
	for (size_t i = 0; i < n; i++) {
		const struct mp_pickle_global *g = &o->globals[i];
		if (g->module != NULL && g->name != NULL &&
		    name_is(g->module, mod, mlen) &&
		    name_is(g->name, name, nlen)) {
			int rv = mp__pdec_push(d, mp_none(), 0);
			if (rv == 0) {
				d->stk[d->sp - 1] = NULL;
				d->inf[d->sp - 1].glob = (uint32_t)i;
			}
			return rv;
		}
	}
	return mp__pdec_fail(d, MP_EFORBIDDEN, "global not in the whitelist");
}

int
mp__pdec_op_stack_global(struct mp__pdec *d)
{
	int rv = mp__pdec_need(d, 2);
	if (rv != 0) {
		return rv;
	}
	const mp_obj_t *mod = d->stk[d->sp - 2];
	const mp_obj_t *name = d->stk[d->sp - 1];
	if (mod == NULL || name == NULL || mod->type != MP_TYPE_STR ||
	    name->type != MP_TYPE_STR) {
		return mp__pdec_fail(d, MP_EPICKLE,
		    "STACK_GLOBAL needs two str");
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
int
mp__pdec_op_global(struct mp__pdec *d)
{
	const uint8_t *mod = d->p;
	const uint8_t *nl = memchr(mod, '\n', (size_t)(d->end - mod));
	if (nl == NULL) {
		return mp__pdec_truncated(d);
	}
	const uint8_t *name = nl + 1;
	const uint8_t *nl2 = memchr(name, '\n', (size_t)(d->end - name));
	if (nl2 == NULL) {
		return mp__pdec_truncated(d);
	}
	d->p = nl2 + 1;
	return push_global(d, mod, (size_t)(nl - mod), name,
	    (size_t)(nl2 - name));
}

/*
 * REDUCE and NEWOBJ: a whitelisted global and an args tuple. The
 * global's hook builds the value; without one the result is an instance.
 */
int
mp__pdec_op_reduce(struct mp__pdec *d)
{
	int rv = mp__pdec_need(d, 2);
	if (rv != 0) {
		return rv;
	}
	size_t base = d->sp - 2;
	mp_obj_t *args = d->stk[base + 1];
	if (d->stk[base] != NULL) {
		return mp__pdec_fail(d, MP_EPICKLE,
		    "call of an object, not a global");
	}
	if (args == NULL || args->type != MP_TYPE_TUPLE) {
		return mp__pdec_fail(d, MP_EPICKLE,
		    "arguments are not a tuple");
	}
	const struct mp_pickle_global *g =
	    &d->opts->globals[d->inf[base].glob];
	uint32_t depth = d->inf[base + 1].depth;
	mp_obj_t *o = NULL;
	d->sp = base;
	if (g->reduce != NULL) {
		d->hook_ran = true;
		rv = g->reduce(args, &o, g->user);
		mp_obj_unref(args);
		/*
		 * A result still held elsewhere (an item of memoized args,
		 * say) may be reachable from the memo without a BINGET of
		 * it, so it counts as shared: changing it could close a
		 * cycle.
		 */
		if (rv == 0 && o != NULL && mp__pdec_mutable(o) &&
		    atomic_load(&o->refs) > 1) {
			rv = expose(d, o);
		}
		if (rv != 0 || o == NULL) {
			mp_obj_unref(o);
			return mp__pdec_fail(d, rv < 0 ? rv : MP_EPICKLE,
			    "reduce hook refused the arguments");
		}
	} else {
		if ((size_t)depth + 1 > d->max_depth) {
			mp_obj_unref(args);
			return mp__pdec_fail(d, MP_ELIMIT,
			    "nesting deeper than max_depth");
		}
		depth++;
		o = mp_instance_new(g->module, g->name, args, NULL,
		    d->op == MP__OP_NEWOBJ);
	}
	return mp__pdec_push(d, o, depth);
}

/* BUILD: state for an instance that has none yet. */
int
mp__pdec_op_build(struct mp__pdec *d)
{
	int rv = mp__pdec_need(d, 2);
	if (rv != 0) {
		return rv;
	}
	size_t t = d->sp - 2;
	mp_obj_t *o = d->stk[t];
	mp_obj_t *state = d->stk[t + 1];
	if (o == NULL || o->type != MP_TYPE_INSTANCE) {
		return mp__pdec_fail(d, MP_EFORBIDDEN,
		    "BUILD on a non-instance");
	}
	if (state == NULL) {
		return mp__pdec_fail(d, MP_EPICKLE, "a global used as a value");
	}
	if (o->u.inst.state != NULL) {
		return mp__pdec_fail(d, MP_EPICKLE,
		    "BUILD on an instance twice");
	}
	rv = mp__pdec_grow_target(d, t, d->inf[t + 1].depth);
	if (rv != 0) {
		return rv;
	}
	o->u.inst.state = state;
	d->sp--;
	return 0;
}
