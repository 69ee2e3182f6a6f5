/* SPDX-License-Identifier: MIT */
/* obj/compare.c: Python's == and hash(), deep and consistent. */
#include "obj/obj_impl.h"

#include <math.h>
#include <string.h>

static bool
is_number(const mp_obj_t *o)
{
	return o->type == MP_TYPE_BOOL || o->type == MP_TYPE_INT ||
	    o->type == MP_TYPE_FLOAT;
}

static bool
number_equal(const mp_obj_t *a, const mp_obj_t *b)
{
	if (a->type == MP_TYPE_FLOAT && b->type == MP_TYPE_FLOAT) {
		return a->u.f == b->u.f;
	}
	if (a->type == MP_TYPE_FLOAT) {
		return mp__int_equal_double(b, a->u.f);
	}
	if (b->type == MP_TYPE_FLOAT) {
		return mp__int_equal_double(a, b->u.f);
	}
	return mp__int_equal(a, b);
}

/*
 * One comparison's memory of the container pairs it found equal. A value
 * whose items are shared many times over is small as a graph but huge as
 * a tree: two separately built nests t = (t, t), 60 deep, are a 250-byte
 * pickle, and as two keys of one dict (equal hashes) they would be
 * compared 2^60 times over. Remembering each pair once found equal makes
 * the work linear in the pairs met. Only pairs with a shared side are
 * kept: a container referenced once is met only through its one parent,
 * whose pair is kept or met once. Unequal pairs are not kept: one ends
 * the comparison, but in a table's probing, where it takes unequal keys
 * with equal hashes. Objects do not change during a comparison, so a kept
 * pair stays true. Out of memory, no more pairs are kept: slower, still
 * right.
 */
struct eq_pair {
	const mp_obj_t *a;
	const mp_obj_t *b;
};

#define EQ_INLINE 16

struct mp__eq {
	struct eq_pair *tab; /* NULL before the first pair, else inl or heap */
	size_t cap;          /* a power of two; a == NULL marks a free slot */
	size_t n;
	bool full;           /* an allocation failed: keep no more */
	struct eq_pair inl[EQ_INLINE];
};

static uint64_t mix64(uint64_t h);

/* The slot holding the pair (a, b), or the free one where it would go. */
static size_t
eq_slot(const struct eq_pair *tab, size_t cap, const mp_obj_t *a,
    const mp_obj_t *b)
{
	uint64_t k = (uint64_t)(uintptr_t)a * 0x9e3779b97f4a7c15ULL ^
	    (uint64_t)(uintptr_t)b;
	size_t i = (size_t)mix64(k) & (cap - 1);
	while (tab[i].a != NULL && (tab[i].a != a || tab[i].b != b)) {
		i = (i + 1) & (cap - 1);
	}
	return i;
}

static bool
eq_known(const struct mp__eq *eq, const mp_obj_t *a, const mp_obj_t *b)
{
	return eq->n > 0 && eq->tab[eq_slot(eq->tab, eq->cap, a, b)].a != NULL;
}

static void
eq_remember(struct mp__eq *eq, const mp_obj_t *a, const mp_obj_t *b)
{
	if (eq->full) {
		return;
	}
	if ((eq->n + 1) * 2 > eq->cap) {
		size_t cap = eq->cap == 0 ? EQ_INLINE : eq->cap * 2;
		struct eq_pair *tab = eq->cap == 0 ? eq->inl :
		    mp__calloc(cap, sizeof(*tab));
		if (tab == NULL) {
			eq->full = true;
			return;
		}
		if (eq->cap == 0) {
			memset(tab, 0, sizeof(eq->inl));
		}
		for (size_t i = 0; i < eq->cap; i++) {
			if (eq->tab[i].a != NULL) {
				tab[eq_slot(tab, cap, eq->tab[i].a,
				    eq->tab[i].b)] = eq->tab[i];
			}
		}
		if (eq->tab != eq->inl) {
			mp__free(eq->tab);
		}
		eq->tab = tab;
		eq->cap = cap;
	}
	eq->tab[eq_slot(eq->tab, eq->cap, a, b)] = (struct eq_pair){ a, b };
	eq->n++;
}

