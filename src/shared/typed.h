/* SPDX-License-Identifier: MIT */
/* shared/typed.h: typecodes and locked, range-checked element access (internal). */
#ifndef MP_SHARED_TYPED_H
#define MP_SHARED_TYPED_H

#include "core/internal.h"
#include "shared/arena.h"
#include "sync/lock_internal.h"

#include <mproc/shared.h>

#include <float.h>
#include <math.h>
#include <string.h>

/* What a typecode stores. */
enum {
	MP__TK_SIGNED = 0,
	MP__TK_UNSIGNED = 1,
	MP__TK_FLOAT = 2,
};

struct mp__typecode {
	char code;
	uint8_t size;
	uint8_t kind;       /* MP__TK_* */
	int64_t min;        /* integer kinds */
	uint64_t max;
};

/*
 * The typecodes' table, indexed by the tc field below; mp__typecode_index
 * returns the index of code, or -EINVAL.
 */
extern const struct mp__typecode mp__typecodes[];
int mp__typecode_index(char code);

/*
 * The shared block of a Value (len 1) or an Array: header and numbers in
 * one arena block, so a Value with its own lock is one 64-byte cache line
 * holding both the lock word and the number. Under contention that line
 * moves between CPUs once per critical section instead of twice.
 *
 * lock is a pointer in shared memory, against the usual rule, because a
 * given lock may live outside the arena (a named lock mapped by the
 * creator): no offset from the arena base can name it. It is valid in
 * every process that can reach the block at all, since both the block and
 * the lock reach a child by fork, at the same addresses.
 */
struct mp__num {
	struct mp_lock own;     /* the lock, when MP_LOCK_OWN */
	struct mp_lock *lock;   /* &own, the caller's lock, or NULL */
	uint64_t len;
	uint32_t magic;
	uint8_t tc;             /* index in mp__typecodes */
	uint8_t pad[3];
};

_Static_assert(sizeof(struct mp__num) == 48, "shared layout is pinned");
_Static_assert(sizeof(struct mp__num) % 8 == 0, "numbers are 8-byte aligned");

#define MP__VALUE_MAGIC 0x65756c76u  /* "vlue" */
#define MP__ARRAY_MAGIC 0x79617261u  /* "aray" */

static inline unsigned char *
mp__num_data(struct mp__num *n)
{
	return (unsigned char *)(n + 1);
}

static inline const struct mp__typecode *
mp__num_type(const struct mp__num *n)
{
	return &mp__typecodes[n->tc];
}

/*
 * mp__num_new: allocate and fill a block (init: len values of the C type,
 * or NULL for zeros). Returns 0, -EINVAL, -ENOMEM.
 * mp__num_free: release it (NULL ignored).
 */
int mp__num_new(char typecode, size_t len, const void *init,
    const struct mp_value_opts *opts, uint32_t magic, struct mp__num **out);
void mp__num_free(struct mp__num *n, uint32_t magic);

/* The slow path of mp__num_lock: see the -EOWNERDEAD rule in shared.h. */
int mp__num_lock_failed(struct mp__num *n, int rv);

/* Take the block's lock for one access; 0 when there is none. */
static inline int
mp__num_lock(struct mp__num *n)
{
	if (n->lock == NULL) {
		return 0;
	}
	int rv = mp_lock_acquire(n->lock, MP_FOREVER);
	if (__builtin_expect(rv != 0, 0)) {
		return mp__num_lock_failed(n, rv);
	}
	return 0;
}

static inline void
mp__num_unlock(struct mp__num *n)
{
	if (n->lock != NULL) {
		int rv = mp_lock_release(n->lock);
		MP_ASSERT(rv == 0);
	}
}

/*
 * The user's mp_value_lock / mp_array_lock (and unlock): the lock's own
 * result, -EOWNERDEAD included, or -EINVAL for a raw block (no lock).
 */
static inline int
mp__num_user_lock(struct mp__num *n, int64_t timeout_ms)
{
	return n->lock == NULL ? -EINVAL : mp_lock_acquire(n->lock, timeout_ms);
}

static inline int
mp__num_user_unlock(struct mp__num *n)
{
	return n->lock == NULL ? -EINVAL : mp_lock_release(n->lock);
}

/* ---- One element: p points at it, t is its typecode. -------------------- */

/*
 * Loads and stores go through memcpy of a fixed size, which compilers turn
 * into one move: the element may sit in a buffer of another declared type
 * (a copy taken under the lock), and memcpy keeps that free of aliasing
 * questions.
 */
static inline int64_t
mp__load_signed(const void *p, uint8_t size)
{
	int8_t b;
	int16_t h;
	int32_t i;
	int64_t q;
	switch (size) {
	case 1:
		memcpy(&b, p, sizeof(b));
		return b;
	case 2:
		memcpy(&h, p, sizeof(h));
		return h;
	case 4:
		memcpy(&i, p, sizeof(i));
		return i;
	default:
		memcpy(&q, p, sizeof(q));
		return q;
	}
}

static inline uint64_t
mp__load_unsigned(const void *p, uint8_t size)
{
	uint8_t b;
	uint16_t h;
	uint32_t i;
	uint64_t q;
	switch (size) {
	case 1:
		memcpy(&b, p, sizeof(b));
		return b;
	case 2:
		memcpy(&h, p, sizeof(h));
		return h;
	case 4:
		memcpy(&i, p, sizeof(i));
		return i;
	default:
		memcpy(&q, p, sizeof(q));
		return q;
	}
}

