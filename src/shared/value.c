/* SPDX-License-Identifier: MIT */
/* shared/value.c: Value, one number in the shared arena guarded by a process-shared lock. */
#include "shared/typed.h"

#include <limits.h>
#include <mproc/obj.h>

#define SIGNED_TC(c, type, lo, hi) \
	{ (c), sizeof(type), MP__TK_SIGNED, (lo), (uint64_t)(hi) }
#define UNSIGNED_TC(c, type, hi) \
	{ (c), sizeof(type), MP__TK_UNSIGNED, 0, (hi) }

/* The platform's C types, as ctypes uses them ('l' is 8 bytes on LP64). */
const struct mp__typecode mp__typecodes[] = {
	UNSIGNED_TC('c', char, UCHAR_MAX),
	SIGNED_TC('b', signed char, SCHAR_MIN, SCHAR_MAX),
	UNSIGNED_TC('B', unsigned char, UCHAR_MAX),
	SIGNED_TC('h', short, SHRT_MIN, SHRT_MAX),
	UNSIGNED_TC('H', unsigned short, USHRT_MAX),
	SIGNED_TC('i', int, INT_MIN, INT_MAX),
	UNSIGNED_TC('I', unsigned int, UINT_MAX),
	SIGNED_TC('l', long, LONG_MIN, LONG_MAX),
	UNSIGNED_TC('L', unsigned long, ULONG_MAX),
	SIGNED_TC('q', long long, LLONG_MIN, LLONG_MAX),
	UNSIGNED_TC('Q', unsigned long long, ULLONG_MAX),
	{ 'f', sizeof(float), MP__TK_FLOAT, 0, 0 },
	{ 'd', sizeof(double), MP__TK_FLOAT, 0, 0 },
};

_Static_assert(sizeof(long long) == 8 && sizeof(double) == 8,
    "element loads and stores assume 1, 2, 4 and 8-byte integers");

int
mp__typecode_index(char code)
{
	for (size_t i = 0; i < MP__ARRAY_LEN(mp__typecodes); i++) {
		if (mp__typecodes[i].code == code && code != '\0') {
			return (int)i;
		}
	}
	return -EINVAL;
}

int
mp__num_new(char typecode, size_t len, const void *init,
    const struct mp_value_opts *opts, uint32_t magic, struct mp__num **out)
{
	int tc = mp__typecode_index(typecode);
	int mode = opts != NULL ? opts->lock_mode : MP_LOCK_OWN;
	if (tc < 0 || mode < MP_LOCK_OWN || mode > MP_LOCK_GIVEN ||
	    (mode == MP_LOCK_GIVEN && opts->lock == NULL)) {
		return -EINVAL;
	}
	size_t size = mp__typecodes[tc].size;
	if (len > (SIZE_MAX - sizeof(struct mp__num)) / size) {
		return -ENOMEM;
	}
	struct mp__num *n;
	int rv = mp__arena_alloc(sizeof(*n) + len * size, (void **)&n);
	if (rv != 0) {
		return rv;
	}
	n->len = len;
	n->tc = (uint8_t)tc;
	n->magic = magic;
	if (mode == MP_LOCK_OWN) {
		mp__lock_init(&n->own, true);
		n->lock = &n->own;
	} else if (mode == MP_LOCK_GIVEN) {
		n->lock = opts->lock;
	}
	if (init != NULL && len > 0) {
		memcpy(mp__num_data(n), init, len * size);
	}
	*out = n;
	return 0;
}

void
mp__num_free(struct mp__num *n, uint32_t magic)
{
	if (n == NULL) {
		return;
	}
	MP_ASSERT(n->magic == magic);
	n->magic = 0;
	mp__arena_free(n);
}

/*
 * The previous holder died inside its critical section. An accessor's own
 * critical section is one load or store, so the number itself is whole;
 * what the dead process meant to do across several accesses is not. So
 * the accessor repairs nothing, makes the lock usable again, and reports
 * the death once instead of acting on possibly half-updated state.
 */
int
mp__num_lock_failed(struct mp__num *n, int rv)
{
	if (rv == -EOWNERDEAD) {
		mp_lock_mark_consistent(n->lock);
		mp_lock_release(n->lock);
	}
	return rv;
}

struct mp_obj *
mp__elem_obj(const struct mp__typecode *t, const void *p)
{
	if (t->code == 'c') {
		return mp_bytes(p, 1);
	}
	if (t->kind == MP__TK_FLOAT) {
		return mp_float(mp__load_float(p, t->size));
	}
	if (t->kind == MP__TK_SIGNED) {
		return mp_int(mp__load_signed(p, t->size));
	}
	uint64_t u = mp__load_unsigned(p, t->size);
	if (u <= (uint64_t)INT64_MAX) {
		return mp_int((int64_t)u);
	}
	/* Little-endian two's complement; a zero top byte keeps it positive. */
	uint8_t le[9] = { 0 };
	for (int i = 0; i < 8; i++) {
		le[i] = (uint8_t)(u >> (8 * i));
	}
	mp_obj_t *o;
	return mp_int_from_bytes(le, sizeof(le), &o) == 0 ? o : NULL;
}

