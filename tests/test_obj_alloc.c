/* SPDX-License-Identifier: MIT */
/* test_obj_alloc.c: every allocation of building, changing and printing values failing in turn. */
#include "harness/harness.h"
#include "core/internal.h"

#include <math.h>

MP_TEST_SUITE(obj_alloc);

static const char big_dec[] = "-123456789012345678901234567890123456789";

/* Stop at the first failure, keeping its code. */
#define STEP(rv, expr) \
	do { \
		if ((rv) == 0) { \
			(rv) = (expr); \
		} \
	} while (0)

static int
nonnull(const mp_obj_t *o)
{
	return o == NULL ? -ENOMEM : 0;
}

/*
 * Build a value through every constructor and container operation: str
 * from bytes, big ints from text and bytes, lists grown one item at a
 * time, a dict and a set resized several times (with deletions), tuples
 * of every size class, an instance with state.
 */
static int
build_everything(mp_obj_t **out)
{
	static const uint8_t le[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x80 };
	mp_obj_t *big = NULL, *from_le = NULL, *s = NULL;
	int rv = mp_int_from_str(big_dec, &big);
	STEP(rv, mp_int_from_bytes(le, sizeof(le), &from_le));
	STEP(rv, mp_str_new("caf\xc3\xa9\n'\"", 9, &s));
	mp_obj_t *l = mp_list_new();
	STEP(rv, nonnull(l));
	for (int i = 0; rv == 0 && i < 40; i++) {
		rv = mp_list_append(l, mp_int(i * 1000003));
	}
	STEP(rv, mp_list_insert(l, 0, mp_str("head")));
	STEP(rv, mp_list_set(l, 1, mp_float(-0.5)));
	mp_obj_t *popped = NULL;
	STEP(rv, mp_list_pop(l, -1, &popped));
	mp_obj_t *d = mp_dict_new();
	STEP(rv, nonnull(d));
	for (int i = 0; rv == 0 && i < 60; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%d", i);
		rv = mp_dict_set(d, mp_str(k), mp_tuple_of(1, mp_int(i)));
		if (rv == 0 && i % 3 == 0) {
			/* Deleted slots are reclaimed by the next resize. */
			mp_obj_t *key = mp_str(k);
			rv = key == NULL ? -ENOMEM : mp_dict_del(d, key);
			mp_obj_unref(key);
		}
	}
	STEP(rv, mp_dict_set(d, mp_obj_ref(big), mp_obj_ref(popped)));
	mp_obj_t *set = mp_set_new();
	mp_obj_t *fs = mp_frozenset_new();
	STEP(rv, nonnull(set));
	STEP(rv, nonnull(fs));
	for (int i = 0; rv == 0 && i < 50; i++) {
		rv = mp_set_add(set, mp_bytes(&i, sizeof(i)));
	}
	STEP(rv, mp_set_add(fs, mp_tuple_of(2, mp_none(), mp_bool(true))));
	STEP(rv, mp_set_add(set, mp_obj_ref(fs)));
	mp_obj_t *state = mp_dict_new();
	STEP(rv, nonnull(state));
	STEP(rv, mp_dict_set(state, mp_str("errno"), mp_int(2)));
	mp_obj_t *inst = mp_instance_new("builtins", "OSError",
	    mp_tuple_of(2, mp_int(2), mp_str("gone")), mp_obj_ref(state),
	    false);
	STEP(rv, nonnull(inst));
	mp_obj_t *many[20];
	for (size_t i = 0; i < MP__ARRAY_LEN(many); i++) {
		many[i] = mp_float((double)i / 4);
	}
	mp_obj_t *all = mp_tuple_of(10, mp_obj_ref(big), mp_obj_ref(from_le),
	    mp_obj_ref(s), mp_obj_ref(l), mp_obj_ref(d), mp_obj_ref(set),
	    mp_obj_ref(fs), mp_obj_ref(inst),
	    mp_tuple_from(many, MP__ARRAY_LEN(many)),
	    mp_list_of(17, mp_int(0), mp_int(1), mp_int(2), mp_int(3),
	    mp_int(4), mp_int(5), mp_int(6), mp_int(7), mp_int(8), mp_int(9),
	    mp_int(10), mp_int(11), mp_int(12), mp_int(13), mp_int(14),
	    mp_int(15), mp_int(16)));
	STEP(rv, nonnull(all));
	uint64_t h;
	STEP(rv, mp_obj_hash(fs, &h));
	mp_obj_unref(big);
	mp_obj_unref(from_le);
	mp_obj_unref(s);
	mp_obj_unref(l);
	mp_obj_unref(popped);
	mp_obj_unref(d);
	mp_obj_unref(set);
	mp_obj_unref(fs);
	mp_obj_unref(state);
	mp_obj_unref(inst);
	if (rv != 0) {
		mp_obj_unref(all);
		return rv;
	}
	*out = all;
	return 0;
}

