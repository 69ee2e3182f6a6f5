/* SPDX-License-Identifier: MIT */
/* fuzz_auth.c: libFuzzer target for the authentication handshake, both roles (src/conn/auth.c). */
#include <mproc.h>
#include <string.h>

#include "conn/conn_internal.h"
#include "fuzz_common.h"

/*
 * The fuzzer's bytes are what the peer sends during the handshake, all
 * written before it starts; the peer then stops writing, so every read
 * ends at once. Input: a mode byte, then the peer's stream.
 *   mode & 1   our role: 0 the server (Listener.accept: deliver our
 *              challenge FUZZ_NONCE, check the answer, then answer the
 *              peer's challenge), 1 the client (answer, then deliver);
 *   mode & 2   an empty key instead of FUZZ_KEY.
 * The seeds are CPython 3.8-3.13 peers (tests/fuzz/gen_corpus.py).
 *
 * Checked: a handshake that succeeds saw the peer answer our challenge
 * correctly (recomputed here with mp__auth_verify on what it sent), and
 * every failure is one of the documented errors.
 */

/* The payload of the next frame in p[0..n) at *pos, if it is whole. */
static bool
next_frame(const uint8_t *p, size_t n, size_t *pos, const uint8_t **msg,
    size_t *len)
{
	if (n - *pos < 4) {
		return false;
	}
	const uint8_t *d = p + *pos;
	uint32_t v = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 |
	    (uint32_t)d[2] << 8 | d[3];
	if (v > n - *pos - 4) {
		return false;
	}
	*msg = d + 4;
	*len = v;
	*pos += 4 + v;
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1) {
		return 0;
	}
	bool client = data[0] & 1;
	const char *key = (data[0] & 2) ? "" : FUZZ_KEY;
	size_t keylen = (data[0] & 2) ? 0 : FUZZ_KEYLEN;
	int sv[2];
	fuzz_socketpair(sv);
	size_t w = fuzz_write_some(sv[1], data + 1, size - 1);
	shutdown(sv[1], SHUT_WR);
	mp_conn_t *c = NULL;
	fuzz_check(mp__conn_new(sv[0], true, true, true, &c) == 0, "conn");
	uint8_t nonce[MP__AUTH_NONCE_LEN];
	fuzz_nonce(nonce);
	int64_t deadline = mp__conn_handshake_deadline(MP_FOREVER);
	int rv;
	if (client) {
		rv = mp_conn_answer_challenge(c, key, keylen, MP_FOREVER);
		if (rv == 0) {
			rv = mp__conn_deliver_nonce(c, key, keylen, nonce,
			    sizeof(nonce), deadline);
		}
	} else {
		rv = mp__conn_deliver_nonce(c, key, keylen, nonce,
		    sizeof(nonce), deadline);
		if (rv == 0) {
			rv = mp_conn_answer_challenge(c, key, keylen,
			    MP_FOREVER);
		}
	}
	fuzz_check(rv == 0 || rv == MP_EAUTH || rv == MP_EOF ||
	    rv == MP_ETRUNCATED || rv == -EPROTO || rv == -EPIPE ||
	    rv == -ECONNRESET, "an undocumented handshake error");
	if (rv == 0) {
		/* The answer to our challenge: frame 1 (server), 3 (client). */
		size_t pos = 0;
		const uint8_t *msg = NULL;
		size_t len = 0;
		for (int i = 0; i < (client ? 3 : 1); i++) {
			fuzz_check(next_frame(data + 1, w, &pos, &msg, &len),
			    "welcomed without an answer");
		}
		fuzz_check(mp__auth_verify(key, keylen, nonce, sizeof(nonce),
		    msg, len), "welcomed a wrong answer");
	}
	mp_conn_close(c);
	close(sv[1]);
	return 0;
}