static bool
seq_equal(struct mp__eq *eq, const mp_obj_t *a, const mp_obj_t *b)
{
	if (a->u.seq.len != b->u.seq.len) {
		return false;
	}
	for (size_t i = 0; i < a->u.seq.len; i++) {
		if (!mp__obj_equal_in(eq, a->u.seq.items[i],
		    b->u.seq.items[i])) {
			return false;
		}
	}
	return true;
}

static bool
is_set_type(const mp_obj_t *o)
{
	return o->type == MP_TYPE_SET || o->type == MP_TYPE_FROZENSET;
}

/*
 * Instances compare by class and content. CPython would compare most of
 * them by identity, but a decoded exception or Token has no identity to
 * keep, and comparing what it carries is what tests and callers want.
 */
static bool
instance_equal(struct mp__eq *eq, const mp_obj_t *a, const mp_obj_t *b)
{
	if (strcmp(a->u.inst.module, b->u.inst.module) != 0 ||
	    strcmp(a->u.inst.name, b->u.inst.name) != 0 ||
	    !mp__obj_equal_in(eq, a->u.inst.args, b->u.inst.args)) {
		return false;
	}
	if (a->u.inst.state == NULL || b->u.inst.state == NULL) {
		return a->u.inst.state == b->u.inst.state;
	}
	return mp__obj_equal_in(eq, a->u.inst.state, b->u.inst.state);
}

/* Two containers of comparable types: known equal, or compared once. */
static bool
container_equal(struct mp__eq *eq, const mp_obj_t *a, const mp_obj_t *b)
{
	bool keep = mp__obj_shared(a) || mp__obj_shared(b);
	if (keep && eq_known(eq, a, b)) {
		return true;
	}
	bool same;
	if (a->type == MP_TYPE_TUPLE || a->type == MP_TYPE_LIST) {
		same = seq_equal(eq, a, b);
	} else if (a->type == MP_TYPE_INSTANCE) {
		same = instance_equal(eq, a, b);
	} else {
		same = mp__table_equal(eq, a, b);
	}
	if (same && keep) {
		eq_remember(eq, a, b);
	}
	return same;
}

static bool
equal(struct mp__eq *eq, const mp_obj_t *a, const mp_obj_t *b)
{
	if (a == NULL || b == NULL) {
		return a == b;
	}
	if (is_number(a) && is_number(b)) {
		return number_equal(a, b);
	}
	if (a->type != b->type && !(is_set_type(a) && is_set_type(b))) {
		return false;
	}
	switch (a->type) {
	case MP_TYPE_NONE:
		return true;
	case MP_TYPE_STR:
	case MP_TYPE_BYTES:
		return a->u.s.len == b->u.s.len &&
		    memcmp(a->u.s.data, b->u.s.data, a->u.s.len) == 0;
	case MP_TYPE_TUPLE:
	case MP_TYPE_LIST:
	case MP_TYPE_DICT:
	case MP_TYPE_SET:
	case MP_TYPE_FROZENSET:
	case MP_TYPE_INSTANCE:
		return container_equal(eq, a, b);
	default:
		return false;
	}
}

bool
mp_obj_equal(const mp_obj_t *a, const mp_obj_t *b)
{
	struct mp__eq eq; /* inl[] is cleared only if it is used */
	eq.tab = NULL;
	eq.cap = 0;
	eq.n = 0;
	eq.full = false;
	bool same = equal(&eq, a, b);
	if (eq.tab != eq.inl) {
		mp__free(eq.tab);
	}
	return same;
}

bool
mp__obj_equal_in(struct mp__eq *eq, const mp_obj_t *a, const mp_obj_t *b)
{
	/* CPython's containers test identity before ==, so [nan] == [nan]
	 * holds when both lists hold the same NaN object. */
	if (a == b) {
		return true;
	}
	return eq == NULL ? mp_obj_equal(a, b) : equal(eq, a, b);
}

