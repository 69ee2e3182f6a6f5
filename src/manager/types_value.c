/* SPDX-License-Identifier: MIT */
/* manager/types_value.c: Value, Array and Namespace as server-side objects. */
#include "manager/server_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- Value --------------------------------------------------------------- */

/* managers.Value(typecode, value, lock=True): no type checks, as CPython. */
struct value {
	mp_obj_t *typecode;
	mp_obj_t *value;
};

static int
v_create(struct mp__mgr_call *c, void **impl)
{
	static const char *const kw[] = { "typecode", "value", "lock", NULL };
	if (mp__mgr_args_check(c, 3, kw) != 0) {
		return MP_EREMOTEERR;
	}
	mp_obj_t *tc = mp__mgr_arg(c, 0, "typecode");
	mp_obj_t *v = mp__mgr_arg(c, 1, "value");
	if (tc == NULL || v == NULL) {
		mp__mgr_errf(c, MP__EXC_TYPE, "Value() missing required "
		    "arguments: 'typecode' and 'value'");
		return MP_EREMOTEERR;
	}
	struct value *val = mp__calloc(1, sizeof(*val));
	if (val == NULL) {
		return -ENOMEM;
	}
	val->typecode = mp_obj_ref(tc);
	val->value = mp_obj_ref(v);
	*impl = val;
	return 0;
}

static void
v_destroy(void *impl)
{
	struct value *v = impl;
	mp_obj_unref(v->typecode);
	mp_obj_unref(v->value);
	mp__free(v);
}

static int
v_get(struct mp__mgr_call *c)
{
	struct value *v = c->obj->impl;
	if (mp__mgr_args_check(c, 0, NULL) != 0) {
		return 0;
	}
	return mp__mgr_ret(c, mp_obj_ref(v->value));
}

static int
v_set(struct mp__mgr_call *c)
{
	static const char *const kw[] = { "value", NULL };
	struct value *v = c->obj->impl;
	if (mp__mgr_args_check(c, 1, kw) != 0) {
		return 0;
	}
	mp_obj_t *nv = mp__mgr_arg(c, 0, "value");
	if (nv == NULL) {
		return mp__mgr_errf(c, MP__EXC_TYPE, "set() missing 1 required "
		    "positional argument: 'value'");
	}
	mp_obj_unref(v->value);
	v->value = mp_obj_ref(nv);
	return mp__mgr_ret(c, mp_none());
}

static int
v_repr(void *impl, bool as_str, char **out)
{
	(void)as_str;
	struct value *v = impl;
	char *a = NULL;
	char *b = NULL;
	int rv = mp_obj_repr(v->typecode, &a);
	if (rv == 0) {
		rv = mp_obj_repr(v->value, &b);
	}
	if (rv == 0) {
		size_t n = strlen(a) + strlen(b) + 16;
		*out = mp_malloc(n);
		if (*out == NULL) {
			rv = -ENOMEM;
		} else {
			snprintf(*out, n, "Value(%s, %s)", a, b);
		}
	}
	mp_free(a);
	mp_free(b);
	return rv;
}

/* A managers.Value as CPython pickles it: NEWOBJ, then its __dict__. */
static int
v_getvalue(void *impl, mp_obj_t **out)
{
	struct value *v = impl;
	mp_obj_t *d = mp_dict_new();
	if (d == NULL || mp_dict_set(d, mp_str("_typecode"),
	    mp_obj_ref(v->typecode)) != 0 || mp_dict_set(d, mp_str("_value"),
	    mp_obj_ref(v->value)) != 0) {
		mp_obj_unref(d);
		return -ENOMEM;
	}
	*out = mp_instance_new("multiprocessing.managers", "Value",
	    mp_tuple_of(0), d, true);
	return *out == NULL ? -ENOMEM : 0;
}

static const char *const v_exposed[] = { "get", "set", NULL };

static const struct mp__mgr_method v_methods[] = {
	{ "get", v_get, NULL },
	{ "set", v_set, NULL },
};

const struct mp__mgr_class mp__mgr_class_value = {
	.typeid = "Value",
	.pyname = "Value",
	.exposed = v_exposed,
	.methods = v_methods,
	.n_methods = MP__ARRAY_LEN(v_methods),
	.create = v_create,
	.destroy = v_destroy,
	.repr = v_repr,
	.getvalue = v_getvalue,
};

/* ---- Array --------------------------------------------------------------- */

