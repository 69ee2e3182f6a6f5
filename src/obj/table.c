/* SPDX-License-Identifier: MIT */
/* obj/table.c: the insertion-ordered hash table of dict and set. */
#include "obj/obj_impl.h"

#include <string.h>

#define SLOT_EMPTY (-1)
#define SLOT_DELETED (-2)
#define MIN_SLOTS 8

/*
 * Probing follows CPython's dictobject.c: i = 5 * i + perturb + 1 with the
 * unused high bits of the hash shifted into perturb, which visits every
 * slot of a power-of-two table and spreads keys whose low bits collide
 * (small ints hash to themselves).
 */
#define PERTURB_SHIFT 5

/* Entries a table of nslots may hold before it grows: two thirds. */
static size_t
usable(size_t nslots)
{
	return nslots * 2 / 3;
}

void
mp__table_fini(struct mp__table *t)
{
	for (size_t i = 0; i < t->nentries; i++) {
		mp_obj_unref(t->entries[i].key);
		mp_obj_unref(t->entries[i].value);
	}
	mp__free(t->entries);
	mp__free(t->index);
	memset(t, 0, sizeof(*t));
}

/*
 * Find key. Returns 1 and its entry position in *pos when present; 0 when
 * absent, with *pos the slot where it would be inserted. Comparisons
 * start with identity, as CPython's do, so an object is always found
 * even when it is not equal to itself (a NaN key). eq: the comparison of
 * two tables this probe is part of, NULL for a lookup.
 */
static int
probe(const struct mp__table *t, const mp_obj_t *key, uint64_t hash,
    struct mp__eq *eq, size_t *pos)
{
	if (t->nslots == 0) {
		*pos = 0;
		return 0;
	}
	size_t mask = t->nslots - 1;
	size_t i = (size_t)hash & mask;
	uint64_t perturb = hash;
	size_t free_slot = SIZE_MAX;
	for (;;) {
		int64_t ix = t->index[i];
		if (ix == SLOT_EMPTY) {
			*pos = free_slot != SIZE_MAX ? free_slot : i;
			return 0;
		}
		if (ix == SLOT_DELETED) {
			if (free_slot == SIZE_MAX) {
				free_slot = i;
			}
		} else {
			const struct mp__entry *e = &t->entries[ix];
			if (e->key == key || (e->hash == hash &&
			    mp__obj_equal_in(eq, e->key, key))) {
				*pos = (size_t)ix;
				return 1;
			}
		}
		perturb >>= PERTURB_SHIFT;
		i = (i * 5 + (size_t)perturb + 1) & mask;
	}
}

/* First empty slot for hash in a table without deleted slots. */
static size_t
empty_slot(const struct mp__table *t, uint64_t hash)
{
	size_t mask = t->nslots - 1;
	size_t i = (size_t)hash & mask;
	uint64_t perturb = hash;
	while (t->index[i] != SLOT_EMPTY) {
		perturb >>= PERTURB_SHIFT;
		i = (i * 5 + (size_t)perturb + 1) & mask;
	}
	return i;
}

/*
 * Rebuild for at least `need` live entries: compact entries[] (dropping
 * deleted ones, keeping order) and re-index. On failure the table is
 * unchanged.
 */
static int
resize(struct mp__table *t, size_t need)
{
	size_t nslots = MIN_SLOTS;
	while (usable(nslots) < need) {
		if (nslots > SIZE_MAX / 2 / sizeof(struct mp__entry)) {
			return -ENOMEM;
		}
		nslots *= 2;
	}
	size_t cap = usable(nslots);
	int64_t *index = mp__malloc(nslots * sizeof(*index));
	struct mp__entry *entries = mp__malloc(cap * sizeof(*entries));
	if (index == NULL || entries == NULL) {
		mp__free(index);
		mp__free(entries);
		return -ENOMEM;
	}
	memset(index, 0xff, nslots * sizeof(*index)); /* all SLOT_EMPTY */
	size_t n = 0;
	for (size_t i = 0; i < t->nentries; i++) {
		if (t->entries[i].key != NULL) {
			entries[n++] = t->entries[i];
		}
	}
	mp__free(t->index);
	mp__free(t->entries);
	t->index = index;
	t->nslots = nslots;
	t->entries = entries;
	t->cap = cap;
	t->nentries = n;
	for (size_t i = 0; i < n; i++) {
		t->index[empty_slot(t, entries[i].hash)] = (int64_t)i;
	}
	return 0;
}

/*
 * Insert or replace; steals key and value (value NULL for sets). An
 * existing key keeps its original object, as in CPython: d[1.0] = x on a
 * dict holding 1 leaves the key 1.
 */
static int
table_put(struct mp__table *t, mp_obj_t *key, mp_obj_t *value, bool is_set)
{
	uint64_t hash;
	int rv = -ENOMEM;
	if (key == NULL || (!is_set && value == NULL)) {
		goto out_release;
	}
	rv = mp_obj_hash(key, &hash);
	if (rv != 0) {
		goto out_release;
	}
	size_t pos;
	if (probe(t, key, hash, NULL, &pos) == 1) {
		mp_obj_t *old = t->entries[pos].value;
		t->entries[pos].value = value;
		mp_obj_unref(old);
		mp_obj_unref(key);
		return 0;
	}
	if (t->nentries == t->cap) {
		/* Grow from the live count: deletions are reclaimed here. */
		rv = resize(t, t->len + 1 + t->len / 2);
		if (rv != 0) {
			goto out_release;
		}
		pos = empty_slot(t, hash);
	}
	size_t ix = t->nentries++;
	t->entries[ix] = (struct mp__entry){ hash, key, value };
	t->index[pos] = (int64_t)ix;
	t->len++;
	return 0;
out_release:
	mp_obj_unref(key);
	mp_obj_unref(value);
	return rv;
}

