/* SPDX-License-Identifier: MIT */
/* test_interop_repr.c: repr and str text equal every CPython's. */
#include "harness/harness.h"
#include "core/internal.h"

#include <math.h>

MP_TEST_SUITE(interop_repr);

/*
 * The corpus is built here in C, item by item in the order of
 * tests/py/repr_corpus.py, which prints Python's repr() of the same values
 * live: no expected text is copied from Python into this file.
 */
struct corpus {
	mp_obj_t **v;
	bool *use_str; /* compare str() rather than repr() */
	size_t n;
	size_t cap;
};

static void
add_as(struct corpus *c, mp_obj_t *o, bool use_str)
{
	cr_assert_not_null(o, "corpus item %zu could not be built", c->n);
	if (c->n == c->cap) {
		c->cap = c->cap * 2 + 64;
		c->v = realloc(c->v, c->cap * sizeof(*c->v));
		c->use_str = realloc(c->use_str, c->cap * sizeof(*c->use_str));
		cr_assert(c->v != NULL && c->use_str != NULL);
	}
	c->v[c->n] = o;
	c->use_str[c->n] = use_str;
	c->n++;
}

static void
add(struct corpus *c, mp_obj_t *o)
{
	add_as(c, o, false);
}

static mp_obj_t *
S(const char *s)
{
	return mp_str(s);
}

static mp_obj_t *
I(int64_t v)
{
	return mp_int(v);
}

static mp_obj_t *
F(double v)
{
	return mp_float(v);
}

static mp_obj_t *
B(const char *s, size_t n)
{
	return mp_bytes(s, n);
}

/* An int from little-endian magnitude bytes and a sign. */
static mp_obj_t *
int_from_mag(const uint8_t *mag, size_t n, bool neg)
{
	uint8_t *le = calloc(n + 1, 1);
	cr_assert_not_null(le);
	memcpy(le, mag, n);
	if (neg) {
		unsigned carry = 1;
		for (size_t i = 0; i <= n; i++) {
			unsigned b = (~le[i] & 0xffu) + carry;
			le[i] = (uint8_t)b;
			carry = b >> 8;
		}
	}
	mp_obj_t *o = NULL;
	int rv = mp_int_from_bytes(le, n + 1, &o);
	free(le);
	return rv == 0 ? o : NULL;
}

/* sign * 2^k, from its bytes. */
static mp_obj_t *
pow2(unsigned k, bool neg)
{
	uint8_t mag[160] = { 0 };
	mag[k / 8] = (uint8_t)(1u << (k % 8));
	return int_from_mag(mag, k / 8 + 1, neg);
}

/* sign * 3^e, multiplied out in a byte array. */
static mp_obj_t *
pow3(unsigned e, bool neg)
{
	uint8_t mag[128] = { 1 };
	for (unsigned i = 0; i < e; i++) {
		unsigned carry = 0;
		for (size_t j = 0; j < sizeof(mag); j++) {
			unsigned t = mag[j] * 3u + carry;
			mag[j] = (uint8_t)t;
			carry = t >> 8;
		}
		cr_assert_eq(carry, 0);
	}
	return int_from_mag(mag, sizeof(mag), neg);
}

/* The decimal `prefix` followed by `count` copies of `digit`. */
static mp_obj_t *
decimal(const char *prefix, char digit, size_t count)
{
	char s[128];
	size_t n = strlen(prefix);
	memcpy(s, prefix, n);
	memset(s + n, digit, count);
	s[n + count] = '\0';
	mp_obj_t *o = NULL;
	return mp_int_from_str(s, &o) == 0 ? o : NULL;
}

static mp_obj_t *
u64_int(uint64_t v)
{
	if (v <= INT64_MAX) {
		return mp_int((int64_t)v);
	}
	uint8_t le[8];
	for (int i = 0; i < 8; i++) {
		le[i] = (uint8_t)(v >> (8 * i));
	}
	return int_from_mag(le, 8, false);
}

