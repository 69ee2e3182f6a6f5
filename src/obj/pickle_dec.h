/* SPDX-License-Identifier: MIT */
/* obj/pickle_dec.h: decoder state shared by the pickle_dec*.c files. */
#ifndef MP_OBJ_PICKLE_DEC_H
#define MP_OBJ_PICKLE_DEC_H

#include "obj/obj_impl.h"
#include "obj/pickle_internal.h"

/*
 * A stack slot holds an object (a reference the stack owns) or, with a
 * NULL object, a whitelisted global (glob indexes opts->globals), which
 * only REDUCE, NEWOBJ and the memo may consume. Every slot carries the
 * nesting depth of its value.
 */
#define MP__PDEC_NO_MEMO UINT32_MAX
#define MP__PDEC_INLINE 32

struct mp__pdec_slot {
	uint32_t depth;
	uint32_t memo;  /* memo index of a fresh mutable container */
	uint32_t glob;  /* index into opts->globals when the object is NULL */
};

/*
 * A memo entry holds a reference to o. private: the entry's reference was
 * added with a plain increment, because o's count was 1 (ours alone)
 * then; it may be dropped the same way if no hook ran meanwhile, since
 * only hooks can hand a decoded object to another thread before loads
 * returns (pickle_dec_ref.c, mp__pdec_memo_drop).
 */
struct mp__pdec_memo {
	mp_obj_t *o;    /* NULL: a global */
	uint32_t depth;
	uint32_t glob;
	bool private_ref;
};

/* mp_pickle_loads sets every field up to stk0 by name: add new ones there. */
struct mp__pdec {
	const uint8_t *start;
	const uint8_t *p;
	const uint8_t *end;
	size_t op_off;
	uint8_t op;
	bool reported;
	bool hook_ran;      /* a reduce hook saw decoded objects */
	mp_obj_t **stk;
	struct mp__pdec_slot *inf;
	size_t sp;
	size_t cap;
	size_t *marks;
	size_t nmarks;
	size_t capmarks;
	struct mp__pdec_memo *memo;
	size_t nmemo;
	size_t capmemo;
	const mp_obj_t **exp; /* exposed containers: open addressing set */
	size_t expcap;
	size_t explen;
	size_t items;
	size_t max_depth;
	size_t max_memo;
	size_t max_items;
	size_t max_len;
	const struct mp_pickle_opts *opts;
	/* First storage of the arrays above: most messages need no more. */
	mp_obj_t *stk0[MP__PDEC_INLINE];
	struct mp__pdec_slot inf0[MP__PDEC_INLINE];
	size_t marks0[MP__PDEC_INLINE];
	struct mp__pdec_memo memo0[MP__PDEC_INLINE];
};

/* Containers that change after they are made. */
static inline bool
mp__pdec_mutable(const mp_obj_t *o)
{
	return o->type == MP_TYPE_LIST || o->type == MP_TYPE_DICT ||
	    o->type == MP_TYPE_SET || o->type == MP_TYPE_INSTANCE;
}

static inline uint64_t
mp__pdec_le(const uint8_t *q, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++) {
		v |= (uint64_t)q[i] << (8 * i);
	}
	return v;
}

/* pickle_dec.c */
/* Record the first error as "opcode 0x.. at offset N: what"; returns rv. */
int mp__pdec_fail(struct mp__pdec *d, int rv, const char *what);
int mp__pdec_truncated(struct mp__pdec *d);
/* The next n input bytes, or NULL when fewer are left. */
const uint8_t *mp__pdec_take(struct mp__pdec *d, size_t n);
/* A bigger copy of an array that may be inline storage (inl), or NULL. */
void *mp__pdec_grow(void *cur, const void *inl, size_t cap, size_t elem,
    size_t used);
/* Push o (stolen; NULL means a constructor ran out of memory). */
int mp__pdec_push(struct mp__pdec *d, mp_obj_t *o, uint32_t depth);
/* At least n slots above the innermost mark, or MP_EPICKLE. */
int mp__pdec_need(struct mp__pdec *d, size_t n);

/* pickle_dec_ref.c: memo, shared references, globals and instances. */
int mp__pdec_grow_target(struct mp__pdec *d, size_t t, uint32_t item_depth);
int mp__pdec_op_put(struct mp__pdec *d, int width);
/* Drop a memo entry's reference. */
void mp__pdec_memo_drop(struct mp__pdec *d, struct mp__pdec_memo *m);
int mp__pdec_op_get(struct mp__pdec *d, int width);
int mp__pdec_op_dup(struct mp__pdec *d);
int mp__pdec_op_stack_global(struct mp__pdec *d);
int mp__pdec_op_global(struct mp__pdec *d);
int mp__pdec_op_reduce(struct mp__pdec *d);
int mp__pdec_op_build(struct mp__pdec *d);

#endif
