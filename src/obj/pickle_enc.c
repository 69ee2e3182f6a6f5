/* SPDX-License-Identifier: MIT */
/* obj/pickle_enc.c: mp_obj_t to pickle, byte for byte as CPython 3.8-3.13. */
#include "obj/obj_impl.h"
#include "obj/pickle_internal.h"

#include <string.h>

/*
 * The output follows Modules/_pickle.c (the pickler pickle.dumps uses),
 * not Lib/pickle.py, where they differ: a list of exactly one item gets
 * APPEND but longer lists only ever get MARK ... APPENDS batches, and a
 * dict or set whose size is a multiple of the batch size ends with an
 * empty MARK SETITEMS (ADDITEMS) batch, because the C loops test
 * "batch full" rather than "items left".
 *
 * Memo. CPython memoizes by identity and writes BINGET when it meets the
 * same object again. An object whose reference count is one is held by
 * exactly one container, so it cannot be met twice: it still gets its
 * MEMOIZE (the indexes must match CPython's), but it never enters the
 * lookup table. Typical messages are built from fresh objects and so
 * never touch the table; when they do, the first MEMO_INLINE shared
 * objects live in an array scanned linearly and only more than that
 * allocates a hash table.
 */
#define MEMO_INLINE 8

struct memo_ent {
	const void *key;
	uint32_t idx;
};

/* The memo entry of an instance's class or of a class's module name. */
struct class_ent {
	const char *module;
	const char *name; /* NULL: the entry is the module string itself */
	uint32_t idx;
};

struct enc {
	struct mp__buf *b;
	size_t frame;     /* offset of the open frame's header */
	uint32_t nmemo;   /* memo indexes handed out */
	unsigned depth;
	struct memo_ent inl[MEMO_INLINE];
	size_t ninl;
	struct memo_ent *tab; /* open addressing, key NULL = empty */
	size_t tabcap;
	size_t tablen;
	struct class_ent *cls;
	size_t ncls;
	size_t capcls;
};

static int save(struct enc *e, const mp_obj_t *o);

/* ---- Output and frames ------------------------------------------------ */

/* Room for n more bytes; the caller writes them at b->data + b->len. */
static inline uint8_t *
room(struct enc *e, size_t n)
{
	struct mp__buf *b = e->b;
	if (b->cap - b->len < n && mp__buf_reserve(b, n) != 0) {
		return NULL;
	}
	return b->data + b->len;
}

static int
open_frame(struct enc *e)
{
	if (room(e, MP__PICKLE_FRAME_HDR) == NULL) {
		return -ENOMEM;
	}
	e->frame = e->b->len;
	e->b->len += MP__PICKLE_FRAME_HDR;
	return 0;
}

/* _Pickler_CommitFrame: write the header, or drop it for a tiny frame. */
static void
commit_frame(struct enc *e)
{
	uint8_t *h = e->b->data + e->frame;
	size_t n = e->b->len - e->frame - MP__PICKLE_FRAME_HDR;
	if (n >= MP__PICKLE_FRAME_MIN) {
		h[0] = MP__OP_FRAME;
		for (int i = 0; i < 8; i++) {
			h[1 + i] = (uint8_t)((uint64_t)n >> (8 * i));
		}
	} else {
		memmove(h, h + MP__PICKLE_FRAME_HDR, n);
		e->b->len -= MP__PICKLE_FRAME_HDR;
	}
}

/*
 * _Pickler_OpcodeBoundary, called where CPython's save() starts. CPython
 * opens the next frame lazily at its first write; every save writes, so
 * opening it at once gives the same bytes.
 */
static inline int
boundary(struct enc *e)
{
	if (e->b->len - e->frame < MP__PICKLE_FRAME_HDR +
	    MP__PICKLE_FRAME_TARGET) {
		return 0;
	}
	commit_frame(e);
	return open_frame(e);
}

static inline int
put1(struct enc *e, uint8_t op)
{
	uint8_t *p = room(e, 1);
	if (p == NULL) {
		return -ENOMEM;
	}
	*p = op;
	e->b->len++;
	return 0;
}

static inline void
le_store(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++) {
		p[i] = (uint8_t)(v >> (8 * i));
	}
}

/*
 * A str or bytes body: the short form below 256 bytes, then 4- and 8-byte
 * lengths. A body of 64 KiB or more goes outside frames: the open frame is
 * committed first and a new one starts after the body.
 */