/* Store an integer already checked against the typecode's range. */
static inline void
mp__store_int(void *p, uint8_t size, uint64_t bits)
{
	uint8_t b = (uint8_t)bits;
	uint16_t h = (uint16_t)bits;
	uint32_t i = (uint32_t)bits;
	switch (size) {
	case 1:
		memcpy(p, &b, sizeof(b));
		break;
	case 2:
		memcpy(p, &h, sizeof(h));
		break;
	case 4:
		memcpy(p, &i, sizeof(i));
		break;
	default:
		memcpy(p, &bits, sizeof(bits));
		break;
	}
}

static inline double
mp__load_float(const void *p, uint8_t size)
{
	float f;
	double d;
	if (size == 4) {
		memcpy(&f, p, sizeof(f));
		return f;
	}
	memcpy(&d, p, sizeof(d));
	return d;
}

/* A float typecode refuses finite values it cannot hold (ctypes gives inf). */
static inline int
mp__store_float(void *p, uint8_t size, double x)
{
	if (size == 4) {
		if (isfinite(x) && fabs(x) > FLT_MAX) {
			return -ERANGE;
		}
		float f = (float)x;
		memcpy(p, &f, sizeof(f));
	} else {
		memcpy(p, &x, sizeof(x));
	}
	return 0;
}

static inline int
mp__elem_set_long(const struct mp__typecode *t, void *p, int64_t x)
{
	if (t->kind == MP__TK_FLOAT) {
		return mp__store_float(p, t->size, (double)x);
	}
	if (x < t->min || (x > 0 && (uint64_t)x > t->max)) {
		return -ERANGE;
	}
	mp__store_int(p, t->size, (uint64_t)x);
	return 0;
}

static inline int
mp__elem_set_ulong(const struct mp__typecode *t, void *p, uint64_t x)
{
	if (t->kind == MP__TK_FLOAT) {
		return mp__store_float(p, t->size, (double)x);
	}
	if (x > t->max) {
		return -ERANGE;
	}
	mp__store_int(p, t->size, x);
	return 0;
}

static inline int
mp__elem_set_double(const struct mp__typecode *t, void *p, double x)
{
	if (t->kind != MP__TK_FLOAT) {
		return -EINVAL;
	}
	return mp__store_float(p, t->size, x);
}

static inline int
mp__elem_get_long(const struct mp__typecode *t, const void *p, int64_t *out)
{
	if (t->kind == MP__TK_SIGNED) {
		*out = mp__load_signed(p, t->size);
		return 0;
	}
	if (t->kind == MP__TK_FLOAT) {
		return -EINVAL;
	}
	uint64_t u = mp__load_unsigned(p, t->size);
	if (u > (uint64_t)INT64_MAX) {
		return -ERANGE;
	}
	*out = (int64_t)u;
	return 0;
}

static inline int
mp__elem_get_ulong(const struct mp__typecode *t, const void *p, uint64_t *out)
{
	if (t->kind == MP__TK_UNSIGNED) {
		*out = mp__load_unsigned(p, t->size);
		return 0;
	}
	if (t->kind == MP__TK_FLOAT) {
		return -EINVAL;
	}
	int64_t s = mp__load_signed(p, t->size);
	if (s < 0) {
		return -ERANGE;
	}
	*out = (uint64_t)s;
	return 0;
}

static inline double
mp__elem_get_double(const struct mp__typecode *t, const void *p)
{
	if (t->kind == MP__TK_FLOAT) {
		return mp__load_float(p, t->size);
	}
	if (t->kind == MP__TK_SIGNED) {
		return (double)mp__load_signed(p, t->size);
	}
	return (double)mp__load_unsigned(p, t->size);
}

/* The sum is computed exactly (the builtins widen), then range-checked. */
static inline int
mp__elem_add_long(const struct mp__typecode *t, void *p, int64_t x)
{
	if (t->kind == MP__TK_FLOAT) {
		return mp__store_float(p, t->size,
		    mp__load_float(p, t->size) + (double)x);
	}
	if (t->kind == MP__TK_SIGNED) {
		int64_t r;
		int64_t cur = mp__load_signed(p, t->size);
		if (__builtin_add_overflow(cur, x, &r) || r < t->min ||
		    (r > 0 && (uint64_t)r > t->max)) {
			return -ERANGE;
		}
		mp__store_int(p, t->size, (uint64_t)r);
		return 0;
	}
	uint64_t r;
	if (__builtin_add_overflow(mp__load_unsigned(p, t->size), x, &r) ||
	    r > t->max) {
		return -ERANGE;
	}
	mp__store_int(p, t->size, r);
	return 0;
}

static inline int
mp__elem_add_double(const struct mp__typecode *t, void *p, double x)
{
	if (t->kind != MP__TK_FLOAT) {
		return -EINVAL;
	}
	return mp__store_float(p, t->size, mp__load_float(p, t->size) + x);
}

/*
 * mp__elem_obj: one element as Python shows it (int, float, or for 'c' a
 * one-byte bytes). NULL when memory runs out.
 */
struct mp_obj *mp__elem_obj(const struct mp__typecode *t, const void *p);

#endif
