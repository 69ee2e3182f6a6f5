/* SPDX-License-Identifier: MIT */
/* test_obj.c: mp_obj_t building, ownership, equality, hash, repr. */
#include "harness/harness.h"
#include "core/internal.h"
#include "obj/obj_impl.h"

#include <math.h>
#include <pthread.h>

MP_TEST_SUITE(obj);

static void
expect_repr(mp_obj_t *o, const char *want)
{
	char *s = NULL;
	cr_assert_not_null(o);
	expect_ok(mp_obj_repr(o, &s));
	cr_assert_str_eq(s, want);
	mp_free(s);
	mp_obj_unref(o);
}

static uint64_t
hash_of(const mp_obj_t *o)
{
	uint64_t h = 0;
	expect_ok(mp_obj_hash(o, &h));
	return h;
}

/* ---- Scalars and types -------------------------------------------- */

Test(obj, scalars_have_their_types_and_values)
{
	mp_obj_t *i = mp_int(-7);
	mp_obj_t *f = mp_float(2.5);
	int64_t v = 0;
	cr_assert_eq(mp_obj_type(i), MP_TYPE_INT);
	cr_assert_str_eq(mp_obj_type_name(i), "int");
	expect_ok(mp_int_value(i, &v));
	cr_assert_eq(v, -7);
	cr_assert_eq(mp_obj_type(f), MP_TYPE_FLOAT);
	cr_assert_eq(mp_float_value(f), 2.5);
	cr_assert_eq(mp_float_value(i), -7.0);
	expect_err(mp_int_value(f, &v), MP_ETYPE);
	cr_assert_str_eq(mp_obj_type_name(mp_none()), "NoneType");
	cr_assert(mp_bool_value(mp_bool(true)));
	cr_assert(!mp_bool_value(mp_bool(false)));
	cr_assert(!mp_bool_value(i), "an int is not a bool");
	expect_ok(mp_int_value(mp_bool(true), &v));
	cr_assert_eq(v, 1);
	cr_assert(isnan(mp_float_value(mp_none())));
	mp_obj_unref(i);
	mp_obj_unref(f);
}

Test(obj, singletons_are_immortal)
{
	mp_test_count_start();
	cr_assert_eq(mp_none(), mp_none());
	cr_assert_eq(mp_bool(true), mp_bool(true));
	for (int k = 0; k < 10; k++) {
		mp_obj_unref(mp_none());
		mp_obj_unref(mp_bool(false));
	}
	cr_assert_eq(mp_obj_ref(mp_bool(true)), mp_bool(true));
	cr_assert_eq(mp_obj_type(mp_none()), MP_TYPE_NONE);
	mp_obj_ref(NULL);
	mp_obj_unref(NULL);
	mp_test_count_end();
}

Test(obj, small_ints_are_shared_and_immortal)
{
	mp_test_count_start();
	for (int64_t v = -5; v <= 256; v++) {
		mp_obj_t *a = mp_int(v);
		cr_assert_eq(a, mp_int(v), "%lld is not shared", (long long)v);
		int64_t got = 0;
		cr_assert_eq(mp_int_value(mp_obj_ref(a), &got), 0);
		cr_assert_eq(got, v);
		mp_obj_unref(a);
		mp_obj_unref(a);
		mp_obj_unref(a);
	}
	cr_assert_eq(mp_test_count_live(), 0, "small ints allocate nothing");
	int64_t edges[] = { -6, 257 };
	for (size_t k = 0; k < 2; k++) {
		mp_obj_t *a = mp_int(edges[k]);
		mp_obj_t *b = mp_int(edges[k]);
		cr_assert_neq(a, b);
		cr_assert(mp_obj_equal(a, b));
		cr_assert_eq(mp_test_count_live(), 2);
		mp_obj_unref(a);
		mp_obj_unref(b);
	}
	mp_test_count_end();
}

static void *
churn_small_objects(void *arg)
{
	(void)arg;
	for (int i = 0; i < 1000; i++) {
		mp_obj_unref(mp_list_of(3, mp_str("name"), mp_int(100000 + i),
		    mp_str("hello")));
	}
	return NULL;
}

/*
 * Freed small objects go to the thread's cache of blocks (obj/cache.c):
 * the next object of that size reuses the block, and a thread that exits
 * returns its blocks (the ASan build's leak check fails this case if it
 * does not).
 */
Test(obj, freed_small_objects_are_reused_and_returned_at_thread_exit)
{
	mp_obj_t *a = mp_str("abc");
	void *where = a;
	mp_obj_unref(a);
	mp_obj_t *b = mp_str("xyz");
	cr_assert_eq((void *)b, where, "the freed block is reused");
	cr_assert_str_eq(mp_str_data(b, NULL), "xyz");
	mp_obj_unref(b);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, churn_small_objects, NULL), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
	/* Switching allocators returns this thread's blocks first. */
	mp_test_count_start();
	mp_obj_t *c = mp_str("counted");
	cr_assert_eq(mp_test_count_live(), 1);
	mp_obj_unref(c);
	mp_test_count_end();
}

Test(obj, references_keep_objects_alive)
{
	mp_test_count_start();
	mp_obj_t *s = mp_str("shared");
	mp_obj_t *a = mp_list_of(1, mp_obj_ref(s));
	mp_obj_t *b = mp_tuple_of(1, mp_obj_ref(s));
	mp_obj_unref(s);
	mp_obj_unref(a);
	cr_assert_str_eq(mp_str_data(mp_tuple_get(b, 0), NULL), "shared");
	mp_obj_unref(b);
	mp_test_count_end();
}