/* ---- Hashing ---------------------------------------------------------- */

/* The finaliser of MurmurHash3: every input bit affects every output bit. */
static uint64_t
mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

uint64_t
mp__hash_bytes(const void *p, size_t n)
{
	const uint8_t *s = p;
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ (n * 0xc2b2ae3d27d4eb4fULL);
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, s, 8);
		h = (h ^ mix64(w)) * 0x9e3779b97f4a7c15ULL;
		h = (h << 29) | (h >> 35);
		s += 8;
		n -= 8;
	}
	uint64_t tail = 0;
	memcpy(&tail, s, n);
	return mix64(h ^ tail ^ ((uint64_t)n << 56));
}

/* CPython's tuple hash (xxHash's round), from the items' hashes. */
static int
tuple_hash(const mp_obj_t *o, uint64_t *out)
{
	const uint64_t p1 = 11400714785074694791ULL;
	const uint64_t p2 = 14029467366897019727ULL;
	const uint64_t p5 = 2870177450012600261ULL;
	uint64_t known = atomic_load_explicit(&o->u.seq.hash,
	    memory_order_relaxed);
	if (known != 0) {
		*out = known;
		return 0;
	}
	uint64_t acc = p5;
	for (size_t i = 0; i < o->u.seq.len; i++) {
		uint64_t lane;
		int rv = mp_obj_hash(o->u.seq.items[i], &lane);
		if (rv != 0) {
			return rv;
		}
		acc += lane * p2;
		acc = (acc << 31) | (acc >> 33);
		acc *= p1;
	}
	acc += o->u.seq.len ^ (p5 ^ 3527539UL);
	*out = acc == UINT64_MAX ? 1546275796 : acc;
	/* Items of a tuple never change, nor do hashable items' hashes: the
	 * cache is not part of the value, so a const tuple may keep it. */
	atomic_store_explicit(&((mp_obj_t *)o)->u.seq.hash, *out,
	    memory_order_relaxed);
	return 0;
}

/* CPython's frozenset hash: order-independent, from the stored hashes. */
static uint64_t
set_hash(const mp_obj_t *o)
{
	uint64_t h = 0;
	for (size_t i = 0; i < o->u.t.nentries; i++) {
		const struct mp__entry *e = &o->u.t.entries[i];
		if (e->key != NULL) {
			h ^= ((e->hash ^ 89869747ULL) ^ (e->hash << 16)) *
			    3644798167ULL;
		}
	}
	h ^= ((uint64_t)o->u.t.len + 1) * 1927868237ULL;
	h ^= (h >> 11) ^ (h >> 25);
	h = h * 69069U + 907133923ULL;
	return h == UINT64_MAX ? 590923713 : h;
}

int
mp_obj_hash(const mp_obj_t *o, uint64_t *out)
{
	uint64_t h;
	int rv = 0;
	if (o == NULL) {
		return -EINVAL;
	}
	switch (o->type) {
	case MP_TYPE_NONE:
		h = 0xfca86420;
		break;
	case MP_TYPE_BOOL:
	case MP_TYPE_INT:
		h = mp__int_hash(o);
		break;
	case MP_TYPE_FLOAT:
		h = mp__double_hash(o->u.f);
		break;
	case MP_TYPE_STR:
	case MP_TYPE_BYTES:
		h = mp__hash_bytes(o->u.s.data, o->u.s.len);
		break;
	case MP_TYPE_TUPLE:
		rv = tuple_hash(o, &h);
		break;
	case MP_TYPE_FROZENSET:
		h = set_hash(o);
		break;
	case MP_TYPE_INSTANCE:
		/* Consistent with instance_equal, which requires equal args. */
		rv = mp_obj_hash(o->u.inst.args, &h);
		h ^= mp__hash_bytes(o->u.inst.name, strlen(o->u.inst.name));
		break;
	default:
		return MP_ETYPE;
	}
	if (rv != 0) {
		return rv;
	}
	*out = h;
	return 0;
}
