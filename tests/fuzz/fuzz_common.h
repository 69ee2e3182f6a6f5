/* SPDX-License-Identifier: MIT */
/* fuzz_common.h: what the libFuzzer targets of tests/fuzz share. */
#ifndef MP_FUZZ_COMMON_H
#define MP_FUZZ_COMMON_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * The challenge the targets deliver: what mp__auth_nonce makes, with
 * fixed bytes in place of the random ones, so that a CPython peer's
 * answer to it can be a seed (tests/fuzz/gen_corpus.py NONCE, KEY).
 */
#define FUZZ_KEY "secret"
#define FUZZ_KEYLEN 6

static inline void
fuzz_nonce(uint8_t nonce[48])
{
	static const char prefix[8] = "{sha256}";
	for (int i = 0; i < 8; i++) {
		nonce[i] = (uint8_t)prefix[i];
	}
	for (int i = 0; i < 40; i++) {
		nonce[8 + i] = (uint8_t)i;
	}
}

/*
 * The targets' own checkers (reference readings of a stream, a UTF-8
 * reader of their own) are not the code under test: their branches are
 * kept out of the coverage that guides the fuzzer, and their cost out of
 * its instrumentation. What they check is unchanged.
 */
#define FUZZ_ORACLE __attribute__((no_sanitize("coverage")))

/* A broken property is a finding: abort, and libFuzzer keeps the input. */
static inline void
fuzz_check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz: check failed: %s\n", what);
		abort();
	}
}

/* A connected, non-blocking, close-on-exec Unix stream socket pair. */
static inline void
fuzz_socketpair(int sv[2])
{
	int rv = socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0, sv);
	fuzz_check(rv == 0, "socketpair");
}

/* Write what fits of p[0..n) to a non-blocking fd; the count written. */
static inline size_t
fuzz_write_some(int fd, const uint8_t *p, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(fd, p + done, n - done);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			break;
		}
		done += (size_t)w;
	}
	return done;
}

#endif