static void *
ref_storm(void *arg)
{
	mp_obj_t *o = arg;
	for (int i = 0; i < 100000; i++) {
		mp_obj_unref(mp_obj_ref(o));
	}
	mp_obj_unref(o);
	return NULL;
}

Test(obj, reference_counts_are_atomic)
{
	mp_test_count_start();
	mp_obj_t *o = mp_list_of(1, mp_str("x"));
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		mp_obj_ref(o);
		cr_assert_eq(pthread_create(&t[i], NULL, ref_storm, o), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
	}
	cr_assert_eq(mp_obj_len(o), 1);
	mp_obj_unref(o);
	mp_test_count_end();
}

/* ---- Ownership -------------------------------------------------------- */

Test(obj, builders_steal_items_even_when_they_fail)
{
	mp_test_count_start();
	cr_assert_null(mp_list_of(3, mp_str("a"), NULL, mp_int(1)));
	cr_assert_null(mp_tuple_of(2, mp_str("bad \xff"), mp_str("b")));
	cr_assert_null(mp_instance_new("builtins", "KeyError", mp_str("x"),
	    mp_int(3), false), "args must be a tuple");
	mp_obj_t *l = mp_list_new();
	expect_err(mp_list_append(l, NULL), -ENOMEM);
	expect_err(mp_list_set(l, 0, mp_str("x")), -EINVAL);
	mp_obj_t *d = mp_dict_new();
	expect_err(mp_dict_set(d, mp_list_new(), mp_str("v")), MP_ETYPE);
	expect_err(mp_dict_set(l, mp_str("k"), mp_str("v")), MP_ETYPE);
	expect_err(mp_dict_set(d, mp_str("k"), NULL), -ENOMEM);
	expect_err(mp_set_add(d, mp_int(1)), MP_ETYPE);
	expect_err(mp_list_append(d, mp_int(1)), MP_ETYPE);
	cr_assert_eq(mp_obj_len(d), 0);
	mp_obj_unref(l);
	mp_obj_unref(d);
	mp_test_count_end();
}

Test(obj, allocation_failures_never_leak)
{
	/* Fail the Nth allocation for every N until building succeeds. */
	mp_test_count_start();
	for (unsigned long n = 1;; n++) {
		mp__alloc_fail_after(n);
		mp_obj_t *v = mp_list_of(3, mp_str("Process-1"),
		    mp_tuple_of(2, mp_int(1), mp_float(2.0)), mp_dict_new());
		mp_obj_t *d = mp_dict_new();
		int rv = mp_dict_set(d, mp_str("key"), v);
		char *s = NULL;
		int rr = rv == 0 ? mp_obj_repr(d, &s) : rv;
		mp__alloc_fail_after(0);
		mp_obj_unref(d);
		if (rr == 0) {
			cr_assert_str_eq(s,
			    "{'key': ['Process-1', (1, 2.0), {}]}");
			mp_free(s);
			cr_assert_gt(n, 5);
			break;
		}
		cr_assert(rr == -ENOMEM || rr == MP_ETYPE,
		    "allocation %lu: %s", n, mp_err_name(rr));
		cr_assert_lt(n, 1000);
	}
	mp_test_count_end();
}

/*
 * Build a value touching every allocation path (big ints from text and
 * bytes, a dict that resizes, sets, str, bytes, an instance), print it and
 * encode an int, with the Nth allocation failing.
 */
static int
build_and_print(char **text)
{
	static const uint8_t le[] = { 0, 0, 0, 0, 0, 0, 0, 0, 0xc0 };
	mp_obj_t *bigs = NULL;
	mp_obj_t *neg = NULL;
	int rv = mp_int_from_str("123456789012345678901234567890", &bigs);
	if (rv == 0) {
		rv = mp_int_from_bytes(le, sizeof(le), &neg);
	}
	mp_obj_t *d = mp_dict_new();
	for (int i = 0; rv == 0 && i < 20; i++) {
		rv = mp_dict_set(d, mp_int(i), mp_str("v"));
	}
	mp_obj_t *fs = mp_frozenset_new();
	if (rv == 0) {
		rv = mp_set_add(fs, mp_bytes("b", 1));
	}
	mp_obj_t *all = mp_list_of(5, mp_obj_ref(bigs), mp_obj_ref(neg),
	    mp_obj_ref(d), mp_obj_ref(fs), mp_instance_new("builtins",
	    "KeyError", mp_tuple_of(1, mp_float(0.5)), NULL, false));
	uint8_t *bytes = NULL;
	size_t n = 0;
	if (rv == 0) {
		rv = all == NULL ? -ENOMEM : mp_int_to_bytes(neg, &bytes, &n);
	}
	if (rv == 0) {
		rv = mp_obj_repr(all, text);
	}
	mp_free(bytes);
	mp_obj_unref(all);
	mp_obj_unref(fs);
	mp_obj_unref(d);
	mp_obj_unref(neg);
	mp_obj_unref(bigs);
	return rv;
}