static bool
is_set_type(const mp_obj_t *o)
{
	return o != NULL && (o->type == MP_TYPE_SET ||
	    o->type == MP_TYPE_FROZENSET);
}

/* ---- Dicts ------------------------------------------------------------ */

mp_obj_t *
mp_dict_new(void)
{
	return mp__obj_alloc(MP_TYPE_DICT, 0);
}

int
mp_dict_set(mp_obj_t *d, mp_obj_t *key, mp_obj_t *value)
{
	if (d == NULL || d->type != MP_TYPE_DICT) {
		mp_obj_unref(key);
		mp_obj_unref(value);
		return MP_ETYPE;
	}
	return table_put(&d->u.t, key, value, false);
}

mp_obj_t *
mp_dict_get(const mp_obj_t *d, const mp_obj_t *key)
{
	uint64_t hash;
	size_t pos;
	if (d == NULL || d->type != MP_TYPE_DICT || key == NULL ||
	    mp_obj_hash(key, &hash) != 0) {
		return NULL;
	}
	if (probe(&d->u.t, key, hash, NULL, &pos) != 1) {
		return NULL;
	}
	return d->u.t.entries[pos].value;
}

mp_obj_t *
mp_dict_get_str(const mp_obj_t *d, const char *key)
{
	if (key == NULL) {
		return NULL;
	}
	/*
	 * A str on the stack, never reference-counted (immortal), so the
	 * lookup allocates nothing. The bytes need no validation: invalid
	 * UTF-8 simply matches no key.
	 */
	mp_obj_t probe_key = { .type = MP_TYPE_STR, .immortal = true };
	probe_key.u.s.data = (char *)key;
	probe_key.u.s.len = strlen(key);
	return mp_dict_get(d, &probe_key);
}

int
mp_dict_del(mp_obj_t *d, const mp_obj_t *key)
{
	uint64_t hash;
	size_t pos;
	if (d == NULL || d->type != MP_TYPE_DICT) {
		return MP_ETYPE;
	}
	int rv = key == NULL ? -EINVAL : mp_obj_hash(key, &hash);
	if (rv != 0) {
		return rv;
	}
	struct mp__table *t = &d->u.t;
	if (probe(t, key, hash, NULL, &pos) != 1) {
		return -ENOENT;
	}
	/* Find the slot pointing at the entry to mark it deleted. */
	size_t mask = t->nslots - 1;
	size_t i = (size_t)hash & mask;
	uint64_t perturb = hash;
	while (t->index[i] != (int64_t)pos) {
		perturb >>= PERTURB_SHIFT;
		i = (i * 5 + (size_t)perturb + 1) & mask;
	}
	t->index[i] = SLOT_DELETED;
	mp_obj_t *k = t->entries[pos].key;
	mp_obj_t *v = t->entries[pos].value;
	t->entries[pos].key = NULL;
	t->entries[pos].value = NULL;
	t->len--;
	mp_obj_unref(k);
	mp_obj_unref(v);
	return 0;
}

static bool
table_next(const struct mp__table *t, size_t *pos, mp_obj_t **key,
    mp_obj_t **value)
{
	while (*pos < t->nentries) {
		const struct mp__entry *e = &t->entries[(*pos)++];
		if (e->key != NULL) {
			if (key != NULL) {
				*key = e->key;
			}
			if (value != NULL) {
				*value = e->value;
			}
			return true;
		}
	}
	return false;
}

bool
mp_dict_next(const mp_obj_t *d, size_t *pos, mp_obj_t **key,
    mp_obj_t **value)
{
	if (d == NULL || d->type != MP_TYPE_DICT) {
		return false;
	}
	return table_next(&d->u.t, pos, key, value);
}

/* ---- Sets ------------------------------------------------------------- */

mp_obj_t *
mp_set_new(void)
{
	return mp__obj_alloc(MP_TYPE_SET, 0);
}

mp_obj_t *
mp_frozenset_new(void)
{
	return mp__obj_alloc(MP_TYPE_FROZENSET, 0);
}

int
mp_set_add(mp_obj_t *set, mp_obj_t *item)
{
	if (!is_set_type(set)) {
		mp_obj_unref(item);
		return MP_ETYPE;
	}
	return table_put(&set->u.t, item, NULL, true);
}

bool
mp_set_contains(const mp_obj_t *set, const mp_obj_t *item)
{
	uint64_t hash;
	size_t pos;
	if (!is_set_type(set) || item == NULL ||
	    mp_obj_hash(item, &hash) != 0) {
		return false;
	}
	return probe(&set->u.t, item, hash, NULL, &pos) == 1;
}

bool
mp_set_next(const mp_obj_t *set, size_t *pos, mp_obj_t **item)
{
	if (!is_set_type(set)) {
		return false;
	}
	return table_next(&set->u.t, pos, item, NULL);
}

/*
 * Dicts are equal when every key of a maps to an equal value in b (the
 * lengths being equal, no key of b is left over); sets when every item of
 * a is in b. Order never matters.
 */
bool
mp__table_equal(struct mp__eq *eq, const mp_obj_t *a,
    const mp_obj_t *b)
{
	const struct mp__table *ta = &a->u.t;
	const struct mp__table *tb = &b->u.t;
	if (ta->len != tb->len) {
		return false;
	}
	for (size_t i = 0; i < ta->nentries; i++) {
		const struct mp__entry *e = &ta->entries[i];
		size_t pos;
		if (e->key == NULL) {
			continue;
		}
		if (probe(tb, e->key, e->hash, eq, &pos) != 1) {
			return false;
		}
		if (e->value != NULL && !mp__obj_equal_in(eq, e->value,
		    tb->entries[pos].value)) {
			return false;
		}
	}
	return true;
}