static int
put_text(struct enc *e, const uint8_t ops[3], const void *data, size_t n)
{
	uint8_t h[9];
	size_t hl;
	if (n <= 0xff) {
		h[0] = ops[0];
		h[1] = (uint8_t)n;
		hl = 2;
	} else if (n <= 0xffffffffu) {
		h[0] = ops[1];
		le_store(h + 1, n, 4);
		hl = 5;
	} else {
		h[0] = ops[2];
		le_store(h + 1, n, 8);
		hl = 9;
	}
	bool big = n >= MP__PICKLE_FRAME_TARGET;
	if (big) {
		commit_frame(e);
	}
	uint8_t *p = room(e, hl + n);
	if (p == NULL) {
		return -ENOMEM;
	}
	memcpy(p, h, hl);
	if (n > 0) {
		memcpy(p + hl, data, n);
	}
	e->b->len += hl + n;
	return big ? open_frame(e) : 0;
}

/* ---- Memo ------------------------------------------------------------- */

static inline size_t
ptr_hash(const void *p)
{
	uint64_t h = (uint64_t)(uintptr_t)p >> 4;
	return (size_t)(h * 0x9e3779b97f4a7c15ull >> 17);
}

static void
tab_insert(struct memo_ent *tab, size_t cap, const void *key, uint32_t idx)
{
	size_t i = ptr_hash(key) & (cap - 1);
	while (tab[i].key != NULL) {
		i = (i + 1) & (cap - 1);
	}
	tab[i].key = key;
	tab[i].idx = idx;
}

static int
tab_grow(struct enc *e)
{
	size_t cap = e->tabcap == 0 ? 64 : e->tabcap * 2;
	struct memo_ent *t = mp__calloc(cap, sizeof(*t));
	if (t == NULL) {
		return -ENOMEM;
	}
	for (size_t i = 0; i < e->tabcap; i++) {
		if (e->tab[i].key != NULL) {
			tab_insert(t, cap, e->tab[i].key, e->tab[i].idx);
		}
	}
	for (size_t i = 0; i < e->ninl; i++) {
		tab_insert(t, cap, e->inl[i].key, e->inl[i].idx);
	}
	e->tablen += e->ninl;
	e->ninl = 0;
	mp__free(e->tab);
	e->tab = t;
	e->tabcap = cap;
	return 0;
}

static bool
memo_find(const struct enc *e, const void *key, uint32_t *idx)
{
	for (size_t i = 0; i < e->ninl; i++) {
		if (e->inl[i].key == key) {
			*idx = e->inl[i].idx;
			return true;
		}
	}
	if (e->tabcap == 0) {
		return false;
	}
	size_t i = ptr_hash(key) & (e->tabcap - 1);
	while (e->tab[i].key != NULL) {
		if (e->tab[i].key == key) {
			*idx = e->tab[i].idx;
			return true;
		}
		i = (i + 1) & (e->tabcap - 1);
	}
	return false;
}

/* memo_put: MEMOIZE, and remember o when it may be met again. */
static int
memoize(struct enc *e, const mp_obj_t *o)
{
	uint32_t idx = e->nmemo++;
	if (o != NULL && mp__obj_shared(o)) {
		if (e->tabcap == 0 && e->ninl < MEMO_INLINE) {
			e->inl[e->ninl].key = o;
			e->inl[e->ninl++].idx = idx;
		} else {
			if ((e->tablen + 1) * 2 > e->tabcap &&
			    tab_grow(e) != 0) {
				return -ENOMEM;
			}
			tab_insert(e->tab, e->tabcap, o, idx);
			e->tablen++;
		}
	}
	return put1(e, MP__OP_MEMOIZE);
}

/* memo_get: BINGET below 256, LONG_BINGET above. */
static int
memo_get(struct enc *e, uint32_t idx)
{
	uint8_t *p = room(e, 5);
	if (p == NULL) {
		return -ENOMEM;
	}
	if (idx < 256) {
		p[0] = MP__OP_BINGET;
		p[1] = (uint8_t)idx;
		e->b->len += 2;
	} else {
		p[0] = MP__OP_LONG_BINGET;
		le_store(p + 1, idx, 4);
		e->b->len += 5;
	}
	return 0;
}

/* ---- Scalars ---------------------------------------------------------- */