static size_t
utf8_put(char *s, uint32_t cp)
{
	if (cp < 0x80) {
		s[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		s[0] = (char)(0xc0 | (cp >> 6));
		s[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		s[0] = (char)(0xe0 | (cp >> 12));
		s[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		s[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	s[0] = (char)(0xf0 | (cp >> 18));
	s[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	s[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	s[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static mp_obj_t *
dict_of(size_t n, mp_obj_t **kv)
{
	mp_obj_t *d = mp_dict_new();
	for (size_t i = 0; i < n; i++) {
		int rv = mp_dict_set(d, kv[2 * i], kv[2 * i + 1]);
		cr_assert_eq(rv, 0, "dict item %zu: %s", i, mp_err_name(rv));
	}
	return d;
}

static mp_obj_t *
set_of(mp_obj_t *set, mp_obj_t *item)
{
	int rv = mp_set_add(set, item);
	cr_assert_eq(rv, 0, "set add: %s", mp_err_name(rv));
	return set;
}

static mp_obj_t *
exc(const char *name, mp_obj_t *args)
{
	return mp_instance_new("builtins", name, args, NULL, false);
}

static mp_obj_t *
token(mp_obj_t *typeid, mp_obj_t *address, mp_obj_t *id)
{
	return mp_instance_new("multiprocessing.managers", "Token",
	    mp_tuple_of(0), mp_tuple_of(3, typeid, address, id), true);
}

static void
add_fixed(struct corpus *c)
{
	add(c, mp_list_of(4, S("Process-1"), I(42), mp_none(), S("hello")));
	add(c, dict_of(1, (mp_obj_t *[]){ S("a"), mp_tuple_of(1, I(1)) }));
	add(c, B("", 1));
	add(c, F(1.0));
	add(c, F(-0.0));
	add(c, F(0.0));
	add(c, F(INFINITY));
	add(c, F(-INFINITY));
	add(c, F(NAN));
	add(c, S("it's"));
	add(c, S("a\"b'c"));
	add(c, S("say \"hi\""));
	add(c, S("both ' and \""));
	add(c, S("back\\slash"));
	add(c, S("tab\tnl\nret\r"));
	mp_obj_t *ctl = NULL;
	expect_ok(mp_str_new("\x00\x01\x1f\x7f", 4, &ctl));
	add(c, ctl);
	add(c, S("é"));
	add(c, S("中文"));
	add(c, S("\U0001f600"));
	add(c, S("e\u0301"));
	add(c, S("\u200b"));
	add(c, S("\x7f"));
	add(c, S("\xc2\x85"));
	add(c, S("\u00a0"));
	add(c, S("\u00ad"));
	add(c, S("\u2028"));
	add(c, S("\u3000"));
	add(c, S("\ufeff"));
	add(c, S("\ue000"));
	add(c, S("\U0010ffff"));
	add(c, S("\U000e0001"));
	add(c, S("z\u0308\u0323"));
	add(c, S("Ωμέγα"));
	add(c, S("naïve café – “quotes” ‘single’"));
	add(c, S(""));
	add(c, mp_bool(true));
	add(c, mp_bool(false));
	add(c, mp_none());
	int64_t small[] = { 0, 1, -1, 255, 256, -129, INT64_C(1) << 31,
		INT64_MAX, INT64_MIN };
	for (size_t i = 0; i < MP__ARRAY_LEN(small); i++) {
		add(c, I(small[i]));
	}
	add(c, pow2(63, false));
	/* -2^63 - 1: the first negative value past int64_t. */
	add(c, int_from_mag((const uint8_t[]){ 1, 0, 0, 0, 0, 0, 0, 0x80 }, 8,
	    true));
	add(c, pow2(64, false));
	add(c, pow2(100, false));
	add(c, pow2(100, true));
	add(c, decimal("1", '0', 50));
	add(c, decimal("-", '9', 50));
	add(c, pow2(1000, false));
	double floats[] = { 1e16, 1e-5, 1e-4, 0.1, 0.3, 5e-324,
		1.7976931348623157e308, 2.2250738585072014e-308, 1e22, 1e23,
		123.456, 1e15, 9999999999999998.0, 12345678901234567890.0,
		1.0 / 3, 2.0 / 3, M_PI, -1.5e-10, 100.0, 1.2345678901234568e17,
		0.5, 1e-7, 9007199254740993.0 };
	for (size_t i = 0; i < MP__ARRAY_LEN(floats); i++) {
		add(c, F(floats[i]));
	}
	add(c, mp_tuple_of(0));
	add(c, mp_tuple_of(1, I(1)));
	add(c, mp_tuple_of(2, I(1), I(2)));
	add(c, mp_list_new());
	add(c, mp_dict_new());
	add(c, mp_set_new());
	add(c, mp_frozenset_new());
	add(c, B("", 0));
	add(c, mp_list_of(1, mp_list_of(1, mp_list_new())));
	add(c, mp_tuple_of(1, mp_tuple_of(0)));
	add(c, mp_list_of(3, mp_tuple_of(0), mp_list_new(), mp_dict_new()));
	add(c, dict_of(3, (mp_obj_t *[]){
		S("k"), mp_list_of(3, I(1), mp_tuple_of(2, I(2), F(3.5)),
		    dict_of(1, (mp_obj_t *[]){ S("x"), mp_none() })),
		S("b"), B("it's", 4),
		I(3), S("three") }));
	add(c, dict_of(4, (mp_obj_t *[]){
		I(1), F(1.0),
		F(2.5), S("x"),
		mp_none(), mp_bool(true),
		mp_tuple_of(2, I(1), S("t")), mp_list_of(1, B("a", 1)) }));
	add(c, set_of(mp_set_new(), I(1)));
	add(c, set_of(mp_frozenset_new(), S("a")));
	add(c, mp_list_of(1, set_of(mp_frozenset_new(),
	    mp_tuple_of(2, I(1), I(2)))));
	add(c, dict_of(1, (mp_obj_t *[]){ S("s"),
	    set_of(mp_set_new(), mp_none()) }));
	uint8_t all[256];
	for (int i = 0; i < 256; i++) {
		all[i] = (uint8_t)i;
	}
	add(c, mp_bytes(all, sizeof(all)));
	add(c, B("it's", 4));
	add(c, B("a\"b'c", 5));
	add(c, B("\"", 1));
	add(c, B("\\", 1));
	add(c, B("\t\n\r\x0b\x0c", 5));
	add(c, exc("KeyError", mp_tuple_of(1, S("zz"))));
	add(c, exc("ValueError", mp_tuple_of(0)));
	add(c, exc("ValueError", mp_tuple_of(2, S("x"), I(2))));
	add(c, exc("RuntimeError", mp_tuple_of(1, mp_list_of(1, I(1)))));
	add(c, token(S("Q"), mp_tuple_of(2, S("127.0.0.1"), I(5000)),
	    S("7f3a")));
	add(c, token(S("dict"), S("/tmp/pymp-x/listener-y"), S("1a")));
}

static void
add_str_values(struct corpus *c)
{
	mp_obj_t *v[] = {
		S("hello"), S("it's"), exc("KeyError", mp_tuple_of(1, S("zz"))),
		exc("ValueError", mp_tuple_of(1, S("bad input"))),
		exc("ValueError", mp_tuple_of(0)),
		exc("ValueError", mp_tuple_of(2, I(1), S("two"))),
		exc("ValueError", mp_tuple_of(1, I(3))), F(1.5), mp_none(),
		mp_list_of(2, I(1), S("a")), B("x", 1),
	};
	for (size_t i = 0; i < MP__ARRAY_LEN(v); i++) {
		add_as(c, v[i], true);
	}
}

static void
add_char_blocks(struct corpus *c)
{
	static const uint32_t blocks[][2] = {
		{ 0x0000, 0x024f }, { 0x0370, 0x03ff }, { 0x0590, 0x05ff },
		{ 0x2000, 0x206f }, { 0x3000, 0x303f }, { 0xfe00, 0xfe0f },
		{ 0xff00, 0xff5f }, { 0x1f600, 0x1f64f },
	};
	for (size_t b = 0; b < MP__ARRAY_LEN(blocks); b++) {
		for (uint32_t cp = blocks[b][0]; cp <= blocks[b][1]; cp += 16) {
			char s[16 * 4];
			size_t n = 0;
			for (uint32_t k = cp; k < cp + 16 && k <= blocks[b][1];
			    k++) {
				n += utf8_put(s + n, k);
			}
			mp_obj_t *o = NULL;
			expect_ok(mp_str_new(s, n, &o));
			add(c, o);
		}
	}
}

static void
add_generated(struct corpus *c)
{
	for (int e = -1074; e < 1024; e++) {
		add(c, F(ldexp(1.0, e)));
	}
	uint64_t state = 1;
	for (int i = 0; i < 3000; i++) {
		state = state * UINT64_C(6364136223846793005) +
		    UINT64_C(1442695040888963407);
		double f;
		memcpy(&f, &state, sizeof(f));
		add(c, F(f));
		add(c, u64_int(state >> (state & 63)));
	}
	for (unsigned k = 1; k < 60; k++) {
		add(c, pow3(k * 7, k % 2 == 1));
	}
}

static void
corpus_build(struct corpus *c)
{
	memset(c, 0, sizeof(*c));
	add_fixed(c);
	add_str_values(c);
	add_char_blocks(c);
	add_generated(c);
}

static void
corpus_free(struct corpus *c)
{
	for (size_t i = 0; i < c->n; i++) {
		mp_obj_unref(c->v[i]);
	}
	free(c->v);
	free(c->use_str);
}

/* Compare the corpus with one interpreter's output; returns mismatches. */
static size_t
check_against(const struct mp_test_python *py, const struct corpus *c)
{
	char *out = NULL;
	char *err = NULL;
	size_t out_len = 0;
	int st = mp_test_run_py(py, "repr_corpus.py", NULL, NULL, 0, &out,
	    &out_len, &err);
	cr_assert_eq(st, 0, "python %s exited with %d: %s", py->label, st,
	    err != NULL ? err : "");
	size_t bad = 0;
	char *line = out;
	for (size_t i = 0; i < c->n; i++) {
		char *nl = memchr(line, '\n', out_len - (size_t)(line - out));
		cr_assert_not_null(nl, "python %s printed %zu lines, want %zu",
		    py->label, i, c->n);
		*nl = '\0';
		char *mine = NULL;
		int rv = c->use_str[i] ? mp_obj_str(c->v[i], &mine) :
		    mp_obj_repr(c->v[i], &mine);
		expect_ok(rv);
		if (strcmp(mine, line) != 0) {
			if (bad++ < 20) {
				cr_log_error("python %s item %zu: python "
				    "'%s', mproc '%s'", py->label, i, line,
				    mine);
			}
		}
		mp_free(mine);
		line = nl + 1;
	}
	cr_assert_eq((size_t)(line - out), out_len,
	    "python %s printed more lines than the corpus has", py->label);
	free(out);
	free(err);
	return bad;
}

Test(interop_repr, corpus_matches_every_cpython, .timeout = 300)
{
	const struct mp_test_python *pys;
	size_t n = mp_test_pythons(&pys);
	cr_assert_gt(n, 0, "no CPython found to compare with");
	struct corpus c;
	corpus_build(&c);
	size_t bad = 0;
	for (size_t i = 0; i < n; i++) {
		size_t b = check_against(&pys[i], &c);
		if (b == 0) {
			fprintf(stderr, "OK python %s: %zu values\n",
			    pys[i].label, c.n);
		}
		bad += b;
	}
	corpus_free(&c);
	cr_assert_eq(bad, 0, "%zu values print differently", bad);
}

/*
 * Strict UTF-8 validation agrees with CPython's decoder on byte strings
 * built from the bytes at every boundary of the encoding tables.
 */
Test(interop_repr, utf8_validation_matches_cpython)
{
	static const uint8_t pick[] = { 0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90,
		0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xed,
		0xee, 0xef, 0xf0, 0xf3, 0xf4, 0xf5, 0xf8, 0xff };
	static char want[20000 + 200 + 1];
	size_t w = 0;
	uint64_t state = 7;
	size_t valid = 0;
	for (int i = 0; i < 20000; i++) {
		state = state * UINT64_C(6364136223846793005) +
		    UINT64_C(1442695040888963407);
		size_t n = 1 + (state >> 60) % 6;
		char s[6];
		for (size_t k = 0; k < n; k++) {
			s[k] = (char)pick[(state >> (8 * k)) % sizeof(pick)];
		}
		mp_obj_t *o = NULL;
		int rv = mp_str_new(s, n, &o);
		cr_assert(rv == 0 || rv == -EINVAL, "%s", mp_err_name(rv));
		mp_obj_unref(o);
		want[w++] = rv == 0 ? '1' : '0';
		valid += rv == 0;
		if ((i + 1) % 100 == 0) {
			want[w++] = '\n';
		}
	}
	want[w] = '\0';
	cr_assert(valid > 300 && valid < 19700, "a mix: %zu valid", valid);
	const struct mp_test_python *pys;
	size_t np = mp_test_pythons(&pys);
	cr_assert_gt(np, 0, "no CPython found to compare with");
	for (size_t i = 0; i < np; i++) {
		char *out = NULL;
		int st = mp_test_run_py(&pys[i], "repr_utf8.py", NULL, NULL, 0,
		    &out, NULL, NULL);
		cr_assert_eq(st, 0, "python %s exited with %d", pys[i].label,
		    st);
		cr_assert_str_eq(out, want, "python %s disagrees",
		    pys[i].label);
		free(out);
	}
}