Test(obj, every_allocation_failure_is_reported_and_clean)
{
	mp_test_count_start();
	for (unsigned long n = 1;; n++) {
		char *text = NULL;
		mp__alloc_fail_after(n);
		int rv = build_and_print(&text);
		mp__alloc_fail_after(0);
		if (rv == 0) {
			cr_assert_str_eq(text, "[123456789012345678901234567890, "
			    "-1180591620717411303424, {0: 'v', 1: 'v', 2: 'v', "
			    "3: 'v', 4: 'v', 5: 'v', 6: 'v', 7: 'v', 8: 'v', "
			    "9: 'v', 10: 'v', 11: 'v', 12: 'v', 13: 'v', 14: 'v', "
			    "15: 'v', 16: 'v', 17: 'v', 18: 'v', 19: 'v'}, "
			    "frozenset({b'b'}), KeyError(0.5)]");
			mp_free(text);
			break;
		}
		cr_assert(rv == -ENOMEM || rv == MP_ETYPE,
		    "allocation %lu: %s", n, mp_err_name(rv));
		cr_assert_lt(n, 10000);
	}
	mp_test_count_end();
}

/* ---- Ints ------------------------------------------------------------- */

static void
expect_bytes(mp_obj_t *o, const char *hex)
{
	uint8_t *b = NULL;
	size_t n = 0;
	char got[256] = "";
	expect_ok(mp_int_to_bytes(o, &b, &n));
	for (size_t i = 0; i < n; i++) {
		snprintf(got + 2 * i, sizeof(got) - 2 * i, "%02x", b[i]);
	}
	cr_assert_str_eq(got, hex);
	/* And back: the bytes decode to an equal int. */
	mp_obj_t *back = NULL;
	expect_ok(mp_int_from_bytes(b, n, &back));
	cr_assert(mp_obj_equal(back, o));
	mp_obj_unref(back);
	mp_free(b);
	mp_obj_unref(o);
}

Test(obj, int_bytes_are_minimal_twos_complement)
{
	expect_bytes(mp_int(0), "");
	expect_bytes(mp_int(-1), "ff");
	expect_bytes(mp_int(127), "7f");
	expect_bytes(mp_int(128), "8000");
	expect_bytes(mp_int(255), "ff00");
	expect_bytes(mp_int(-128), "80");
	expect_bytes(mp_int(-129), "7fff");
	expect_bytes(mp_int(-256), "00ff");
	expect_bytes(mp_int(INT64_C(1) << 31), "0000008000");
	expect_bytes(mp_int(INT64_MAX), "ffffffffffffff7f");
	expect_bytes(mp_int(INT64_MIN), "0000000000000080");
	expect_bytes(mp_test_int("9223372036854775808"), "000000000000008000");
	expect_bytes(mp_test_int("-1180591620717411303424"), "0000000000000000c0");
	expect_bytes(mp_bool(true), "01");
}

Test(obj, ints_that_fit_int64_are_normalised)
{
	static const uint8_t minus_one[9] = { 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff };
	static const uint8_t zero[12] = { 0 };
	mp_obj_t *o = NULL;
	int64_t v = 0;
	expect_ok(mp_int_from_bytes(minus_one, sizeof(minus_one), &o));
	expect_ok(mp_int_value(o, &v));
	cr_assert_eq(v, -1);
	mp_obj_unref(o);
	expect_ok(mp_int_from_bytes(zero, sizeof(zero), &o));
	expect_ok(mp_int_value(o, &v));
	cr_assert_eq(v, 0);
	mp_obj_unref(o);
	expect_ok(mp_int_from_bytes(NULL, 0, &o));
	expect_ok(mp_int_value(o, &v));
	cr_assert_eq(v, 0);
	mp_obj_unref(o);
	o = mp_test_int("-9223372036854775808");
	expect_ok(mp_int_value(o, &v));
	cr_assert_eq(v, INT64_MIN);
	mp_obj_unref(o);
	o = mp_test_int("9223372036854775808");
	expect_err(mp_int_value(o, &v), -ERANGE);
	cr_assert_eq(v, INT64_MIN, "out-parameter untouched on failure");
	mp_obj_unref(o);
}

Test(obj, int_from_str_parses_python_decimal)
{
	expect_repr(mp_test_int("+00042"), "42");
	expect_repr(mp_test_int("-0"), "0");
	expect_repr(mp_test_int("-1267650600228229401496703205376"),
	    "-1267650600228229401496703205376");
	expect_repr(mp_test_int("1000000000000000000000000000000000000000000000000"),
	    "1000000000000000000000000000000000000000000000000");
	static const char *const bad[] = { "", "-", "+", " 1", "1 ", "1_000",
		"0x10", "1.0", "--1", "١" };
	for (size_t i = 0; i < MP__ARRAY_LEN(bad); i++) {
		mp_obj_t *o = NULL;
		expect_err(mp_int_from_str(bad[i], &o), -EINVAL);
		cr_assert_null(o);
	}
}

Test(obj, big_int_to_double_rounds_correctly)
{
	mp_obj_t *o = mp_test_int("1267650600228229401496703205376");
	cr_assert_eq(mp_float_value(o), ldexp(1.0, 100));
	mp_obj_unref(o);
	/* (2^53 + 1) * 2^20 + 1 lies just above a tie: it rounds up. */
	o = mp_test_int("9444732965739291475969");
	cr_assert_eq(mp_float_value(o), ldexp(9007199254740994.0, 20));
	mp_obj_unref(o);
	o = mp_test_int("-18446744073709551617");
	cr_assert_eq(mp_float_value(o), -ldexp(1.0, 64));
	mp_obj_unref(o);
}

/* ---- Equality and hashing -------------------------------------------- */

