/* SPDX-License-Identifier: MIT */
/* obj/obj.c: refcounts, scalars, str, bytes, tuple, list, instance. */
#include "obj/obj_impl.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

/*
 * None, True and False live in static storage and are marked immortal, so
 * ref and unref skip the counter: they are shared by every thread and
 * every forked child without a single write to their cache line.
 */
static mp_obj_t none_obj = { .type = MP_TYPE_NONE, .immortal = true };
static mp_obj_t true_obj = {
	.type = MP_TYPE_BOOL, .immortal = true, .u.b = true };
static mp_obj_t false_obj = {
	.type = MP_TYPE_BOOL, .immortal = true, .u.b = false };

mp_obj_t *
mp__obj_alloc(enum mp_type type, size_t extra)
{
	if (extra > SIZE_MAX - sizeof(mp_obj_t)) {
		return NULL;
	}
	size_t size = sizeof(mp_obj_t) + extra;
	unsigned cls = 0;
	mp_obj_t *o;
	if (size <= MP__OBJ_CACHE_MAX) {
		cls = (unsigned)((size + MP__OBJ_CACHE_GRAIN - 1) /
		    MP__OBJ_CACHE_GRAIN);
		o = mp__obj_cache_take(cls);
	} else {
		o = mp__malloc(size);
	}
	if (o == NULL) {
		return NULL;
	}
	memset(o, 0, sizeof(*o));
	atomic_init(&o->refs, 1);
	o->type = type;
	o->cls = (uint8_t)cls;
	return o;
}

mp_obj_t *
mp_obj_ref(mp_obj_t *o)
{
	if (o != NULL && !o->immortal) {
		atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
	}
	return o;
}

/*
 * A list's first LIST_INLINE item slots follow its header in the same
 * block: most lists a program sends are short, and a decoded message then
 * costs one allocation less. A list that outgrows them moves its items to
 * an array of their own.
 */
#define LIST_INLINE 4

static mp_obj_t **
list_inline(mp_obj_t *l)
{
	return (mp_obj_t **)(l + 1);
}

static void
release_items(mp_obj_t **items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		mp_obj_unref(items[i]);
	}
}

/*
 * Strings, bytes, tuples and big ints keep their payload in the same
 * block as the header, so only containers with separate arrays and
 * instances have more to release.
 */
static void
obj_free(mp_obj_t *o)
{
	switch (o->type) {
	case MP_TYPE_TUPLE:
		release_items(o->u.seq.items, o->u.seq.len);
		break;
	case MP_TYPE_LIST:
		release_items(o->u.seq.items, o->u.seq.len);
		if (o->u.seq.items != list_inline(o)) {
			mp__free(o->u.seq.items);
		}
		break;
	case MP_TYPE_DICT:
	case MP_TYPE_SET:
	case MP_TYPE_FROZENSET:
		mp__table_fini(&o->u.t);
		break;
	case MP_TYPE_INSTANCE:
		mp__free(o->u.inst.module);
		mp__free(o->u.inst.name);
		mp_obj_unref(o->u.inst.args);
		mp_obj_unref(o->u.inst.state);
		break;
	default:
		break;
	}
	if (o->cls != 0) {
		mp__obj_cache_give(o, o->cls);
	} else {
		mp__free(o);
	}
}

void
mp_obj_unref(mp_obj_t *o)
{
	if (o == NULL || o->immortal) {
		return;
	}
	/*
	 * The last reference needs no atomic decrement: whoever holds the
	 * only reference is the only one who could add another, so nobody
	 * can race with the free. The acquire load pairs with the release
	 * decrements of threads that dropped theirs before. Most objects
	 * die this way (a decoded message freed by its one reader), which
	 * spares a locked instruction per object.
	 */
	if (atomic_load_explicit(&o->refs, memory_order_acquire) == 1) {
		obj_free(o);
		return;
	}
	/*
	 * Release ordering on the decrement and an acquire fence before the
	 * free, so writes other threads made to the object happen before it
	 * is torn down (the pattern of std::shared_ptr and Rust's Arc).
	 */
	if (atomic_fetch_sub_explicit(&o->refs, 1, memory_order_release) != 1) {
		return;
	}
	atomic_thread_fence(memory_order_acquire);
	obj_free(o);
}