static inline struct mp__num *
num_of(const mp_value_t *v)
{
	struct mp__num *n = (struct mp__num *)(uintptr_t)v;
	MP_ASSERT(n != NULL && n->magic == MP__VALUE_MAGIC);
	return n;
}

int
mp_value_new(char typecode, const void *init, const struct mp_value_opts *opts,
    mp_value_t **out)
{
	if (out == NULL) {
		return -EINVAL;
	}
	struct mp__num *n;
	int rv = mp__num_new(typecode, 1, init, opts, MP__VALUE_MAGIC, &n);
	if (rv != 0) {
		return rv;
	}
	*out = (mp_value_t *)n;
	return 0;
}

void
mp_value_free(mp_value_t *v)
{
	mp__num_free((struct mp__num *)v, MP__VALUE_MAGIC);
}

mp_lock_t *
mp_value_get_lock(const mp_value_t *v)
{
	return num_of(v)->lock;
}

int
mp_value_lock(mp_value_t *v, int64_t timeout_ms)
{
	return mp__num_user_lock(num_of(v), timeout_ms);
}

int
mp_value_unlock(mp_value_t *v)
{
	return mp__num_user_unlock(num_of(v));
}

/*
 * Every accessor is the same three steps; the macro keeps the hot path (the
 * lecture's locked increment) one inlined lock, one element operation and
 * one unlock, with no call in between.
 */
#define LOCKED(n, expr) \
	do { \
		int lrv_ = mp__num_lock(n); \
		if (lrv_ != 0) { \
			return lrv_; \
		} \
		int rv_ = (expr); \
		mp__num_unlock(n); \
		return rv_; \
	} while (0)

int
mp_value_get_long(mp_value_t *v, int64_t *out)
{
	struct mp__num *n = num_of(v);
	LOCKED(n, mp__elem_get_long(mp__num_type(n), mp__num_data(n), out));
}

int
mp_value_set_long(mp_value_t *v, int64_t x)
{
	struct mp__num *n = num_of(v);
	LOCKED(n, mp__elem_set_long(mp__num_type(n), mp__num_data(n), x));
}

int
mp_value_get_ulong(mp_value_t *v, uint64_t *out)
{
	struct mp__num *n = num_of(v);
	LOCKED(n, mp__elem_get_ulong(mp__num_type(n), mp__num_data(n), out));
}

int
mp_value_set_ulong(mp_value_t *v, uint64_t x)
{
	struct mp__num *n = num_of(v);
	LOCKED(n, mp__elem_set_ulong(mp__num_type(n), mp__num_data(n), x));
}

static int
get_double(struct mp__num *n, double *out)
{
	*out = mp__elem_get_double(mp__num_type(n), mp__num_data(n));
	return 0;
}

int
mp_value_get_double(mp_value_t *v, double *out)
{
	struct mp__num *n = num_of(v);
	LOCKED(n, get_double(n, out));
}

int
mp_value_set_double(mp_value_t *v, double x)
{
	struct mp__num *n = num_of(v);
	LOCKED(n, mp__elem_set_double(mp__num_type(n), mp__num_data(n), x));
}

int
mp_value_add_long(mp_value_t *v, int64_t x)
{
	struct mp__num *n = num_of(v);
	LOCKED(n, mp__elem_add_long(mp__num_type(n), mp__num_data(n), x));
}

int
mp_value_add_double(mp_value_t *v, double x)
{
	struct mp__num *n = num_of(v);
	LOCKED(n, mp__elem_add_double(mp__num_type(n), mp__num_data(n), x));
}

/* Copied under the lock, converted after it: no allocation inside. */
int
mp_value_get_obj(mp_value_t *v, mp_obj_t **out)
{
	struct mp__num *n = num_of(v);
	const struct mp__typecode *t = mp__num_type(n);
	uint64_t copy;
	int rv = mp__num_lock(n);
	if (rv != 0) {
		return rv;
	}
	memcpy(&copy, mp__num_data(n), t->size);
	mp__num_unlock(n);
	mp_obj_t *o = mp__elem_obj(t, &copy);
	if (o == NULL) {
		return -ENOMEM;
	}
	*out = o;
	return 0;
}

void *
mp_value_ptr(mp_value_t *v)
{
	return mp__num_data(num_of(v));
}

char
mp_value_typecode(const mp_value_t *v)
{
	return mp__num_type(num_of(v))->code;
}

size_t
mp_value_size(const mp_value_t *v)
{
	return mp__num_type(num_of(v))->size;
}
