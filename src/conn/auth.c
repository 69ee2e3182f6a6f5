/* SPDX-License-Identifier: MIT */
/* conn/auth.c: CPython's HMAC challenge-response handshake, both halves, every version. */
#include "conn/conn_internal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <string.h>

#define CHALLENGE "#CHALLENGE#"
#define WELCOME "#WELCOME#"
#define FAILURE "#FAILURE#"
#define CHALLENGE_LEN (sizeof(CHALLENGE) - 1)
#define WELCOME_LEN (sizeof(WELCOME) - 1)
#define FAILURE_LEN (sizeof(FAILURE) - 1)

/* A 20-byte unprefixed challenge is the legacy (<= 3.11) form: raw MD5. */
#define LEGACY_LEN 20
#define MD5_LEN 16
/* Random bytes behind "{sha256}" in our challenges, as 3.12+ send. */
#define NONCE_RANDOM 40

struct digest {
	const char *name;
	const EVP_MD *(*md)(void);
};

/* CPython 3.12+'s allowed list (connection._ALLOWED_DIGESTS). */
static const struct digest digests[] = {
	{ "md5", EVP_md5 },
	{ "sha256", EVP_sha256 },
	{ "sha384", EVP_sha384 },
	{ "sha3_256", EVP_sha3_256 },
	{ "sha3_384", EVP_sha3_384 },
};

int
mp__conn_handshake(mp_conn_t *c, const void *key, size_t keylen,
    bool server, int64_t deadline)
{
	/* One deadline for both halves; each call gets what is left of it. */
	for (int step = 0; step < 2; step++) {
		int64_t left = mp__deadline_remaining_ms(deadline);
		int rv = (step == 0) == server ?
		    mp_conn_deliver_challenge(c, key, keylen, left) :
		    mp_conn_answer_challenge(c, key, keylen, left);
		if (rv != 0) {
			return rv;
		}
	}
	return 0;
}

int64_t
mp__conn_handshake_deadline(int64_t timeout_ms)
{
	return mp__deadline_from_timeout(timeout_ms < 0 ?
	    MP_CONN_HANDSHAKE_TIMEOUT_MS : timeout_ms);
}

/*
 * The "{name}" prefix of x, as CPython's _get_digest_name_and_payload
 * reads it: '{' first, '}' at index 1 to 9, name in the allowed list.
 * Returns the digest and sets *skip to the prefix length, or NULL.
 */
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

/*
 * HMAC-d(key, msg) into mac. Returns its length, or 0 when the digest is
 * unavailable (a FIPS build without MD5).
 */
static unsigned
hmac(const struct digest *d, const void *key, size_t keylen, const void *msg,
    size_t len, uint8_t mac[EVP_MAX_MD_SIZE])
{
	unsigned n = 0;
	static const uint8_t empty[1];
	if (keylen > INT32_MAX) {
		return 0;
	}
	if (HMAC(d->md(), keylen > 0 ? key : empty, (int)keylen, msg, len, mac,
	    &n) == NULL) {
		return 0;
	}
	return n;
}

static int
send_msg(mp_conn_t *c, const void *p, size_t n)
{
	return mp_conn_send_bytes(c, p, n);
}

/* Receive one handshake message, at most MP_CONN_HANDSHAKE_MAX bytes. */
static int
recv_msg(mp_conn_t *c, uint8_t *buf, int64_t deadline, size_t *len)
{
	int rv = mp__conn_recv_into_deadline(c, buf, MP_CONN_HANDSHAKE_MAX,
	    deadline, false, len);
	return rv == -EMSGSIZE ? MP_EAUTH : rv;
}

_Static_assert(MP__AUTH_RESPONSE_MAX >= 16 + EVP_MAX_MD_SIZE,
    "room for a prefix and the longest MAC");
_Static_assert(MP__AUTH_NONCE_LEN == 8 + NONCE_RANDOM, "nonce size");