enum mp_type
mp_obj_type(const mp_obj_t *o)
{
	MP_ASSERT(o != NULL);
	return o->type;
}

const char *
mp_obj_type_name(const mp_obj_t *o)
{
	static const char *const names[] = {
		[MP_TYPE_NONE] = "NoneType",
		[MP_TYPE_BOOL] = "bool",
		[MP_TYPE_INT] = "int",
		[MP_TYPE_FLOAT] = "float",
		[MP_TYPE_STR] = "str",
		[MP_TYPE_BYTES] = "bytes",
		[MP_TYPE_TUPLE] = "tuple",
		[MP_TYPE_LIST] = "list",
		[MP_TYPE_DICT] = "dict",
		[MP_TYPE_SET] = "set",
		[MP_TYPE_FROZENSET] = "frozenset",
		[MP_TYPE_INSTANCE] = "object",
	};
	MP_ASSERT(o != NULL);
	if (o->type == MP_TYPE_INSTANCE) {
		return o->u.inst.name;
	}
	return names[o->type];
}

/* ---- Scalars ---------------------------------------------------------- */

mp_obj_t *
mp_none(void)
{
	return &none_obj;
}

mp_obj_t *
mp_bool(bool v)
{
	return v ? &true_obj : &false_obj;
}

/*
 * Small ints are shared, immortal objects, as CPython keeps -5..256: a
 * decoded message's counters and indices then cost no allocation.
 */
#define SMALL_INT_MIN (-5)
#define SMALL_INT_MAX 256
static mp_obj_t small_ints[SMALL_INT_MAX - SMALL_INT_MIN + 1];

__attribute__((constructor)) static void
small_ints_init(void)
{
	for (int64_t v = SMALL_INT_MIN; v <= SMALL_INT_MAX; v++) {
		mp_obj_t *o = &small_ints[v - SMALL_INT_MIN];
		o->type = MP_TYPE_INT;
		o->immortal = true;
		o->u.i.small = v;
	}
}

mp_obj_t *
mp_int(int64_t v)
{
	if (v >= SMALL_INT_MIN && v <= SMALL_INT_MAX) {
		return &small_ints[v - SMALL_INT_MIN];
	}
	mp_obj_t *o = mp__obj_alloc(MP_TYPE_INT, 0);
	if (o != NULL) {
		o->u.i.small = v;
	}
	return o;
}

mp_obj_t *
mp_float(double v)
{
	mp_obj_t *o = mp__obj_alloc(MP_TYPE_FLOAT, 0);
	if (o != NULL) {
		o->u.f = v;
	}
	return o;
}

bool
mp_bool_value(const mp_obj_t *o)
{
	return o != NULL && o->type == MP_TYPE_BOOL && o->u.b;
}

double
mp_float_value(const mp_obj_t *o)
{
	if (o == NULL) {
		return NAN;
	}
	switch (o->type) {
	case MP_TYPE_FLOAT:
		return o->u.f;
	case MP_TYPE_BOOL:
		return o->u.b ? 1.0 : 0.0;
	case MP_TYPE_INT:
		return mp__int_to_double(o);
	default:
		return NAN;
	}
}

/* ---- Strings and bytes ------------------------------------------------ */

static mp_obj_t *
text_new(enum mp_type type, const void *data, size_t len)
{
	if (len == SIZE_MAX) {
		return NULL;
	}
	mp_obj_t *o = mp__obj_alloc(type, len + 1);
	if (o == NULL) {
		return NULL;
	}
	o->u.s.data = (char *)(o + 1);
	o->u.s.len = len;
	if (len > 0) {
		memcpy(o->u.s.data, data, len);
	}
	o->u.s.data[len] = '\0';
	return o;
}

