/* SPDX-License-Identifier: MIT */
/* manager/types_dict.c: the dict typeid (DictProxy's methods) and the Iterator its __iter__ returns. */
#include "manager/server_int.h"

#include <stdio.h>
#include <string.h>

#define DICT(c) ((mp_obj_t *)(c)->obj->impl)

/* Copy the pairs of src (a dict) into d. */
static int
merge(mp_obj_t *d, const mp_obj_t *src)
{
	size_t pos = 0;
	mp_obj_t *k;
	mp_obj_t *v;
	while (mp_dict_next(src, &pos, &k, &v)) {
		int rv = mp_dict_set(d, mp_obj_ref(k), mp_obj_ref(v));
		if (rv != 0) {
			return rv;
		}
	}
	return 0;
}

/* dict.update's positional argument: a dict or a sequence of pairs. */
static int
merge_any(struct mp__mgr_call *c, mp_obj_t *d, const mp_obj_t *src)
{
	enum mp_type t = mp_obj_type(src);
	if (t == MP_TYPE_DICT) {
		return merge(d, src);
	}
	if (t != MP_TYPE_LIST && t != MP_TYPE_TUPLE) {
		mp__mgr_errf(c, MP__EXC_TYPE, "'%s' object is not iterable",
		    mp_obj_type_name(src));
		return MP_EREMOTEERR;
	}
	for (size_t i = 0; i < mp_obj_len(src); i++) {
		mp_obj_t *p = t == MP_TYPE_LIST ? mp_list_get(src, (ssize_t)i) :
		    mp_tuple_get(src, (ssize_t)i);
		enum mp_type pt = mp_obj_type(p);
		if ((pt != MP_TYPE_TUPLE && pt != MP_TYPE_LIST) ||
		    mp_obj_len(p) != 2) {
			mp__mgr_errf(c, MP__EXC_VALUE, "dictionary update "
			    "sequence element #%zu has length %zu; 2 is "
			    "required", i, mp_obj_len(p));
			return MP_EREMOTEERR;
		}
		mp_obj_t *k = pt == MP_TYPE_TUPLE ? mp_tuple_get(p, 0) :
		    mp_list_get(p, 0);
		mp_obj_t *v = pt == MP_TYPE_TUPLE ? mp_tuple_get(p, 1) :
		    mp_list_get(p, 1);
		int rv = mp_dict_set(d, mp_obj_ref(k), mp_obj_ref(v));
		if (rv != 0) {
			return rv;
		}
	}
	return 0;
}

/* A TypeError for an unhashable key; 1 when replied. */
static int
check_key(struct mp__mgr_call *c, const mp_obj_t *k)
{
	uint64_t h;
	if (mp_obj_hash(k, &h) != 0) {
		mp__mgr_errf(c, MP__EXC_TYPE, "unhashable type: '%s'",
		    mp_obj_type_name(k));
		return 1;
	}
	return 0;
}

static int
key_error(struct mp__mgr_call *c, const mp_obj_t *k)
{
	/* Checked: a NULL args would make a KeyError without its key. */
	mp_obj_t *args = mp_tuple_of(1, mp_obj_ref((mp_obj_t *)k));
	return args == NULL ? -ENOMEM : mp__mgr_err(c,
	    mp__mgr_exc(MP__EXC_KEY, args));
}

static int
set_status(struct mp__mgr_call *c, int rv)
{
	if (rv == MP_EREMOTEERR) {
		return 0; /* the reply is already the error */
	}
	if (rv == MP_ETYPE) {
		return mp__mgr_errf(c, MP__EXC_TYPE, "unhashable type");
	}
	return rv;
}

static int
d_create(struct mp__mgr_call *c, void **impl)
{
	if (mp_obj_len(c->args) > 1) {
		mp__mgr_errf(c, MP__EXC_TYPE, "dict expected at most 1 "
		    "argument, got %zu", mp_obj_len(c->args));
		return MP_EREMOTEERR;
	}
	mp_obj_t *d = mp_dict_new();
	if (d == NULL) {
		return -ENOMEM;
	}
	mp_obj_t *src = mp__mgr_arg(c, 0, NULL);
	int rv = src != NULL ? merge_any(c, d, src) : 0;
	if (rv == 0) {
		rv = merge(d, c->kwds);
	}
	if (rv != 0) {
		mp_obj_unref(d);
		return rv == MP_ETYPE ? -EINVAL : rv;
	}
	*impl = d;
	return 0;
}