bool
mp__auth_verify(const void *key, size_t keylen, const uint8_t *nonce, size_t nlen,
    const uint8_t *resp, size_t rlen)
{
	const struct digest *d = &digests[0];
	size_t skip = 0;
	/* A bare 16-byte response is HMAC-MD5 (3.8 to 3.11 answer this way). */
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

int
mp__conn_deliver_nonce(mp_conn_t *c, const void *key, size_t keylen,
    const void *nonce, size_t nonce_len, int64_t deadline_ns)
{
	uint8_t msg[MP_CONN_HANDSHAKE_MAX];
	MP_ASSERT(nonce_len <= sizeof(msg) - CHALLENGE_LEN);
	memcpy(msg, CHALLENGE, CHALLENGE_LEN);
	memcpy(msg + CHALLENGE_LEN, nonce, nonce_len);
	int rv = send_msg(c, msg, CHALLENGE_LEN + nonce_len);
	if (rv != 0) {
		return rv;
	}
	uint8_t resp[MP_CONN_HANDSHAKE_MAX];
	size_t rlen;
	rv = recv_msg(c, resp, deadline_ns, &rlen);
	if (rv != 0 && rv != MP_EAUTH) {
		return rv;
	}
	if (rv == 0 &&
	    mp__auth_verify(key, keylen, nonce, nonce_len, resp, rlen)) {
		return send_msg(c, WELCOME, WELCOME_LEN);
	}
	/*
	 * CPython follows FAILURE with a pickled traceback; we do not, it
	 * would tell an unauthenticated peer our paths and version.
	 */
	rv = send_msg(c, FAILURE, FAILURE_LEN);
	(void)rv; /* the peer may be gone already; the answer is MP_EAUTH */
	return MP_EAUTH;
}

int
mp_conn_deliver_challenge(mp_conn_t *c, const void *key, size_t keylen,
    int64_t timeout_ms)
{
	MP_ASSERT(c != NULL && key != NULL);
	uint8_t nonce[MP__AUTH_NONCE_LEN];
	int rv = mp__auth_nonce(nonce);
	if (rv != 0) {
		return rv;
	}
	return mp__conn_deliver_nonce(c, key, keylen, nonce, sizeof(nonce),
	    mp__conn_handshake_deadline(timeout_ms));
}

int
mp__auth_nonce(uint8_t nonce[MP__AUTH_NONCE_LEN])
{
	memcpy(nonce, "{sha256}", 8);
	return RAND_bytes(nonce + 8, NONCE_RANDOM) == 1 ? 0 : -EIO;
}

/*
 * The response to challenge payload p, by CPython 3.12's rules (see the
 * header for why an unprefixed payload other than 20 bytes is refused).
 */
size_t
mp__auth_answer(const void *key, size_t keylen, const uint8_t *p, size_t len,
    uint8_t *out)
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

int
mp_conn_answer_challenge(mp_conn_t *c, const void *key, size_t keylen,
    int64_t timeout_ms)
{
	MP_ASSERT(c != NULL && key != NULL);
	int64_t deadline = mp__conn_handshake_deadline(timeout_ms);
	uint8_t msg[MP_CONN_HANDSHAKE_MAX];
	size_t len;
	int rv = recv_msg(c, msg, deadline, &len);
	if (rv != 0) {
		return rv;
	}
	if (len < CHALLENGE_LEN || memcmp(msg, CHALLENGE, CHALLENGE_LEN) != 0) {
		return MP_EAUTH;
	}
	/* The prefix is at most 11 bytes, the MAC at most EVP_MAX_MD_SIZE. */
	uint8_t resp[MP__AUTH_RESPONSE_MAX];
	size_t rlen = mp__auth_answer(key, keylen, msg + CHALLENGE_LEN,
	    len - CHALLENGE_LEN, resp);
	if (rlen == 0) {
		return MP_EAUTH;
	}
	rv = send_msg(c, resp, rlen);
	if (rv != 0) {
		return rv;
	}
	rv = recv_msg(c, msg, deadline, &len);
	if (rv != 0) {
		return rv;
	}
	if (len != WELCOME_LEN || memcmp(msg, WELCOME, WELCOME_LEN) != 0) {
		return MP_EAUTH;
	}
	return 0;
}
