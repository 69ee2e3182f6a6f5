/* SPDX-License-Identifier: MIT */
/* obj/repr.c: repr() and str() text, exactly as CPython prints it. */
#include "obj/obj_impl.h"

#include <math.h>
#include <string.h>

#include "core/buf.h"

static int repr_into(const mp_obj_t *o, struct mp__buf *b, size_t max);

static int
put_str(struct mp__buf *b, const char *s)
{
	return mp__buf_append(b, s, strlen(s));
}

static int
put_hex(struct mp__buf *b, const char *prefix, uint32_t v, int digits)
{
	char s[16];
	int k = snprintf(s, sizeof(s), "%s%0*x", prefix, digits, (unsigned)v);
	return mp__buf_append(b, s, (size_t)k);
}

/*
 * Python picks single quotes unless the text holds a single quote and no
 * double quote; both str and bytes follow this rule.
 */
static char
pick_quote(const char *s, size_t n)
{
	bool single = memchr(s, '\'', n) != NULL;
	bool dbl = memchr(s, '"', n) != NULL;
	return single && !dbl ? '"' : '\'';
}

/* One ASCII character the way str and bytes reprs share; 1 if handled. */
static int
put_ascii_escape(struct mp__buf *b, unsigned c, char quote, int *rv)
{
	char esc[3] = { '\\', 0, 0 };
	if (c == (unsigned char)quote || c == '\\') {
		esc[1] = (char)c;
	} else if (c == '\t') {
		esc[1] = 't';
	} else if (c == '\n') {
		esc[1] = 'n';
	} else if (c == '\r') {
		esc[1] = 'r';
	} else if (c < ' ' || c == 0x7f) {
		*rv = put_hex(b, "\\x", c, 2);
		return 1;
	} else {
		return 0;
	}
	*rv = mp__buf_append(b, esc, 2);
	return 1;
}

/* unicode_repr() of CPython's Objects/unicodeobject.c. */
static int
str_repr(const mp_obj_t *o, struct mp__buf *b)
{
	const uint8_t *s = (const uint8_t *)o->u.s.data;
	size_t n = o->u.s.len;
	char quote = pick_quote(o->u.s.data, n);
	int rv = mp__buf_put_u8(b, (uint8_t)quote);
	size_t i = 0;
	while (rv == 0 && i < n) {
		if (s[i] < 0x80) {
			if (put_ascii_escape(b, s[i], quote, &rv) == 0) {
				rv = mp__buf_put_u8(b, s[i]);
			}
			i++;
			continue;
		}
		uint32_t cp = 0;
		size_t k = mp__utf8_decode(s + i, n - i, &cp);
		MP_ASSERT(k > 0); /* validated when the str was built */
		if (mp__unicode_isprintable(cp)) {
			rv = mp__buf_append(b, s + i, k);
		} else if (cp <= 0xff) {
			rv = put_hex(b, "\\x", cp, 2);
		} else if (cp <= 0xffff) {
			rv = put_hex(b, "\\u", cp, 4);
		} else {
			rv = put_hex(b, "\\U", cp, 8);
		}
		i += k;
	}
	return rv != 0 ? rv : mp__buf_put_u8(b, (uint8_t)quote);
}

static int
bytes_repr(const mp_obj_t *o, struct mp__buf *b)
{
	const uint8_t *s = (const uint8_t *)o->u.s.data;
	size_t n = o->u.s.len;
	char quote = pick_quote(o->u.s.data, n);
	int rv = mp__buf_put_u8(b, 'b');
	if (rv == 0) {
		rv = mp__buf_put_u8(b, (uint8_t)quote);
	}
	for (size_t i = 0; rv == 0 && i < n; i++) {
		if (s[i] >= 0x80) {
			rv = put_hex(b, "\\x", s[i], 2);
		} else if (put_ascii_escape(b, s[i], quote, &rv) == 0) {
			rv = mp__buf_put_u8(b, s[i]);
		}
	}
	return rv != 0 ? rv : mp__buf_put_u8(b, (uint8_t)quote);
}

/* ---- Floats ----------------------------------------------------------- */

/*
 * Decimal digits of v, correctly rounded to prec significant digits:
 * digits without the point into d (no sign), and the decimal exponent of
 * the first digit. Returns the number of digits.
 */
static int
float_digits(double v, int prec, char d[24], int *exp10)
{
	char s[40];
	snprintf(s, sizeof(s), "%.*e", prec - 1, fabs(v));
	int n = 0;
	const char *p = s;
	for (; *p != 'e'; p++) {
		if (*p != '.') {
			d[n++] = *p;
		}
	}
	d[n] = '\0';
	*exp10 = atoi(p + 1);
	return n;
}

static double
digits_value(const char *d, int exp10)
{
	char s[48];
	snprintf(s, sizeof(s), "%c.%se%d", d[0], d + 1, exp10);
	return strtod(s, NULL);
}

