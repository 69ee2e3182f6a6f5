/* SPDX-License-Identifier: MIT */
/* manager/types_list.c: the list typeid (ListProxy's methods), with Python's slices and ordering. */
#include "manager/server_int.h"

#include <string.h>

/*
 * The referent is an mp_obj_t list. Replies are encoded at once, so
 * __getitem__ of a slice or #GETVALUE may hand out the live list or new
 * lists built from borrowed items without copying the items.
 */

/* ---- Slices -------------------------------------------------------------- */

static int
slice_part(const mp_obj_t *v, int64_t dflt, int64_t *out)
{
	if (v == NULL || mp_obj_type(v) == MP_TYPE_NONE) {
		*out = dflt;
		return 0;
	}
	if (mp_int_value(v, out) != 0) {
		/* Huge bounds clamp, as CPython's do. */
		*out = mp_float_value(v) < 0 ? INT64_MIN / 2 : INT64_MAX / 2;
	}
	return 0;
}

int
mp__mgr_slice(const mp_obj_t *sl, size_t len, int64_t *start, int64_t *step,
    size_t *count)
{
	mp_obj_t *a = mp_instance_args(sl);
	int64_t st;
	slice_part(mp_tuple_get(a, 2), 1, &st);
	if (st == 0) {
		return -EINVAL;
	}
	int64_t n = (int64_t)len;
	int64_t lo;
	int64_t hi;
	slice_part(mp_tuple_get(a, 0), st > 0 ? 0 : n - 1, &lo);
	slice_part(mp_tuple_get(a, 1), st > 0 ? n : -n - 1, &hi);
	/* PySlice_AdjustIndices. */
	if (lo < 0) {
		lo += n;
		if (lo < 0) {
			lo = st < 0 ? -1 : 0;
		}
	} else if (lo >= n) {
		lo = st < 0 ? n - 1 : n;
	}
	if (hi < 0) {
		hi += n;
		if (hi < 0) {
			hi = st < 0 ? -1 : 0;
		}
	} else if (hi >= n) {
		hi = st < 0 ? n - 1 : n;
	}
	int64_t k = 0;
	if (st < 0 ? hi < lo : lo < hi) {
		k = st < 0 ? (lo - hi - 1) / (-st) + 1 : (hi - lo - 1) / st + 1;
	}
	*start = lo;
	*step = st;
	*count = (size_t)k;
	return 0;
}

bool
mp__mgr_slice_arg(struct mp__mgr_call *c, const mp_obj_t *sl, size_t len,
    int64_t *start, int64_t *step, size_t *count, int *rv)
{
	if (mp__mgr_slice(sl, len, start, step, count) == 0) {
		return true;
	}
	*rv = mp__mgr_errf(c, MP__EXC_VALUE, "slice step cannot be zero");
	return false;
}

bool
mp__mgr_is_slice(const mp_obj_t *o)
{
	const char *m = mp_instance_module(o);
	return m != NULL && strcmp(m, "builtins") == 0 &&
	    strcmp(mp_instance_name(o), "slice") == 0;
}

/* An index into len items, negative from the end; false out of range. */
bool
mp__mgr_index(const mp_obj_t *i, size_t len, size_t *out)
{
	int64_t v;
	if (mp_int_value(i, &v) != 0) {
		return false;
	}
	if (v < 0) {
		v += (int64_t)len;
	}
	if (v < 0 || v >= (int64_t)len) {
		return false;
	}
	*out = (size_t)v;
	return true;
}

/* ---- Ordering, for sort -------------------------------------------------- */

static bool
is_number(const mp_obj_t *o)
{
	enum mp_type t = mp_obj_type(o);
	return t == MP_TYPE_INT || t == MP_TYPE_FLOAT || t == MP_TYPE_BOOL;
}