Test(obj, numbers_compare_across_types)
{
	mp_obj_t *one = mp_int(1);
	mp_obj_t *onef = mp_float(1.0);
	mp_obj_t *nan = mp_float(NAN);
	mp_obj_t *p100 = mp_test_int("1267650600228229401496703205376");
	mp_obj_t *p100f = mp_float(ldexp(1.0, 100));
	mp_obj_t *p63 = mp_test_int("9223372036854775808");
	mp_obj_t *p63f = mp_float(ldexp(1.0, 63));
	mp_obj_t *max = mp_int(INT64_MAX);
	cr_assert(mp_obj_equal(one, onef));
	cr_assert(mp_obj_equal(one, mp_bool(true)));
	cr_assert(mp_obj_equal(onef, mp_bool(true)));
	cr_assert(!mp_obj_equal(one, mp_bool(false)));
	cr_assert(!mp_obj_equal(nan, nan), "NaN is not equal to itself");
	cr_assert(mp_obj_equal(p100, p100f));
	cr_assert(mp_obj_equal(p63, p63f));
	cr_assert(!mp_obj_equal(max, p63f), "2^63 - 1 is not 2.0^63");
	mp_obj_t *p100p1 = mp_test_int("1267650600228229401496703205377");
	cr_assert(!mp_obj_equal(p100p1, p100f), "2^100 + 1 is not 2.0^100");
	cr_assert(!mp_obj_equal(p100, mp_bool(true)));
	mp_obj_unref(p100p1);
	cr_assert(!mp_obj_equal(one, mp_none()));
	cr_assert_eq(hash_of(one), hash_of(onef));
	cr_assert_eq(hash_of(one), hash_of(mp_bool(true)));
	cr_assert_eq(hash_of(p100), hash_of(p100f));
	cr_assert_eq(hash_of(p63), hash_of(p63f));
	mp_obj_t *objs[] = { one, onef, nan, p100, p100f, p63, p63f, max };
	for (size_t i = 0; i < MP__ARRAY_LEN(objs); i++) {
		mp_obj_unref(objs[i]);
	}
}

Test(obj, hashes_match_cpython_for_numbers)
{
	mp_obj_t *v[] = { mp_float(1.5), mp_int(-1), mp_float(-1.0),
		mp_test_int("2305843009213693951"),
		mp_test_int("1267650600228229401496703205376") };
	uint64_t want[] = { UINT64_C(1152921504606846977), (uint64_t)-2,
		(uint64_t)-2, 0, UINT64_C(549755813888) };
	for (size_t i = 0; i < MP__ARRAY_LEN(v); i++) {
		cr_assert_eq(hash_of(v[i]), want[i], "value %zu", i);
		mp_obj_unref(v[i]);
	}
}

Test(obj, containers_compare_deeply)
{
	mp_obj_t *nan = mp_float(NAN);
	mp_obj_t *l1 = mp_list_of(2, mp_int(1), mp_obj_ref(nan));
	mp_obj_t *l2 = mp_list_of(2, mp_float(1.0), mp_obj_ref(nan));
	mp_obj_t *l3 = mp_list_of(2, mp_int(1), mp_float(NAN));
	mp_obj_t *t1 = mp_tuple_of(2, mp_int(1), mp_obj_ref(nan));
	/* The same NaN object is found by identity, as in CPython. */
	cr_assert(mp_obj_equal(l1, l2));
	cr_assert(!mp_obj_equal(l1, l3));
	cr_assert(!mp_obj_equal(l1, t1), "a list is never a tuple");
	mp_obj_t *s = mp_set_new();
	mp_obj_t *fs = mp_frozenset_new();
	expect_ok(mp_set_add(s, mp_int(2)));
	expect_ok(mp_set_add(s, mp_str("x")));
	expect_ok(mp_set_add(fs, mp_str("x")));
	expect_ok(mp_set_add(fs, mp_float(2.0)));
	cr_assert(mp_obj_equal(s, fs));
	mp_obj_t *d1 = mp_dict_new();
	mp_obj_t *d2 = mp_dict_new();
	expect_ok(mp_dict_set(d1, mp_str("a"), mp_int(1)));
	expect_ok(mp_dict_set(d1, mp_str("b"), mp_int(2)));
	expect_ok(mp_dict_set(d2, mp_str("b"), mp_float(2.0)));
	expect_ok(mp_dict_set(d2, mp_str("a"), mp_bool(true)));
	cr_assert(mp_obj_equal(d1, d2), "order does not matter");
	expect_ok(mp_dict_set(d2, mp_str("a"), mp_int(3)));
	cr_assert(!mp_obj_equal(d1, d2));
	mp_obj_t *str = mp_str("ab");
	mp_obj_t *bytes = mp_bytes("ab", 2);
	cr_assert(!mp_obj_equal(str, bytes));
	mp_obj_t *objs[] = { nan, l1, l2, l3, t1, s, fs, d1, d2, str, bytes };
	for (size_t i = 0; i < MP__ARRAY_LEN(objs); i++) {
		mp_obj_unref(objs[i]);
	}
}

Test(obj, hashes_follow_equality_and_refuse_mutables)
{
	mp_obj_t *t1 = mp_tuple_of(2, mp_int(1), mp_str("a"));
	mp_obj_t *t2 = mp_tuple_of(2, mp_float(1.0), mp_str("a"));
	mp_obj_t *f1 = mp_frozenset_new();
	mp_obj_t *f2 = mp_frozenset_new();
	for (int i = 0; i < 50; i++) {
		expect_ok(mp_set_add(f1, mp_int(i)));
		expect_ok(mp_set_add(f2, mp_int(49 - i)));
	}
	cr_assert_eq(hash_of(t1), hash_of(t2));
	cr_assert_eq(hash_of(f1), hash_of(f2));
	cr_assert_neq(hash_of(t1), hash_of(f1));
	uint64_t h = 0;
	mp_obj_t *l = mp_list_new();
	mp_obj_t *tl = mp_tuple_of(1, mp_list_new());
	mp_obj_t *s = mp_set_new();
	mp_obj_t *d = mp_dict_new();
	expect_err(mp_obj_hash(l, &h), MP_ETYPE);
	expect_err(mp_obj_hash(tl, &h), MP_ETYPE);
	expect_err(mp_obj_hash(s, &h), MP_ETYPE);
	expect_err(mp_obj_hash(d, &h), MP_ETYPE);
	mp_obj_t *objs[] = { t1, t2, f1, f2, l, tl, s, d };
	for (size_t i = 0; i < MP__ARRAY_LEN(objs); i++) {
		mp_obj_unref(objs[i]);
	}
}