Test(obj_alloc, building_every_type)
{
	mp_test_count_start();
	mp_obj_t *want = NULL;
	expect_ok(build_everything(&want));
	long base = mp_test_count_live();
	struct mp_test_sweep s;
	for (mp_test_sweep_start(&s, "obj build"); mp_test_sweep_next(&s);) {
		mp_obj_t *v = NULL;
		mp_test_sweep_arm(&s);
		int rv = build_everything(&v);
		mp_test_sweep_done(&s, rv, 0, 0);
		if (rv == 0) {
			cr_assert(mp_obj_equal(v, want), "n=%lu", s.n);
			mp_obj_unref(v);
		} else {
			cr_assert_null(v);
		}
		cr_assert_eq(mp_test_count_live(), base,
		    "allocation %lu: %ld blocks leaked", s.n,
		    mp_test_count_live() - base);
	}
	mp_obj_unref(want);
	mp_test_count_end();
}

/* One change of each kind to l, d and set, which hold size items. */
static int
grow(int kind, mp_obj_t *l, mp_obj_t *d, mp_obj_t *set, int64_t size)
{
	switch (kind) {
	case 0:
		return mp_list_append(l, mp_int(size));
	case 1:
		return mp_dict_set(d, mp_int(size), mp_str("value"));
	case 2:
		return mp_set_add(set, mp_tuple_of(1, mp_int(size)));
	default:
		return mp_list_insert(l, 0, mp_int(-1));
	}
}

/*
 * At every size up to 100 (so across several resizes), each change fails
 * at each of its allocations: the container is left as it was and what
 * the call would have stolen is released.
 */
Test(obj_alloc, failed_changes_leave_containers_unchanged)
{
	mp_test_count_start();
	mp_obj_t *l = mp_list_new();
	mp_obj_t *d = mp_dict_new();
	mp_obj_t *set = mp_set_new();
	unsigned long points = 0;
	for (int64_t size = 0; size < 100; size++) {
		for (int kind = 0; kind < 4; kind++) {
			struct mp_test_sweep s;
			mp_test_sweep_start(&s, NULL);
			while (mp_test_sweep_next(&s)) {
				long live = mp_test_count_live();
				mp_test_sweep_arm(&s);
				int rv = grow(kind, l, d, set, size);
				mp_test_sweep_done(&s, rv, 0, 0);
				points += s.hit;
				if (rv != 0) {
					cr_assert_eq(mp_test_count_live(),
					    live, "a failed change leaked");
				}
			}
		}
		expect_ok(mp_list_pop(l, 0, NULL));
		cr_assert_eq(mp_obj_len(l), (size_t)size + 1);
		cr_assert_eq(mp_obj_len(d), (size_t)size + 1);
		cr_assert_eq(mp_obj_len(set), (size_t)size + 1);
		for (int64_t i = 0; i <= size; i++) {
			mp_obj_t *k = mp_int(i);
			int64_t v = -1;
			expect_ok(mp_int_value(mp_list_get(l, (ssize_t)i), &v));
			cr_assert_eq(v, i);
			cr_assert_not_null(mp_dict_get(d, k));
			mp_obj_unref(k);
		}
	}
	fprintf(stderr, "sweep containers grow: %lu allocations, each "
	    "failed once\n", points);
	mp_obj_unref(l);
	mp_obj_unref(d);
	mp_obj_unref(set);
	mp_test_count_end();
}

