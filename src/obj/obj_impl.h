/* SPDX-License-Identifier: MIT */
/* obj/obj_impl.h: mp_obj_t's layout, shared by src/obj/ (internal). */
#ifndef MP_OBJ_IMPL_H
#define MP_OBJ_IMPL_H

#include <mproc/obj.h>

#include "core/buf.h"
#include "core/internal.h"

#include <stdatomic.h>

/*
 * A hash table in the layout of CPython's compact dict: entries[] keeps
 * insertion order and index[] (a power of two of slots, open addressing
 * with perturbed probing) points into it. A deleted entry keeps its place
 * with key == NULL until the next resize compacts the array, so iteration
 * by position stays in insertion order. Sets use the same table with
 * value always NULL.
 */
struct mp__entry {
	uint64_t hash;
	mp_obj_t *key;   /* NULL: deleted */
	mp_obj_t *value; /* NULL for sets */
};

struct mp__table {
	int64_t *index;   /* nslots slots: -1 empty, -2 deleted, else entry */
	size_t nslots;
	struct mp__entry *entries;
	size_t nentries;  /* used positions of entries[], live or deleted */
	size_t cap;       /* allocated entries */
	size_t len;       /* live entries */
};

/*
 * An int is small (limbs == NULL, value in small) whenever its value fits
 * int64_t; otherwise it is big: sign and magnitude in 32-bit limbs, least
 * significant first, with no leading zero limb. Keeping one form per value
 * lets equality and hashing compare forms before values.
 */
struct mp__int {
	int64_t small;
	uint32_t *limbs;
	size_t nlimbs;
	bool neg;
};

struct mp_obj {
	atomic_size_t refs;
	enum mp_type type;
	bool immortal;
	/* Size class of the block (cache.c), 0: a block of its own size. */
	uint8_t cls;
	union {
		bool b;
		struct mp__int i;
		double f;
		struct {
			char *data; /* NUL-terminated, after the header */
			size_t len;
		} s;
		struct {
			mp_obj_t **items;
			size_t len;
			size_t cap; /* lists only; tuples store items inline */
			/*
			 * Tuples: the hash once computed, 0 before (a hash
			 * of 0 is not kept). Items shared many times over
			 * (t = (t, t) nested 60 deep is a 130-byte pickle)
			 * would otherwise be hashed 2^60 times. Atomic: a
			 * tuple is read by many threads at once.
			 */
			atomic_uint_least64_t hash;
		} seq;
		struct mp__table t;
		struct {
			char *module;
			char *name;
			mp_obj_t *args;
			mp_obj_t *state;
			bool new_style;
		} inst;
	} u;
};

/* cache.c: blocks of cls * MP__OBJ_CACHE_GRAIN bytes, cls >= 1. */
#define MP__OBJ_CACHE_GRAIN 16
#define MP__OBJ_CACHE_MAX 256
void *mp__obj_cache_take(unsigned cls);
void mp__obj_cache_give(void *block, unsigned cls);

/* obj.c */
mp_obj_t *mp__obj_alloc(enum mp_type type, size_t extra);
/* Room for extra more items in list l: 0 or -ENOMEM (l unchanged). */
int mp__list_reserve(mp_obj_t *l, size_t extra);

/* More than one reference: o may be met again while walking a value. */
static inline bool
mp__obj_shared(const mp_obj_t *o)
{
	return atomic_load_explicit(&o->refs, memory_order_relaxed) > 1;
}

/* int.c */
/* Decimal text of an int into b. */
int mp__int_format(const mp_obj_t *o, struct mp__buf *b);
bool mp__int_equal(const mp_obj_t *a, const mp_obj_t *b);
/* Exact comparison of an int with a double (false for NaN, inf). */
bool mp__int_equal_double(const mp_obj_t *a, double d);
/* Python's numeric hash (mod 2^61 - 1), so 1, 1.0 and True collide. */
uint64_t mp__int_hash(const mp_obj_t *o);
uint64_t mp__double_hash(double d);
double mp__int_to_double(const mp_obj_t *o);

/* table.c */
void mp__table_fini(struct mp__table *t);
/* Equal tables (dicts, or sets of either kind) within the comparison eq. */
struct mp__eq;
bool mp__table_equal(struct mp__eq *eq, const mp_obj_t *a,
    const mp_obj_t *b);

/* repr.c */
/*
 * mp_obj_repr with its own cap on the text (mp_obj_repr's is 16 MiB):
 * -ENOMEM once the text passes max bytes, checked before each value.
 * tests/fuzz/fuzz_pickle prints every value it decodes with a small cap,
 * so that a shared nest costs it little.
 */
int mp__obj_repr_max(const mp_obj_t *o, size_t max, char **out);

/* utf8.c */
/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
size_t mp__utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);
bool mp__utf8_valid(const uint8_t *s, size_t n);

/* unicode_printable.c */
bool mp__unicode_isprintable(uint32_t cp);

/* compare.c */
/*
 * Equality inside containers: identity first, as CPython's comparisons.
 * eq is the comparison this one is part of (what it found equal so far),
 * NULL to start a new one, as mp_obj_equal does.
 */
bool mp__obj_equal_in(struct mp__eq *eq, const mp_obj_t *a,
    const mp_obj_t *b);
uint64_t mp__hash_bytes(const void *p, size_t n);

#endif