/* ---- Dicts and sets --------------------------------------------------- */

static void
expect_keys(const mp_obj_t *d, const char *want)
{
	char got[256] = "";
	size_t pos = 0;
	mp_obj_t *k;
	mp_obj_t *v;
	while (mp_dict_next(d, &pos, &k, &v)) {
		size_t len = strlen(got);
		snprintf(got + len, sizeof(got) - len, "%s", mp_str_data(k,
		    NULL));
	}
	cr_assert_str_eq(got, want);
}

Test(obj, dict_keeps_insertion_order)
{
	mp_obj_t *d = mp_dict_new();
	const char *keys[] = { "c", "a", "d", "b" };
	for (int i = 0; i < 4; i++) {
		expect_ok(mp_dict_set(d, mp_str(keys[i]), mp_int(i)));
	}
	expect_keys(d, "cadb");
	expect_ok(mp_dict_set(d, mp_str("a"), mp_int(10)));
	expect_keys(d, "cadb");
	mp_obj_t *a = mp_str("a");
	expect_ok(mp_dict_del(d, a));
	expect_err(mp_dict_del(d, a), -ENOENT);
	expect_keys(d, "cdb");
	expect_ok(mp_dict_set(d, a, mp_int(11)));
	expect_keys(d, "cdba");
	cr_assert_eq(mp_obj_len(d), 4);
	int64_t v = 0;
	expect_ok(mp_int_value(mp_dict_get_str(d, "a"), &v));
	cr_assert_eq(v, 11);
	cr_assert_null(mp_dict_get_str(d, "zz"));
	cr_assert_null(mp_dict_get_str(d, "\xff"));
	mp_obj_unref(d);
}

Test(obj, dict_merges_equal_numeric_keys)
{
	mp_obj_t *d = mp_dict_new();
	expect_ok(mp_dict_set(d, mp_int(1), mp_str("int")));
	expect_ok(mp_dict_set(d, mp_float(1.0), mp_str("float")));
	expect_ok(mp_dict_set(d, mp_bool(true), mp_str("bool")));
	cr_assert_eq(mp_obj_len(d), 1);
	expect_repr(mp_obj_ref(d), "{1: 'bool'}");
	mp_obj_t *nan = mp_float(NAN);
	expect_ok(mp_dict_set(d, mp_obj_ref(nan), mp_str("n1")));
	expect_ok(mp_dict_set(d, mp_float(NAN), mp_str("n2")));
	cr_assert_eq(mp_obj_len(d), 3, "distinct NaNs are distinct keys");
	cr_assert_str_eq(mp_str_data(mp_dict_get(d, nan), NULL), "n1");
	mp_obj_unref(nan);
	mp_obj_unref(d);
}

Test(obj, dict_grows_to_100k_keys, .timeout = 60)
{
	mp_test_count_start();
	mp_obj_t *d = mp_dict_new();
	char k[32];
	for (int i = 0; i < 100000; i++) {
		snprintf(k, sizeof(k), "key%d", i);
		expect_ok(mp_dict_set(d, mp_str(k), mp_int(i)));
		expect_ok(mp_dict_set(d, mp_int(i), mp_int(-i)));
	}
	cr_assert_eq(mp_obj_len(d), 200000);
	for (int i = 0; i < 100000; i += 2) {
		mp_obj_t *key = mp_int(i);
		expect_ok(mp_dict_del(d, key));
		mp_obj_unref(key);
	}
	cr_assert_eq(mp_obj_len(d), 150000);
	for (int i = 0; i < 100000; i++) {
		int64_t v = -1;
		snprintf(k, sizeof(k), "key%d", i);
		expect_ok(mp_int_value(mp_dict_get_str(d, k), &v));
		cr_assert_eq(v, i);
		mp_obj_t *key = mp_float(i);
		mp_obj_t *got = mp_dict_get(d, key);
		mp_obj_unref(key);
		if (i % 2 == 0) {
			cr_assert_null(got);
		} else {
			expect_ok(mp_int_value(got, &v));
			cr_assert_eq(v, -i);
		}
	}
	/* Iteration is insertion order, deletions skipped. */
	size_t pos = 0;
	size_t n = 0;
	mp_obj_t *key;
	mp_obj_t *val;
	int64_t prev = -1;
	while (mp_dict_next(d, &pos, &key, &val)) {
		int64_t v = 0;
		expect_ok(mp_int_value(val, &v));
		v = v < 0 ? -v : v;
		cr_assert_geq(v, prev);
		prev = v;
		n++;
	}
	cr_assert_eq(n, 150000);
	mp_obj_unref(d);
	mp_test_count_end();
}