/* Python's a < b for the types with an order; -EINVAL: TypeError. */
static int
less(const mp_obj_t *a, const mp_obj_t *b, bool *out)
{
	if (is_number(a) && is_number(b)) {
		int64_t x;
		int64_t y;
		if (mp_obj_type(a) != MP_TYPE_FLOAT &&
		    mp_obj_type(b) != MP_TYPE_FLOAT &&
		    mp_int_value(a, &x) == 0 && mp_int_value(b, &y) == 0) {
			*out = x < y;
		} else {
			*out = mp_float_value(a) < mp_float_value(b);
		}
		return 0;
	}
	enum mp_type ta = mp_obj_type(a);
	if (ta != mp_obj_type(b)) {
		return -EINVAL;
	}
	if (ta == MP_TYPE_STR || ta == MP_TYPE_BYTES) {
		size_t la;
		size_t lb;
		const void *da = ta == MP_TYPE_STR ?
		    (const void *)mp_str_data(a, &la) : mp_bytes_data(a, &la);
		const void *db = ta == MP_TYPE_STR ?
		    (const void *)mp_str_data(b, &lb) : mp_bytes_data(b, &lb);
		/* UTF-8 byte order is code point order. */
		int r = memcmp(da, db, la < lb ? la : lb);
		*out = r < 0 || (r == 0 && la < lb);
		return 0;
	}
	if (ta == MP_TYPE_TUPLE || ta == MP_TYPE_LIST) {
		size_t la = mp_obj_len(a);
		size_t lb = mp_obj_len(b);
		for (size_t i = 0; i < la && i < lb; i++) {
			ssize_t k = (ssize_t)i;
			mp_obj_t *x = ta == MP_TYPE_TUPLE ?
			    mp_tuple_get(a, k) : mp_list_get(a, k);
			mp_obj_t *y = ta == MP_TYPE_TUPLE ?
			    mp_tuple_get(b, k) : mp_list_get(b, k);
			if (!mp_obj_equal(x, y)) {
				return less(x, y, out);
			}
		}
		*out = la < lb;
		return 0;
	}
	return -EINVAL;
}

/* Stable merge sort of v[0..n) with tmp scratch; -EINVAL on TypeError. */
static int
merge_sort(mp_obj_t **v, mp_obj_t **tmp, size_t n, bool rev)
{
	if (n < 2) {
		return 0;
	}
	size_t h = n / 2;
	int rv = merge_sort(v, tmp, h, rev);
	if (rv == 0) {
		rv = merge_sort(v + h, tmp, n - h, rev);
	}
	if (rv != 0) {
		return rv;
	}
	size_t i = 0;
	size_t j = h;
	size_t k = 0;
	while (i < h && j < n) {
		bool lt;
		/* Reverse keeps stability as CPython does: compare swapped. */
		rv = rev ? less(v[i], v[j], &lt) : less(v[j], v[i], &lt);
		if (rv != 0) {
			return rv;
		}
		tmp[k++] = lt ? v[j++] : v[i++];
	}
	while (i < h) {
		tmp[k++] = v[i++];
	}
	while (j < n) {
		tmp[k++] = v[j++];
	}
	memcpy(v, tmp, n * sizeof(*v));
	return 0;
}

/* ---- The list ------------------------------------------------------------ */

#define LIST(c) ((mp_obj_t *)(c)->obj->impl)

static int
l_create(struct mp__mgr_call *c, void **impl)
{
	if (mp__mgr_args_check(c, 1, NULL) != 0) {
		return MP_EREMOTEERR;
	}
	mp_obj_t *src = mp__mgr_arg(c, 0, NULL);
	mp_obj_t *l = mp_list_new();
	if (l == NULL) {
		return -ENOMEM;
	}
	if (src != NULL) {
		enum mp_type t = mp_obj_type(src);
		if (t != MP_TYPE_LIST && t != MP_TYPE_TUPLE) {
			mp_obj_unref(l);
			mp__mgr_errf(c, MP__EXC_TYPE, "'%s' object is not "
			    "iterable here", mp_obj_type_name(src));
			return MP_EREMOTEERR;
		}
		for (size_t i = 0; i < mp_obj_len(src); i++) {
			mp_obj_t *it = t == MP_TYPE_LIST ?
			    mp_list_get(src, (ssize_t)i) :
			    mp_tuple_get(src, (ssize_t)i);
			if (mp_list_append(l, mp_obj_ref(it)) != 0) {
				mp_obj_unref(l);
				return -ENOMEM;
			}
		}
	}
	*impl = l;
	return 0;
}