static void
d_destroy(void *impl)
{
	mp_obj_unref(impl);
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
d_getitem(struct mp__mgr_call *c)
{
	mp_obj_t *k;
	if (one_arg(c, &k) != 0 || check_key(c, k) != 0) {
		return 0;
	}
	mp_obj_t *v = mp_dict_get(DICT(c), k);
	return v == NULL ? key_error(c, k) : mp__mgr_ret(c, mp_obj_ref(v));
}

static int
d_setitem(struct mp__mgr_call *c)
{
	if (mp_obj_len(c->args) != 2 || mp_obj_len(c->kwds) != 0) {
		return mp__mgr_errf(c, MP__EXC_TYPE,
		    "__setitem__ expected 2 arguments");
	}
	mp_obj_t *k = mp_tuple_get(c->args, 0);
	if (check_key(c, k) != 0) {
		return 0;
	}
	int rv = mp_dict_set(DICT(c), mp_obj_ref(k),
	    mp_obj_ref(mp_tuple_get(c->args, 1)));
	return rv != 0 ? set_status(c, rv) : mp__mgr_ret(c, mp_none());
}

static int
d_delitem(struct mp__mgr_call *c)
{
	mp_obj_t *k;
	if (one_arg(c, &k) != 0 || check_key(c, k) != 0) {
		return 0;
	}
	if (mp_dict_del(DICT(c), k) != 0) {
		return key_error(c, k);
	}
	return mp__mgr_ret(c, mp_none());
}

static int
d_contains(struct mp__mgr_call *c)
{
	mp_obj_t *k;
	if (one_arg(c, &k) != 0 || check_key(c, k) != 0) {
		return 0;
	}
	return mp__mgr_ret(c, mp_bool(mp_dict_get(DICT(c), k) != NULL));
}

static int
d_len(struct mp__mgr_call *c)
{
	if (mp__mgr_args_check(c, 0, NULL) != 0) {
		return 0;
	}
	return mp__mgr_ret(c, mp_int((int64_t)mp_obj_len(DICT(c))));
}

enum view { KEYS, VALUES, ITEMS };

/* keys(), values(), items() arrive in CPython clients as lists. */
static mp_obj_t *
view(const mp_obj_t *d, enum view which)
{
	mp_obj_t *out = mp_list_new();
	size_t pos = 0;
	mp_obj_t *k;
	mp_obj_t *v;
	while (out != NULL && mp_dict_next(d, &pos, &k, &v)) {
		mp_obj_t *it = which == KEYS ? mp_obj_ref(k) :
		    which == VALUES ? mp_obj_ref(v) :
		    mp_tuple_of(2, mp_obj_ref(k), mp_obj_ref(v));
		if (mp_list_append(out, it) != 0) {
			mp_obj_unref(out);
			out = NULL;
		}
	}
	return out;
}

static int
d_view(struct mp__mgr_call *c, enum view which)
{
	if (mp__mgr_args_check(c, 0, NULL) != 0) {
		return 0;
	}
	return mp__mgr_ret(c, view(DICT(c), which));
}

static int
d_keys(struct mp__mgr_call *c)
{
	return d_view(c, KEYS);
}

static int
d_values(struct mp__mgr_call *c)
{
	return d_view(c, VALUES);
}

static int
d_items(struct mp__mgr_call *c)
{
	return d_view(c, ITEMS);
}

/* __iter__: the keys now; the server wraps them as an Iterator. */
static int
d_iter(struct mp__mgr_call *c)
{
	return d_view(c, KEYS);
}

static int
d_clear(struct mp__mgr_call *c)
{
	if (mp__mgr_args_check(c, 0, NULL) != 0) {
		return 0;
	}
	mp_obj_t *fresh = mp_dict_new();
	if (fresh == NULL) {
		return -ENOMEM;
	}
	mp_obj_unref(c->obj->impl);
	c->obj->impl = fresh;
	return mp__mgr_ret(c, mp_none());
}

static int
d_copy(struct mp__mgr_call *c)
{
	if (mp__mgr_args_check(c, 0, NULL) != 0) {
		return 0;
	}
	mp_obj_t *d = mp_dict_new();
	if (d == NULL || merge(d, DICT(c)) != 0) {
		mp_obj_unref(d);
		return -ENOMEM;
	}
	return mp__mgr_ret(c, d);
}

static int
d_get(struct mp__mgr_call *c)
{
	size_t n = mp_obj_len(c->args);
	if (n < 1 || n > 2 || mp_obj_len(c->kwds) != 0) {
		return mp__mgr_errf(c, MP__EXC_TYPE,
		    "get expected at least 1 argument, got %zu", n);
	}
	mp_obj_t *k = mp_tuple_get(c->args, 0);
	if (check_key(c, k) != 0) {
		return 0;
	}
	mp_obj_t *v = mp_dict_get(DICT(c), k);
	if (v == NULL) {
		v = n == 2 ? mp_tuple_get(c->args, 1) : mp_none();
	}
	return mp__mgr_ret(c, mp_obj_ref(v));
}

static int
d_pop(struct mp__mgr_call *c)
{
	size_t n = mp_obj_len(c->args);
	if (n < 1 || n > 2 || mp_obj_len(c->kwds) != 0) {
		return mp__mgr_errf(c, MP__EXC_TYPE,
		    "pop expected at least 1 argument, got %zu", n);
	}
	mp_obj_t *k = mp_tuple_get(c->args, 0);
	if (check_key(c, k) != 0) {
		return 0;
	}
	mp_obj_t *v = mp_dict_get(DICT(c), k);
	if (v == NULL) {
		return n == 2 ? mp__mgr_ret(c, mp_obj_ref(mp_tuple_get(c->args,
		    1))) : key_error(c, k);
	}
	mp_obj_ref(v);
	mp_dict_del(DICT(c), k);
	return mp__mgr_ret(c, v);
}

static int
d_popitem(struct mp__mgr_call *c)
{
	if (mp__mgr_args_check(c, 0, NULL) != 0) {
		return 0;
	}
	mp_obj_t *d = DICT(c);
	size_t pos = 0;
	mp_obj_t *k;
	mp_obj_t *v;
	mp_obj_t *lk = NULL;
	mp_obj_t *lv = NULL;
	/* The last pair inserted (LIFO), as dict.popitem. */
	while (mp_dict_next(d, &pos, &k, &v)) {
		lk = k;
		lv = v;
	}
	if (lk == NULL) {
		return mp__mgr_errf(c, MP__EXC_KEY,
		    "popitem(): dictionary is empty");
	}
	mp_obj_t *pair = mp_tuple_of(2, mp_obj_ref(lk), mp_obj_ref(lv));
	if (pair == NULL) {
		return -ENOMEM;
	}
	mp_dict_del(d, mp_tuple_get(pair, 0));
	return mp__mgr_ret(c, pair);
}

static int
d_setdefault(struct mp__mgr_call *c)
{
	size_t n = mp_obj_len(c->args);
	if (n < 1 || n > 2 || mp_obj_len(c->kwds) != 0) {
		return mp__mgr_errf(c, MP__EXC_TYPE,
		    "setdefault expected at least 1 argument, got %zu", n);
	}
	mp_obj_t *k = mp_tuple_get(c->args, 0);
	if (check_key(c, k) != 0) {
		return 0;
	}
	mp_obj_t *v = mp_dict_get(DICT(c), k);
	if (v == NULL) {
		v = n == 2 ? mp_tuple_get(c->args, 1) : mp_none();
		int rv = mp_dict_set(DICT(c), mp_obj_ref(k), mp_obj_ref(v));
		if (rv != 0) {
			return set_status(c, rv);
		}
	}
	return mp__mgr_ret(c, mp_obj_ref(v));
}

static int
d_update(struct mp__mgr_call *c)
{
	if (mp_obj_len(c->args) > 1) {
		return mp__mgr_errf(c, MP__EXC_TYPE,
		    "update expected at most 1 argument, got %zu",
		    mp_obj_len(c->args));
	}
	int rv = 0;
	if (mp_obj_len(c->args) == 1) {
		rv = merge_any(c, DICT(c), mp_tuple_get(c->args, 0));
	}
	if (rv == 0) {
		rv = merge(DICT(c), c->kwds);
	}
	return rv != 0 ? set_status(c, rv) : mp__mgr_ret(c, mp_none());
}

static int
d_repr(void *impl, bool as_str, char **out)
{
	(void)as_str;
	return mp_obj_repr(impl, out);
}

static int
d_getvalue(void *impl, mp_obj_t **out)
{
	*out = mp_obj_ref(impl);
	return 0;
}

/* DictProxy._exposed_, then method_to_typeid's keys again, as CPython. */
static const char *const d_exposed[] = {
	"__contains__", "__delitem__", "__getitem__", "__iter__", "__len__",
	"__setitem__", "clear", "copy", "get", "items", "keys", "pop",
	"popitem", "setdefault", "update", "values", "__iter__", NULL,
};

static const struct mp__mgr_method d_methods[] = {
	{ "__contains__", d_contains, NULL },
	{ "__delitem__", d_delitem, NULL },
	{ "__getitem__", d_getitem, NULL },
	{ "__iter__", d_iter, "Iterator" },
	{ "__len__", d_len, NULL },
	{ "__setitem__", d_setitem, NULL },
	{ "clear", d_clear, NULL },
	{ "copy", d_copy, NULL },
	{ "get", d_get, NULL },
	{ "items", d_items, NULL },
	{ "keys", d_keys, NULL },
	{ "pop", d_pop, NULL },
	{ "popitem", d_popitem, NULL },
	{ "setdefault", d_setdefault, NULL },
	{ "update", d_update, NULL },
	{ "values", d_values, NULL },
};

const struct mp__mgr_class mp__mgr_class_dict = {
	.typeid = "dict",
	.pyname = "dict",
	.exposed = d_exposed,
	.methods = d_methods,
	.n_methods = MP__ARRAY_LEN(d_methods),
	.create = d_create,
	.destroy = d_destroy,
	.repr = d_repr,
	.getvalue = d_getvalue,
};

/* ---- Iterator ------------------------------------------------------------ */

struct iter {
	mp_obj_t *items; /* a list or tuple */
	size_t pos;
};

static int
it_create(struct mp__mgr_call *c, void **impl)
{
	mp_obj_t *src = mp__mgr_arg(c, 0, NULL);
	enum mp_type t = src == NULL ? MP_TYPE_NONE : mp_obj_type(src);
	if (mp_obj_len(c->args) != 1 || (t != MP_TYPE_LIST &&
	    t != MP_TYPE_TUPLE)) {
		mp__mgr_errf(c, MP__EXC_TYPE, "Iterator wraps a sequence");
		return MP_EREMOTEERR;
	}
	struct iter *it = mp__calloc(1, sizeof(*it));
	if (it == NULL) {
		return -ENOMEM;
	}
	it->items = mp_obj_ref(src);
	*impl = it;
	return 0;
}

static void
it_destroy(void *impl)
{
	struct iter *it = impl;
	mp_obj_unref(it->items);
	mp__free(it);
}

static int
it_next(struct mp__mgr_call *c)
{
	struct iter *it = c->obj->impl;
	if (it->pos >= mp_obj_len(it->items)) {
		return mp__mgr_err(c, mp__mgr_exc(MP__EXC_STOP, NULL));
	}
	size_t i = it->pos++;
	mp_obj_t *v = mp_obj_type(it->items) == MP_TYPE_LIST ?
	    mp_list_get(it->items, (ssize_t)i) :
	    mp_tuple_get(it->items, (ssize_t)i);
	return mp__mgr_ret(c, mp_obj_ref(v));
}

/* A dict iterator has no send, throw or close: AttributeError. */
static int
it_missing(struct mp__mgr_call *c)
{
	return mp__mgr_errf(c, MP__EXC_ATTRIBUTE,
	    "'dict_keyiterator' object has no attribute '%s'", c->m->name);
}

static int
it_repr(void *impl, bool as_str, char **out)
{
	(void)as_str;
	char buf[64];
	snprintf(buf, sizeof(buf), "<dict_keyiterator object at %p>", impl);
	*out = mp__strdup(buf);
	return *out == NULL ? -ENOMEM : 0;
}

static const char *const it_exposed[] = {
	"__next__", "send", "throw", "close", NULL,
};

static const struct mp__mgr_method it_methods[] = {
	{ "__next__", it_next, NULL },
	{ "send", it_missing, NULL },
	{ "throw", it_missing, NULL },
	{ "close", it_missing, NULL },
};

const struct mp__mgr_class mp__mgr_class_iterator = {
	.typeid = "Iterator",
	.pyname = "Iterator",
	.exposed = it_exposed,
	.methods = it_methods,
	.n_methods = MP__ARRAY_LEN(it_methods),
	.create = it_create,
	.destroy = it_destroy,
	.repr = it_repr,
};
