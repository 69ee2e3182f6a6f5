/* SPDX-License-Identifier: MIT */
/* obj/int.c: ints of any length: parse, bytes, decimal text, hash. */
#include "obj/obj_impl.h"

#include <math.h>
#include <string.h>

#include "core/buf.h"

/* Python's numeric hash works modulo this Mersenne prime (sys.hash_info). */
#define HASH_BITS 61
#define HASH_MOD (((uint64_t)1 << HASH_BITS) - 1)

/*
 * Build an int from sign and magnitude (n limbs, least significant
 * first). The result is small whenever the value fits int64_t, which is
 * the invariant equality and hashing rely on.
 */
static mp_obj_t *
int_from_mag(bool neg, const uint32_t *limbs, size_t n)
{
	while (n > 0 && limbs[n - 1] == 0) {
		n--;
	}
	if (n <= 2) {
		uint64_t mag = n == 0 ? 0 : limbs[0];
		if (n == 2) {
			mag |= (uint64_t)limbs[1] << 32;
		}
		if (!neg && mag <= (uint64_t)INT64_MAX) {
			return mp_int((int64_t)mag);
		}
		if (neg && mag <= (uint64_t)INT64_MAX + 1) {
			/* Negate unsigned: -2^63 has no positive twin. */
			return mp_int((int64_t)(0 - mag));
		}
	}
	if (n > (SIZE_MAX - sizeof(mp_obj_t)) / sizeof(uint32_t)) {
		return NULL;
	}
	mp_obj_t *o = mp__obj_alloc(MP_TYPE_INT, n * sizeof(uint32_t));
	if (o == NULL) {
		return NULL;
	}
	o->u.i.limbs = (uint32_t *)(o + 1);
	o->u.i.nlimbs = n;
	o->u.i.neg = neg;
	memcpy(o->u.i.limbs, limbs, n * sizeof(uint32_t));
	return o;
}

/* Sign and magnitude of any int or bool; small values use the caller's tmp. */
static size_t
int_mag(const mp_obj_t *o, uint32_t tmp[2], const uint32_t **limbs, bool *neg)
{
	if (o->type == MP_TYPE_INT && o->u.i.limbs != NULL) {
		*limbs = o->u.i.limbs;
		*neg = o->u.i.neg;
		return o->u.i.nlimbs;
	}
	int64_t v = o->type == MP_TYPE_BOOL ? o->u.b : o->u.i.small;
	uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	tmp[0] = (uint32_t)mag;
	tmp[1] = (uint32_t)(mag >> 32);
	*limbs = tmp;
	*neg = v < 0;
	return mag == 0 ? 0 : tmp[1] == 0 ? 1 : 2;
}

int
mp_int_from_str(const char *s, mp_obj_t **out)
{
	if (s == NULL) {
		return -EINVAL;
	}
	bool neg = false;
	if (*s == '+' || *s == '-') {
		neg = *s == '-';
		s++;
	}
	size_t nd = strlen(s);
	if (nd == 0 || strspn(s, "0123456789") != nd) {
		return -EINVAL;
	}
	/* Each decimal digit needs log2(10) < 3.33 bits; 9 digits < 30 bits. */
	size_t cap = nd / 9 + 2;
	uint32_t *limbs = mp__calloc(cap, sizeof(uint32_t));
	if (limbs == NULL) {
		return -ENOMEM;
	}
	size_t n = 0;
	size_t i = 0;
	while (i < nd) {
		/* Up to 9 digits at a time: limbs = limbs * 10^k + chunk. */
		uint32_t chunk = 0;
		uint32_t mul = 1;
		for (size_t k = 0; k < 9 && i < nd; k++, i++) {
			chunk = chunk * 10 + (uint32_t)(s[i] - '0');
			mul *= 10;
		}
		uint64_t carry = chunk;
		for (size_t j = 0; j < n; j++) {
			uint64_t t = (uint64_t)limbs[j] * mul + carry;
			limbs[j] = (uint32_t)t;
			carry = t >> 32;
		}
		if (carry != 0) {
			limbs[n++] = (uint32_t)carry;
		}
	}
	mp_obj_t *o = int_from_mag(neg, limbs, n);
	mp__free(limbs);
	if (o == NULL) {
		return -ENOMEM;
	}
	*out = o;
	return 0;
}

int
mp_int_from_bytes(const uint8_t *le, size_t n, mp_obj_t **out)
{
	if (n > 0 && le == NULL) {
		return -EINVAL;
	}
	size_t nl = n / 4 + 1;
	uint32_t *limbs = mp__calloc(nl, sizeof(uint32_t));
	if (limbs == NULL) {
		return -ENOMEM;
	}
	bool neg = n > 0 && (le[n - 1] & 0x80) != 0;
	/* A negative value's magnitude is its two's complement: ~x + 1. */
	unsigned carry = 1;
	for (size_t i = 0; i < n; i++) {
		unsigned byte = le[i];
		if (neg) {
			byte = (~byte & 0xff) + carry;
			carry = byte >> 8;
			byte &= 0xff;
		}
		limbs[i / 4] |= (uint32_t)byte << (8 * (i % 4));
	}
	mp_obj_t *o = int_from_mag(neg, limbs, nl);
	mp__free(limbs);
	if (o == NULL) {
		return -ENOMEM;
	}
	*out = o;
	return 0;
}