static int
save_int(struct enc *e, const mp_obj_t *o)
{
	uint8_t *p = room(e, 10);
	if (p == NULL) {
		return -ENOMEM;
	}
	if (o->u.i.limbs == NULL) {
		int64_t v = o->u.i.small;
		if (v >= INT32_MIN && v <= INT32_MAX) {
			uint32_t u = (uint32_t)v;
			/* _pickle.c looks at the bytes: -1 is BININT. */
			size_t n = 1;
			p[0] = MP__OP_BININT1;
			if (u & 0xffff0000u) {
				n = 4;
				p[0] = MP__OP_BININT;
			} else if (u & 0xff00u) {
				n = 2;
				p[0] = MP__OP_BININT2;
			}
			le_store(p + 1, u, (int)n);
			e->b->len += 1 + n;
			return 0;
		}
		/* Minimal two's complement: drop bytes that repeat the sign. */
		uint8_t le[8];
		le_store(le, (uint64_t)v, 8);
		size_t n = 8;
		while (n > 1 && ((le[n - 1] == 0 && !(le[n - 2] & 0x80)) ||
		    (le[n - 1] == 0xff && (le[n - 2] & 0x80)))) {
			n--;
		}
		p[0] = MP__OP_LONG1;
		p[1] = (uint8_t)n;
		memcpy(p + 2, le, n);
		e->b->len += 2 + n;
		return 0;
	}
	uint8_t *le;
	size_t n;
	int rv = mp_int_to_bytes(o, &le, &n);
	if (rv != 0) {
		return rv;
	}
	p = room(e, 5 + n);
	if (p == NULL) {
		mp__free(le);
		return -ENOMEM;
	}
	if (n < 256) {
		p[0] = MP__OP_LONG1;
		p[1] = (uint8_t)n;
		p += 2;
		e->b->len += 2 + n;
	} else if (n <= INT32_MAX) {
		p[0] = MP__OP_LONG4;
		le_store(p + 1, n, 4);
		p += 5;
		e->b->len += 5 + n;
	} else {
		mp__free(le);
		return -EINVAL;
	}
	memcpy(p, le, n);
	mp__free(le);
	return 0;
}

static int
save_float(struct enc *e, double d)
{
	uint8_t *p = room(e, 9);
	if (p == NULL) {
		return -ENOMEM;
	}
	uint64_t u;
	memcpy(&u, &d, sizeof(u));
	p[0] = MP__OP_BINFLOAT;
	for (int i = 0; i < 8; i++) {
		p[1 + i] = (uint8_t)(u >> (56 - 8 * i));
	}
	e->b->len += 9;
	return 0;
}

static const uint8_t str_ops[3] = {
	MP__OP_SHORT_BINUNICODE, MP__OP_BINUNICODE, MP__OP_BINUNICODE8 };
static const uint8_t bytes_ops[3] = {
	MP__OP_SHORT_BINBYTES, MP__OP_BINBYTES, MP__OP_BINBYTES8 };

/* ---- Containers ------------------------------------------------------- */

static int
save_items(struct enc *e, mp_obj_t *const *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rv = save(e, items[i]);
		if (rv != 0) {
			return rv;
		}
	}
	return 0;
}

/* key is the memo identity: NULL for a tuple never met again. */
static int
save_tuple(struct enc *e, const mp_obj_t *o, const mp_obj_t *key)
{
	static const uint8_t ops[4] = { 0, MP__OP_TUPLE1, MP__OP_TUPLE2,
		MP__OP_TUPLE3 };
	size_t n = o->u.seq.len;
	if (n == 0) {
		return put1(e, MP__OP_EMPTY_TUPLE);
	}
	int rv = n > 3 ? put1(e, MP__OP_MARK) : 0;
	if (rv == 0) {
		rv = save_items(e, o->u.seq.items, n);
	}
	if (rv == 0) {
		rv = put1(e, n <= 3 ? ops[n] : MP__OP_TUPLE);
	}
	return rv != 0 ? rv : memoize(e, key);
}

/* batch_list_exact: one item gets APPEND, more get batches of APPENDS. */
static int
save_list(struct enc *e, const mp_obj_t *o)
{
	int rv = put1(e, MP__OP_EMPTY_LIST);
	if (rv == 0) {
		rv = memoize(e, o);
	}
	size_t n = o->u.seq.len;
	if (rv != 0 || n == 0) {
		return rv;
	}
	if (n == 1) {
		rv = save(e, o->u.seq.items[0]);
		return rv != 0 ? rv : put1(e, MP__OP_APPEND);
	}
	for (size_t done = 0; done < n;) {
		size_t k = n - done < MP__PICKLE_BATCH ? n - done :
		    MP__PICKLE_BATCH;
		rv = put1(e, MP__OP_MARK);
		if (rv == 0) {
			rv = save_items(e, o->u.seq.items + done, k);
		}
		if (rv == 0) {
			rv = put1(e, MP__OP_APPENDS);
		}
		if (rv != 0) {
			return rv;
		}
		done += k;
	}
	return 0;
}

