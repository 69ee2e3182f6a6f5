/* SPDX-License-Identifier: MIT */
/* test_pickle_alloc.c: every allocation of the pickle encoder and decoder failing in turn. */
#include "harness/harness.h"
#include "core/internal.h"

MP_TEST_SUITE(pickle_alloc);

/* builtins.list(x) as the manager client rebuilds dict views. */
static int
reduce_list(const mp_obj_t *args, mp_obj_t **out, void *user)
{
	(void)user;
	const mp_obj_t *l = mp_tuple_get(args, 0);
	if (mp_obj_len(args) != 1 || l == NULL ||
	    mp_obj_type(l) != MP_TYPE_LIST) {
		return -EINVAL;
	}
	mp_obj_t *items[8];
	size_t n = mp_obj_len(l);
	cr_assert_leq(n, 8);
	for (size_t i = 0; i < n; i++) {
		items[i] = mp_obj_ref(mp_list_get(l, (ssize_t)i));
	}
	*out = mp_list_from(items, n);
	return *out == NULL ? -ENOMEM : 0;
}

static const struct mp_pickle_global globals[] = {
	{ "builtins", "list", reduce_list, NULL },
	{ "builtins", "KeyError", NULL, NULL },
	{ "multiprocessing.managers", "Token", NULL, NULL },
};

static char errbuf[256];

static struct mp_pickle_opts
opts(void)
{
	struct mp_pickle_opts o = { 0 };
	o.globals = globals;
	o.n_globals = MP__ARRAY_LEN(globals);
	o.errbuf = errbuf;
	o.errbuf_len = sizeof(errbuf);
	return o;
}

/*
 * A value that takes every encoder path: each type, an object met twice
 * (BINGET), classes met twice (memoized globals), APPENDS in batches
 * of 1000, SETITEMS and ADDITEMS, a body beyond one 64 KiB frame, big
 * ints, a Token with state.
 */
static mp_obj_t *
everything(void)
{
	mp_obj_t *big = NULL;
	expect_ok(mp_int_from_str("-98765432109876543210987654321", &big));
	mp_obj_t *l = mp_list_new();
	mp_obj_t *d = mp_dict_new();
	mp_obj_t *set = mp_set_new();
	mp_obj_t *fs = mp_frozenset_new();
	/* One container in several batches is enough: the others take
	 * the same paths, and every item costs the decoder's sweep a run. */
	for (int i = 0; i < 1005; i++) {
		expect_ok(mp_list_append(l, mp_int(i)));
	}
	for (int i = 0; i < 20; i++) {
		expect_ok(mp_dict_set(d, mp_int(i), mp_float(i / 2.0)));
		expect_ok(mp_set_add(set, mp_int(-i)));
	}
	expect_ok(mp_set_add(fs, mp_str("frozen")));
	char *body = malloc(70000);
	cr_assert_not_null(body);
	memset(body, 'b', 70000);
	mp_obj_t *bytes = mp_bytes(body, 70000);
	free(body);
	mp_obj_t *shared = mp_str("met twice");
	mp_obj_t *token = mp_instance_new("multiprocessing.managers", "Token",
	    mp_tuple_of(0), mp_tuple_of(3, mp_str("list"), mp_tuple_of(2,
	    mp_str("127.0.0.1"), mp_int(50000)), mp_str("7f0a1b2c3d40")),
	    true);
	mp_obj_t *v = mp_tuple_of(14, mp_none(), mp_bool(true), mp_int(300),
	    big, mp_float(-1.5), mp_str("h\xc3\xa9llo"), bytes, l, d, set,
	    fs, mp_tuple_of(3, mp_obj_ref(shared), shared,
	    mp_instance_new("builtins", "KeyError", mp_tuple_of(1,
	    mp_str("k")), NULL, false)), token,
	    mp_instance_new("builtins", "KeyError", mp_tuple_of(0), NULL,
	    false));
	cr_assert_not_null(v);
	return v;
}

