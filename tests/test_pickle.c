/* SPDX-License-Identifier: MIT */
/* test_pickle.c: the pickle codec: CPython's bytes, refusals and limits. */
#include "harness/harness.h"
#include "core/buf.h"
#include "obj/pickle_internal.h"

#include <math.h>

MP_TEST_SUITE(pickle);

/* ---- Helpers ---------------------------------------------------------- */

/* Decode hex text into a malloc'd buffer. */
static uint8_t *
unhex(const char *hex, size_t *len)
{
	size_t n = strlen(hex) / 2;
	uint8_t *b = malloc(n + 1);
	cr_assert_not_null(b);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		cr_assert_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
		b[i] = (uint8_t)v;
	}
	*len = n;
	return b;
}

static char *
tohex(const void *p, size_t n)
{
	const uint8_t *c = p;
	char *s = malloc(2 * n + 1);
	cr_assert_not_null(s);
	for (size_t i = 0; i < n; i++) {
		snprintf(s + 2 * i, 3, "%02x", c[i]);
	}
	s[2 * n] = '\0';
	return s;
}

/* Assert that dumps(v) is exactly the hex given; v is released. */
static void
expect_dumps(mp_obj_t *v, const char *want)
{
	cr_assert_not_null(v);
	void *out;
	size_t len;
	expect_ok(mp_pickle_dumps(v, &out, &len));
	char *got = tohex(out, len);
	cr_assert_str_eq(got, want, "dumps gave %s\n     CPython %s", got,
	    want);
	free(got);
	mp_free(out);
	mp_obj_unref(v);
}

/* The globals a manager client allows, plus the hooks used below. */
static int
reduce_list(const mp_obj_t *args, mp_obj_t **out, void *user)
{
	(void)user;
	const mp_obj_t *l = mp_tuple_get(args, 0);
	if (mp_obj_len(args) != 1 || l == NULL ||
	    mp_obj_type(l) != MP_TYPE_LIST) {
		return -EINVAL;
	}
	mp_obj_t *copy = mp_list_new();
	for (size_t i = 0; copy != NULL && i < mp_obj_len(l); i++) {
		if (mp_list_append(copy, mp_obj_ref(mp_list_get(l,
		    (ssize_t)i))) != 0) {
			mp_obj_unref(copy);
			copy = NULL;
		}
	}
	*out = copy;
	return copy == NULL ? -ENOMEM : 0;
}

/* A hook handing back an item of its arguments, shared with them. */
static int
reduce_first(const mp_obj_t *args, mp_obj_t **out, void *user)
{
	(void)user;
	*out = mp_obj_ref(mp_tuple_get(args, 0));
	return *out == NULL ? -EINVAL : 0;
}

static const struct mp_pickle_global test_globals[] = {
	{ "test", "first", reduce_first, NULL },
	{ "multiprocessing.managers", "Token", NULL, NULL },
	{ "builtins", "KeyError", NULL, NULL },
	{ "builtins", "IndexError", NULL, NULL },
	{ "_queue", "Empty", NULL, NULL },
	{ "queue", "Empty", NULL, NULL },
	{ "builtins", "list", reduce_list, NULL },
};

static char errbuf[256];

static struct mp_pickle_opts
opts_default(void)
{
	struct mp_pickle_opts o = { 0 };
	o.globals = test_globals;
	o.n_globals = MP__ARRAY_LEN(test_globals);
	o.errbuf = errbuf;
	o.errbuf_len = sizeof(errbuf);
	errbuf[0] = '\0';
	return o;
}

static int
loads_opts(const void *p, size_t n, const struct mp_pickle_opts *o,
    mp_obj_t **out)
{
	*out = NULL;
	int rv = mp_pickle_loads(p, n, o, out);
	if (rv != 0) {
		cr_assert_null(*out, "out-parameter touched on failure");
	}
	return rv;
}

static int
loads(const void *p, size_t n, mp_obj_t **out)
{
	struct mp_pickle_opts o = opts_default();
	return loads_opts(p, n, &o, out);
}

static int
loads_hex(const char *hex, mp_obj_t **out)
{
	size_t n;
	uint8_t *b = unhex(hex, &n);
	int rv = loads(b, n, out);
	free(b);
	return rv;
}

/* Decode a raw pickle given as a C string literal (n bytes). */
static int
loads_raw(const char *p, size_t n)
{
	mp_obj_t *o;
	int rv = loads(p, n, &o);
	mp_obj_unref(o);
	return rv;
}

#define RAW(lit) loads_raw(lit, sizeof(lit) - 1)

/* dumps then loads, and check the value comes back equal. */
static void
round_trip(mp_obj_t *v)
{
	cr_assert_not_null(v);
	void *out;
	size_t len;
	expect_ok(mp_pickle_dumps(v, &out, &len));
	mp_obj_t *back;
	expect_ok(loads(out, len, &back));
	char *r1 = NULL;
	char *r2 = NULL;
	mp_obj_repr(v, &r1);
	mp_obj_repr(back, &r2);
	cr_assert(mp_obj_equal(v, back) || (mp_obj_type(v) ==
	    MP_TYPE_FLOAT && isnan(mp_float_value(v)) &&
	    isnan(mp_float_value(back))), "%.200s came back as %.200s", r1,
	    r2);
	/* Encoding the decoded value gives the same bytes again. */
	void *again;
	size_t alen;
	expect_ok(mp_pickle_dumps(back, &again, &alen));
	cr_assert(alen == len && memcmp(again, out, len) == 0,
	    "re-encoding %.200s differs", r1);
	mp_free(r1);
	mp_free(r2);
	mp_free(again);
	mp_free(out);
	mp_obj_unref(back);
	mp_obj_unref(v);
}

/* ---- Encoder: CPython's bytes ----------------------------------------- */