/*
 * The digit string one unit in the last place away (up or down), keeping
 * the digit count; false when that changes the count (9.99 up, 1.00 down).
 */
static bool
digits_step(char *d, int n, bool up)
{
	for (int i = n - 1; i >= 0; i--) {
		if (up && d[i] != '9') {
			d[i]++;
			return true;
		}
		if (!up && d[i] != '0') {
			d[i]--;
			return i > 0 || d[0] != '0';
		}
		d[i] = up ? '0' : '9';
	}
	return false;
}

/*
 * Python's repr(float) is the shortest digit string that reads back as
 * the same double (David Gay's mode 0). The correctly rounded n-digit
 * string is the best n-digit candidate, except next to a power of two,
 * where the rounding interval is lopsided and the neighbour on the wide
 * side may read back when the nearest one does not; try both.
 */
static int
shortest_digits(double v, char d[24], int *exp10)
{
	double a = fabs(v);
	for (int prec = 1; prec < 17; prec++) {
		int n = float_digits(v, prec, d, exp10);
		double got = digits_value(d, *exp10);
		if (got == a) {
			return n;
		}
		char alt[24];
		memcpy(alt, d, (size_t)n + 1);
		if (digits_step(alt, n, got < a) &&
		    digits_value(alt, *exp10) == a) {
			memcpy(d, alt, (size_t)n + 1);
			return n;
		}
	}
	return float_digits(v, 17, d, exp10);
}

static int
float_repr(double v, struct mp__buf *b)
{
	if (isnan(v)) {
		return put_str(b, "nan");
	}
	if (isinf(v)) {
		return put_str(b, v < 0 ? "-inf" : "inf");
	}
	if (v == 0) {
		return put_str(b, signbit(v) ? "-0.0" : "0.0");
	}
	char d[24];
	int e;
	int n = shortest_digits(v, d, &e);
	while (n > 1 && d[n - 1] == '0') {
		d[--n] = '\0';
	}
	char s[64];
	const char *sign = v < 0 ? "-" : "";
	/* float_repr_style 'r': exponent form outside 1e-4 <= |v| < 1e16. */
	if (e < -4 || e >= 16) {
		snprintf(s, sizeof(s), "%s%c%s%se%c%02d", sign, d[0],
		    n > 1 ? "." : "", d + 1, e < 0 ? '-' : '+', abs(e));
	} else if (e < 0) {
		snprintf(s, sizeof(s), "%s0.%.*s%s", sign, -e - 1,
		    "0000", d);
	} else if (e + 1 >= n) {
		snprintf(s, sizeof(s), "%s%s%.*s.0", sign, d, e + 1 - n,
		    "0000000000000000");
	} else {
		snprintf(s, sizeof(s), "%s%.*s.%s", sign, e + 1, d,
		    d + e + 1);
	}
	return put_str(b, s);
}

/* ---- Containers ------------------------------------------------------- */

static int
items_repr(mp_obj_t *const *items, size_t n, struct mp__buf *b, size_t max)
{
	int rv = 0;
	for (size_t i = 0; rv == 0 && i < n; i++) {
		if (i > 0) {
			rv = put_str(b, ", ");
		}
		if (rv == 0) {
			rv = repr_into(items[i], b, max);
		}
	}
	return rv;
}

static int
seq_repr(const mp_obj_t *o, struct mp__buf *b, size_t max)
{
	bool tuple = o->type == MP_TYPE_TUPLE;
	int rv = put_str(b, tuple ? "(" : "[");
	if (rv == 0) {
		rv = items_repr(o->u.seq.items, o->u.seq.len, b, max);
	}
	/* A one-item tuple needs its comma: (1,) and not (1). */
	if (rv == 0 && tuple && o->u.seq.len == 1) {
		rv = put_str(b, ",");
	}
	return rv != 0 ? rv : put_str(b, tuple ? ")" : "]");
}

static int
table_repr(const mp_obj_t *o, struct mp__buf *b, size_t max)
{
	bool dict = o->type == MP_TYPE_DICT;
	if (o->u.t.len == 0) {
		return put_str(b, dict ? "{}" :
		    o->type == MP_TYPE_SET ? "set()" : "frozenset()");
	}
	int rv = put_str(b, o->type == MP_TYPE_FROZENSET ? "frozenset({" :
	    "{");
	bool first = true;
	for (size_t i = 0; rv == 0 && i < o->u.t.nentries; i++) {
		const struct mp__entry *e = &o->u.t.entries[i];
		if (e->key == NULL) {
			continue;
		}
		if (!first) {
			rv = put_str(b, ", ");
		}
		first = false;
		if (rv == 0) {
			rv = repr_into(e->key, b, max);
		}
		if (rv == 0 && dict) {
			rv = put_str(b, ": ");
			if (rv == 0) {
				rv = repr_into(e->value, b, max);
			}
		}
	}
	if (rv == 0) {
		rv = put_str(b, o->type == MP_TYPE_FROZENSET ? "})" : "}");
	}
	return rv;
}