Test(obj, sets_hold_each_item_once)
{
	mp_obj_t *s = mp_set_new();
	expect_ok(mp_set_add(s, mp_int(1)));
	expect_ok(mp_set_add(s, mp_float(1.0)));
	expect_ok(mp_set_add(s, mp_str("a")));
	expect_err(mp_set_add(s, mp_list_new()), MP_ETYPE);
	cr_assert_eq(mp_obj_len(s), 2);
	mp_obj_t *t = mp_bool(true);
	mp_obj_t *b = mp_str("b");
	cr_assert(mp_set_contains(s, t));
	cr_assert(!mp_set_contains(s, b));
	size_t pos = 0;
	mp_obj_t *item;
	cr_assert(mp_set_next(s, &pos, &item));
	cr_assert_eq(mp_obj_type(item), MP_TYPE_INT, "the first key stays");
	cr_assert(mp_set_next(s, &pos, &item));
	cr_assert(!mp_set_next(s, &pos, &item));
	mp_obj_unref(b);
	mp_obj_unref(s);
}

/* ---- Lists and tuples ------------------------------------------------- */

Test(obj, list_operations_follow_python)
{
	mp_obj_t *l = mp_list_new();
	expect_ok(mp_list_append(l, mp_int(1)));
	expect_ok(mp_list_append(l, mp_int(2)));
	expect_ok(mp_list_insert(l, 0, mp_int(0)));
	expect_ok(mp_list_insert(l, -1, mp_str("x")));
	expect_ok(mp_list_insert(l, 100, mp_int(9)));
	expect_ok(mp_list_insert(l, -100, mp_int(-9)));
	expect_repr(mp_obj_ref(l), "[-9, 0, 1, 'x', 2, 9]");
	expect_ok(mp_list_set(l, -2, mp_float(2.5)));
	expect_err(mp_list_set(l, 6, mp_int(0)), -EINVAL);
	expect_err(mp_list_set(l, -7, mp_int(0)), -EINVAL);
	int64_t v = 0;
	expect_ok(mp_int_value(mp_list_get(l, -1), &v));
	cr_assert_eq(v, 9);
	cr_assert_null(mp_list_get(l, 6));
	cr_assert_null(mp_list_get(l, -7));
	mp_obj_t *out = NULL;
	expect_ok(mp_list_pop(l, -1, &out));
	expect_repr(out, "9");
	expect_ok(mp_list_pop(l, 0, &out));
	expect_repr(out, "-9");
	expect_err(mp_list_pop(l, 4, &out), -EINVAL);
	expect_repr(mp_obj_ref(l), "[0, 1, 'x', 2.5]");
	cr_assert_eq(mp_obj_len(l), 4);
	mp_obj_t *t = mp_tuple_from((mp_obj_t *[]){ mp_int(1), mp_int(2) }, 2);
	cr_assert_null(mp_tuple_get(t, 2));
	expect_ok(mp_int_value(mp_tuple_get(t, -2), &v));
	cr_assert_eq(v, 1);
	cr_assert_null(mp_list_get(t, 0), "a tuple is not a list");
	expect_err(mp_list_append(t, mp_int(3)), MP_ETYPE);
	expect_err(mp_list_pop(t, 0, &out), MP_ETYPE);
	mp_obj_unref(t);
	for (int i = 0; i < 1000; i++) {
		expect_ok(mp_list_append(l, mp_int(i)));
	}
	cr_assert_eq(mp_obj_len(l), 1004);
	mp_obj_unref(l);
}

/* ---- Strings ---------------------------------------------------------- */

Test(obj, str_accepts_only_strict_utf8)
{
	static const struct {
		const char *s;
		size_t n;
	} good[] = {
		{ "", 0 }, { "a\0b", 3 }, { "\xc2\x80", 2 }, { "\xdf\xbf", 2 },
		{ "\xe0\xa0\x80", 3 }, { "\xed\x9f\xbf", 3 },
		{ "\xee\x80\x80", 3 }, { "\xef\xbf\xbf", 3 },
		{ "\xf0\x90\x80\x80", 4 }, { "\xf4\x8f\xbf\xbf", 4 },
	}, bad[] = {
		{ "\x80", 1 }, { "\xbf", 1 }, { "\xc0\x80", 2 },
		{ "\xc1\xbf", 2 },
		{ "\xe0\x80\x80", 3 }, { "\xe0\x9f\xbf", 3 },
		{ "\xed\xa0\x80", 3 }, { "\xed\xbf\xbf", 3 },
		{ "\xf0\x80\x80\x80", 4 }, { "\xf0\x8f\xbf\xbf", 4 },
		{ "\xf4\x90\x80\x80", 4 }, { "\xf5\x80\x80\x80", 4 },
		{ "\xff", 1 }, { "\xe4\xb8", 2 }, { "a\xc3", 2 },
		{ "\xe4\x41\xad", 3 },
	};
	for (size_t i = 0; i < MP__ARRAY_LEN(good); i++) {
		mp_obj_t *o = NULL;
		size_t len = 99;
		expect_ok(mp_str_new(good[i].s, good[i].n, &o));
		cr_assert_eq(memcmp(mp_str_data(o, &len), good[i].s, good[i].n),
		    0);
		cr_assert_eq(len, good[i].n);
		mp_obj_unref(o);
	}
	for (size_t i = 0; i < MP__ARRAY_LEN(bad); i++) {
		mp_obj_t *o = NULL;
		expect_err(mp_str_new(bad[i].s, bad[i].n, &o), -EINVAL);
		cr_assert_null(o, "bad case %zu", i);
	}
	cr_assert_null(mp_str("\xed\xa0\x80"));
	cr_assert_null(mp_str(NULL));
	cr_assert_null(mp_str_data(mp_none(), NULL));
}