Test(pickle, scalars_match_cpython)
{
	/* A frame of 4 bytes or more (STOP included) has a header. */
	expect_dumps(mp_none(), "80044e2e");
	expect_dumps(mp_bool(true), "8004882e");
	expect_dumps(mp_bool(false), "8004892e");
	expect_dumps(mp_int(0), "80044b002e");
	expect_dumps(mp_int(255), "80044bff2e");
	expect_dumps(mp_int(256), "80049504000000000000004d00012e");
	expect_dumps(mp_int(65535), "80049504000000000000004dffff2e");
	expect_dumps(mp_int(65536), "80049506000000000000004a000001002e");
	expect_dumps(mp_int(-1), "80049506000000000000004affffffff2e");
	expect_dumps(mp_int(INT32_MIN), "80049506000000000000004a000000802e");
	expect_dumps(mp_int((int64_t)1 << 31),
	    "80049508000000000000008a0500000080002e");
	expect_dumps(mp_int(INT64_MIN),
	    "8004950b000000000000008a0800000000000000802e");
	expect_dumps(mp_test_int("9223372036854775808"),
	    "8004950c000000000000008a090000000000000080002e");
	expect_dumps(mp_test_int("-1180591620717411303424"),
	    "8004950c000000000000008a090000000000000000c02e");
	expect_dumps(mp_float(1.5),
	    "8004950a00000000000000473ff80000000000002e");
	expect_dumps(mp_float(-0.0),
	    "8004950a000000000000004780000000000000002e");
	expect_dumps(mp_str(""), "80049504000000000000008c00942e");
	expect_dumps(mp_bytes("", 0), "80049504000000000000004300942e");
	expect_dumps(mp_tuple_of(0), "8004292e");
	expect_dumps(mp_list_new(), "80045d942e");
	expect_dumps(mp_dict_new(), "80047d942e");
	expect_dumps(mp_set_new(), "80048f942e");
	expect_dumps(mp_frozenset_new(), "80049504000000000000002891942e");
}

Test(pickle, wire_vectors_match_cpython)
{
	const char *id = "7f0a1b2c3d40";
	expect_dumps(mp_tuple_of(4, mp_none(), mp_str("dummy"), mp_tuple_of(0),
	    mp_dict_new()),
	    "8004951000000000000000284e8c0564756d6d7994297d9474942e");
	expect_dumps(mp_tuple_of(2, mp_str("#RETURN"), mp_none()),
	    "8004950e000000000000008c072352455455524e944e86942e");
	expect_dumps(mp_tuple_of(4, mp_none(), mp_str("create"),
	    mp_tuple_of(1, mp_str("get_queue")), mp_dict_new()),
	    "8004951e00000000000000284e8c06637265617465948c096765745f71756575"
	    "659485947d9474942e");
	expect_dumps(mp_tuple_of(2, mp_str("#RETURN"), mp_tuple_of(2,
	    mp_str(id), mp_tuple_of(10, mp_str("cancel_join_thread"),
	    mp_str("close"), mp_str("empty"), mp_str("full"), mp_str("get"),
	    mp_str("get_nowait"), mp_str("join_thread"), mp_str("put"),
	    mp_str("put_nowait"), mp_str("qsize")))),
	    "80049589000000000000008c072352455455524e948c0c376630613162326333"
	    "64343094288c1263616e63656c5f6a6f696e5f746872656164948c05636c6f73"
	    "65948c05656d707479948c0466756c6c948c03676574948c0a6765745f6e6f77"
	    "616974948c0b6a6f696e5f746872656164948c03707574948c0a7075745f6e6f"
	    "77616974948c057173697a65947494869486942e");
	expect_dumps(mp_tuple_of(4, mp_none(), mp_str("incref"),
	    mp_tuple_of(1, mp_str(id)), mp_dict_new()),
	    "8004952100000000000000284e8c06696e63726566948c0c3766306131623263"
	    "336434309485947d9474942e");
	expect_dumps(mp_tuple_of(4, mp_none(), mp_str("accept_connection"),
	    mp_tuple_of(1, mp_str("MainProcess")), mp_dict_new()),
	    "8004952b00000000000000284e8c116163636570745f636f6e6e656374696f6e"
	    "948c0b4d61696e50726f636573739485947d9474942e");
	expect_dumps(mp_tuple_of(4, mp_str(id), mp_str("put"),
	    mp_tuple_of(1, mp_str("hello")), mp_dict_new()),
	    "8004952500000000000000288c0c376630613162326333643430948c03707574"
	    "948c0568656c6c6f9485947d9474942e");
	mp_obj_t *kw = mp_dict_new();
	expect_ok(mp_dict_set(kw, mp_str("timeout"), mp_int(1)));
	expect_dumps(mp_tuple_of(4, mp_str(id), mp_str("get"), mp_tuple_of(0),
	    kw),
	    "8004952900000000000000288c0c376630613162326333643430948c03676574"
	    "94297d948c0774696d656f7574944b017374942e");
	expect_dumps(mp_tuple_of(2, mp_str("#RETURN"), mp_str("hello")),
	    "80049515000000000000008c072352455455524e948c0568656c6c6f9486942e");
	expect_dumps(mp_tuple_of(2, mp_str("#RETURN"), mp_list_of(4,
	    mp_str("name"), mp_int(42), mp_none(), mp_str("hello"))),
	    "80049523000000000000008c072352455455524e945d94288c046e616d65944b"
	    "2a4e8c0568656c6c6f946586942e");
	expect_dumps(mp_tuple_of(2, mp_str("#ERROR"), mp_instance_new("_queue",
	    "Empty", mp_tuple_of(0), NULL, false)),
	    "80049522000000000000008c06234552524f52948c065f7175657565948c0545"
	    "6d70747994939429529486942e");
	expect_dumps(mp_tuple_of(2, mp_str("#ERROR"), mp_instance_new(
	    "builtins", "KeyError", mp_tuple_of(1, mp_str("zz")), NULL, false)),
	    "8004952d000000000000008c06234552524f52948c086275696c74696e73948c"
	    "084b65794572726f729493948c027a7a948594529486942e");
}

static mp_obj_t *
token(const char *typeid, const char *host, int port, const char *id)
{
	return mp_instance_new("multiprocessing.managers", "Token",
	    mp_tuple_of(0), mp_tuple_of(3, mp_str(typeid), mp_tuple_of(2,
	    mp_str(host), mp_int(port)), mp_str(id)), true);
}

static const char proxy_hex[] =
    "80049589000000000000008c062350524f585994288c085f5f6e6578745f5f948c04"
    "73656e64948c057468726f77948c05636c6f73659474948c186d756c746970726f63"
    "657373696e672e6d616e6167657273948c05546f6b656e9493942981948c08497465"
    "7261746f72948c093132372e302e302e31944d50c386948c0c376630613162326333"
    "64343094879462869486942e";

static mp_obj_t *
proxy_value(void)
{
	return mp_tuple_of(2, mp_str("#PROXY"), mp_tuple_of(2, mp_tuple_of(4,
	    mp_str("__next__"), mp_str("send"), mp_str("throw"),
	    mp_str("close")), token("Iterator", "127.0.0.1", 50000,
	    "7f0a1b2c3d40")));
}

Test(pickle, token_matches_cpython)
{
	expect_dumps(proxy_value(), proxy_hex);
}