static bool
is_token(const mp_obj_t *o)
{
	const mp_obj_t *st = o->u.inst.state;
	return strcmp(o->u.inst.name, "Token") == 0 &&
	    strcmp(o->u.inst.module, "multiprocessing.managers") == 0 &&
	    st != NULL && st->type == MP_TYPE_TUPLE && st->u.seq.len == 3;
}

/*
 * An instance prints as its class called with its arguments, which is
 * BaseException.__repr__ (KeyError('zz'), ValueError(), OSError(2, 'x')).
 * A manager Token prints as Token.__repr__ does, from its state.
 */
static int
instance_repr(const mp_obj_t *o, struct mp__buf *b, size_t max)
{
	int rv = put_str(b, o->u.inst.name);
	if (rv != 0) {
		return rv;
	}
	if (is_token(o)) {
		static const char *const field[] = { "(typeid=", ", address=",
			", id=" };
		for (size_t i = 0; rv == 0 && i < 3; i++) {
			rv = put_str(b, field[i]);
			if (rv == 0) {
				rv = repr_into(o->u.inst.state->u.seq.items[i],
				    b, max);
			}
		}
	} else {
		rv = put_str(b, "(");
		if (rv == 0) {
			rv = items_repr(o->u.inst.args->u.seq.items,
			    o->u.inst.args->u.seq.len, b, max);
		}
	}
	return rv != 0 ? rv : put_str(b, ")");
}

/*
 * Text past this is refused (-ENOMEM): a container shared many times over
 * prints once per reference, so t = (t, t) nested 60 deep, a 130-byte
 * pickle, would print 2^60 copies. Checked before each value, so the work
 * stays bounded by the cap plus the largest single str or bytes.
 */
#define REPR_MAX ((size_t)16 << 20)

static int
repr_into(const mp_obj_t *o, struct mp__buf *b, size_t max)
{
	if (b->len > max) {
		return -ENOMEM;
	}
	switch (o->type) {
	case MP_TYPE_NONE:
		return put_str(b, "None");
	case MP_TYPE_BOOL:
		return put_str(b, o->u.b ? "True" : "False");
	case MP_TYPE_INT:
		return mp__int_format(o, b);
	case MP_TYPE_FLOAT:
		return float_repr(o->u.f, b);
	case MP_TYPE_STR:
		return str_repr(o, b);
	case MP_TYPE_BYTES:
		return bytes_repr(o, b);
	case MP_TYPE_TUPLE:
	case MP_TYPE_LIST:
		return seq_repr(o, b, max);
	case MP_TYPE_DICT:
	case MP_TYPE_SET:
	case MP_TYPE_FROZENSET:
		return table_repr(o, b, max);
	case MP_TYPE_INSTANCE:
		return instance_repr(o, b, max);
	}
	return -EINVAL;
}

static int
finish(struct mp__buf *b, int rv, char **out)
{
	if (rv == 0) {
		rv = mp__buf_put_u8(b, '\0');
	}
	if (rv != 0) {
		mp__buf_fini(b);
		return rv;
	}
	size_t len;
	*out = mp__buf_steal(b, &len);
	return 0;
}

int
mp__obj_repr_max(const mp_obj_t *o, size_t max, char **out)
{
	MP_ASSERT(o != NULL && out != NULL);
	struct mp__buf b;
	mp__buf_init(&b);
	return finish(&b, repr_into(o, &b, max), out);
}

int
mp_obj_repr(const mp_obj_t *o, char **out)
{
	return mp__obj_repr_max(o, REPR_MAX, out);
}

/*
 * str() of an exception is BaseException.__str__: empty with no
 * arguments, str() of a lone argument (repr() for KeyError, whose message
 * is the missing key), the tuple's repr otherwise.
 */
static int
exception_str(const mp_obj_t *o, struct mp__buf *b, size_t max)
{
	const mp_obj_t *args = o->u.inst.args;
	if (args->u.seq.len == 0) {
		return 0;
	}
	if (args->u.seq.len > 1) {
		return repr_into(args, b, max);
	}
	const mp_obj_t *a = args->u.seq.items[0];
	if (a->type == MP_TYPE_STR && strcmp(o->u.inst.name, "KeyError") != 0) {
		return mp__buf_append(b, a->u.s.data, a->u.s.len);
	}
	return repr_into(a, b, max);
}

int
mp_obj_str(const mp_obj_t *o, char **out)
{
	MP_ASSERT(o != NULL && out != NULL);
	struct mp__buf b;
	mp__buf_init(&b);
	int rv;
	if (o->type == MP_TYPE_STR) {
		rv = mp__buf_append(&b, o->u.s.data, o->u.s.len);
	} else if (o->type == MP_TYPE_INSTANCE &&
	    strcmp(o->u.inst.module, "builtins") == 0 && !is_token(o)) {
		rv = exception_str(o, &b, REPR_MAX);
	} else {
		rv = repr_into(o, &b, REPR_MAX);
	}
	return finish(&b, rv, out);
}