/* A value whose repr and str exercise every printing path. */
static mp_obj_t *
printable(void)
{
	mp_obj_t *big = NULL;
	expect_ok(mp_int_from_str(big_dec, &big));
	mp_obj_t *d = mp_dict_new();
	expect_ok(mp_dict_set(d, mp_str("tab\there"), mp_list_of(2,
	    mp_float(NAN), mp_float(-INFINITY))));
	expect_ok(mp_dict_set(d, mp_bytes("\x00\xff'", 3), mp_set_new()));
	mp_obj_t *fs = mp_frozenset_new();
	expect_ok(mp_set_add(fs, mp_float(1e300)));
	mp_obj_t *set = mp_set_new();
	expect_ok(mp_set_add(set, mp_str("\xe2\x80\xa8 \xf0\x9f\x90\x8d")));
	return mp_tuple_of(8, big, d, fs, set, mp_tuple_of(1, mp_none()),
	    mp_instance_new("builtins", "KeyError", mp_tuple_of(1,
	    mp_str("it's")), NULL, false),
	    mp_instance_new("builtins", "ValueError", mp_tuple_of(2,
	    mp_int(1), mp_bytes("b", 1)), NULL, false),
	    mp_str("\"both' quotes\x7f\x01"));
}

static const char printable_repr[] =
    "(-123456789012345678901234567890123456789, "
    "{'tab\\there': [nan, -inf], b\"\\x00\\xff'\": set()}, "
    "frozenset({1e+300}), {'\\u2028 \xf0\x9f\x90\x8d'}, (None,), "
    "KeyError(\"it's\"), ValueError(1, b'b'), "
    "'\"both\\' quotes\\x7f\\x01')";

Test(obj_alloc, repr_and_str)
{
	mp_test_count_start();
	mp_obj_t *v = printable();
	cr_assert_not_null(v);
	const char *what[] = { "obj repr", "obj str", "exception str",
		"exception repr" };
	mp_obj_t *of[] = { v, v, mp_tuple_get(v, 5), mp_tuple_get(v, 6) };
	const char *want[] = { printable_repr, printable_repr, "\"it's\"",
		"ValueError(1, b'b')" };
	for (size_t k = 0; k < MP__ARRAY_LEN(what); k++) {
		struct mp_test_sweep s;
		for (mp_test_sweep_start(&s, what[k]);
		    mp_test_sweep_next(&s);) {
			char *text = NULL;
			mp_test_sweep_arm(&s);
			int rv = k == 0 || k == 3 ?
			    mp_obj_repr(of[k], &text) :
			    mp_obj_str(of[k], &text);
			mp_test_sweep_done(&s, rv, 0, 0);
			if (rv == 0) {
				cr_assert_str_eq(text, want[k]);
				mp_free(text);
			} else {
				cr_assert_null(text, "out set on failure");
			}
		}
	}
	mp_obj_unref(v);
	mp_test_count_end();
}

Test(obj_alloc, big_int_conversions)
{
	mp_test_count_start();
	mp_obj_t *big = NULL;
	expect_ok(mp_int_from_str(big_dec, &big));
	struct mp_test_sweep s;
	for (mp_test_sweep_start(&s, "int to bytes and back");
	    mp_test_sweep_next(&s);) {
		uint8_t *le = NULL;
		size_t n = 0;
		mp_obj_t *back = NULL;
		mp_test_sweep_arm(&s);
		int rv = mp_int_to_bytes(big, &le, &n);
		STEP(rv, mp_int_from_bytes(le, n, &back));
		mp_test_sweep_done(&s, rv, 0, 0);
		if (rv == 0) {
			cr_assert(mp_obj_equal(big, back));
		}
		mp_free(le);
		mp_obj_unref(back);
	}
	mp_obj_unref(big);
	mp_test_count_end();
}