/*
 * array.array(typecode, sequence): items kept as values, checked against
 * the typecode's C range on the way in and packed to machine bytes only
 * for the replies that carry an array.array (slices, #GETVALUE).
 */
struct array {
	char tc;
	mp_obj_t *items; /* list */
};

struct tcinfo {
	char tc;
	unsigned size;
	bool is_float;
	bool is_signed;
};

static const struct tcinfo tcs[] = {
	{ 'b', 1, false, true }, { 'B', 1, false, false },
	{ 'h', 2, false, true }, { 'H', 2, false, false },
	{ 'i', 4, false, true }, { 'I', 4, false, false },
	{ 'l', 8, false, true }, { 'L', 8, false, false },
	{ 'q', 8, false, true }, { 'Q', 8, false, false },
	{ 'f', 4, true, true }, { 'd', 8, true, true },
};

static const struct tcinfo *
tc_find(char tc)
{
	for (size_t i = 0; i < MP__ARRAY_LEN(tcs); i++) {
		if (tcs[i].tc == tc) {
			return &tcs[i];
		}
	}
	return NULL;
}

/* Check one item for the typecode; 1 when the error reply is set. */
static int
check_item(struct mp__mgr_call *c, const struct tcinfo *t, const mp_obj_t *v)
{
	enum mp_type ty = mp_obj_type(v);
	if (t->is_float) {
		if (ty != MP_TYPE_FLOAT && ty != MP_TYPE_INT &&
		    ty != MP_TYPE_BOOL) {
			mp__mgr_errf(c, MP__EXC_TYPE, "must be real number, "
			    "not %s", mp_obj_type_name(v));
			return 1;
		}
		return 0;
	}
	int64_t x;
	if (ty != MP_TYPE_INT && ty != MP_TYPE_BOOL) {
		mp__mgr_errf(c, MP__EXC_TYPE, "'%s' object cannot be "
		    "interpreted as an integer", mp_obj_type_name(v));
		return 1;
	}
	bool fits = mp_int_value(v, &x) == 0;
	if (fits && t->size < 8) {
		unsigned bits = 8 * t->size;
		int64_t lo = t->is_signed ? -((int64_t)1 << (bits - 1)) : 0;
		int64_t hi = t->is_signed ? ((int64_t)1 << (bits - 1)) - 1 :
		    ((int64_t)1 << bits) - 1;
		fits = x >= lo && x <= hi;
	} else if (fits && !t->is_signed) {
		fits = x >= 0;
	}
	if (!fits) {
		mp__mgr_errf(c, MP__EXC_OVERFLOW, "array item out of range");
		return 1;
	}
	return 0;
}

static int
a_create(struct mp__mgr_call *c, void **impl)
{
	if (mp__mgr_args_check(c, 2, NULL) != 0) {
		return MP_EREMOTEERR;
	}
	mp_obj_t *tco = mp__mgr_arg(c, 0, NULL);
	mp_obj_t *seq = mp__mgr_arg(c, 1, NULL);
	size_t n;
	const char *tcs_ = mp_str_data(tco, &n);
	const struct tcinfo *t = tcs_ != NULL && n == 1 ? tc_find(tcs_[0]) :
	    NULL;
	if (t == NULL) {
		mp__mgr_errf(c, MP__EXC_VALUE, "bad typecode (must be b, B, h, "
		    "H, i, I, l, L, q, Q, f or d)");
		return MP_EREMOTEERR;
	}
	enum mp_type st = seq == NULL ? MP_TYPE_NONE : mp_obj_type(seq);
	if (seq != NULL && st != MP_TYPE_LIST && st != MP_TYPE_TUPLE) {
		mp__mgr_errf(c, MP__EXC_TYPE, "cannot use a %s to initialize "
		    "an array", mp_obj_type_name(seq));
		return MP_EREMOTEERR;
	}
	struct array *a = mp__calloc(1, sizeof(*a));
	if (a == NULL || (a->items = mp_list_new()) == NULL) {
		mp__free(a);
		return -ENOMEM;
	}
	a->tc = t->tc;
	for (size_t i = 0; seq != NULL && i < mp_obj_len(seq); i++) {
		mp_obj_t *v = st == MP_TYPE_LIST ?
		    mp_list_get(seq, (ssize_t)i) :
		    mp_tuple_get(seq, (ssize_t)i);
		if (check_item(c, t, v) != 0) {
			mp_obj_unref(a->items);
			mp__free(a);
			return MP_EREMOTEERR;
		}
		mp_obj_t *item = t->is_float ?
		    mp_float(mp_float_value(v)) : mp_obj_ref(v);
		if (mp_list_append(a->items, item) != 0) {
			mp_obj_unref(a->items);
			mp__free(a);
			return -ENOMEM;
		}
	}
	*impl = a;
	return 0;
}

