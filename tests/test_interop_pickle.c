/* SPDX-License-Identifier: MIT */
/* test_interop_pickle.c: mproc's pickles against every installed CPython. */
#include "harness/harness.h"
#include "core/buf.h"

#include <math.h>

MP_TEST_SUITE(interop_pickle);

/*
 * The corpus of tests/py/pickle_corpus.py, built item for item in the same
 * order and with the same sharing (one object met twice is a BINGET in
 * CPython's output, two equal objects are two copies).
 */
struct item {
	const char *name;
	mp_obj_t *v;
};

#define MAX_ITEMS 96

static struct item items[MAX_ITEMS];
static size_t n_items;

static void
add(const char *name, mp_obj_t *v)
{
	cr_assert_not_null(v, "building %s", name);
	cr_assert_lt(n_items, MAX_ITEMS);
	items[n_items].name = name;
	items[n_items++].v = v;
}

static mp_obj_t *
repeat_str(const char *unit, size_t times)
{
	size_t u = strlen(unit);
	char *s = malloc(u * times + 1);
	cr_assert_not_null(s);
	for (size_t i = 0; i < times; i++) {
		memcpy(s + i * u, unit, u);
	}
	s[u * times] = '\0';
	mp_obj_t *o = mp_str(s);
	free(s);
	return o;
}

static mp_obj_t *
int_range(mp_obj_t *container, int n)
{
	for (int i = 0; i < n; i++) {
		int rv = mp_obj_type(container) == MP_TYPE_LIST ?
		    mp_list_append(container, mp_int(i)) :
		    mp_set_add(container, mp_int(i));
		expect_ok(rv);
	}
	return container;
}

static mp_obj_t *
dict_k(int n)
{
	mp_obj_t *d = mp_dict_new();
	for (int i = 0; i < n; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%d", i);
		expect_ok(mp_dict_set(d, mp_str(k), mp_int(i)));
	}
	return d;
}

static mp_obj_t *
dict_of(size_t n, const char *const *keys, mp_obj_t **values)
{
	mp_obj_t *d = mp_dict_new();
	for (size_t i = 0; i < n; i++) {
		expect_ok(mp_dict_set(d, mp_str(keys[i]), values[i]));
	}
	return d;
}

static mp_obj_t *
token(void)
{
	return mp_instance_new("multiprocessing.managers", "Token",
	    mp_tuple_of(0), mp_tuple_of(3, mp_str("Iterator"), mp_tuple_of(2,
	    mp_str("127.0.0.1"), mp_int(50000)), mp_str("7f0a1b2c3d40")),
	    true);
}

static void
build_scalars(void)
{
	add("none", mp_none());
	add("true", mp_bool(true));
	add("false", mp_bool(false));
	static const int64_t ints[] = { 0, 1, 255, 256, 65535, 65536, -1,
		-256, INT32_MAX, INT32_MIN, (int64_t)INT32_MAX + 1, INT64_MAX,
		INT64_MIN };
	static const char *const names[] = { "int0", "int1", "int2", "int3",
		"int4", "int5", "int6", "int7", "int8", "int9", "int10",
		"int11", "int12" };
	for (size_t i = 0; i < MP__ARRAY_LEN(ints); i++) {
		add(names[i], mp_int(ints[i]));
	}
	add("int13", mp_test_int("18446744073709551616"));
	add("int14", mp_test_int("-18446744073709551616"));
	add("int15", mp_test_int(mp_test_two_1000));
	char neg[400];
	snprintf(neg, sizeof(neg), "-%s", mp_test_two_1000);
	add("int16", mp_test_int(neg));
	/* 2**2100 and -2**2100 need 263 bytes: LONG4. */
	uint8_t le[263] = { 0 };
	mp_obj_t *o = NULL;
	le[262] = 0x10;
	expect_ok(mp_int_from_bytes(le, sizeof(le), &o));
	add("int17", o);
	le[262] = 0xf0;
	expect_ok(mp_int_from_bytes(le, sizeof(le), &o));
	add("int18", o);
	static const char *const fnames[] = { "float0", "float1", "float2",
		"float3", "float4", "float5", "float6", "float7" };
	const double fl[] = { 0.0, -0.0, 1.5, 1e300, -2.5e-300, INFINITY,
		-INFINITY, NAN };
	for (size_t i = 0; i < MP__ARRAY_LEN(fl); i++) {
		add(fnames[i], mp_float(fl[i]));
	}
}