static void
l_destroy(void *impl)
{
	mp_obj_unref(impl);
}

/* Items of a list or tuple argument (borrowed), or NULL. */
static mp_obj_t *
seq_item(const mp_obj_t *s, size_t i)
{
	return mp_obj_type(s) == MP_TYPE_LIST ? mp_list_get(s, (ssize_t)i) :
	    mp_tuple_get(s, (ssize_t)i);
}

static bool
is_seq(const mp_obj_t *s)
{
	return s != NULL && (mp_obj_type(s) == MP_TYPE_LIST ||
	    mp_obj_type(s) == MP_TYPE_TUPLE);
}

static int
one_arg(struct mp__mgr_call *c, mp_obj_t **a)
{
	if (mp_obj_len(c->args) != 1 || mp_obj_len(c->kwds) != 0) {
		mp__mgr_errf(c, MP__EXC_TYPE, "%s() takes exactly one argument "
		    "(%zu given)", c->m->name, mp_obj_len(c->args));
		return 1;
	}
	*a = mp_tuple_get(c->args, 0);
	return 0;
}

static int
no_args(struct mp__mgr_call *c)
{
	return mp__mgr_args_check(c, 0, NULL);
}

static int
index_error(struct mp__mgr_call *c, const mp_obj_t *i, const char *msg)
{
	if (mp_obj_type(i) != MP_TYPE_INT && mp_obj_type(i) != MP_TYPE_BOOL) {
		return mp__mgr_errf(c, MP__EXC_TYPE, "list indices must be "
		    "integers or slices, not %s", mp_obj_type_name(i));
	}
	return mp__mgr_errf(c, MP__EXC_INDEX, "%s", msg);
}

static int
l_getitem(struct mp__mgr_call *c)
{
	mp_obj_t *i;
	if (one_arg(c, &i) != 0) {
		return 0;
	}
	mp_obj_t *l = LIST(c);
	if (mp__mgr_is_slice(i)) {
		int64_t start;
		int64_t step;
		size_t n;
		int rv;
		if (!mp__mgr_slice_arg(c, i, mp_obj_len(l), &start, &step, &n,
		    &rv)) {
			return rv;
		}
		mp_obj_t *out = mp_list_new();
		for (size_t k = 0; out != NULL && k < n; k++) {
			if (mp_list_append(out, mp_obj_ref(mp_list_get(l,
			    (ssize_t)(start + (int64_t)k * step)))) != 0) {
				mp_obj_unref(out);
				out = NULL;
			}
		}
		return mp__mgr_ret(c, out);
	}
	size_t k;
	if (!mp__mgr_index(i, mp_obj_len(l), &k)) {
		return index_error(c, i, "list index out of range");
	}
	return mp__mgr_ret(c, mp_obj_ref(mp_list_get(l, (ssize_t)k)));
}

/* Replace l[lo:hi] (step 1) by the items of v. */
static int
splice(mp_obj_t *l, size_t lo, size_t hi, const mp_obj_t *v)
{
	for (size_t k = hi; k > lo; k--) {
		mp_list_pop(l, (ssize_t)(k - 1), NULL);
	}
	for (size_t k = 0; k < mp_obj_len(v); k++) {
		int rv = mp_list_insert(l, (ssize_t)(lo + k),
		    mp_obj_ref(seq_item(v, k)));
		if (rv != 0) {
			return rv;
		}
	}
	return 0;
}