static void
a_destroy(void *impl)
{
	struct array *a = impl;
	mp_obj_unref(a->items);
	mp__free(a);
}

/* array.array(tc, bytes) for items[start + k*step], k < n. */
static mp_obj_t *
pack(const struct array *a, int64_t start, int64_t step, size_t n)
{
	const struct tcinfo *t = tc_find(a->tc);
	uint8_t *buf = mp__malloc(n * t->size + 1);
	if (buf == NULL) {
		return NULL;
	}
	for (size_t k = 0; k < n; k++) {
		mp_obj_t *v = mp_list_get(a->items, (ssize_t)(start +
		    (int64_t)k * step));
		uint8_t *p = buf + k * t->size;
		if (t->is_float) {
			double d = mp_float_value(v);
			float f = (float)d;
			memcpy(p, t->size == 4 ? (void *)&f : (void *)&d,
			    t->size);
		} else {
			int64_t x = 0;
			(void)mp_int_value(v, &x);
			/* Little-endian host: the low bytes come first. */
			memcpy(p, &x, t->size);
		}
	}
	char tcs_[2] = { a->tc, '\0' };
	mp_obj_t *args = mp_tuple_of(2, mp_str(tcs_),
	    mp_bytes(buf, n * t->size));
	mp__free(buf);
	return mp_instance_new("array", "array", args, NULL, false);
}

static int
a_len(struct mp__mgr_call *c)
{
	struct array *a = c->obj->impl;
	if (mp__mgr_args_check(c, 0, NULL) != 0) {
		return 0;
	}
	return mp__mgr_ret(c, mp_int((int64_t)mp_obj_len(a->items)));
}

static int
a_getitem(struct mp__mgr_call *c)
{
	struct array *a = c->obj->impl;
	if (mp_obj_len(c->args) != 1 || mp_obj_len(c->kwds) != 0) {
		return mp__mgr_errf(c, MP__EXC_TYPE,
		    "__getitem__ expected 1 argument");
	}
	mp_obj_t *i = mp_tuple_get(c->args, 0);
	if (mp__mgr_is_slice(i)) {
		int64_t start;
		int64_t step;
		size_t n;
		int rv;
		if (!mp__mgr_slice_arg(c, i, mp_obj_len(a->items), &start,
		    &step, &n, &rv)) {
			return rv;
		}
		return mp__mgr_ret(c, pack(a, start, step, n));
	}
	size_t k;
	if (!mp__mgr_index(i, mp_obj_len(a->items), &k)) {
		if (mp_obj_type(i) != MP_TYPE_INT) {
			return mp__mgr_errf(c, MP__EXC_TYPE,
			    "array indices must be integers");
		}
		return mp__mgr_errf(c, MP__EXC_INDEX,
		    "array index out of range");
	}
	return mp__mgr_ret(c, mp_obj_ref(mp_list_get(a->items, (ssize_t)k)));
}

static int
a_setitem(struct mp__mgr_call *c)
{
	struct array *a = c->obj->impl;
	if (mp_obj_len(c->args) != 2 || mp_obj_len(c->kwds) != 0) {
		return mp__mgr_errf(c, MP__EXC_TYPE,
		    "__setitem__ expected 2 arguments");
	}
	mp_obj_t *i = mp_tuple_get(c->args, 0);
	mp_obj_t *v = mp_tuple_get(c->args, 1);
	size_t k;
	if (mp__mgr_is_slice(i)) {
		return mp__mgr_errf(c, MP__EXC_TYPE, "slice assignment is not "
		    "supported by this server's Array");
	}
	if (!mp__mgr_index(i, mp_obj_len(a->items), &k)) {
		if (mp_obj_type(i) != MP_TYPE_INT) {
			return mp__mgr_errf(c, MP__EXC_TYPE,
			    "array indices must be integers");
		}
		return mp__mgr_errf(c, MP__EXC_INDEX,
		    "array assignment index out of range");
	}
	const struct tcinfo *t = tc_find(a->tc);
	if (check_item(c, t, v) != 0) {
		return 0;
	}
	mp_obj_t *item = t->is_float ? mp_float(mp_float_value(v)) :
	    mp_obj_ref(v);
	int rv = mp_list_set(a->items, (ssize_t)k, item);
	return rv != 0 ? rv : mp__mgr_ret(c, mp_none());
}