/* Two exceptions of one module share "builtins"; the same class twice is
 * one BINGET (CPython memoizes classes and module names). */
Test(pickle, classes_and_modules_are_memoized)
{
	expect_dumps(mp_tuple_of(3,
	    mp_instance_new("builtins", "KeyError", mp_tuple_of(1,
	    mp_str("a")), NULL, false),
	    mp_instance_new("builtins", "IndexError", mp_tuple_of(1,
	    mp_str("b")), NULL, false),
	    mp_instance_new("builtins", "KeyError", mp_tuple_of(1,
	    mp_str("c")), NULL, false)),
	    "80049546000000000000008c086275696c74696e73948c084b65794572726f72"
	    "9493948c0161948594529468008c0a496e6465784572726f729493948c016294"
	    "8594529468028c0163948594529487942e");
}

/* [[]] * 2 in CPython: the second item is BINGET 1. */
Test(pickle, shared_object_is_binget)
{
	mp_obj_t *inner = mp_list_new();
	expect_dumps(mp_list_of(2, inner, mp_obj_ref(inner)),
	    "80049509000000000000005d94285d946801652e");
}

/* Batches: one item APPEND / SETITEM, lists in batches of 1000 with no
 * empty batch, dicts and sets with an empty batch after a full one. */
Test(pickle, batches_follow_cpython)
{
	expect_dumps(mp_list_of(1, mp_int(1)),
	    "80049506000000000000005d944b01612e");
	expect_dumps(mp_list_of(2, mp_int(1), mp_int(2)),
	    "80049509000000000000005d94284b014b02652e");
	mp_obj_t *d = mp_dict_new();
	expect_ok(mp_dict_set(d, mp_int(1), mp_int(2)));
	expect_dumps(d, "80049508000000000000007d944b014b02732e");
	mp_obj_t *s = mp_set_new();
	expect_ok(mp_set_add(s, mp_int(1)));
	expect_dumps(s, "80049507000000000000008f94284b01902e");

	mp_obj_t *l = mp_list_new();
	mp_obj_t *big = mp_dict_new();
	for (int i = 0; i < 1000; i++) {
		expect_ok(mp_list_append(l, mp_int(1)));
		expect_ok(mp_dict_set(big, mp_int(i), mp_none()));
	}
	void *out;
	size_t len;
	expect_ok(mp_pickle_dumps(l, &out, &len));
	const uint8_t *b = out;
	/* MARK (1000 x K01) APPENDS STOP: a single batch. */
	cr_assert_eq(len, 11 + 2 + 1 + 2000 + 1 + 1);
	cr_assert_eq(b[len - 2], 'e');
	cr_assert_eq(b[len - 3], 0x01);
	mp_free(out);
	expect_ok(mp_pickle_dumps(big, &out, &len));
	b = out;
	cr_assert_eq(memcmp(b + len - 4, "u(u.", 4), 0);
	mp_free(out);
	mp_obj_unref(l);
	mp_obj_unref(big);
}

/* Deleted entries leave holes in a table; only live ones are written. */
Test(pickle, deleted_entries_are_skipped)
{
	mp_obj_t *d = mp_dict_new();
	expect_ok(mp_dict_set(d, mp_str("a"), mp_int(1)));
	expect_ok(mp_dict_set(d, mp_str("b"), mp_int(2)));
	expect_ok(mp_dict_set(d, mp_str("c"), mp_int(3)));
	mp_obj_t *b = mp_str("b");
	expect_ok(mp_dict_del(d, b));
	mp_obj_unref(b);
	expect_dumps(d, "80049511000000000000007d94288c0161944b018c0163944b03"
	    "752e");
}

/* A str body of 64 KiB or more is written outside frames: the frame
 * before it is committed (here empty, so it loses its header). */
Test(pickle, large_bodies_leave_the_frame)
{
	size_t n = 70 * 1024;
	char *s = malloc(n + 1);
	memset(s, 'x', n);
	s[n] = '\0';
	mp_obj_t *l = mp_list_of(2, mp_str(s), mp_int(7));
	free(s);
	void *out;
	size_t len;
	expect_ok(mp_pickle_dumps(l, &out, &len));
	const uint8_t *b = out;
	/* 80 04 | 5d 94 28 (3 bytes: no frame header) | 58 len body | 94 4b 07
	 * 65 2e (5 bytes: framed). */
	cr_assert_eq(len, 2 + 3 + 5 + n + 9 + 5);
	cr_assert_eq(memcmp(b, "\x80\x04]\x94(X", 6), 0);
	cr_assert_eq(b[6] | b[7] << 8 | b[8] << 16, (int)n);
	cr_assert_eq(b[10 + n], 0x95);
	cr_assert_eq(b[11 + n], 5);
	cr_assert_eq(memcmp(b + 19 + n, "\x94K\x07" "e.", 5), 0);
	mp_obj_t *back;
	expect_ok(loads(out, len, &back));
	cr_assert(mp_obj_equal(l, back));
	mp_obj_unref(back);
	mp_free(out);
	mp_obj_unref(l);
}

/* A frame is committed at the first save() after it reaches 64 KiB. */
Test(pickle, frames_split_at_64k)
{
	mp_obj_t *l = mp_list_new();
	for (int i = 0; i < 30000; i++) {
		expect_ok(mp_list_append(l, mp_int(100000 + i)));
	}
	void *out;
	size_t len;
	expect_ok(mp_pickle_dumps(l, &out, &len));
	const uint8_t *b = out;
	cr_assert_eq(b[2], 0x95);
	uint64_t f1 = 0;
	for (int i = 0; i < 8; i++) {
		f1 |= (uint64_t)b[3 + i] << (8 * i);
	}
	/* Items are 5 bytes (BININT); the boundary falls before an item. */
	cr_assert_geq(f1, 64 * 1024);
	cr_assert_lt(f1, 64 * 1024 + 5);
	cr_assert_eq(b[11 + f1], 0x95);
	mp_obj_t *back;
	expect_ok(loads(out, len, &back));
	cr_assert(mp_obj_equal(l, back));
	mp_obj_unref(back);
	mp_free(out);
	mp_obj_unref(l);
}