static int
l_setitem(struct mp__mgr_call *c)
{
	if (mp_obj_len(c->args) != 2 || mp_obj_len(c->kwds) != 0) {
		return mp__mgr_errf(c, MP__EXC_TYPE,
		    "__setitem__ expected 2 arguments");
	}
	mp_obj_t *l = LIST(c);
	mp_obj_t *i = mp_tuple_get(c->args, 0);
	mp_obj_t *v = mp_tuple_get(c->args, 1);
	if (mp__mgr_is_slice(i)) {
		int64_t start;
		int64_t step;
		size_t n;
		int rv;
		if (!mp__mgr_slice_arg(c, i, mp_obj_len(l), &start, &step, &n,
		    &rv)) {
			return rv;
		}
		if (!is_seq(v)) {
			return mp__mgr_errf(c, MP__EXC_TYPE,
			    "can only assign an iterable");
		}
		if (step == 1) {
			rv = splice(l, (size_t)start, (size_t)start + n, v);
			return rv != 0 ? rv : mp__mgr_ret(c, mp_none());
		}
		if (mp_obj_len(v) != n) {
			return mp__mgr_errf(c, MP__EXC_VALUE, "attempt to "
			    "assign sequence of size %zu to extended slice of "
			    "size %zu", mp_obj_len(v), n);
		}
		for (size_t k = 0; k < n; k++) {
			mp_list_set(l, (ssize_t)(start + (int64_t)k * step),
			    mp_obj_ref(seq_item(v, k)));
		}
		return mp__mgr_ret(c, mp_none());
	}
	size_t k;
	if (!mp__mgr_index(i, mp_obj_len(l), &k)) {
		return index_error(c, i, "list assignment index out of range");
	}
	int rv = mp_list_set(l, (ssize_t)k, mp_obj_ref(v));
	return rv != 0 ? rv : mp__mgr_ret(c, mp_none());
}

static int
l_delitem(struct mp__mgr_call *c)
{
	mp_obj_t *i;
	if (one_arg(c, &i) != 0) {
		return 0;
	}
	mp_obj_t *l = LIST(c);
	if (mp__mgr_is_slice(i)) {
		int64_t start;
		int64_t step;
		size_t n;
		int rv;
		if (!mp__mgr_slice_arg(c, i, mp_obj_len(l), &start, &step, &n,
		    &rv)) {
			return rv;
		}
		/* Highest index first, so the others do not move. */
		for (size_t k = n; k > 0; k--) {
			int64_t at = step > 0 ?
			    start + (int64_t)(k - 1) * step :
			    start + (int64_t)(n - k) * step;
			mp_list_pop(l, (ssize_t)at, NULL);
		}
		return mp__mgr_ret(c, mp_none());
	}
	size_t k;
	if (!mp__mgr_index(i, mp_obj_len(l), &k)) {
		return index_error(c, i, "list assignment index out of range");
	}
	mp_list_pop(l, (ssize_t)k, NULL);
	return mp__mgr_ret(c, mp_none());
}

static int
l_len(struct mp__mgr_call *c)
{
	if (no_args(c) != 0) {
		return 0;
	}
	return mp__mgr_ret(c, mp_int((int64_t)mp_obj_len(LIST(c))));
}

static int
l_contains(struct mp__mgr_call *c)
{
	mp_obj_t *x;
	if (one_arg(c, &x) != 0) {
		return 0;
	}
	mp_obj_t *l = LIST(c);
	for (size_t k = 0; k < mp_obj_len(l); k++) {
		if (mp_obj_equal(mp_list_get(l, (ssize_t)k), x)) {
			return mp__mgr_ret(c, mp_bool(true));
		}
	}
	return mp__mgr_ret(c, mp_bool(false));
}

/* A new list: l repeated n times, then the items of extra (or NULL). */
static mp_obj_t *
build(const mp_obj_t *l, int64_t times, const mp_obj_t *extra)
{
	mp_obj_t *out = mp_list_new();
	for (int64_t t = 0; out != NULL && t < times; t++) {
		for (size_t k = 0; k < mp_obj_len(l); k++) {
			if (mp_list_append(out, mp_obj_ref(mp_list_get(l,
			    (ssize_t)k))) != 0) {
				mp_obj_unref(out);
				return NULL;
			}
		}
	}
	for (size_t k = 0; out != NULL && extra != NULL &&
	    k < mp_obj_len(extra); k++) {
		if (mp_list_append(out, mp_obj_ref(seq_item(extra, k))) != 0) {
			mp_obj_unref(out);
			return NULL;
		}
	}
	return out;
}