/*
 * Dicts (batch_dict_exact) and sets (save_set): MARK, up to a batch of
 * entries, SETITEMS / ADDITEMS, again while the last batch was full. A
 * dict of one entry gets SETITEM alone.
 */
static int
save_table(struct enc *e, const mp_obj_t *o, bool dict)
{
	const struct mp__table *t = &o->u.t;
	int rv = put1(e, dict ? MP__OP_EMPTY_DICT : MP__OP_EMPTY_SET);
	if (rv == 0) {
		rv = memoize(e, o);
	}
	if (rv != 0 || t->len == 0) {
		return rv;
	}
	size_t pos = 0;
	bool single = dict && t->len == 1;
	size_t batch;
	do {
		rv = single ? 0 : put1(e, MP__OP_MARK);
		if (rv != 0) {
			return rv;
		}
		for (batch = 0; batch < MP__PICKLE_BATCH && pos < t->nentries;
		    pos++) {
			const struct mp__entry *en = &t->entries[pos];
			if (en->key == NULL) {
				continue;
			}
			rv = save(e, en->key);
			if (rv == 0 && dict) {
				rv = save(e, en->value);
			}
			if (rv != 0) {
				return rv;
			}
			batch++;
		}
		rv = put1(e, single ? MP__OP_SETITEM : dict ?
		    MP__OP_SETITEMS : MP__OP_ADDITEMS);
		if (rv != 0) {
			return rv;
		}
	} while (!single && batch == MP__PICKLE_BATCH);
	return 0;
}

static int
save_frozenset(struct enc *e, const mp_obj_t *o)
{
	const struct mp__table *t = &o->u.t;
	int rv = put1(e, MP__OP_MARK);
	for (size_t i = 0; rv == 0 && i < t->nentries; i++) {
		if (t->entries[i].key != NULL) {
			rv = save(e, t->entries[i].key);
		}
	}
	if (rv == 0) {
		rv = put1(e, MP__OP_FROZENSET);
	}
	return rv != 0 ? rv : memoize(e, o);
}

/* ---- Instances -------------------------------------------------------- */

static int
class_find(const struct enc *e, const char *module, const char *name,
    uint32_t *idx)
{
	for (size_t i = 0; i < e->ncls; i++) {
		const struct class_ent *c = &e->cls[i];
		if (strcmp(c->module, module) == 0 && ((name == NULL &&
		    c->name == NULL) || (name != NULL && c->name != NULL &&
		    strcmp(c->name, name) == 0))) {
			*idx = c->idx;
			return true;
		}
	}
	return false;
}

static int
class_add(struct enc *e, const char *module, const char *name, uint32_t idx)
{
	if (e->ncls == e->capcls) {
		size_t cap = e->capcls == 0 ? 4 : e->capcls * 2;
		struct class_ent *c = mp__realloc(e->cls, cap * sizeof(*c));
		if (c == NULL) {
			return -ENOMEM;
		}
		e->cls = c;
		e->capcls = cap;
	}
	e->cls[e->ncls++] = (struct class_ent){ module, name, idx };
	return 0;
}

/* A memoized str that is not an mp_obj_t: a module or class name. */
static int
save_name(struct enc *e, const char *s)
{
	int rv = boundary(e);
	if (rv == 0) {
		rv = put_text(e, str_ops, s, strlen(s));
	}
	return rv != 0 ? rv : memoize(e, NULL);
}

/*
 * save_global. CPython memoizes the class object and its module name by
 * identity; a class is one object per (module, name) and every class of a
 * module shares the module's name string, so matching the text gives the
 * same BINGETs ("builtins" is written once for KeyError and IndexError).
 */
static int
save_class(struct enc *e, const char *module, const char *name)
{
	uint32_t idx;
	int rv = boundary(e);
	if (rv != 0) {
		return rv;
	}
	if (class_find(e, module, name, &idx)) {
		return memo_get(e, idx);
	}
	rv = boundary(e);
	if (rv != 0) {
		return rv;
	}
	if (class_find(e, module, NULL, &idx)) {
		rv = memo_get(e, idx);
	} else {
		rv = class_add(e, module, NULL, e->nmemo);
		if (rv == 0) {
			rv = put_text(e, str_ops, module, strlen(module));
		}
		if (rv == 0) {
			rv = memoize(e, NULL);
		}
	}
	if (rv == 0) {
		rv = save_name(e, name);
	}
	if (rv == 0) {
		rv = put1(e, MP__OP_STACK_GLOBAL);
	}
	if (rv == 0) {
		rv = class_add(e, module, name, e->nmemo);
	}
	return rv != 0 ? rv : memoize(e, NULL);
}