static int
a_repr(void *impl, bool as_str, char **out)
{
	(void)as_str;
	struct array *a = impl;
	if (mp_obj_len(a->items) == 0) {
		char buf[16];
		snprintf(buf, sizeof(buf), "array('%c')", a->tc);
		*out = mp__strdup(buf);
		return *out == NULL ? -ENOMEM : 0;
	}
	char *items = NULL;
	int rv = mp_obj_repr(a->items, &items);
	if (rv != 0) {
		return rv;
	}
	size_t n = strlen(items) + 16;
	*out = mp_malloc(n);
	if (*out != NULL) {
		snprintf(*out, n, "array('%c', %s)", a->tc, items);
	}
	mp_free(items);
	return *out == NULL ? -ENOMEM : 0;
}

static int
a_getvalue(void *impl, mp_obj_t **out)
{
	struct array *a = impl;
	*out = pack(a, 0, 1, mp_obj_len(a->items));
	return *out == NULL ? -ENOMEM : 0;
}

static const char *const a_exposed[] = {
	"__len__", "__getitem__", "__setitem__", NULL,
};

static const struct mp__mgr_method a_methods[] = {
	{ "__len__", a_len, NULL },
	{ "__getitem__", a_getitem, NULL },
	{ "__setitem__", a_setitem, NULL },
};

const struct mp__mgr_class mp__mgr_class_array = {
	.typeid = "Array",
	.pyname = "array",
	.exposed = a_exposed,
	.methods = a_methods,
	.n_methods = MP__ARRAY_LEN(a_methods),
	.create = a_create,
	.destroy = a_destroy,
	.repr = a_repr,
	.getvalue = a_getvalue,
};

/* ---- Namespace ----------------------------------------------------------- */

/* managers.Namespace(**kwds): a dict of attributes by name. */
static int
ns_create(struct mp__mgr_call *c, void **impl)
{
	if (mp_obj_len(c->args) != 0) {
		mp__mgr_errf(c, MP__EXC_TYPE, "Namespace() takes no positional "
		    "arguments");
		return MP_EREMOTEERR;
	}
	mp_obj_t *d = mp_dict_new();
	size_t pos = 0;
	mp_obj_t *k;
	mp_obj_t *v;
	while (d != NULL && mp_dict_next(c->kwds, &pos, &k, &v)) {
		if (mp_dict_set(d, mp_obj_ref(k), mp_obj_ref(v)) != 0) {
			mp_obj_unref(d);
			d = NULL;
		}
	}
	*impl = d;
	return d == NULL ? -ENOMEM : 0;
}

static void
ns_destroy(void *impl)
{
	mp_obj_unref(impl);
}

/* The attribute name argument, or NULL with the TypeError set. */
static mp_obj_t *
ns_name(struct mp__mgr_call *c, size_t nargs)
{
	if (mp_obj_len(c->args) != nargs || mp_obj_len(c->kwds) != 0) {
		mp__mgr_errf(c, MP__EXC_TYPE, "expected %zu arguments, got %zu",
		    nargs, mp_obj_len(c->args));
		return NULL;
	}
	mp_obj_t *name = mp_tuple_get(c->args, 0);
	if (mp_obj_type(name) != MP_TYPE_STR) {
		mp__mgr_errf(c, MP__EXC_TYPE, "attribute name must be string, "
		    "not '%s'", mp_obj_type_name(name));
		return NULL;
	}
	return name;
}

static int
ns_no_attr(struct mp__mgr_call *c, const mp_obj_t *name)
{
	/* 3.12+ also carry name and obj as state; the args suffice. */
	return mp__mgr_errf(c, MP__EXC_ATTRIBUTE,
	    "'Namespace' object has no attribute '%.100s'",
	    mp_str_data(name, NULL));
}

static int
ns_get(struct mp__mgr_call *c)
{
	mp_obj_t *name = ns_name(c, 1);
	if (name == NULL) {
		return 0;
	}
	mp_obj_t *v = mp_dict_get(c->obj->impl, name);
	return v == NULL ? ns_no_attr(c, name) : mp__mgr_ret(c, mp_obj_ref(v));
}