static int
l_add(struct mp__mgr_call *c)
{
	mp_obj_t *x;
	if (one_arg(c, &x) != 0) {
		return 0;
	}
	if (mp_obj_type(x) != MP_TYPE_LIST) {
		return mp__mgr_errf(c, MP__EXC_TYPE, "can only concatenate "
		    "list (not \"%s\") to list", mp_obj_type_name(x));
	}
	return mp__mgr_ret(c, build(LIST(c), 1, x));
}

static int
times_arg(struct mp__mgr_call *c, int64_t *n)
{
	mp_obj_t *x;
	if (one_arg(c, &x) != 0) {
		return 1;
	}
	if (mp_obj_type(x) != MP_TYPE_INT || mp_int_value(x, n) != 0) {
		mp__mgr_errf(c, MP__EXC_TYPE, "can't multiply sequence by "
		    "non-int of type '%s'", mp_obj_type_name(x));
		return 1;
	}
	if (*n < 0) {
		*n = 0;
	}
	/*
	 * No more items than the largest request has bytes: a list any
	 * longer could not have been sent whole, and a few bytes asking for
	 * it would cost the server without bound (items times 8 bytes, then
	 * its pickle in the reply; found by tests/fuzz/fuzz_dispatch).
	 */
	size_t max = c->srv->opts.max_message;
	if (*n > 0 && mp_obj_len(LIST(c)) > max / (size_t)*n) {
		mp__mgr_errf(c, MP__EXC_OVERFLOW, "repeated list is too long "
		    "(more than %zu items, the server's max_message)", max);
		return 1;
	}
	return 0;
}

static int
l_mul(struct mp__mgr_call *c)
{
	int64_t n;
	if (times_arg(c, &n) != 0) {
		return 0;
	}
	return mp__mgr_ret(c, build(LIST(c), n, NULL));
}

static int
l_imul(struct mp__mgr_call *c)
{
	int64_t n;
	if (times_arg(c, &n) != 0) {
		return 0;
	}
	mp_obj_t *l = LIST(c);
	mp_obj_t *rep = build(l, n, NULL);
	if (rep == NULL) {
		return -ENOMEM;
	}
	int rv = splice(l, 0, mp_obj_len(l), rep);
	mp_obj_unref(rep);
	return rv != 0 ? rv : mp__mgr_ret(c, mp_obj_ref(l));
}

static int
l_reversed(struct mp__mgr_call *c)
{
	if (no_args(c) != 0) {
		return 0;
	}
	/* CPython pickles a list_reverseiterator as reversed(list) with
	 * its position as state. */
	mp_obj_t *l = LIST(c);
	size_t n = mp_obj_len(l);
	mp_obj_t *copy = build(l, 1, NULL);
	return mp__mgr_ret(c, mp_instance_new("builtins", "reversed",
	    mp_tuple_of(1, copy), mp_int((int64_t)n - 1), false));
}

static int
l_append(struct mp__mgr_call *c)
{
	mp_obj_t *x;
	if (one_arg(c, &x) != 0) {
		return 0;
	}
	int rv = mp_list_append(LIST(c), mp_obj_ref(x));
	return rv != 0 ? rv : mp__mgr_ret(c, mp_none());
}

static int
l_extend(struct mp__mgr_call *c)
{
	mp_obj_t *x;
	if (one_arg(c, &x) != 0) {
		return 0;
	}
	if (!is_seq(x)) {
		return mp__mgr_errf(c, MP__EXC_TYPE,
		    "'%s' object is not iterable", mp_obj_type_name(x));
	}
	mp_obj_t *l = LIST(c);
	/* x may be l's own items (l.extend(l[:])): count first. */
	size_t n = mp_obj_len(x);
	for (size_t k = 0; k < n; k++) {
		int rv = mp_list_append(l, mp_obj_ref(seq_item(x, k)));
		if (rv != 0) {
			return rv;
		}
	}
	return mp__mgr_ret(c, mp_none());
}