static void
build_text(void)
{
	add("str_empty", mp_str(""));
	add("str_ascii", mp_str("hello"));
	add("str_unicode", mp_str("h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac "
	    "\xf0\x9f\x90\x8d"));
	add("str_300", repeat_str("a", 300));
	add("str_70k", repeat_str("0123456789", 7168));
	add("bytes_empty", mp_bytes("", 0));
	add("bytes_small", mp_bytes("\x00\xff", 2));
	char b300[300];
	memset(b300, 'b', sizeof(b300));
	add("bytes_300", mp_bytes(b300, sizeof(b300)));
	size_t n = (size_t)1 << 20;
	uint8_t *m = malloc(n);
	cr_assert_not_null(m);
	for (size_t i = 0; i < n; i++) {
		m[i] = (uint8_t)i;
	}
	add("bytes_1m", mp_bytes(m, n));
	free(m);
}

static void
build_containers(void)
{
	add("tuple0", mp_tuple_of(0));
	add("tuple1", mp_tuple_of(1, mp_int(1)));
	add("tuple2", mp_tuple_of(2, mp_int(1), mp_int(2)));
	add("tuple3", mp_tuple_of(3, mp_int(1), mp_int(2), mp_int(3)));
	add("tuple4", mp_tuple_of(4, mp_int(1), mp_int(2), mp_int(3),
	    mp_int(4)));
	add("tuple_nested", mp_tuple_of(2, mp_str("a"), mp_tuple_of(2,
	    mp_str("b"), mp_tuple_of(2, mp_str("c"), mp_tuple_of(0)))));
	add("list0", mp_list_new());
	add("list1", mp_list_of(1, mp_int(1)));
	add("list2500", int_range(mp_list_new(), 2500));
	add("list_nested", mp_list_of(1, mp_list_of(2, mp_int(1),
	    mp_list_of(2, mp_int(2), mp_list_of(2, mp_int(3),
	    mp_list_new())))));
	/* 160 KiB of small items: frames end at save() boundaries. */
	mp_obj_t *frames = mp_list_new();
	for (int i = 0; i < 40000; i += 100) {
		mp_obj_t *row = mp_list_new();
		for (int j = 0; j < 100; j++) {
			expect_ok(mp_list_append(row, mp_int(100000 + i + j)));
		}
		expect_ok(mp_list_append(frames, row));
	}
	add("list_frames", frames);
	add("dict0", mp_dict_new());
	const char *const a[] = { "a" };
	mp_obj_t *one[] = { mp_int(1) };
	add("dict1", dict_of(1, a, one));
	add("dict1000", dict_k(1000));
	add("dict2000", dict_k(2000));
	const char *const z[] = { "z" };
	mp_obj_t *zv[] = { mp_none() };
	const char *const y[] = { "y" };
	mp_obj_t *yv[] = { mp_list_of(2, mp_int(1), dict_of(1, z, zv)) };
	const char *const xw[] = { "x", "w" };
	mp_obj_t *xwv[] = { dict_of(1, y, yv), mp_tuple_of(2, mp_bool(true),
		mp_float(2.5)) };
	add("dict_nested", dict_of(2, xw, xwv));
	add("set0", mp_set_new());
	add("set2500", int_range(mp_set_new(), 2500));
	add("frozenset0", mp_frozenset_new());
	mp_obj_t *f5 = mp_frozenset_new();
	mp_obj_t *f3 = mp_frozenset_new();
	for (int i = 0; i < 5; i++) {
		expect_ok(mp_set_add(f5, mp_int(i)));
		if (i < 3) {
			expect_ok(mp_set_add(f3, mp_int(i)));
		}
	}
	add("frozenset5", f5);
	mp_obj_t *sf = mp_set_new();
	expect_ok(mp_set_add(sf, f3));
	expect_ok(mp_set_add(sf, mp_int(7)));
	add("~set_frozen", sf);
	mp_obj_t *ss = mp_set_new();
	expect_ok(mp_set_add(ss, mp_str("apple")));
	expect_ok(mp_set_add(ss, mp_str("pear")));
	expect_ok(mp_set_add(ss, mp_str("plum")));
	add("~set_str", ss);
}