static int
ns_set(struct mp__mgr_call *c)
{
	mp_obj_t *name = ns_name(c, 2);
	if (name == NULL) {
		return 0;
	}
	int rv = mp_dict_set(c->obj->impl, mp_obj_ref(name),
	    mp_obj_ref(mp_tuple_get(c->args, 1)));
	return rv != 0 ? rv : mp__mgr_ret(c, mp_none());
}

static int
ns_del(struct mp__mgr_call *c)
{
	mp_obj_t *name = ns_name(c, 1);
	if (name == NULL) {
		return 0;
	}
	if (mp_dict_del(c->obj->impl, name) != 0) {
		return ns_no_attr(c, name);
	}
	return mp__mgr_ret(c, mp_none());
}

/* "Namespace(a=1, b='x')": public names, "name=repr" sorted. */
static int
ns_repr(void *impl, bool as_str, char **out)
{
	(void)as_str;
	mp_obj_t *d = impl;
	size_t n = mp_obj_len(d);
	char **parts = mp__calloc(n + 1, sizeof(*parts));
	if (parts == NULL) {
		return -ENOMEM;
	}
	size_t np = 0;
	size_t pos = 0;
	mp_obj_t *k;
	mp_obj_t *v;
	int rv = 0;
	while (rv == 0 && mp_dict_next(d, &pos, &k, &v)) {
		const char *ks = mp_str_data(k, NULL);
		if (ks[0] == '_') {
			continue;
		}
		char *r = NULL;
		rv = mp_obj_repr(v, &r);
		if (rv == 0) {
			size_t len = strlen(ks) + strlen(r) + 2;
			parts[np] = mp__malloc(len);
			if (parts[np] == NULL) {
				rv = -ENOMEM;
			} else {
				snprintf(parts[np++], len, "%s=%s", ks, r);
			}
		}
		mp_free(r);
	}
	/* Insertion sort: namespaces are small. */
	for (size_t i = 1; i < np; i++) {
		for (size_t j = i; j > 0 && strcmp(parts[j - 1], parts[j]) > 0;
		    j--) {
			char *t = parts[j];
			parts[j] = parts[j - 1];
			parts[j - 1] = t;
		}
	}
	struct mp__buf b = { 0 };
	if (rv == 0) {
		rv = mp__buf_append(&b, "Namespace(", 10);
	}
	for (size_t i = 0; rv == 0 && i < np; i++) {
		if (i > 0) {
			rv = mp__buf_append(&b, ", ", 2);
		}
		if (rv == 0) {
			rv = mp__buf_append(&b, parts[i], strlen(parts[i]));
		}
	}
	if (rv == 0) {
		rv = mp__buf_append(&b, ")", 2);
	}
	for (size_t i = 0; i < np; i++) {
		mp__free(parts[i]);
	}
	mp__free(parts);
	if (rv != 0) {
		mp__buf_fini(&b);
		return rv;
	}
	*out = mp__buf_steal(&b, NULL);
	return 0;
}

static int
ns_getvalue(void *impl, mp_obj_t **out)
{
	mp_obj_t *d = mp_dict_new();
	size_t pos = 0;
	mp_obj_t *k;
	mp_obj_t *v;
	while (d != NULL && mp_dict_next(impl, &pos, &k, &v)) {
		if (mp_dict_set(d, mp_obj_ref(k), mp_obj_ref(v)) != 0) {
			mp_obj_unref(d);
			d = NULL;
		}
	}
	if (d == NULL) {
		return -ENOMEM;
	}
	*out = mp_instance_new("multiprocessing.managers", "Namespace",
	    mp_tuple_of(0), d, true);
	return *out == NULL ? -ENOMEM : 0;
}

static const char *const ns_exposed[] = {
	"__getattribute__", "__setattr__", "__delattr__", NULL,
};

static const struct mp__mgr_method ns_methods[] = {
	{ "__getattribute__", ns_get, NULL },
	{ "__setattr__", ns_set, NULL },
	{ "__delattr__", ns_del, NULL },
};

const struct mp__mgr_class mp__mgr_class_namespace = {
	.typeid = "Namespace",
	.pyname = "Namespace",
	.exposed = ns_exposed,
	.methods = ns_methods,
	.n_methods = MP__ARRAY_LEN(ns_methods),
	.create = ns_create,
	.destroy = ns_destroy,
	.repr = ns_repr,
	.getvalue = ns_getvalue,
};