int
mp_str_new(const char *s, size_t len, mp_obj_t **out)
{
	if (s == NULL && len > 0) {
		return -EINVAL;
	}
	if (!mp__utf8_valid((const uint8_t *)s, len)) {
		return -EINVAL;
	}
	mp_obj_t *o = text_new(MP_TYPE_STR, s, len);
	if (o == NULL) {
		return -ENOMEM;
	}
	*out = o;
	return 0;
}

mp_obj_t *
mp_str(const char *s)
{
	mp_obj_t *o = NULL;
	if (s == NULL || mp_str_new(s, strlen(s), &o) != 0) {
		return NULL;
	}
	return o;
}

const char *
mp_str_data(const mp_obj_t *o, size_t *len)
{
	if (o == NULL || o->type != MP_TYPE_STR) {
		if (len != NULL) {
			*len = 0;
		}
		return NULL;
	}
	if (len != NULL) {
		*len = o->u.s.len;
	}
	return o->u.s.data;
}

mp_obj_t *
mp_bytes(const void *data, size_t len)
{
	if (data == NULL && len > 0) {
		return NULL;
	}
	return text_new(MP_TYPE_BYTES, data, len);
}

const uint8_t *
mp_bytes_data(const mp_obj_t *o, size_t *len)
{
	if (o == NULL || o->type != MP_TYPE_BYTES) {
		if (len != NULL) {
			*len = 0;
		}
		return NULL;
	}
	if (len != NULL) {
		*len = o->u.s.len;
	}
	return (const uint8_t *)o->u.s.data;
}

/* ---- Tuples and lists ------------------------------------------------- */

/*
 * Builders steal their items whatever happens, so every path out of them,
 * failures included, either stores or releases each item exactly once.
 */
static bool
any_null(mp_obj_t **items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (items[i] == NULL) {
			return true;
		}
	}
	return false;
}

mp_obj_t *
mp_tuple_from(mp_obj_t **items, size_t n)
{
	if ((n > 0 && items == NULL) || any_null(items, n) ||
	    n > (SIZE_MAX - sizeof(mp_obj_t)) / sizeof(mp_obj_t *)) {
		goto out_release;
	}
	mp_obj_t *o = mp__obj_alloc(MP_TYPE_TUPLE, n * sizeof(mp_obj_t *));
	if (o == NULL) {
		goto out_release;
	}
	o->u.seq.items = (mp_obj_t **)(o + 1);
	o->u.seq.len = n;
	o->u.seq.cap = n;
	if (n > 0) {
		memcpy(o->u.seq.items, items, n * sizeof(mp_obj_t *));
	}
	return o;
out_release:
	if (items != NULL) {
		release_items(items, n);
	}
	return NULL;
}

mp_obj_t *
mp_list_new(void)
{
	mp_obj_t *o = mp__obj_alloc(MP_TYPE_LIST,
	    LIST_INLINE * sizeof(mp_obj_t *));
	if (o != NULL) {
		o->u.seq.items = list_inline(o);
		o->u.seq.cap = LIST_INLINE;
	}
	return o;
}

int
mp__list_reserve(mp_obj_t *l, size_t extra)
{
	size_t need = l->u.seq.len + extra;
	if (need < l->u.seq.len || need > SIZE_MAX / 2 / sizeof(mp_obj_t *)) {
		return -ENOMEM;
	}
	if (need <= l->u.seq.cap) {
		return 0;
	}
	/* Grow by half again, as CPython's list does, for amortised O(1). */
	size_t cap = l->u.seq.cap + l->u.seq.cap / 2 + 4;
	if (cap < need) {
		cap = need;
	}
	mp_obj_t **items;
	if (l->u.seq.items == list_inline(l)) {
		items = mp__malloc(cap * sizeof(*items));
		if (items != NULL) {
			memcpy(items, l->u.seq.items,
			    l->u.seq.len * sizeof(*items));
		}
	} else {
		items = mp__realloc(l->u.seq.items, cap * sizeof(*items));
	}
	if (items == NULL) {
		return -ENOMEM;
	}
	l->u.seq.items = items;
	l->u.seq.cap = cap;
	return 0;
}