static void
build_shared_and_instances(void)
{
	mp_obj_t *sh = mp_str("shared");
	add("shared_str", mp_list_of(3, sh, mp_obj_ref(sh), mp_tuple_of(1,
	    mp_obj_ref(sh))));
	mp_obj_t *inner = mp_list_new();
	add("shared_list", mp_list_of(2, inner, mp_obj_ref(inner)));
	mp_obj_t *pair = mp_tuple_of(2, mp_int(1), mp_int(2));
	const char *const ab[] = { "a", "b" };
	mp_obj_t *abv[] = { pair, mp_obj_ref(pair) };
	add("shared_tuple", dict_of(2, ab, abv));
	mp_obj_t *l = mp_list_new();
	mp_obj_t *strs[300];
	for (int i = 0; i < 300; i++) {
		char s[16];
		snprintf(s, sizeof(s), "s%d", i);
		strs[i] = mp_str(s);
		expect_ok(mp_list_append(l, strs[i]));
	}
	for (int i = 0; i < 300; i++) {
		expect_ok(mp_list_append(l, mp_obj_ref(strs[i])));
	}
	add("shared_300", l);
	add("keyerror", mp_instance_new("builtins", "KeyError", mp_tuple_of(1,
	    mp_str("zz")), NULL, false));
	const char *const note[] = { "note" };
	mp_obj_t *notev[] = { mp_int(1) };
	add("error_state", mp_instance_new("builtins", "KeyError",
	    mp_tuple_of(1, mp_str("x")), dict_of(1, note, notev), false));
	add("error_reply", mp_tuple_of(2, mp_str("#ERROR"), mp_instance_new(
	    "builtins", "KeyError", mp_tuple_of(1, mp_str("k")), NULL,
	    false)));
	add("token", token());
	add("proxy_reply", mp_tuple_of(2, mp_str("#PROXY"), mp_tuple_of(2,
	    mp_tuple_of(4, mp_str("__next__"), mp_str("send"),
	    mp_str("throw"), mp_str("close")), token())));
	add("return_list", mp_tuple_of(2, mp_str("#RETURN"), mp_list_of(4,
	    mp_str("name"), mp_int(42), mp_none(), mp_str("hello"))));
}

static void
corpus_build(void)
{
	n_items = 0;
	build_scalars();
	build_text();
	build_containers();
	build_shared_and_instances();
}

static void
corpus_free(void)
{
	for (size_t i = 0; i < n_items; i++) {
		mp_obj_unref(items[i].v);
	}
	n_items = 0;
}

/* ---- Hooks for what protocols 2 and 3 spell with globals -------------- */

/* _codecs.encode(str, 'latin1'): protocol 2's spelling of bytes. */
static int
hook_latin1(const mp_obj_t *args, mp_obj_t **out, void *user)
{
	(void)user;
	size_t n;
	const char *s = mp_str_data(mp_tuple_get(args, 0), &n);
	const char *enc = mp_str_data(mp_tuple_get(args, 1), NULL);
	if (s == NULL || enc == NULL || strcmp(enc, "latin1") != 0) {
		return -EINVAL;
	}
	uint8_t *b = malloc(n + 1);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = (uint8_t)s[i];
		if (c >= 0xc4) {
			free(b);
			return -EINVAL;
		}
		if (c >= 0xc2) {
			c = (uint8_t)((c & 0x1f) << 6 | (s[++i] & 0x3f));
		}
		b[k++] = c;
	}
	*out = mp_bytes(b, k);
	free(b);
	return *out == NULL ? -ENOMEM : 0;
}

/* bytes(), set([...]), frozenset([...]) */
static int
hook_container(const mp_obj_t *args, mp_obj_t **out, void *user)
{
	enum mp_type t = (enum mp_type)(intptr_t)user;
	if (t == MP_TYPE_BYTES) {
		*out = mp_bytes("", 0);
		return mp_obj_len(args) == 0 ? 0 : -EINVAL;
	}
	const mp_obj_t *l = mp_tuple_get(args, 0);
	if (l == NULL || mp_obj_type(l) != MP_TYPE_LIST) {
		return -EINVAL;
	}
	mp_obj_t *s = t == MP_TYPE_SET ? mp_set_new() : mp_frozenset_new();
	for (size_t i = 0; i < mp_obj_len(l); i++) {
		expect_ok(mp_set_add(s, mp_obj_ref(mp_list_get(l,
		    (ssize_t)i))));
	}
	*out = s;
	return 0;
}

/* exceptions.KeyError: protocol 2's name of builtins.KeyError. */
static int
hook_py2_exception(const mp_obj_t *args, mp_obj_t **out, void *user)
{
	*out = mp_instance_new("builtins", user, mp_obj_ref((mp_obj_t *)args),
	    NULL, false);
	return 0;
}

#define HOOK_T(t) hook_container, (void *)(intptr_t)(t)

static const struct mp_pickle_global interop_globals[] = {
	{ "multiprocessing.managers", "Token", NULL, NULL },
	{ "builtins", "KeyError", NULL, NULL },
	{ "exceptions", "KeyError", hook_py2_exception, "KeyError" },
	{ "_codecs", "encode", hook_latin1, NULL },
	{ "__builtin__", "bytes", HOOK_T(MP_TYPE_BYTES) },
	{ "__builtin__", "set", HOOK_T(MP_TYPE_SET) },
	{ "__builtin__", "frozenset", HOOK_T(MP_TYPE_FROZENSET) },
	{ "builtins", "set", HOOK_T(MP_TYPE_SET) },
	{ "builtins", "frozenset", HOOK_T(MP_TYPE_FROZENSET) },
};

/* ---- The two directions ----------------------------------------------- */