/*
 * save_reduce: class, args, REDUCE (or NEWOBJ), memoize the instance, then
 * state and BUILD. With NEWOBJ CPython pickles a fresh slice of the
 * arguments, never found in the memo, so its items are saved directly.
 */
static int
save_instance(struct enc *e, const mp_obj_t *o)
{
	const mp_obj_t *args = o->u.inst.args;
	int rv = save_class(e, o->u.inst.module, o->u.inst.name);
	if (rv != 0) {
		return rv;
	}
	if (o->u.inst.new_style) {
		rv = boundary(e);
		if (rv == 0) {
			rv = save_tuple(e, args, NULL);
		}
	} else {
		rv = save(e, args);
	}
	if (rv == 0) {
		rv = put1(e, o->u.inst.new_style ? MP__OP_NEWOBJ :
		    MP__OP_REDUCE);
	}
	if (rv == 0) {
		rv = memoize(e, o);
	}
	if (rv == 0 && o->u.inst.state != NULL) {
		rv = save(e, o->u.inst.state);
		if (rv == 0) {
			rv = put1(e, MP__OP_BUILD);
		}
	}
	return rv;
}

/* ---- Dispatch --------------------------------------------------------- */

static int
save_container(struct enc *e, const mp_obj_t *o)
{
	if (++e->depth > MP__PICKLE_MAX_DEPTH) {
		return -EINVAL;
	}
	int rv;
	switch (o->type) {
	case MP_TYPE_TUPLE:
		rv = save_tuple(e, o, o);
		break;
	case MP_TYPE_LIST:
		rv = save_list(e, o);
		break;
	case MP_TYPE_DICT:
		rv = save_table(e, o, true);
		break;
	case MP_TYPE_SET:
		rv = save_table(e, o, false);
		break;
	case MP_TYPE_FROZENSET:
		rv = save_frozenset(e, o);
		break;
	case MP_TYPE_INSTANCE:
		rv = save_instance(e, o);
		break;
	default:
		rv = -EINVAL;
		break;
	}
	e->depth--;
	return rv;
}

/* CPython's save(): scalars first, then the memo, then by type. */
static int
save(struct enc *e, const mp_obj_t *o)
{
	if (o == NULL) {
		return -EINVAL;
	}
	int rv = boundary(e);
	if (rv != 0) {
		return rv;
	}
	switch (o->type) {
	case MP_TYPE_NONE:
		return put1(e, MP__OP_NONE);
	case MP_TYPE_BOOL:
		return put1(e, o->u.b ? MP__OP_NEWTRUE : MP__OP_NEWFALSE);
	case MP_TYPE_INT:
		return save_int(e, o);
	case MP_TYPE_FLOAT:
		return save_float(e, o->u.f);
	default:
		break;
	}
	uint32_t idx;
	if (mp__obj_shared(o) && memo_find(e, o, &idx)) {
		return memo_get(e, idx);
	}
	if (o->type == MP_TYPE_STR || o->type == MP_TYPE_BYTES) {
		rv = put_text(e, o->type == MP_TYPE_STR ? str_ops : bytes_ops,
		    o->u.s.data, o->u.s.len);
		return rv != 0 ? rv : memoize(e, o);
	}
	return save_container(e, o);
}

int
mp__pickle_encode(struct mp__buf *b, const mp_obj_t *o)
{
	struct enc e;
	e.b = b;
	e.nmemo = 0;
	e.depth = 0;
	e.ninl = 0;
	e.tab = NULL;
	e.tabcap = 0;
	e.tablen = 0;
	e.cls = NULL;
	e.ncls = 0;
	e.capcls = 0;
	size_t start = b->len;
	int rv = -ENOMEM;
	uint8_t *p = room(&e, 2);
	if (p != NULL) {
		p[0] = MP__OP_PROTO;
		p[1] = 4;
		b->len += 2;
		rv = open_frame(&e);
	}
	if (rv == 0) {
		rv = save(&e, o);
	}
	if (rv == 0) {
		rv = put1(&e, MP__OP_STOP);
	}
	if (rv == 0) {
		commit_frame(&e);
	} else {
		b->len = start;
	}
	mp__free(e.tab);
	mp__free(e.cls);
	return rv;
}

int
mp_pickle_dumps(const mp_obj_t *o, void **out, size_t *len)
{
	MP_ASSERT(out != NULL && len != NULL);
	struct mp__buf b;
	mp__buf_init(&b);
	int rv = mp__pickle_encode(&b, o);
	if (rv != 0) {
		mp__buf_fini(&b);
		return rv;
	}
	*out = mp__buf_steal(&b, len);
	return 0;
}