Test(pickle, encode_appends_in_place)
{
	struct mp__buf b;
	mp__buf_init(&b);
	expect_ok(mp__buf_append(&b, "\0\0\0\0", 4));
	mp_obj_t *v = mp_tuple_of(2, mp_str("#RETURN"), mp_none());
	expect_ok(mp__pickle_encode(&b, v));
	char *got = tohex(b.data, b.len);
	cr_assert_str_eq(got, "00000000" "8004950e000000000000008c07235245"
	    "5455524e944e86942e");
	free(got);
	/* On failure the buffer keeps its length. */
	mp_obj_t *deep = mp_list_new();
	for (int i = 0; i < MP__PICKLE_MAX_DEPTH; i++) {
		deep = mp_list_of(1, deep);
	}
	size_t before = b.len;
	expect_err(mp__pickle_encode(&b, deep), -EINVAL);
	cr_assert_eq(b.len, before);
	mp_obj_unref(deep);
	mp_obj_unref(v);
	mp__buf_fini(&b);
}

/* More shared objects than the inline memo holds, and past index 255. */
Test(pickle, many_shared_objects_use_long_binget)
{
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
	void *out;
	size_t len;
	expect_ok(mp_pickle_dumps(l, &out, &len));
	/* Strings 0..299 take memo 1..300: s299 is LONG_BINGET 300. */
	const uint8_t *b = out;
	cr_assert_eq(memcmp(b + len - 7, "j\x2c\x01\x00\x00" "e.", 7), 0);
	mp_obj_t *back;
	expect_ok(loads(out, len, &back));
	cr_assert(mp_obj_equal(l, back));
	cr_assert_eq(mp_list_get(back, 0), mp_list_get(back, 300));
	mp_obj_unref(back);
	mp_free(out);
	mp_obj_unref(l);
}

/* ---- Round trips ------------------------------------------------------ */

Test(pickle, round_trip_every_type)
{
	round_trip(mp_none());
	round_trip(mp_bool(true));
	round_trip(mp_bool(false));
	const int64_t ints[] = { 0, 1, 255, 256, 65535, 65536, -1, -255,
		-256, INT32_MAX, INT32_MIN, (int64_t)INT32_MAX + 1,
		(int64_t)INT32_MIN - 1, INT64_MAX, INT64_MIN, 1LL << 40,
		-(1LL << 40) };
	for (size_t i = 0; i < MP__ARRAY_LEN(ints); i++) {
		round_trip(mp_int(ints[i]));
	}
	round_trip(mp_test_int("18446744073709551616"));
	round_trip(mp_test_int("-18446744073709551616"));
	round_trip(mp_test_int(mp_test_two_1000));
	char neg[400];
	snprintf(neg, sizeof(neg), "-%s", mp_test_two_1000);
	round_trip(mp_test_int(neg));
	const double fl[] = { 0.0, -0.0, 1.5, -2.25, 1e308, 5e-324, INFINITY,
		-INFINITY, NAN };
	for (size_t i = 0; i < MP__ARRAY_LEN(fl); i++) {
		round_trip(mp_float(fl[i]));
	}
	round_trip(mp_str(""));
	round_trip(mp_str("h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac "
	    "\xf0\x9f\x90\x8d"));
	char *s300 = malloc(301);
	memset(s300, 'a', 300);
	s300[300] = '\0';
	round_trip(mp_str(s300));
	round_trip(mp_bytes(s300, 300));
	free(s300);
	round_trip(mp_bytes("\x00\xff", 2));
	round_trip(mp_tuple_of(0));
	round_trip(mp_tuple_of(1, mp_int(1)));
	round_trip(mp_tuple_of(3, mp_int(1), mp_str("x"), mp_none()));
	round_trip(mp_tuple_of(5, mp_int(1), mp_int(2), mp_int(3), mp_int(4),
	    mp_tuple_of(0)));
	round_trip(mp_list_of(3, mp_list_new(), mp_dict_new(), mp_set_new()));
	mp_obj_t *d = mp_dict_new();
	expect_ok(mp_dict_set(d, mp_str("k"), mp_list_of(1, mp_float(2.5))));
	expect_ok(mp_dict_set(d, mp_tuple_of(2, mp_int(1), mp_str("t")),
	    mp_bytes("b", 1)));
	expect_ok(mp_dict_set(d, mp_none(), mp_bool(true)));
	round_trip(d);
	mp_obj_t *s = mp_set_new();
	mp_obj_t *fs = mp_frozenset_new();
	for (int i = 0; i < 2500; i++) {
		expect_ok(mp_set_add(s, mp_int(i)));
		expect_ok(mp_set_add(fs, mp_int(-i)));
	}
	expect_ok(mp_set_add(s, fs));
	round_trip(s);
	round_trip(mp_instance_new("builtins", "KeyError", mp_tuple_of(1,
	    mp_str("zz")), NULL, false));
	mp_obj_t *st = mp_dict_new();
	expect_ok(mp_dict_set(st, mp_str("name"), mp_str("x")));
	round_trip(mp_instance_new("builtins", "IndexError", mp_tuple_of(0),
	    st, false));
	round_trip(token("Queue", "/tmp/sock", 0, "ab"));
}

/* Every §5.7 frame decodes to the value it carries: CPython's form and
 * the minimal one (no FRAME, no MEMOIZE). */
Test(pickle, decodes_cpython_and_minimal_vectors)
{
	mp_obj_t *v;
	expect_ok(loads_hex(proxy_hex, &v));
	mp_obj_t *want = proxy_value();
	cr_assert(mp_obj_equal(v, want));
	mp_obj_t *tok = mp_tuple_get(mp_tuple_get(v, 1), 1);
	cr_assert_str_eq(mp_instance_name(tok), "Token");
	cr_assert_not_null(mp_instance_state(tok));
	/* Re-encoding the decoded Token gives CPython's bytes again. */
	expect_dumps(v, proxy_hex);
	mp_obj_unref(want);

	expect_ok(loads_hex("80048c062350524f5859288c085f5f6e6578745f5f8c0473"
	    "656e648c057468726f778c05636c6f7365748c186d756c746970726f6365737369"
	    "6e672e6d616e61676572738c05546f6b656e9329818c084974657261746f728c09"
	    "3132372e302e302e314d50c3868c0c3766306131623263336434308762868"
	    "62e", &v));
	want = proxy_value();
	cr_assert(mp_obj_equal(v, want));
	mp_obj_unref(want);
	mp_obj_unref(v);

	expect_ok(loads_hex("80048c06234552524f528c0571756575658c05456d707479"
	    "932952862e", &v));
	want = mp_tuple_of(2, mp_str("#ERROR"), mp_instance_new("queue",
	    "Empty", mp_tuple_of(0), NULL, false));
	cr_assert(mp_obj_equal(v, want));
	mp_obj_unref(want);
	mp_obj_unref(v);

	expect_ok(loads_hex("8004952900000000000000288c0c37663061316232633364"
	    "3430948c0367657494297d948c0774696d656f7574944b017374942e", &v));
	cr_assert_eq(mp_obj_len(v), 4);
	int64_t t = 0;
	expect_ok(mp_int_value(mp_dict_get_str(mp_tuple_get(v, 3), "timeout"),
	    &t));
	cr_assert_eq(t, 1);
	mp_obj_unref(v);
}