mp_obj_t *
mp_list_from(mp_obj_t **items, size_t n)
{
	if ((n > 0 && items == NULL) || any_null(items, n)) {
		goto out_release;
	}
	mp_obj_t *o = mp_list_new();
	if (o == NULL) {
		goto out_release;
	}
	if (mp__list_reserve(o, n) != 0) {
		mp_obj_unref(o);
		goto out_release;
	}
	if (n > 0) {
		memcpy(o->u.seq.items, items, n * sizeof(mp_obj_t *));
	}
	o->u.seq.len = n;
	return o;
out_release:
	if (items != NULL) {
		release_items(items, n);
	}
	return NULL;
}

/* Collect n variadic items into a temporary array, then build. */
static mp_obj_t *
seq_of(bool tuple, size_t n, va_list ap)
{
	mp_obj_t *stack[16];
	mp_obj_t **items = stack;
	if (n > MP__ARRAY_LEN(stack)) {
		items = mp__calloc(n, sizeof(*items));
	}
	for (size_t i = 0; i < n; i++) {
		mp_obj_t *it = va_arg(ap, mp_obj_t *);
		if (items != NULL) {
			items[i] = it;
		} else {
			mp_obj_unref(it);
		}
	}
	if (items == NULL) {
		return NULL;
	}
	mp_obj_t *o = tuple ? mp_tuple_from(items, n) : mp_list_from(items, n);
	if (items != stack) {
		mp__free(items);
	}
	return o;
}

mp_obj_t *
mp_tuple_of(size_t n, ...)
{
	va_list ap;
	va_start(ap, n);
	mp_obj_t *o = seq_of(true, n, ap);
	va_end(ap);
	return o;
}

mp_obj_t *
mp_list_of(size_t n, ...)
{
	va_list ap;
	va_start(ap, n);
	mp_obj_t *o = seq_of(false, n, ap);
	va_end(ap);
	return o;
}

size_t
mp_obj_len(const mp_obj_t *o)
{
	if (o == NULL) {
		return 0;
	}
	switch (o->type) {
	case MP_TYPE_TUPLE:
	case MP_TYPE_LIST:
		return o->u.seq.len;
	case MP_TYPE_DICT:
	case MP_TYPE_SET:
	case MP_TYPE_FROZENSET:
		return o->u.t.len;
	default:
		return 0;
	}
}

/* Python's index rule: negative counts from the end. -1 if out of range. */
static ssize_t
norm_index(ssize_t i, size_t len)
{
	if (i < 0) {
		i += (ssize_t)len;
	}
	if (i < 0 || (size_t)i >= len) {
		return -1;
	}
	return i;
}

mp_obj_t *
mp_tuple_get(const mp_obj_t *tuple, ssize_t i)
{
	if (tuple == NULL || tuple->type != MP_TYPE_TUPLE) {
		return NULL;
	}
	i = norm_index(i, tuple->u.seq.len);
	return i < 0 ? NULL : tuple->u.seq.items[i];
}

mp_obj_t *
mp_list_get(const mp_obj_t *list, ssize_t i)
{
	if (list == NULL || list->type != MP_TYPE_LIST) {
		return NULL;
	}
	i = norm_index(i, list->u.seq.len);
	return i < 0 ? NULL : list->u.seq.items[i];
}

int
mp_list_append(mp_obj_t *list, mp_obj_t *item)
{
	return mp_list_insert(list, list == NULL ? 0 :
	    (ssize_t)list->u.seq.len, item);
}

