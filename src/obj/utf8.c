/* SPDX-License-Identifier: MIT */
/* obj/utf8.c: strict UTF-8 decoding, as CPython's strict codec. */
#include "obj/obj_impl.h"

/*
 * The accepted forms are those of Unicode's table 3-7 ("well-formed byte
 * sequences"): no overlong encodings, no surrogates (U+D800..U+DFFF), no
 * code point above U+10FFFF. Checking the second byte's range per lead
 * byte, as the table does, rejects all three without decoding first.
 */
size_t
mp__utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
	if (n == 0) {
		return 0;
	}
	uint8_t c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	size_t len;
	uint8_t lo = 0x80;
	uint8_t hi = 0xbf;
	uint32_t v;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		v = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		v = c & 0x0f;
		lo = c == 0xe0 ? 0xa0 : 0x80; /* overlong below U+0800 */
		hi = c == 0xed ? 0x9f : 0xbf; /* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		v = c & 0x07;
		lo = c == 0xf0 ? 0x90 : 0x80; /* overlong below U+10000 */
		hi = c == 0xf4 ? 0x8f : 0xbf; /* above U+10FFFF */
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi) {
		return 0;
	}
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			return 0;
		}
		v = (v << 6) | (s[i] & 0x3f);
	}
	*cp = v;
	return len;
}

bool
mp__utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		/* ASCII runs are the common case; skip them byte by byte. */
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		uint32_t cp;
		size_t k = mp__utf8_decode(s + i, n - i, &cp);
		if (k == 0) {
			return false;
		}
		i += k;
	}
	return true;
}