/* Protocol 3 forms: BINPUT, BINUNICODE, GLOBAL. */
Test(pickle, decodes_protocol_3_forms)
{
	mp_obj_t *v;
	/* pickle.dumps(([1, 'a'], b'x'), 3) */
	expect_ok(loads_hex("80035d7100284b015801000000617101654301787102867103"
	    "2e", &v));
	mp_obj_t *want = mp_tuple_of(2, mp_list_of(2, mp_int(1), mp_str("a")),
	    mp_bytes("x", 1));
	cr_assert(mp_obj_equal(v, want));
	mp_obj_unref(want);
	mp_obj_unref(v);
	/* pickle.dumps(KeyError('zz'), 3) */
	expect_ok(loads_hex("8003636275696c74696e730a4b65794572726f720a710058"
	    "020000007a7a71018571025271032e", &v));
	cr_assert_str_eq(mp_instance_name(v), "KeyError");
	mp_obj_unref(v);
	/* Protocol 2 names the module "exceptions": not whitelisted. */
	expect_err(loads_hex("800263657863657074696f6e730a4b65794572726f720a71"
	    "0058020000007a7a71018571025271032e", &v), MP_EFORBIDDEN);
}

/* ---- Memo sharing and cycles ------------------------------------------ */

Test(pickle, binget_shares_one_object)
{
	mp_obj_t *v;
	expect_ok(loads_hex("80049509000000000000005d94285d946801652e", &v));
	cr_assert_eq(mp_obj_len(v), 2);
	cr_assert_eq(mp_list_get(v, 0), mp_list_get(v, 1));
	/* Shared, so appending through one shows through the other. */
	expect_ok(mp_list_append(mp_list_get(v, 0), mp_int(5)));
	cr_assert_eq(mp_obj_len(mp_list_get(v, 1)), 1);
	mp_obj_unref(v);
}

Test(pickle, cycles_are_refused)
{
	/* l = []; l.append(l) */
	expect_err(RAW("\x80\x04]\x94h\x00" "a."), MP_EPICKLE);
	cr_assert(strstr(errbuf, "cycle") != NULL, "%s", errbuf);
	/* d = {}; d['d'] = d */
	expect_err(RAW("\x80\x04}\x94\x8c\x01" "d\x94h\x00s."), MP_EPICKLE);
	/* t = ([],); t[0].append(t), as CPython writes it. */
	expect_err(RAW("\x80\x04]\x94h\x00\x85\x94" "a0h\x01."), MP_EPICKLE);
	/* An instance whose state holds itself. */
	expect_err(RAW("\x80\x04\x8c\x08" "builtins\x8c\x08KeyError\x93)R\x94"
	    "}\x94\x8c\x01s\x94h\x00sb."), MP_EPICKLE);
	/* A hook's result reachable from the memo through its arguments:
	 * L = first((L,)) with (L,) memoized, then L.append((L,)). */
	expect_err(RAW("\x80\x04\x8c\x04test\x8c\x05" "first\x93]\x85\x94R"
	    "h\x00" "a."), MP_EPICKLE);
	/* A fresh result can be filled: first(([],)) + [1]. */
	expect_ok(RAW("\x80\x04\x8c\x04test\x8c\x05" "first\x93]\x85R"
	    "K\x01" "a."));
	/* A list DUPed into itself. */
	expect_err(RAW("\x80\x04]2a."), MP_EPICKLE);
	/* A set holding a frozenset holding... nothing mutable: fine. */
	expect_ok(RAW("\x80\x04\x8f\x94(()\x91\x94h\x01\x90."));
}

/* ---- Globals ---------------------------------------------------------- */

Test(pickle, whitelisted_global_with_reduce_hook)
{
	/* builtins.list(['a', 1]), as a dict view reply arrives. */
	struct mp_pickle_opts o = opts_default();
	const char p[] = "\x80\x04\x8c\x08" "builtins\x8c\x04list\x93]\x94(\x8c"
	    "\x01" "aK\x01" "e\x85R.";
	mp_obj_t *v;
	expect_ok(loads_opts(p, sizeof(p) - 1, &o, &v));
	cr_assert_eq(mp_obj_type(v), MP_TYPE_LIST);
	mp_obj_t *want = mp_list_of(2, mp_str("a"), mp_int(1));
	cr_assert(mp_obj_equal(v, want));
	mp_obj_unref(want);
	mp_obj_unref(v);
	/* The hook refusing its arguments aborts with its error. */
	expect_err(RAW("\x80\x04\x8c\x08" "builtins\x8c\x04list\x93"
	    "K\x01\x85R."),
	    -EINVAL);
	cr_assert(strstr(errbuf, "reduce hook") != NULL, "%s", errbuf);
	/* Without a hook: an instance of the class. */
	const char k[] = "\x80\x04\x8c\x08" "builtins\x8c\x08KeyError\x93"
	    "\x8c\x02zz\x85R.";
	expect_ok(loads_opts(k, sizeof(k) - 1, &o, &v));
	cr_assert_str_eq(mp_instance_module(v), "builtins");
	cr_assert_str_eq(mp_instance_name(v), "KeyError");
	cr_assert_str_eq(mp_str_data(mp_tuple_get(mp_instance_args(v), 0),
	    NULL), "zz");
	cr_assert_null(mp_instance_state(v));
	mp_obj_unref(v);
}