int
mp_list_set(mp_obj_t *list, ssize_t i, mp_obj_t *item)
{
	int rv = 0;
	if (list == NULL || list->type != MP_TYPE_LIST) {
		rv = MP_ETYPE;
		goto out_release;
	}
	if (item == NULL) {
		rv = -ENOMEM;
		goto out_release;
	}
	i = norm_index(i, list->u.seq.len);
	if (i < 0) {
		rv = -EINVAL;
		goto out_release;
	}
	mp_obj_t *old = list->u.seq.items[i];
	list->u.seq.items[i] = item;
	mp_obj_unref(old);
	return 0;
out_release:
	mp_obj_unref(item);
	return rv;
}

int
mp_list_insert(mp_obj_t *list, ssize_t i, mp_obj_t *item)
{
	int rv = 0;
	if (list == NULL || list->type != MP_TYPE_LIST) {
		rv = MP_ETYPE;
		goto out_release;
	}
	if (item == NULL) {
		rv = -ENOMEM;
		goto out_release;
	}
	/* Python's list.insert clamps the index instead of failing. */
	size_t len = list->u.seq.len;
	if (i < 0) {
		i += (ssize_t)len;
		if (i < 0) {
			i = 0;
		}
	}
	if ((size_t)i > len) {
		i = (ssize_t)len;
	}
	rv = mp__list_reserve(list, 1);
	if (rv != 0) {
		goto out_release;
	}
	mp_obj_t **items = list->u.seq.items;
	memmove(&items[i + 1], &items[i], (len - (size_t)i) * sizeof(*items));
	items[i] = item;
	list->u.seq.len = len + 1;
	return 0;
out_release:
	mp_obj_unref(item);
	return rv;
}

int
mp_list_pop(mp_obj_t *list, ssize_t i, mp_obj_t **out)
{
	if (list == NULL || list->type != MP_TYPE_LIST) {
		return MP_ETYPE;
	}
	size_t len = list->u.seq.len;
	i = norm_index(i, len);
	if (i < 0) {
		return -EINVAL;
	}
	mp_obj_t **items = list->u.seq.items;
	mp_obj_t *it = items[i];
	memmove(&items[i], &items[i + 1], (len - (size_t)i - 1) *
	    sizeof(*items));
	list->u.seq.len = len - 1;
	if (out != NULL) {
		*out = it;
	} else {
		mp_obj_unref(it);
	}
	return 0;
}

/* ---- Instances -------------------------------------------------------- */

mp_obj_t *
mp_instance_new(const char *module, const char *name, mp_obj_t *args,
    mp_obj_t *state, bool new_style)
{
	if (module == NULL || name == NULL || args == NULL ||
	    args->type != MP_TYPE_TUPLE) {
		goto out_release;
	}
	mp_obj_t *o = mp__obj_alloc(MP_TYPE_INSTANCE, 0);
	if (o == NULL) {
		goto out_release;
	}
	o->u.inst.module = mp__strdup(module);
	o->u.inst.name = mp__strdup(name);
	o->u.inst.args = args;
	o->u.inst.state = state;
	o->u.inst.new_style = new_style;
	if (o->u.inst.module == NULL || o->u.inst.name == NULL) {
		mp_obj_unref(o);
		return NULL;
	}
	return o;
out_release:
	mp_obj_unref(args);
	mp_obj_unref(state);
	return NULL;
}

const char *
mp_instance_module(const mp_obj_t *o)
{
	if (o == NULL || o->type != MP_TYPE_INSTANCE) {
		return NULL;
	}
	return o->u.inst.module;
}

const char *
mp_instance_name(const mp_obj_t *o)
{
	if (o == NULL || o->type != MP_TYPE_INSTANCE) {
		return NULL;
	}
	return o->u.inst.name;
}

mp_obj_t *
mp_instance_args(const mp_obj_t *o)
{
	if (o == NULL || o->type != MP_TYPE_INSTANCE) {
		return NULL;
	}
	return o->u.inst.args;
}

mp_obj_t *
mp_instance_state(const mp_obj_t *o)
{
	if (o == NULL || o->type != MP_TYPE_INSTANCE) {
		return NULL;
	}
	return o->u.inst.state;
}