Test(pickle_alloc, dumps)
{
	mp_test_count_start();
	mp_obj_t *v = everything();
	void *want;
	size_t want_len;
	expect_ok(mp_pickle_dumps(v, &want, &want_len));
	struct mp_test_sweep s;
	for (mp_test_sweep_start(&s, "pickle dumps"); mp_test_sweep_next(&s);) {
		void *out = NULL;
		size_t len = 0;
		mp_test_sweep_arm(&s);
		int rv = mp_pickle_dumps(v, &out, &len);
		mp_test_sweep_done(&s, rv, 0, 0);
		if (rv == 0) {
			cr_assert(len == want_len && memcmp(out, want,
			    len) == 0, "allocation %lu changed the bytes", s.n);
			mp_free(out);
		} else {
			cr_assert_null(out, "out set on failure");
		}
	}
	mp_free(want);
	mp_obj_unref(v);
	mp_test_count_end();
}

/* Decode data with every allocation failing in turn; it decodes to want. */
static void
sweep_loads(const char *what, const void *data, size_t len,
    const mp_obj_t *want)
{
	struct mp_test_sweep s;
	for (mp_test_sweep_start(&s, what); mp_test_sweep_next(&s);) {
		mp_obj_t *back = NULL;
		struct mp_pickle_opts o = opts();
		errbuf[0] = '\0';
		mp_test_sweep_arm(&s);
		int rv = mp_pickle_loads(data, len, &o, &back);
		mp_test_sweep_done(&s, rv, 0, 0);
		if (rv == 0) {
			cr_assert(mp_obj_equal(back, want),
			    "allocation %lu changed the value", s.n);
			mp_obj_unref(back);
		} else {
			cr_assert_null(back, "out set on failure");
			cr_assert_neq(errbuf[0], '\0', "no diagnostic");
		}
	}
}

Test(pickle_alloc, loads_protocol_4)
{
	mp_test_count_start();
	mp_obj_t *v = everything();
	void *data;
	size_t len;
	expect_ok(mp_pickle_dumps(v, &data, &len));
	sweep_loads("pickle loads", data, len, v);
	mp_free(data);
	mp_obj_unref(v);
	mp_test_count_end();
}

Test(pickle_alloc, loads_older_protocols_and_hooks)
{
	mp_test_count_start();
	/* pickle.dumps(([1, 'a'], b'x'), 3): BINPUT, BINUNICODE. */
	static const char p3[] = "\x80\x03]q\x00(K\x01X\x01\x00\x00\x00" "aq"
	    "\x01" "eC\x01xq\x02\x86q\x03.";
	mp_obj_t *want = mp_tuple_of(2, mp_list_of(2, mp_int(1), mp_str("a")),
	    mp_bytes("x", 1));
	sweep_loads("pickle loads protocol 3", p3, sizeof(p3) - 1, want);
	mp_obj_unref(want);
	/* pickle.dumps(KeyError('zz'), 2): GLOBAL, LONG1 via a big int. */
	static const char p2[] = "\x80\x02" "cbuiltins\nKeyError\nq\x00X\x02"
	    "\x00\x00\x00zzq\x01\x85q\x02Rq\x03.";
	want = mp_instance_new("builtins", "KeyError", mp_tuple_of(1,
	    mp_str("zz")), NULL, false);
	sweep_loads("pickle loads protocol 2 global", p2, sizeof(p2) - 1,
	    want);
	mp_obj_unref(want);
	/* builtins.list(['a', 1]) through a reduce hook. */
	static const char hook[] = "\x80\x04\x8c\x08" "builtins\x8c\x04list"
	    "\x93]\x94(\x8c\x01" "aK\x01" "e\x85R.";
	want = mp_list_of(2, mp_str("a"), mp_int(1));
	sweep_loads("pickle loads reduce hook", hook, sizeof(hook) - 1, want);
	mp_obj_unref(want);
	/* 2**100 as LONG1, and a LONG_BINGET of a memoized str. */
	static const char memo[] = "\x80\x04\x8a\x0d\x00\x00\x00\x00\x00\x00"
	    "\x00\x00\x00\x00\x00\x00\x10\x8c\x01s\x94j\x00\x00\x00\x00\x87.";
	mp_obj_t *two100 = NULL;
	expect_ok(mp_int_from_str("1267650600228229401496703205376",
	    &two100));
	want = mp_tuple_of(3, two100, mp_str("s"), mp_str("s"));
	sweep_loads("pickle loads long and memo", memo, sizeof(memo) - 1,
	    want);
	mp_obj_unref(want);
	mp_test_count_end();
}