Test(pickle, globals_outside_the_whitelist_are_forbidden)
{
	expect_err(RAW("\x80\x04\x8c\x05posix\x8c\x06system\x93\x8c\x02ls"
	    "\x85R."), MP_EFORBIDDEN);
	cr_assert(strncmp(errbuf, "opcode 0x93 at offset 17: ", 26) == 0,
	    "errbuf: %s", errbuf);
	expect_err(RAW("\x80\x04\x8c\x08" "builtins\x8c\x04" "eval\x93\x8c\x01"
	    "1\x85R."), MP_EFORBIDDEN);
	expect_err(RAW("\x80\x02" "cos\nsystem\n\x8c\x02ls\x85R."),
	    MP_EFORBIDDEN);
	expect_err(RAW("cposix\nsystem\n(S'ls'\ntR."), MP_EFORBIDDEN);
	/* Protocol-2 aliases are not whitelisted names either. */
	expect_err(RAW("\x80\x02" "c__builtin__\nKeyError\n)R."),
	    MP_EFORBIDDEN);
	/* Near misses of a whitelisted name. */
	expect_err(RAW("\x80\x04\x8c\x08" "builtins\x8c\x09KeyError\x00"
	    "\x93)R."),
	    MP_EFORBIDDEN);
	expect_err(RAW("\x80\x04\x8c\x09" "builtins.\x8c\x08KeyError\x93)R."),
	    MP_EFORBIDDEN);
	/* No whitelist at all: everything is forbidden. */
	mp_obj_t *v;
	const char k[] = "\x80\x04\x8c\x08" "builtins\x8c\x08KeyError\x93)R.";
	expect_err(mp_pickle_loads(k, sizeof(k) - 1, NULL, &v), MP_EFORBIDDEN);
}

Test(pickle, code_running_opcodes_are_forbidden)
{
	expect_err(RAW("\x80\x04(i__main__\nX\n."), MP_EFORBIDDEN);
	expect_err(RAW("\x80\x04(o."), MP_EFORBIDDEN);
	expect_err(RAW("\x80\x04Pabc\n."), MP_EFORBIDDEN);
	expect_err(RAW("\x80\x04NQ."), MP_EFORBIDDEN);
	expect_err(RAW("\x80\x04\x82\x01."), MP_EFORBIDDEN);
	expect_err(RAW("\x80\x04\x83\x01\x00."), MP_EFORBIDDEN);
	expect_err(RAW("\x80\x04\x84\x01\x00\x00\x00."), MP_EFORBIDDEN);
	expect_err(RAW("\x80\x04N)}\x92."), MP_EFORBIDDEN);
	expect_err(RAW("\x80\x05\x96\x00\x00\x00\x00\x00\x00\x00\x00."),
	    MP_EFORBIDDEN);
	expect_err(RAW("\x80\x05\x97."), MP_EFORBIDDEN);
	expect_err(RAW("\x80\x05" "C\x01x\x98."), MP_EFORBIDDEN);
	/* BUILD on something that is not an instance. */
	expect_err(RAW("\x80\x04]N" "b."), MP_EFORBIDDEN);
}

/* ---- Malformed input -------------------------------------------------- */

Test(pickle, malformed_input_is_epickle)
{
	expect_err(RAW(""), MP_EPICKLE);
	expect_err(loads(NULL, 0, &(mp_obj_t *){ NULL }), MP_EPICKLE);
	expect_err(RAW("\x80\x04"), MP_EPICKLE);           /* no STOP */
	cr_assert_str_eq(errbuf, "opcode 0x00 at offset 2: truncated input: "
	    "no STOP");
	expect_err(RAW("\x80\x04."), MP_EPICKLE);          /* empty stack */
	expect_err(RAW("\x80\x04NN."), MP_EPICKLE);        /* two items */
	expect_err(RAW("\x80\x04N.N"), MP_EPICKLE);        /* trailing */
	cr_assert(strstr(errbuf, "trailing") != NULL, "%s", errbuf);
	expect_err(RAW("\x80\x04N.\x00"), MP_EPICKLE);
	expect_err(RAW("\x80\x04\xff."), MP_EPICKLE);      /* unknown */
	cr_assert(strncmp(errbuf, "opcode 0xff at offset 2: ", 25) == 0,
	    "errbuf: %s", errbuf);
	expect_err(RAW("\x80\x06N."), MP_EPICKLE);         /* protocol 6 */
	expect_err(RAW("I42\n."), MP_EPICKLE);             /* text forms */
	expect_err(RAW("\x80\x02U\x01x."), MP_EPICKLE);    /* py2 str */
	expect_err(RAW("\x80\x02T\x01\x00\x00\x00x."), MP_EPICKLE);
	expect_err(RAW("\x80\x04(N."), MP_EPICKLE);        /* open mark */
	expect_err(RAW("\x80\x04]Ne."), MP_EPICKLE);       /* no mark */
	expect_err(RAW("\x80\x04N\x86."), MP_EPICKLE);     /* underflow */
	expect_err(RAW("\x80\x04N(\x85."), MP_EPICKLE);    /* below mark */
	expect_err(RAW("\x80\x04(]N" "a."), MP_EPICKLE);   /* mark left */
	expect_err(RAW("\x80\x04]NN" "u."), MP_EPICKLE);   /* wrong type */
	expect_err(RAW("\x80\x04}(N" "u."), MP_EPICKLE);   /* odd items */
	expect_err(RAW("\x80\x04}]N" "s."), MP_EPICKLE);   /* unhashable */
	expect_err(RAW("\x80\x04h\x00."), MP_EPICKLE);     /* no memo 0 */
	expect_err(RAW("\x80\x04\x94."), MP_EPICKLE);      /* memo empty */
	expect_err(RAW("\x80\x04Nq\x05."), MP_EPICKLE);    /* memo gap */
	expect_err(RAW("\x80\x04\x8c\x02\xc3\x28."), MP_EPICKLE); /* UTF-8 */
	expect_err(RAW("\x80\x04\x8c\x03\xed\xa0\x80."), MP_EPICKLE);
	expect_err(RAW("\x80\x04X\x05\x00\x00\x00" "abc."), MP_EPICKLE);
	expect_err(RAW("\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00N."),
	    MP_EPICKLE);                                   /* frame > rest */
	expect_err(RAW("\x80\x04\x8b\xff\xff\xff\xff."), MP_EPICKLE);
	expect_err(RAW("\x80\x04NNR."), MP_EPICKLE);       /* call of None */
	expect_err(RAW("\x80\x04KK\x93."), MP_EPICKLE);    /* ints as names */
	expect_err(RAW("\x80\x04\x8c\x01" "a\x8c\x01" "b\x93."), MP_EFORBIDDEN);
	expect_err(RAW("\x80\x04\x8c\x08" "builtins\x8c\x08KeyError\x93."),
	    MP_EPICKLE);                                   /* global result */
	expect_err(RAW("\x80\x04\x8c\x08" "builtins\x8c\x08KeyError\x93\x85."),
	    MP_EPICKLE);                                   /* global as item */
	expect_err(RAW("\x80\x04\x8c\x08" "builtins\x8c\x08KeyError\x93NR."),
	    MP_EPICKLE);                                   /* args not tuple */
	expect_err(RAW("\x80\x04\x8c\x08" "builtins\x8c\x08KeyError\x93)R"
	    "NbNb."), MP_EPICKLE);                         /* BUILD twice */
	expect_err(RAW("\x80\x04" "1."), MP_EPICKLE);      /* POP_MARK */
	expect_err(RAW("\x80\x04" "0."), MP_EPICKLE);      /* POP empty */
	expect_err(RAW("\x80\x04" "2."), MP_EPICKLE);      /* DUP empty */
	expect_ok(RAW("\x80\x04(N0NN1N."));                /* POP, POP_MARK */
	expect_ok(RAW("\x80\x04(0N."));                    /* POP of a mark */
	expect_ok(RAW("N."));                              /* no PROTO */
	expect_ok(RAW("\x80\x02]q\x00(e."));               /* empty batch */
	expect_ok(RAW("\x80\x04}(u\x8f(\x90\x86."));
	expect_ok(RAW("\x80\x02\x80\x05N."));
}