int
mp_int_value(const mp_obj_t *o, int64_t *out)
{
	if (o == NULL) {
		return MP_ETYPE;
	}
	if (o->type == MP_TYPE_BOOL) {
		*out = o->u.b;
		return 0;
	}
	if (o->type != MP_TYPE_INT) {
		return MP_ETYPE;
	}
	if (o->u.i.limbs != NULL) {
		return -ERANGE;
	}
	*out = o->u.i.small;
	return 0;
}

int
mp_int_to_bytes(const mp_obj_t *o, uint8_t **out, size_t *len)
{
	if (o == NULL || (o->type != MP_TYPE_INT && o->type != MP_TYPE_BOOL)) {
		return MP_ETYPE;
	}
	uint32_t tmp[2];
	const uint32_t *limbs;
	bool neg;
	size_t n = int_mag(o, tmp, &limbs, &neg);
	/* One spare byte so the sign bit always has room. */
	size_t nb = n * 4 + 1;
	uint8_t *b = mp__malloc(nb);
	if (b == NULL) {
		return -ENOMEM;
	}
	unsigned carry = 1;
	for (size_t i = 0; i < nb; i++) {
		unsigned byte = 0;
		if (i / 4 < n) {
			byte = (limbs[i / 4] >> (8 * (i % 4))) & 0xff;
		}
		if (neg) {
			byte = (~byte & 0xff) + carry;
			carry = byte >> 8;
			byte &= 0xff;
		}
		b[i] = (uint8_t)byte;
	}
	/*
	 * Drop top bytes that only repeat the sign: 0x00 above a clear bit,
	 * 0xff above a set bit. That is the minimal form pickle's encode_long
	 * writes, and zero ends up with no bytes at all.
	 */
	while (nb > 1 && ((b[nb - 1] == 0x00 && !(b[nb - 2] & 0x80)) ||
	    (b[nb - 1] == 0xff && (b[nb - 2] & 0x80)))) {
		nb--;
	}
	if (nb == 1 && b[0] == 0) {
		nb = 0;
	}
	*out = b;
	*len = nb;
	return 0;
}

int
mp__int_format(const mp_obj_t *o, struct mp__buf *b)
{
	uint32_t tmp[2];
	const uint32_t *limbs;
	bool neg;
	size_t n = int_mag(o, tmp, &limbs, &neg);
	if (n <= 2) {
		char s[24];
		uint64_t mag = n == 0 ? 0 : limbs[0];
		if (n == 2) {
			mag |= (uint64_t)limbs[1] << 32;
		}
		int k = snprintf(s, sizeof(s), "%s%llu", neg ? "-" : "",
		    (unsigned long long)mag);
		return mp__buf_append(b, s, (size_t)k);
	}
	/*
	 * Divide a copy of the magnitude by 10^9 until it is zero; the
	 * remainders are the 9-digit groups, least significant first.
	 * Quadratic, which is fine for the sizes that travel in messages.
	 */
	uint32_t *q = mp__malloc(n * sizeof(uint32_t));
	uint32_t *groups = mp__malloc((n * 32 / 29 + 2) * sizeof(uint32_t));
	int rv = -ENOMEM;
	if (q == NULL || groups == NULL) {
		goto out;
	}
	memcpy(q, limbs, n * sizeof(uint32_t));
	size_t ng = 0;
	while (n > 0) {
		uint64_t rem = 0;
		for (size_t j = n; j-- > 0;) {
			uint64_t cur = (rem << 32) | q[j];
			q[j] = (uint32_t)(cur / 1000000000u);
			rem = cur % 1000000000u;
		}
		groups[ng++] = (uint32_t)rem;
		while (n > 0 && q[n - 1] == 0) {
			n--;
		}
	}
	char s[16];
	int k = snprintf(s, sizeof(s), "%s%u", neg ? "-" : "", groups[ng - 1]);
	rv = mp__buf_append(b, s, (size_t)k);
	for (size_t g = ng - 1; g-- > 0 && rv == 0;) {
		k = snprintf(s, sizeof(s), "%09u", groups[g]);
		rv = mp__buf_append(b, s, (size_t)k);
	}
out:
	mp__free(q);
	mp__free(groups);
	return rv;
}

bool
mp__int_equal(const mp_obj_t *a, const mp_obj_t *b)
{
	uint32_t ta[2];
	uint32_t tb[2];
	const uint32_t *la;
	const uint32_t *lb;
	bool na;
	bool nb;
	size_t n = int_mag(a, ta, &la, &na);
	if (int_mag(b, tb, &lb, &nb) != n || (n > 0 && na != nb)) {
		return false;
	}
	return n == 0 || memcmp(la, lb, n * sizeof(uint32_t)) == 0;
}

