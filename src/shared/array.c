/* SPDX-License-Identifier: MIT */
/* shared/array.c: Array, a fixed-length run of numbers in the shared arena under one lock. */
#include "shared/typed.h"

#include <mproc/obj.h>

static inline struct mp__num *
num_of(const mp_array_t *a)
{
	struct mp__num *n = (struct mp__num *)(uintptr_t)a;
	MP_ASSERT(n != NULL && n->magic == MP__ARRAY_MAGIC);
	return n;
}

static inline unsigned char *
elem(struct mp__num *n, size_t i)
{
	return mp__num_data(n) + i * mp__num_type(n)->size;
}

int
mp_array_new(char typecode, size_t len, const void *init,
    const struct mp_value_opts *opts, mp_array_t **out)
{
	if (out == NULL) {
		return -EINVAL;
	}
	struct mp__num *n;
	int rv = mp__num_new(typecode, len, init, opts, MP__ARRAY_MAGIC, &n);
	if (rv != 0) {
		return rv;
	}
	*out = (mp_array_t *)n;
	return 0;
}

void
mp_array_free(mp_array_t *a)
{
	mp__num_free((struct mp__num *)a, MP__ARRAY_MAGIC);
}

mp_lock_t *
mp_array_get_lock(const mp_array_t *a)
{
	return num_of(a)->lock;
}

int
mp_array_lock(mp_array_t *a, int64_t timeout_ms)
{
	return mp__num_user_lock(num_of(a), timeout_ms);
}

int
mp_array_unlock(mp_array_t *a)
{
	return mp__num_user_unlock(num_of(a));
}

/*
 * As in value.c: check the index, then lock, one element operation, unlock.
 * The length never changes, so it is checked before taking the lock.
 */
#define LOCKED_AT(n, i, expr) \
	do { \
		if ((i) >= (n)->len) { \
			return -EINVAL; \
		} \
		int lrv_ = mp__num_lock(n); \
		if (lrv_ != 0) { \
			return lrv_; \
		} \
		int rv_ = (expr); \
		mp__num_unlock(n); \
		return rv_; \
	} while (0)

int
mp_array_get_long(mp_array_t *a, size_t i, int64_t *out)
{
	struct mp__num *n = num_of(a);
	LOCKED_AT(n, i, mp__elem_get_long(mp__num_type(n), elem(n, i), out));
}

int
mp_array_set_long(mp_array_t *a, size_t i, int64_t x)
{
	struct mp__num *n = num_of(a);
	LOCKED_AT(n, i, mp__elem_set_long(mp__num_type(n), elem(n, i), x));
}

int
mp_array_get_ulong(mp_array_t *a, size_t i, uint64_t *out)
{
	struct mp__num *n = num_of(a);
	LOCKED_AT(n, i, mp__elem_get_ulong(mp__num_type(n), elem(n, i), out));
}

int
mp_array_set_ulong(mp_array_t *a, size_t i, uint64_t x)
{
	struct mp__num *n = num_of(a);
	LOCKED_AT(n, i, mp__elem_set_ulong(mp__num_type(n), elem(n, i), x));
}

static int
get_double(struct mp__num *n, size_t i, double *out)
{
	*out = mp__elem_get_double(mp__num_type(n), elem(n, i));
	return 0;
}

int
mp_array_get_double(mp_array_t *a, size_t i, double *out)
{
	struct mp__num *n = num_of(a);
	LOCKED_AT(n, i, get_double(n, i, out));
}

int
mp_array_set_double(mp_array_t *a, size_t i, double x)
{
	struct mp__num *n = num_of(a);
	LOCKED_AT(n, i, mp__elem_set_double(mp__num_type(n), elem(n, i), x));
}

int
mp_array_add_long(mp_array_t *a, size_t i, int64_t x)
{
	struct mp__num *n = num_of(a);
	LOCKED_AT(n, i, mp__elem_add_long(mp__num_type(n), elem(n, i), x));
}

int
mp_array_add_double(mp_array_t *a, size_t i, double x)
{
	struct mp__num *n = num_of(a);
	LOCKED_AT(n, i, mp__elem_add_double(mp__num_type(n), elem(n, i), x));
}

/*
 * Copy count elements from start to dst (reading) or from src into the
 * array (writing). The reading flag is a constant at each call, so that
 * an optimiser inlining one caller does not see a memcpy of the other's
 * NULL pointer on the dead branch (-Wnonnull in Release builds).
 */
static int
copy_range(struct mp__num *n, size_t start, size_t count, bool reading,
    void *dst, const void *src)
{
	size_t size = mp__num_type(n)->size;
	if (start > n->len || count > n->len - start) {
		return -EINVAL;
	}
	if (count == 0) {
		return 0;
	}
	int rv = mp__num_lock(n);
	if (rv != 0) {
		return rv;
	}
	if (reading) {
		memcpy(dst, elem(n, start), count * size);
	} else {
		memcpy(elem(n, start), src, count * size);
	}
	mp__num_unlock(n);
	return 0;
}

int
mp_array_read(mp_array_t *a, size_t start, size_t count, void *dst)
{
	MP_ASSERT(dst != NULL || count == 0);
	return copy_range(num_of(a), start, count, true, dst, NULL);
}

int
mp_array_write(mp_array_t *a, size_t start, size_t count, const void *src)
{
	MP_ASSERT(src != NULL || count == 0);
	return copy_range(num_of(a), start, count, false, NULL, src);
}

/* Copied under the lock, converted after it (no allocation inside). */
int
mp_array_get_obj(mp_array_t *a, mp_obj_t **out)
{
	struct mp__num *n = num_of(a);
	const struct mp__typecode *t = mp__num_type(n);
	size_t len = n->len;
	unsigned char *copy = mp__malloc(len * t->size + 1);
	if (copy == NULL) {
		return -ENOMEM;
	}
	int rv = copy_range(n, 0, len, true, copy, NULL);
	if (rv != 0) {
		goto out_free;
	}
	mp_obj_t *o;
	if (t->code == 'c') {
		o = mp_bytes(copy, len);
	} else {
		o = mp_list_new();
		for (size_t i = 0; i < len && o != NULL; i++) {
			mp_obj_t *item = mp__elem_obj(t, copy + i * t->size);
			if (mp_list_append(o, item) != 0) {
				mp_obj_unref(o);
				o = NULL;
			}
		}
	}
	rv = o != NULL ? 0 : -ENOMEM;
	if (rv == 0) {
		*out = o;
	}
out_free:
	mp__free(copy);
	return rv;
}

void *
mp_array_ptr(mp_array_t *a)
{
	return mp__num_data(num_of(a));
}

size_t
mp_array_len(const mp_array_t *a)
{
	return num_of(a)->len;
}

char
mp_array_typecode(const mp_array_t *a)
{
	return mp__num_type(num_of(a))->code;
}

size_t
mp_array_itemsize(const mp_array_t *a)
{
	return mp__num_type(num_of(a))->size;
}