/* Every prefix of a rich pickle is truncated input, never a crash. */
Test(pickle, every_truncation_is_epickle)
{
	mp_obj_t *d = mp_dict_new();
	expect_ok(mp_dict_set(d, mp_str("k\xc3\xa9y"), mp_list_of(3,
	    mp_float(1.5), mp_test_int(mp_test_two_1000), mp_bytes("\x00\x01", 2))));
	expect_ok(mp_dict_set(d, mp_int(-70000), mp_frozenset_new()));
	mp_obj_t *shared = mp_tuple_of(2, mp_int(1), mp_int(2));
	mp_obj_t *s = mp_set_new();
	expect_ok(mp_set_add(s, mp_obj_ref(shared)));
	mp_obj_t *v = mp_tuple_of(6, d, proxy_value(), shared, s,
	    mp_instance_new("builtins", "KeyError", mp_tuple_of(1,
	    mp_str("zz")), NULL, false), mp_int(INT64_MIN));
	void *out;
	size_t len;
	expect_ok(mp_pickle_dumps(v, &out, &len));
	mp_obj_t *back;
	expect_ok(loads(out, len, &back));
	cr_assert(mp_obj_equal(v, back));
	mp_obj_unref(back);
	for (size_t n = 0; n < len; n++) {
		mp_obj_t *o;
		int rv = loads(out, n, &o);
		cr_assert_eq(rv, MP_EPICKLE, "prefix %zu of %zu: %s (%s)", n,
		    len, mp_err_name(rv), errbuf);
	}
	/* Flipped bytes: any answer but a crash or a leak. */
	uint8_t *buf = malloc(len);
	uint32_t x = 12345;
	for (int round = 0; round < 20000; round++) {
		memcpy(buf, out, len);
		for (int k = 0; k < 3; k++) {
			x = x * 1103515245 + 12345;
			buf[(x >> 8) % len] = (uint8_t)(x >> 20);
		}
		mp_obj_t *o;
		int rv = loads(buf, len, &o);
		cr_assert(rv == 0 || rv == MP_EPICKLE || rv == MP_EFORBIDDEN ||
		    rv == MP_ELIMIT, "%s", mp_err_name(rv));
		mp_obj_unref(o);
	}
	free(buf);
	mp_free(out);
	mp_obj_unref(v);
}

/* ---- Limits ----------------------------------------------------------- */

static int
loads_buf(const uint8_t *p, size_t n, const struct mp_pickle_opts *o)
{
	mp_obj_t *v;
	int rv = loads_opts(p, n, o, &v);
	mp_obj_unref(v);
	return rv;
}

Test(pickle, deep_nesting_is_elimit)
{
	size_t n = 100000;
	uint8_t *p = malloc(3 * n + 8);
	struct mp_pickle_opts o = opts_default();
	/* ((((...: marks. */
	p[0] = 0x80;
	p[1] = 4;
	memset(p + 2, '(', n);
	p[2 + n] = '.';
	expect_err(loads_buf(p, n + 3, &o), MP_ELIMIT);
	/* ]]]]...aaaa: each list appended into the one below. */
	memset(p + 2, ']', n);
	memset(p + 2 + n, 'a', n - 1);
	p[1 + 2 * n] = '.';
	expect_err(loads_buf(p, 2 * n + 2, &o), MP_ELIMIT);
	cr_assert(strstr(errbuf, "max_depth") != NULL, "%s", errbuf);
	/* ) then TUPLE1 100000 times. */
	p[2] = ')';
	memset(p + 3, 0x85, n);
	p[3 + n] = '.';
	expect_err(loads_buf(p, n + 4, &o), MP_ELIMIT);
	/* ]]]] then MARK ... APPENDS nested: lists holding lists. */
	size_t k = 0;
	p[k++] = 0x80;
	p[k++] = 4;
	for (size_t i = 0; i < n / 2; i++) {
		p[k++] = ']';
		p[k++] = '(';
	}
	for (size_t i = 0; i < n / 2; i++) {
		p[k++] = 'e';
	}
	p[k++] = '.';
	expect_err(loads_buf(p, k, &o), MP_ELIMIT);
	/* Exactly max_depth is fine, one more is not. */
	o.max_depth = 50;
	for (size_t depth = 50; depth <= 51; depth++) {
		k = 2;
		for (size_t i = 0; i < depth; i++) {
			p[k++] = ']';
		}
		for (size_t i = 0; i + 1 < depth; i++) {
			p[k++] = 'a';
		}
		p[k++] = '.';
		expect_err(loads_buf(p, k, &o), depth == 50 ? 0 : MP_ELIMIT);
	}
	free(p);
}

/*
 * A container's depth follows it into the memo: a list memoized empty,
 * then filled 9 deep, comes back from BINGET 9 deep. Memoizing a growing
 * container twice is refused, so no memo entry can keep a stale depth.
 */
Test(pickle, memo_keeps_depths_exact)
{
	uint8_t p[64];
	size_t k = 0;
	p[k++] = 0x80;
	p[k++] = 4;
	p[k++] = ']';
	p[k++] = 0x94;
	memset(p + k, ']', 8);
	k += 8;
	memset(p + k, 'a', 8);
	k += 8;
	p[k++] = 'h';
	p[k++] = 0;
	p[k++] = 0x85;
	p[k++] = 0x85;
	p[k++] = '.';
	struct mp_pickle_opts o = opts_default();
	o.max_depth = 10;
	expect_err(loads_buf(p, k, &o), MP_ELIMIT);
	o.max_depth = 11;
	/* Within the limit the decode goes on to STOP, with two values. */
	expect_err(loads_buf(p, k, &o), MP_EPICKLE);
	cr_assert(strstr(errbuf, "exactly one") != NULL, "%s", errbuf);
	expect_err(RAW("\x80\x04]\x94\x94."), MP_EPICKLE);
	cr_assert(strstr(errbuf, "memoized twice") != NULL, "%s", errbuf);
	/* Complete values may be memoized again (BINGET then MEMOIZE). */
	expect_ok(RAW("\x80\x04]\x94h\x00\x94\x86."));
}