static int
l_insert(struct mp__mgr_call *c)
{
	if (mp_obj_len(c->args) != 2 || mp_obj_len(c->kwds) != 0) {
		return mp__mgr_errf(c, MP__EXC_TYPE,
		    "insert expected 2 arguments, got %zu",
		    mp_obj_len(c->args));
	}
	int64_t i;
	if (mp_int_value(mp_tuple_get(c->args, 0), &i) != 0) {
		return mp__mgr_errf(c, MP__EXC_TYPE, "'%s' object cannot be "
		    "interpreted as an integer",
		    mp_obj_type_name(mp_tuple_get(c->args, 0)));
	}
	mp_obj_t *l = LIST(c);
	int64_t n = (int64_t)mp_obj_len(l);
	if (i < 0) {
		i = i + n < 0 ? 0 : i + n;
	}
	if (i > n) {
		i = n;
	}
	int rv = mp_list_insert(l, (ssize_t)i,
	    mp_obj_ref(mp_tuple_get(c->args, 1)));
	return rv != 0 ? rv : mp__mgr_ret(c, mp_none());
}

static int
l_pop(struct mp__mgr_call *c)
{
	if (mp__mgr_args_check(c, 1, NULL) != 0) {
		return 0;
	}
	mp_obj_t *l = LIST(c);
	mp_obj_t *i = mp__mgr_arg(c, 0, NULL);
	if (mp_obj_len(l) == 0) {
		return mp__mgr_errf(c, MP__EXC_INDEX, "pop from empty list");
	}
	size_t k = mp_obj_len(l) - 1;
	if (i != NULL && !mp__mgr_index(i, mp_obj_len(l), &k)) {
		return index_error(c, i, "pop index out of range");
	}
	mp_obj_t *out;
	mp_list_pop(l, (ssize_t)k, &out);
	return mp__mgr_ret(c, out);
}

static int
l_remove(struct mp__mgr_call *c)
{
	mp_obj_t *x;
	if (one_arg(c, &x) != 0) {
		return 0;
	}
	mp_obj_t *l = LIST(c);
	for (size_t k = 0; k < mp_obj_len(l); k++) {
		if (mp_obj_equal(mp_list_get(l, (ssize_t)k), x)) {
			mp_list_pop(l, (ssize_t)k, NULL);
			return mp__mgr_ret(c, mp_none());
		}
	}
	return mp__mgr_errf(c, MP__EXC_VALUE, "list.remove(x): x not in list");
}

static int
l_index(struct mp__mgr_call *c)
{
	size_t na = mp_obj_len(c->args);
	if (na < 1 || na > 3 || mp_obj_len(c->kwds) != 0) {
		return mp__mgr_errf(c, MP__EXC_TYPE,
		    "index expected at least 1 argument, got %zu", na);
	}
	mp_obj_t *l = LIST(c);
	int64_t n = (int64_t)mp_obj_len(l);
	int64_t lo = 0;
	int64_t hi = n;
	if ((na > 1 && mp_int_value(mp_tuple_get(c->args, 1), &lo) != 0) ||
	    (na > 2 && mp_int_value(mp_tuple_get(c->args, 2), &hi) != 0)) {
		return mp__mgr_errf(c, MP__EXC_TYPE, "slice indices must be "
		    "integers or have an __index__ method");
	}
	lo = lo < 0 ? (lo + n < 0 ? 0 : lo + n) : lo;
	hi = hi < 0 ? (hi + n < 0 ? 0 : hi + n) : (hi > n ? n : hi);
	mp_obj_t *x = mp_tuple_get(c->args, 0);
	for (int64_t k = lo; k < hi; k++) {
		if (mp_obj_equal(mp_list_get(l, (ssize_t)k), x)) {
			return mp__mgr_ret(c, mp_int(k));
		}
	}
	char *r = NULL;
	int rv = mp_obj_repr(x, &r);
	if (rv != 0) {
		return rv;
	}
	rv = mp__mgr_errf(c, MP__EXC_VALUE, "%.200s is not in list", r);
	mp_free(r);
	return rv;
}

static int
l_count(struct mp__mgr_call *c)
{
	mp_obj_t *x;
	if (one_arg(c, &x) != 0) {
		return 0;
	}
	mp_obj_t *l = LIST(c);
	int64_t n = 0;
	for (size_t k = 0; k < mp_obj_len(l); k++) {
		n += mp_obj_equal(mp_list_get(l, (ssize_t)k), x);
	}
	return mp__mgr_ret(c, mp_int(n));
}