Test(obj, bytes_keep_any_byte)
{
	mp_obj_t *b = mp_bytes("\x00\xff", 2);
	size_t n = 0;
	const uint8_t *p = mp_bytes_data(b, &n);
	cr_assert_eq(n, 2);
	cr_assert(p[0] == 0 && p[1] == 0xff);
	cr_assert_null(mp_bytes_data(mp_none(), &n));
	cr_assert_eq(n, 0);
	mp_obj_unref(b);
}

/* ---- Instances and text ---------------------------------------------- */

Test(obj, instances_keep_class_args_and_state)
{
	mp_obj_t *o = mp_instance_new("multiprocessing.managers", "Token",
	    mp_tuple_of(0), mp_tuple_of(3, mp_str("Q"),
	    mp_tuple_of(2, mp_str("127.0.0.1"), mp_int(5000)), mp_str("7f")),
	    true);
	cr_assert_str_eq(mp_instance_module(o), "multiprocessing.managers");
	cr_assert_str_eq(mp_instance_name(o), "Token");
	cr_assert_str_eq(mp_obj_type_name(o), "Token");
	cr_assert_eq(mp_obj_len(mp_instance_args(o)), 0);
	cr_assert_eq(mp_obj_len(mp_instance_state(o)), 3);
	expect_repr(o, "Token(typeid='Q', address=('127.0.0.1', 5000), "
	    "id='7f')");
	cr_assert_null(mp_instance_name(mp_none()));
}

Test(obj, instances_compare_by_content)
{
	mp_obj_t *a = mp_instance_new("builtins", "KeyError",
	    mp_tuple_of(1, mp_str("k")), NULL, false);
	mp_obj_t *b = mp_instance_new("builtins", "KeyError",
	    mp_tuple_of(1, mp_str("k")), NULL, false);
	mp_obj_t *c = mp_instance_new("builtins", "ValueError",
	    mp_tuple_of(1, mp_str("k")), NULL, false);
	mp_obj_t *d = mp_instance_new("builtins", "KeyError",
	    mp_tuple_of(1, mp_str("k")), mp_dict_new(), false);
	cr_assert(mp_obj_equal(a, b));
	cr_assert(!mp_obj_equal(a, c));
	cr_assert(!mp_obj_equal(a, d), "state differs");
	cr_assert_eq(hash_of(a), hash_of(b));
	mp_obj_t *set = mp_set_new();
	expect_ok(mp_set_add(set, a));
	expect_ok(mp_set_add(set, b));
	cr_assert_eq(mp_obj_len(set), 1);
	mp_obj_unref(set);
	mp_obj_unref(c);
	mp_obj_unref(d);
}

/*
 * A nest of one kind, depth levels deep, each level holding the one below
 * twice (a DAG of depth + 1 nodes that is a tree of 2^depth leaves).
 */
static mp_obj_t *
nest(enum mp_type type, int depth, int64_t leaf)
{
	mp_obj_t *o = mp_int(leaf);
	for (int i = 0; i < depth; i++) {
		mp_obj_t *next;
		if (type == MP_TYPE_TUPLE) {
			next = mp_tuple_of(2, o, mp_obj_ref(o));
		} else if (type == MP_TYPE_LIST) {
			next = mp_list_of(2, o, mp_obj_ref(o));
		} else if (type == MP_TYPE_DICT) {
			next = mp_dict_new();
			expect_ok(mp_dict_set(next, mp_str("a"), o));
			expect_ok(mp_dict_set(next, mp_str("b"),
			    mp_obj_ref(o)));
		} else {
			next = mp_instance_new("builtins", "KeyError",
			    mp_tuple_of(1, o), mp_list_of(1, mp_obj_ref(o)),
			    false);
		}
		cr_assert_not_null(next);
		o = next;
	}
	return o;
}

/*
 * Two separately built nests t = (t, t), 60 deep, are equal, and a
 * comparison that walked the tree would take 2^60 steps: each pair found
 * equal is remembered (found by tests/fuzz/fuzz_pickle as two dict keys).
 * Unequal nests still differ, down to the one leaf that does.
 */
Test(obj, equal_shared_nests_compare_in_linear_time)
{
	static const enum mp_type types[] = { MP_TYPE_TUPLE, MP_TYPE_LIST,
		MP_TYPE_DICT, MP_TYPE_INSTANCE };
	for (size_t i = 0; i < MP__ARRAY_LEN(types); i++) {
		mp_obj_t *a = nest(types[i], 60, 1);
		mp_obj_t *b = nest(types[i], 60, 1);
		mp_obj_t *c = nest(types[i], 60, 2);
		cr_assert(mp_obj_equal(a, b), "type %d", (int)types[i]);
		cr_assert(!mp_obj_equal(a, c), "type %d", (int)types[i]);
		mp_obj_t *in = mp_list_of(2, mp_obj_ref(a), mp_obj_ref(c));
		mp_obj_t *out = mp_list_of(2, mp_obj_ref(b), mp_obj_ref(c));
		cr_assert(mp_obj_equal(in, out));
		mp_obj_unref(in);
		mp_obj_unref(out);
		mp_obj_unref(a);
		mp_obj_unref(b);
		mp_obj_unref(c);
	}
	/* As keys: equal hashes, so the second finds the first. */
	mp_obj_t *d = mp_dict_new();
	expect_ok(mp_dict_set(d, nest(MP_TYPE_TUPLE, 60, 1), mp_int(1)));
	expect_ok(mp_dict_set(d, nest(MP_TYPE_TUPLE, 60, 1), mp_int(2)));
	cr_assert_eq(mp_obj_len(d), 1);
	mp_obj_t *k = nest(MP_TYPE_TUPLE, 60, 1);
	int64_t v = 0;
	expect_ok(mp_int_value(mp_dict_get(d, k), &v));
	cr_assert_eq(v, 2);
	mp_obj_unref(k);
	mp_obj_unref(d);
}