static bool
same(const mp_obj_t *a, const mp_obj_t *b)
{
	if (mp_obj_type(a) == MP_TYPE_FLOAT &&
	    mp_obj_type(b) == MP_TYPE_FLOAT && isnan(mp_float_value(a))) {
		return isnan(mp_float_value(b));
	}
	return mp_obj_equal(a, b);
}

static void
put_record(struct mp__buf *b, const void *p, size_t n)
{
	uint8_t h[4] = { (uint8_t)(n >> 24), (uint8_t)(n >> 16),
		(uint8_t)(n >> 8), (uint8_t)n };
	expect_ok(mp__buf_append(b, h, 4));
	expect_ok(mp__buf_append(b, p, n));
}

/* (a) CPython loads what mproc encodes, and would have written the same. */
static void
check_python_loads(const struct mp_test_python *py)
{
	struct mp__buf in;
	mp__buf_init(&in);
	for (size_t i = 0; i < n_items; i++) {
		void *p;
		size_t n;
		expect_ok(mp_pickle_dumps(items[i].v, &p, &n));
		put_record(&in, p, n);
		mp_free(p);
	}
	const char *const args[] = { "check", NULL };
	char *out = NULL;
	char *err = NULL;
	int st = mp_test_run_py(py, "pickle_corpus.py", args,
	    (const char *)in.data, in.len, &out, NULL, &err);
	mp__buf_fini(&in);
	size_t oks = 0;
	for (const char *l = out; l != NULL && *l != '\0';
	    l = strchr(l, '\n') == NULL ? NULL : strchr(l, '\n') + 1) {
		oks += strncmp(l, "ok ", 3) == 0;
	}
	cr_assert(st == 0 && oks == n_items,
	    "python %s (exit %d, %zu of %zu ok):\n%s\n%s", py->label, st, oks,
	    n_items, out, err);
	free(out);
	free(err);
}

/* (b) mproc loads what CPython encodes with protocols 2 to 5. */
static void
check_c_loads(const struct mp_test_python *py)
{
	const char *const args[] = { "emit", NULL };
	char *out = NULL;
	size_t len = 0;
	char *err = NULL;
	int st = mp_test_run_py(py, "pickle_corpus.py", args, NULL, 0, &out,
	    &len, &err);
	cr_assert_eq(st, 0, "python %s emit: exit %d\n%s", py->label, st, err);
	struct mp_pickle_opts o = { 0 };
	o.globals = interop_globals;
	o.n_globals = MP__ARRAY_LEN(interop_globals);
	char eb[160];
	o.errbuf = eb;
	o.errbuf_len = sizeof(eb);
	size_t pos = 0;
	for (size_t i = 0; i < n_items; i++) {
		for (int proto = 2; proto <= 5; proto++) {
			cr_assert_leq(pos + 4, len, "python %s: short output",
			    py->label);
			const uint8_t *h = (const uint8_t *)out + pos;
			size_t n = (size_t)h[0] << 24 | (size_t)h[1] << 16 |
			    (size_t)h[2] << 8 | h[3];
			cr_assert_leq(pos + 4 + n, len);
			mp_obj_t *v = NULL;
			eb[0] = '\0';
			int rv = mp_pickle_loads(h + 4, n, &o, &v);
			cr_assert_eq(rv, 0,
			    "python %s, %s, protocol %d: %s (%s)",
			    py->label, items[i].name, proto, mp_err_name(rv),
			    eb);
			cr_assert(same(v, items[i].v),
			    "python %s, %s, protocol %d: not equal", py->label,
			    items[i].name, proto);
			mp_obj_unref(v);
			pos += 4 + n;
		}
	}
	cr_assert_eq(pos, len, "python %s: trailing output", py->label);
	free(out);
	free(err);
}

Test(interop_pickle, cpython_loads_mproc_bytes_identical)
{
	const struct mp_test_python *pys;
	size_t n = mp_test_pythons(&pys);
	if (n == 0) {
		cr_skip_test("no CPython 3.8-3.13 found");
	}
	corpus_build();
	for (size_t i = 0; i < n; i++) {
		check_python_loads(&pys[i]);
		fprintf(stderr, "TESTED python %s: %zu items loaded and "
		    "byte-identical\n", pys[i].label, n_items);
	}
	corpus_free();
}

Test(interop_pickle, mproc_loads_cpython_protocols_2_to_5)
{
	const struct mp_test_python *pys;
	size_t n = mp_test_pythons(&pys);
	if (n == 0) {
		cr_skip_test("no CPython 3.8-3.13 found");
	}
	corpus_build();
	for (size_t i = 0; i < n; i++) {
		check_c_loads(&pys[i]);
		fprintf(stderr, "TESTED python %s: %zu items x protocols 2-5 "
		    "decoded\n", pys[i].label, n_items);
	}
	corpus_free();
}
