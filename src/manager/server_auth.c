/* SPDX-License-Identifier: MIT */
/* manager/server_auth.c: the handshake's computations, for a server that cannot block on them. */
#include "manager/server_int.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <string.h>

/*
 * src/conn/auth.c runs the same handshake with blocking reads; the event
 * loop needs the steps apart, between its own non-blocking reads. The
 * rules are CPython 3.12's (research notes §2.5): our challenge is
 * "{sha256}" + 40 random bytes; a 16-byte response is HMAC-MD5 (3.8 to
 * 3.11), a "{name}" response names its digest; a client's 20-byte
 * challenge gets raw MD5 and a prefixed one "{name}" + MAC.
 */

#define MD5_LEN 16
#define LEGACY_LEN 20

struct digest {
	const char *name;
	const EVP_MD *(*md)(void);
};

static const struct digest digests[] = {
	{ "md5", EVP_md5 },
	{ "sha256", EVP_sha256 },
	{ "sha384", EVP_sha384 },
	{ "sha3_256", EVP_sha3_256 },
	{ "sha3_384", EVP_sha3_384 },
};

/* The "{name}" prefix as CPython reads it: '}' at index 1 to 9. */
static const struct digest *
parse_prefix(const uint8_t *x, size_t len, size_t *skip)
{
	if (len == 0 || x[0] != '{') {
		return NULL;
	}
	size_t end = 1;
	while (end < len && end < 10 && x[end] != '}') {
		end++;
	}
	if (end >= len || end >= 10) {
		return NULL;
	}
	for (size_t i = 0; i < MP__ARRAY_LEN(digests); i++) {
		size_t n = strlen(digests[i].name);
		if (n == end - 1 && memcmp(x + 1, digests[i].name, n) == 0) {
			*skip = end + 1;
			return &digests[i];
		}
	}
	return NULL;
}

static unsigned
hmac(const struct digest *d, const uint8_t *key, size_t keylen,
    const uint8_t *msg, size_t len, uint8_t *mac)
{
	static const uint8_t empty[1];
	unsigned n = 0;
	if (keylen > INT32_MAX) {
		return 0;
	}
	if (HMAC(d->md(), keylen > 0 ? key : empty, (int)keylen, msg, len, mac,
	    &n) == NULL) {
		return 0;
	}
	return n;
}

int
mp__mgr_auth_nonce(uint8_t nonce[48])
{
	memcpy(nonce, "{sha256}", 8);
	return RAND_bytes(nonce + 8, 40) == 1 ? 0 : -EIO;
}

bool
mp__mgr_auth_verify(const uint8_t *key, size_t keylen, const uint8_t *nonce,
    size_t nlen, const uint8_t *resp, size_t rlen)
{
	const struct digest *d = &digests[0];
	size_t skip = 0;
	if (rlen != MD5_LEN) {
		d = parse_prefix(resp, rlen, &skip);
		if (d == NULL) {
			return false;
		}
	}
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned n = hmac(d, key, keylen, nonce, nlen, mac);
	return n > 0 && rlen - skip == n &&
	    CRYPTO_memcmp(mac, resp + skip, n) == 0;
}

size_t
mp__mgr_auth_answer(const uint8_t *key, size_t keylen, const uint8_t *p,
    size_t len, uint8_t *out)
{
	if (len < LEGACY_LEN) {
		return 0;
	}
	if (len == LEGACY_LEN) {
		return hmac(&digests[0], key, keylen, p, len, out);
	}
	size_t skip;
	const struct digest *d = parse_prefix(p, len, &skip);
	if (d == NULL) {
		return 0;
	}
	memcpy(out, p, skip);
	unsigned n = hmac(d, key, keylen, p, len, out + skip);
	return n == 0 ? 0 : skip + n;
}