/* Out of memory the pairs are not all remembered: still the right answer. */
Test(obj, equal_nests_compare_right_when_allocation_fails)
{
	mp_obj_t *a = nest(MP_TYPE_TUPLE, 16, 1);
	mp_obj_t *b = nest(MP_TYPE_TUPLE, 16, 1);
	mp_obj_t *c = nest(MP_TYPE_TUPLE, 16, 2);
	for (unsigned long n = 1; n < 4; n++) {
		mp__alloc_fail_after(n);
		bool same = mp_obj_equal(a, b);
		bool differ = !mp_obj_equal(a, c);
		mp__alloc_fail_after(0);
		cr_assert(same && differ, "failing allocation %lu", n);
	}
	mp_obj_unref(a);
	mp_obj_unref(b);
	mp_obj_unref(c);
}

Test(obj, repr_and_str_print_as_python)
{
	expect_repr(mp_list_of(4, mp_str("Process-1"), mp_int(42), mp_none(),
	    mp_str("hello")), "['Process-1', 42, None, 'hello']");
	expect_repr(mp_bytes("\0", 1), "b'\\x00'");
	expect_repr(mp_float(-0.0), "-0.0");
	expect_repr(mp_float(1e16), "1e+16");
	expect_repr(mp_float(1e-5), "1e-05");
	expect_repr(mp_float(1.2345678901234568e17), "1.2345678901234568e+17");
	expect_repr(mp_str("it's"), "\"it's\"");
	expect_repr(mp_str("a\"b'c"), "'a\"b\\'c'");
	expect_repr(mp_str("é\u200b"), "'é\\u200b'");
	expect_repr(mp_tuple_of(1, mp_tuple_of(0)), "((),)");
	expect_repr(mp_instance_new("builtins", "KeyError",
	    mp_tuple_of(1, mp_str("zz")), NULL, false), "KeyError('zz')");
	expect_repr(mp_instance_new("builtins", "ValueError", mp_tuple_of(0),
	    NULL, false), "ValueError()");
	mp_obj_t *fs = mp_frozenset_new();
	expect_ok(mp_set_add(fs, mp_int(1)));
	expect_repr(fs, "frozenset({1})");
	expect_repr(mp_set_new(), "set()");
	char *s = NULL;
	mp_obj_t *o = mp_str("it's");
	expect_ok(mp_obj_str(o, &s));
	cr_assert_str_eq(s, "it's");
	mp_free(s);
	mp_obj_unref(o);
	o = mp_instance_new("builtins", "KeyError", mp_tuple_of(1,
	    mp_str("zz")), NULL, false);
	expect_ok(mp_obj_str(o, &s));
	cr_assert_str_eq(s, "'zz'");
	mp_free(s);
	mp_obj_unref(o);
}

/*
 * A container shared many times over prints once per reference: t = (t, t)
 * nested 60 deep would print 2^60 copies. Past 16 MiB repr gives up
 * (found by tests/fuzz/fuzz_pickle); a big value that is not shared still
 * prints whole.
 */
Test(obj, repr_of_a_shared_nest_is_bounded)
{
	mp_obj_t *t = mp_tuple_of(0);
	for (int i = 0; i < 60; i++) {
		t = mp_tuple_of(2, t, mp_obj_ref(t));
	}
	char *s = NULL;
	cr_assert_eq(mp_obj_repr(t, &s), -ENOMEM);
	cr_assert_null(s);
	mp_obj_unref(t);
	/* One str past the cap: the check comes before each value. */
	size_t n = (size_t)17 << 20;
	char *text = mp_malloc(n);
	cr_assert_not_null(text);
	memset(text, 'a', n);
	mp_obj_t *str = NULL;
	cr_assert_eq(mp_str_new(text, n, &str), 0);
	mp_free(text);
	mp_obj_t *l = mp_list_of(1, str);
	cr_assert_eq(mp_obj_repr(l, &s), 0);
	cr_assert_eq(strlen(s), n + 4);
	cr_assert_eq(s[0], '[');
	cr_assert_eq(s[n + 2], '\'');
	mp_free(s);
	mp_obj_unref(l);
}

/* The cap a fuzz target prints with: the same text below it, none above. */
Test(obj, repr_with_a_smaller_cap)
{
	mp_obj_t *t = nest(MP_TYPE_TUPLE, 60, 1);
	char *s = NULL;
	cr_assert_eq(mp__obj_repr_max(t, 1 << 16, &s), -ENOMEM);
	cr_assert_null(s);
	mp_obj_unref(t);
	t = nest(MP_TYPE_TUPLE, 3, 1);
	cr_assert_eq(mp__obj_repr_max(t, 1 << 16, &s), 0);
	cr_assert_str_eq(s, "(((1, 1), (1, 1)), ((1, 1), (1, 1)))");
	mp_free(s);
	/* Checked before each value: the last 1 starts at 32, and what
	 * follows it may pass the cap. */
	cr_assert_eq(mp__obj_repr_max(t, 32, &s), 0);
	cr_assert_eq(strlen(s), 36);
	mp_free(s);
	cr_assert_eq(mp__obj_repr_max(t, 31, &s), -ENOMEM);
	mp_obj_unref(t);
}