/*
 * Limbs of an integral double's magnitude a (below 2^1024, so at most 32
 * limbs plus the spill of the shift); returns their count.
 */
static size_t
double_mag(double a, uint32_t dl[34])
{
	int e;
	double m = frexp(a, &e);
	if (m == 0) {
		return 0;
	}
	/* a = mant * 2^(e - 53) exactly, with mant a 53-bit integer. */
	uint64_t mant = (uint64_t)ldexp(m, 53);
	int shift = e - 53;
	if (shift < 0) {
		mant >>= -shift; /* only zero bits go: a is integral */
		shift = 0;
	}
	size_t word = (size_t)shift / 32;
	unsigned __int128 v = (unsigned __int128)mant << (shift % 32);
	for (size_t k = 0; k < 3; k++) {
		dl[word + k] = (uint32_t)(v >> (32 * k));
	}
	size_t n = word + 3;
	while (n > 0 && dl[n - 1] == 0) {
		n--;
	}
	return n;
}

bool
mp__int_equal_double(const mp_obj_t *a, double d)
{
	/*
	 * Doubles of magnitude 2^52 and above are all integral; below, the
	 * int64_t round trip tells. (No floor(): the library does not link
	 * libm.)
	 */
	if (!isfinite(d) || (fabs(d) < 0x1p52 && d != (double)(int64_t)d)) {
		return false;
	}
	uint32_t dl[34] = { 0 };
	size_t dn = double_mag(fabs(d), dl);
	uint32_t ta[2];
	const uint32_t *la;
	bool na;
	size_t n = int_mag(a, ta, &la, &na);
	if (n != dn || (n > 0 && na != (d < 0))) {
		return false;
	}
	return n == 0 || memcmp(la, dl, n * sizeof(uint32_t)) == 0;
}

/* Finish a hash as CPython does: apply the sign, and -1 is reserved. */
static uint64_t
hash_finish(uint64_t x, bool neg)
{
	if (neg) {
		x = 0 - x;
	}
	if (x == UINT64_MAX) {
		x = UINT64_MAX - 1;
	}
	return x;
}

uint64_t
mp__int_hash(const mp_obj_t *o)
{
	uint32_t tmp[2];
	const uint32_t *limbs;
	bool neg;
	size_t n = int_mag(o, tmp, &limbs, &neg);
	/*
	 * |x| mod 2^61 - 1, most significant limb first. Multiplying by 2^32
	 * modulo a Mersenne prime is a rotation within the 61 bits.
	 */
	uint64_t x = 0;
	for (size_t j = n; j-- > 0;) {
		x = ((x << 32) & HASH_MOD) | (x >> (HASH_BITS - 32));
		x += limbs[j];
		if (x >= HASH_MOD) {
			x -= HASH_MOD;
		}
	}
	return hash_finish(x, neg);
}

uint64_t
mp__double_hash(double v)
{
	if (isinf(v)) {
		return v > 0 ? 314159 : hash_finish(314159, true);
	}
	if (isnan(v)) {
		return 0;
	}
	/* CPython's _Py_HashDouble, so an integral float hashes as its int. */
	int e;
	double m = frexp(v, &e);
	bool neg = m < 0;
	if (neg) {
		m = -m;
	}
	uint64_t x = 0;
	while (m != 0) {
		x = ((x << 28) & HASH_MOD) | x >> (HASH_BITS - 28);
		m *= 268435456.0; /* 2^28 */
		e -= 28;
		uint64_t y = (uint64_t)m;
		m -= (double)y;
		x += y;
		if (x >= HASH_MOD) {
			x -= HASH_MOD;
		}
	}
	e = e >= 0 ? e % HASH_BITS : HASH_BITS - 1 - ((-1 - e) % HASH_BITS);
	x = ((x << e) & HASH_MOD) | x >> (HASH_BITS - e);
	return hash_finish(x, neg);
}

double
mp__int_to_double(const mp_obj_t *o)
{
	if (o->u.i.limbs == NULL) {
		return (double)o->u.i.small;
	}
	/*
	 * The top 64 bits plus a sticky bit for anything below them round to
	 * 53 bits exactly as the full value would (64 > 53 + 2).
	 */
	const uint32_t *l = o->u.i.limbs;
	size_t n = o->u.i.nlimbs;
	int lz = __builtin_clz(l[n - 1]);
	unsigned __int128 top = ((unsigned __int128)l[n - 1] << 64) |
	    ((unsigned __int128)l[n - 2] << 32) | (n >= 3 ? l[n - 3] : 0);
	top <<= lz;
	uint64_t hi = (uint64_t)(top >> 32);
	bool sticky = (uint32_t)top != 0;
	for (size_t j = 0; j + 3 < n && !sticky; j++) {
		sticky = l[j] != 0;
	}
	hi |= sticky ? 1 : 0;
	long exp = (long)(n * 32) - lz - 64;
	double d = ldexp((double)hi, exp > 2000 ? 2000 : (int)exp);
	return o->u.i.neg ? -d : d;
}