Test(pickle, absurd_lengths_fail_before_allocating)
{
	/* BINUNICODE8 / BINBYTES8 claiming 2^60 bytes. */
	expect_err(RAW("\x80\x04\x8d\x00\x00\x00\x00\x00\x00\x00\x10."),
	    MP_ELIMIT);
	expect_err(RAW("\x80\x04\x8e\x00\x00\x00\x00\x00\x00\x00\x10."),
	    MP_ELIMIT);
	expect_err(RAW("\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\xff."),
	    MP_ELIMIT);
	/* A claim under max_len but past the input is truncation. */
	expect_err(RAW("\x80\x04\x8e\x00\x00\x00\x01\x00\x00\x00\x00."),
	    MP_EPICKLE);
	expect_err(RAW("\x80\x04\x8b\xff\xff\xff\x7f."), MP_ELIMIT);
	/* Custom limits. */
	struct mp_pickle_opts o = opts_default();
	o.max_len = 3;
	expect_err(loads_buf((const uint8_t *)"\x80\x04\x8c\x04" "abcd.", 9,
	    &o), MP_ELIMIT);
	expect_ok(loads_buf((const uint8_t *)"\x80\x04\x8c\x03" "abc.", 8,
	    &o));
	o = opts_default();
	o.max_memo = 2;
	expect_err(loads_buf((const uint8_t *)"\x80\x04]\x94]\x94]\x94" "ee.",
	    11, &o), MP_ELIMIT);
	o = opts_default();
	o.max_items = 4;
	expect_ok(loads_buf((const uint8_t *)"\x80\x04NNN\x87.", 7, &o));
	expect_err(loads_buf((const uint8_t *)"\x80\x04NNNN(t.", 9, &o),
	    MP_ELIMIT);
	/* BINPUT past max_memo. */
	o = opts_default();
	expect_err(loads_buf((const uint8_t *)"\x80\x04Nr\xff\xff\xff\xff.", 9,
	    &o), MP_ELIMIT);
}

/* ---- Memory ----------------------------------------------------------- */

/* Failing each allocation in turn: -ENOMEM, nothing leaked (ASan). */
Test(pickle, allocation_failures_are_clean)
{
	mp_obj_t *v = mp_tuple_of(3, proxy_value(), mp_list_of(2,
	    mp_test_int(mp_test_two_1000), mp_str("x")), mp_frozenset_new());
	void *ref;
	size_t rlen;
	expect_ok(mp_pickle_dumps(v, &ref, &rlen));
	for (unsigned long n = 1; n < 200; n++) {
		void *out = NULL;
		size_t len;
		mp__alloc_fail_after(n);
		int rv = mp_pickle_dumps(v, &out, &len);
		mp__alloc_fail_after(0);
		cr_assert(rv == 0 || rv == -ENOMEM, "%s", mp_err_name(rv));
		mp_free(out);
		mp_obj_t *o = NULL;
		mp__alloc_fail_after(n);
		rv = loads(ref, rlen, &o);
		mp__alloc_fail_after(0);
		cr_assert(rv == 0 || rv == -ENOMEM, "%s", mp_err_name(rv));
		if (rv == 0) {
			cr_assert(mp_obj_equal(o, v));
		}
		mp_obj_unref(o);
	}
	mp_free(ref);
	mp_obj_unref(v);
}

/*
 * A dict whose keys are nests t = (t, t), 60 deep, each built apart, the
 * k-th mapping to k, decoded: the keys are equal, so it holds one entry,
 * whose key and value are returned with the dict.
 */
static mp_obj_t *
load_nest_keys(int keys, mp_obj_t **key, int64_t *value)
{
	uint8_t p[3 + 2 * (1 + 2 * 60 + 3) + 1];
	size_t n = 0;
	cr_assert(keys >= 1 && keys <= 2);
	p[n++] = 0x80;
	p[n++] = 4;
	p[n++] = '}';   /* EMPTY_DICT */
	for (int k = 1; k <= keys; k++) {
		p[n++] = ')';   /* EMPTY_TUPLE */
		for (int i = 0; i < 60; i++) {
			p[n++] = '2';   /* DUP */
			p[n++] = 0x86;  /* TUPLE2 */
		}
		p[n++] = 'K';   /* BININT1 k */
		p[n++] = (uint8_t)k;
		p[n++] = 's';   /* SETITEM */
	}
	p[n++] = '.';
	mp_obj_t *d = NULL;
	cr_assert_eq(mp_pickle_loads(p, n, NULL, &d), 0);
	cr_assert_eq(mp_obj_len(d), 1);
	size_t pos = 0;
	mp_obj_t *v = NULL;
	cr_assert(mp_dict_next(d, &pos, key, &v));
	cr_assert_eq(mp_int_value(v, value), 0);
	return d;
}

/*
 * t = (t, t) nested 60 deep as a dict key: 126 bytes that hash 2^60 items
 * unless a tuple's hash is kept (found by tests/fuzz/fuzz_pickle).
 */
Test(pickle, shared_nested_tuple_key_hashes_once)
{
	mp_obj_t *k = NULL;
	int64_t v = 0;
	mp_obj_t *d = load_nest_keys(1, &k, &v);
	cr_assert_eq(v, 1);
	cr_assert_eq(mp_obj_len(k), 2);
	cr_assert_eq(mp_tuple_get(k, 0), mp_tuple_get(k, 1));
	uint64_t h1, h2;
	cr_assert_eq(mp_obj_hash(k, &h1), 0);
	cr_assert_eq(mp_obj_hash(k, &h2), 0);
	cr_assert_eq(h1, h2);
	mp_obj_unref(d);
}

/*
 * Two such nests, built apart, as keys of one dict: their hashes match,
 * so the second key is compared with the first, which must not walk 2^60
 * pairs (found by tests/fuzz/fuzz_pickle; corpus pickle/nest-equal-keys).
 * They are equal: one entry, holding the second value.
 */
Test(pickle, separately_built_equal_nests_as_keys_compare_once)
{
	mp_obj_t *k = NULL;
	int64_t v = 0;
	mp_obj_t *d = load_nest_keys(2, &k, &v);
	cr_assert_eq(v, 2, "the second key did not find the first");
	mp_obj_unref(d);
}
