/* SPDX-License-Identifier: MIT */
/* manager/registry.c: typeids, the object table with CPython's refcounts, and per-client references. */
#include "manager/server_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define DELETED UINT64_MAX

/* ---- u64 map ------------------------------------------------------------- */

static size_t
slot_of(uint64_t key, size_t cap)
{
	/* Fibonacci hashing: ids are sequential, spread them. */
	return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

static int
grow(struct mp__u64map *m)
{
	size_t ncap = m->cap == 0 ? 16 : m->cap * 2;
	if (m->len * 4 < m->cap) {
		ncap = m->cap; /* mostly tombstones: rehash in place */
	}
	uint64_t *keys = mp__calloc(ncap, sizeof(*keys));
	void **vals = mp__calloc(ncap, sizeof(*vals));
	if (keys == NULL || vals == NULL) {
		mp__free(keys);
		mp__free(vals);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++) {
		uint64_t k = m->keys[i];
		if (k != 0 && k != DELETED) {
			size_t j = slot_of(k, ncap);
			while (keys[j] != 0) {
				j = (j + 1) & (ncap - 1);
			}
			keys[j] = k;
			vals[j] = m->vals[i];
		}
	}
	mp__free(m->keys);
	mp__free(m->vals);
	m->keys = keys;
	m->vals = vals;
	m->cap = ncap;
	m->used = m->len;
	return 0;
}

static size_t
find(const struct mp__u64map *m, uint64_t key)
{
	if (m->cap == 0) {
		return SIZE_MAX;
	}
	size_t j = slot_of(key, m->cap);
	while (m->keys[j] != 0) {
		if (m->keys[j] == key) {
			return j;
		}
		j = (j + 1) & (m->cap - 1);
	}
	return SIZE_MAX;
}

int
mp__u64map_put(struct mp__u64map *m, uint64_t key, void *val)
{
	MP_ASSERT(key != 0 && key != DELETED);
	size_t j = find(m, key);
	if (j != SIZE_MAX) {
		m->vals[j] = val;
		return 0;
	}
	if ((m->used + 1) * 4 > m->cap * 3) {
		int rv = grow(m);
		if (rv != 0) {
			return rv;
		}
	}
	j = slot_of(key, m->cap);
	while (m->keys[j] != 0 && m->keys[j] != DELETED) {
		j = (j + 1) & (m->cap - 1);
	}
	if (m->keys[j] == 0) {
		m->used++;
	}
	m->keys[j] = key;
	m->vals[j] = val;
	m->len++;
	return 0;
}

void *
mp__u64map_get(const struct mp__u64map *m, uint64_t key)
{
	size_t j = find(m, key);
	return j == SIZE_MAX ? NULL : m->vals[j];
}

void *
mp__u64map_del(struct mp__u64map *m, uint64_t key)
{
	size_t j = find(m, key);
	if (j == SIZE_MAX) {
		return NULL;
	}
	void *v = m->vals[j];
	m->keys[j] = DELETED;
	m->vals[j] = NULL;
	m->len--;
	if (m->len == 0) {
		/* Empty again: give the memory back (idle clients cost
		 * little). */
		mp__u64map_fini(m);
	}
	return v;
}

bool
mp__u64map_next(const struct mp__u64map *m, size_t *pos, uint64_t *key,
    void **val)
{
	while (*pos < m->cap) {
		size_t i = (*pos)++;
		if (m->keys[i] != 0 && m->keys[i] != DELETED) {
			*key = m->keys[i];
			*val = m->vals[i];
			return true;
		}
	}
	return false;
}

void
mp__u64map_fini(struct mp__u64map *m)
{
	mp__free(m->keys);
	mp__free(m->vals);
	memset(m, 0, sizeof(*m));
}

/* ---- Registry ------------------------------------------------------------ */

struct mp__mgr_reg *
mp__mgr_reg_find(struct mp_manager_server *s, const char *name, size_t len)
{
	for (size_t i = 0; i < s->nreg; i++) {
		if (strlen(s->reg[i].name) == len &&
		    memcmp(s->reg[i].name, name, len) == 0) {
			return &s->reg[i];
		}
	}
	return NULL;
}

static void
reg_clear(struct mp_manager_server *s, struct mp__mgr_reg *r)
{
	if (r->shared != NULL) {
		r->shared->pinned = false;
		if (r->shared->refs == 0) {
			mp__mgr_obj_destroy(s, r->shared);
		}
		r->shared = NULL;
	}
	if (r->owned != NULL) {
		mp__free((void *)r->owned->exposed);
		mp__free((void *)r->owned->methods);
		mp__free(r->owned);
		r->owned = NULL;
	}
}

int
mp__mgr_reg_add(struct mp_manager_server *s, const char *name,
    const struct mp__mgr_class *cls, struct mp__mgr_class *owned)
{
	struct mp__mgr_reg *r = mp__mgr_reg_find(s, name, strlen(name));
	if (r != NULL) {
		/* Objects of the old class may be alive: never replace. */
		return -EEXIST;
	}
	{
		if (s->nreg == s->capreg) {
			size_t ncap = s->capreg == 0 ? 32 : s->capreg * 2;
			struct mp__mgr_reg *n = mp__realloc(s->reg,
			    ncap * sizeof(*n));
			if (n == NULL) {
				return -ENOMEM;
			}
			s->reg = n;
			s->capreg = ncap;
		}
		char *copy = mp__strdup(name);
		if (copy == NULL) {
			return -ENOMEM;
		}
		r = &s->reg[s->nreg++];
		memset(r, 0, sizeof(*r));
		r->name = copy;
	}
	r->cls = cls;
	r->owned = owned;
	if (owned != NULL) {
		owned->typeid = r->name;
	}
	return 0;
}

void
mp__mgr_reg_fini(struct mp_manager_server *s)
{
	for (size_t i = 0; i < s->nreg; i++) {
		reg_clear(s, &s->reg[i]);
		mp__free(s->reg[i].name);
	}
	mp__free(s->reg);
	s->reg = NULL;
	s->nreg = s->capreg = 0;
}

/* ---- Objects ------------------------------------------------------------- */

int
mp__mgr_obj_create(struct mp_manager_server *s,
    const struct mp__mgr_class *cls, struct mp__mgr_call *c,
    struct mp__mgr_obj **out)
{
	struct mp__mgr_obj *o = mp__calloc(1, sizeof(*o));
	if (o == NULL) {
		return -ENOMEM;
	}
	int rv = cls->create(c, &o->impl);
	if (rv != 0) {
		mp__free(o);
		return rv;
	}
	o->cls = cls;
	o->id = s->next_id++;
	snprintf(o->ident, sizeof(o->ident), "%" PRIx64, o->id);
	rv = mp__u64map_put(&s->objs, o->id, o);
	if (rv != 0) {
		if (cls->destroy != NULL) {
			cls->destroy(o->impl);
		}
		mp__free(o);
		return rv;
	}
	*out = o;
	return 0;
}

struct mp__mgr_obj *
mp__mgr_obj_find(struct mp_manager_server *s, const char *ident, size_t len)
{
	/* Our idents are lowercase hex without leading zeros. */
	if (len == 0 || len > 16 || ident[0] == '0') {
		return NULL;
	}
	uint64_t id = 0;
	for (size_t i = 0; i < len; i++) {
		char ch = ident[i];
		unsigned d;
		if (ch >= '0' && ch <= '9') {
			d = (unsigned)(ch - '0');
		} else if (ch >= 'a' && ch <= 'f') {
			d = (unsigned)(ch - 'a' + 10);
		} else {
			return NULL;
		}
		id = id << 4 | d;
	}
	if (id == 0 || id == DELETED) {
		return NULL;
	}
	return mp__u64map_get(&s->objs, id);
}

static void
client_count(struct mp__mgr_client *cl, uint64_t id, int delta)
{
	if (cl == NULL) {
		return;
	}
	intptr_t n = (intptr_t)mp__u64map_get(&cl->refs, id) + delta;
	if (n == 0) {
		mp__u64map_del(&cl->refs, id);
	} else if (mp__u64map_put(&cl->refs, id, (void *)n) != 0) {
		/* Without memory the reference is simply not tracked: it can
		 * leak if the client vanishes, as in CPython. */
	}
}

void
mp__mgr_obj_incref(struct mp_manager_server *s, struct mp__mgr_obj *o,
    struct mp__mgr_client *through)
{
	if (o->refs++ == 0) {
		s->nlive++;
	}
	client_count(through, o->id, 1);
}

void
mp__mgr_obj_decref(struct mp_manager_server *s, struct mp__mgr_obj *o,
    struct mp__mgr_client *through)
{
	MP_ASSERT(o->refs > 0);
	client_count(through, o->id, -1);
	if (--o->refs > 0) {
		return;
	}
	s->nlive--;
	/* A shared object lives on in its registration, as the object a
	 * Python callable returns lives on in the callable. */
	if (!o->pinned) {
		mp__mgr_obj_destroy(s, o);
	}
}

void
mp__mgr_obj_destroy(struct mp_manager_server *s, struct mp__mgr_obj *o)
{
	mp__mgr_obj_fail_waiters(s, o);
	mp__u64map_del(&s->objs, o->id);
	if (o->refs > 0) {
		s->nlive--;
	}
	if (o->cls->destroy != NULL) {
		o->cls->destroy(o->impl);
	}
	mp__free(o);
}

/* ---- Clients ------------------------------------------------------------- */

struct mp__mgr_client *
mp__mgr_client_get(struct mp_manager_server *s, const char *key)
{
	for (struct mp__mgr_client *cl = s->clients; cl != NULL;
	    cl = cl->next) {
		if (strcmp(cl->key, key) == 0) {
			return cl;
		}
	}
	struct mp__mgr_client *cl = mp__calloc(1, sizeof(*cl));
	if (cl == NULL) {
		return NULL;
	}
	snprintf(cl->key, sizeof(cl->key), "%s", key);
	cl->next = s->clients;
	if (s->clients != NULL) {
		s->clients->prev = cl;
	}
	s->clients = cl;
	return cl;
}

static void
orphan_unlink(struct mp_manager_server *s, struct mp__mgr_client *cl)
{
	if (!cl->orphan) {
		return;
	}
	if (cl->oprev != NULL) {
		cl->oprev->onext = cl->onext;
	} else {
		s->orph_head = cl->onext;
	}
	if (cl->onext != NULL) {
		cl->onext->oprev = cl->oprev;
	} else {
		s->orph_tail = cl->oprev;
	}
	cl->onext = cl->oprev = NULL;
	cl->orphan = false;
}

static void
client_free(struct mp_manager_server *s, struct mp__mgr_client *cl)
{
	orphan_unlink(s, cl);
	if (cl->prev != NULL) {
		cl->prev->next = cl->next;
	} else {
		s->clients = cl->next;
	}
	if (cl->next != NULL) {
		cl->next->prev = cl->prev;
	}
	mp__u64map_fini(&cl->refs);
	mp__free(cl);
}

void
mp__mgr_client_attach(struct mp_manager_server *s, struct mp__mgr_client *cl)
{
	orphan_unlink(s, cl);
	cl->nconns++;
}

void
mp__mgr_client_detach(struct mp_manager_server *s, struct mp__mgr_client *cl)
{
	MP_ASSERT(cl->nconns > 0);
	if (--cl->nconns > 0) {
		return;
	}
	if (cl->refs.len == 0) {
		client_free(s, cl); /* nothing to remember */
		return;
	}
	/* The grace is the same for all, so the queue stays sorted. */
	cl->orphan = true;
	cl->orphan_since = mp__now_ns();
	cl->oprev = s->orph_tail;
	cl->onext = NULL;
	if (s->orph_tail != NULL) {
		s->orph_tail->onext = cl;
	} else {
		s->orph_head = cl;
	}
	s->orph_tail = cl;
}

/* Give back what an orphan still holds. */
static void
client_release(struct mp_manager_server *s, struct mp__mgr_client *cl)
{
	size_t released = 0;
	/* Collect first: decref may destroy objects but not touch cl->refs
	 * (through is NULL), so iterating while releasing is safe. */
	size_t pos = 0;
	uint64_t id;
	void *val;
	while (mp__u64map_next(&cl->refs, &pos, &id, &val)) {
		intptr_t n = (intptr_t)val;
		struct mp__mgr_obj *o = mp__u64map_get(&s->objs, id);
		while (n-- > 0 && o != NULL && o->refs > 0) {
			bool last = o->refs == 1 && !o->pinned;
			mp__mgr_obj_decref(s, o, NULL);
			released++;
			if (last) {
				o = NULL;
			}
		}
	}
	mp__mgr_log(s, MP_MANAGER_LOG_INFO,
	    "client %s gone: released %zu reference(s)", cl->key, released);
	client_free(s, cl);
}

int64_t
mp__mgr_clients_expire(struct mp_manager_server *s, int64_t now)
{
	if (s->opts.orphan_grace_ms < 0) {
		return -1;
	}
	int64_t grace = s->opts.orphan_grace_ms * 1000000;
	while (s->orph_head != NULL) {
		struct mp__mgr_client *cl = s->orph_head;
		int64_t due = cl->orphan_since + grace;
		if (due > now) {
			return due - now;
		}
		client_release(s, cl);
	}
	return -1;
}

void
mp__mgr_clients_fini(struct mp_manager_server *s)
{
	while (s->clients != NULL) {
		client_free(s, s->clients);
	}
}