static int
l_reverse(struct mp__mgr_call *c)
{
	if (no_args(c) != 0) {
		return 0;
	}
	mp_obj_t *l = LIST(c);
	size_t n = mp_obj_len(l);
	for (size_t k = 0; k + 1 < n - k; k++) {
		mp_obj_t *a = mp_obj_ref(mp_list_get(l, (ssize_t)k));
		mp_obj_t *b = mp_obj_ref(mp_list_get(l, (ssize_t)(n - 1 - k)));
		mp_list_set(l, (ssize_t)k, b);
		mp_list_set(l, (ssize_t)(n - 1 - k), a);
	}
	return mp__mgr_ret(c, mp_none());
}

static int
l_sort(struct mp__mgr_call *c)
{
	static const char *const kw[] = { "key", "reverse", NULL };
	if (mp__mgr_args_check(c, 0, kw) != 0) {
		return 0;
	}
	mp_obj_t *key = mp__mgr_arg(c, SIZE_MAX, "key");
	mp_obj_t *rev = mp__mgr_arg(c, SIZE_MAX, "reverse");
	if (key != NULL && mp_obj_type(key) != MP_TYPE_NONE) {
		return mp__mgr_errf(c, MP__EXC_TYPE,
		    "a sort key cannot be sent to this server");
	}
	mp_obj_t *l = LIST(c);
	size_t n = mp_obj_len(l);
	mp_obj_t **v = mp__malloc((2 * n + 1) * sizeof(*v));
	if (v == NULL) {
		return -ENOMEM;
	}
	for (size_t k = 0; k < n; k++) {
		v[k] = mp_list_get(l, (ssize_t)k);
	}
	int rv = merge_sort(v, v + n, n, rev != NULL && mp__mgr_truthy(rev));
	if (rv == 0) {
		for (size_t k = 0; k < n; k++) {
			mp_obj_ref(v[k]);
		}
		for (size_t k = 0; k < n; k++) {
			mp_list_set(l, (ssize_t)k, v[k]);
		}
	}
	mp__free(v);
	if (rv != 0) {
		return mp__mgr_errf(c, MP__EXC_TYPE, "'<' not supported "
		    "between these instances");
	}
	return mp__mgr_ret(c, mp_none());
}

static int
l_repr(void *impl, bool as_str, char **out)
{
	(void)as_str;
	return mp_obj_repr(impl, out);
}

static int
l_getvalue(void *impl, mp_obj_t **out)
{
	*out = mp_obj_ref(impl);
	return 0;
}

static const char *const l_exposed[] = {
	"__add__", "__contains__", "__delitem__", "__getitem__", "__len__",
	"__mul__", "__reversed__", "__rmul__", "__setitem__", "append",
	"count", "extend", "index", "insert", "pop", "remove", "reverse",
	"sort", "__imul__", NULL,
};

static const struct mp__mgr_method l_methods[] = {
	{ "__add__", l_add, NULL },
	{ "__contains__", l_contains, NULL },
	{ "__delitem__", l_delitem, NULL },
	{ "__getitem__", l_getitem, NULL },
	{ "__len__", l_len, NULL },
	{ "__mul__", l_mul, NULL },
	{ "__reversed__", l_reversed, NULL },
	{ "__rmul__", l_mul, NULL },
	{ "__setitem__", l_setitem, NULL },
	{ "append", l_append, NULL },
	{ "count", l_count, NULL },
	{ "extend", l_extend, NULL },
	{ "index", l_index, NULL },
	{ "insert", l_insert, NULL },
	{ "pop", l_pop, NULL },
	{ "remove", l_remove, NULL },
	{ "reverse", l_reverse, NULL },
	{ "sort", l_sort, NULL },
	{ "__imul__", l_imul, NULL },
};

const struct mp__mgr_class mp__mgr_class_list = {
	.typeid = "list",
	.pyname = "list",
	.exposed = l_exposed,
	.methods = l_methods,
	.n_methods = MP__ARRAY_LEN(l_methods),
	.create = l_create,
	.destroy = l_destroy,
	.repr = l_repr,
	.getvalue = l_getvalue,
};
