/* SPDX-License-Identifier: MIT */
/* fuzz_mpchat.c: libFuzzer target for mpchat's handling of untrusted text: input lines, peer messages, escaping. */
#include <fcntl.h>
#include <string.h>

#include "fuzz_common.h"
#include "manager/protocol.h"

/*
 * mpchat's message handler is static in join.c (a program's file, which
 * uses only the public API): the target takes the file whole rather than
 * widen the program's interface for a test. text.c is linked beside it.
 */
#include "join.c"

/* The nonce of our seat token (join.c draws a random one). */
#define FUZZ_CHAT_NONCE "4f1c2a9e7b3d5c60"

/*
 * Input: a mode byte, then the text.
 *   mode & 3 == 0   what a user types (or a script pipes): read with
 *                   chat_reader_line from a pipe, each line escaped and
 *                   checked as send_line does;
 *   mode & 3 == 1   a message from the partner's side as the inbox queue
 *                   hands it over (a pickle, decoded with the manager's
 *                   rules), shown by on_message; mode & 4: a partner is
 *                   already known; mode & 8: free order;
 *   else            chat_escape alone, at most byte 1 * 16 bytes shown,
 *                   and chat_name_ok.
 * Checked: whatever comes in, what is shown is valid UTF-8 with no
 * control character, no C1 control, no line or paragraph separator and
 * no bidirectional override or isolate, and safe text shows unchanged.
 */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* The chat's lines go to stdout; libFuzzer reports on stderr. */
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	fuzz_check(fd >= 0 && dup2(fd, STDOUT_FILENO) == STDOUT_FILENO,
	    "stdout to /dev/null");
	close(fd);
	return 0;
}

/* A strict UTF-8 reading of its own, independent of text.c's: the
 * length of the character at s with its code point, or 0 if invalid. */
FUZZ_ORACLE static size_t
next_cp(const unsigned char *s, size_t n, uint32_t *cp)
{
	static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t len = s[0] < 0x80 ? 1 : s[0] >= 0xf8 ? 0 : s[0] >= 0xf0 ? 4 :
	    s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 0;
	if (len == 0 || len > n) {
		return 0;
	}
	*cp = len == 1 ? s[0] : s[0] & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			return 0;
		}
		*cp = *cp << 6 | (s[i] & 0x3f);
	}
	if (*cp < min[len] || *cp > 0x10ffff ||
	    (*cp >= 0xd800 && *cp <= 0xdfff)) {
		return 0;
	}
	return len;
}

FUZZ_ORACLE static bool
unsafe_cp(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 ||
	    cp == 0x2029 || (cp >= 0x202a && cp <= 0x202e) ||
	    (cp >= 0x2066 && cp <= 0x2069);
}

/* What chat_escape made of text[0..len) is safe to show. */
FUZZ_ORACLE static void
check_shown(const char *text, size_t len, size_t max_in, const char *shown)
{
	fuzz_check(shown != NULL, "chat_escape: out of memory");
	size_t n = strlen(shown);
	size_t in = len < max_in ? len : max_in;
	fuzz_check(n <= in * 4 + sizeof(" [truncated]") - 1,
	    "escaped text longer than its bound");
	mp_obj_t *s = NULL;
	fuzz_check(mp_str_new(shown, n, &s) == 0, "shown text is not UTF-8");
	mp_obj_unref(s);
	bool safe = len <= max_in;
	const unsigned char *p = (const unsigned char *)shown;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t k = next_cp(p + i, n - i, &cp);
		fuzz_check(k > 0 && !unsafe_cp(cp), "an unsafe character shown");
		i += k;
	}
	const unsigned char *t = (const unsigned char *)text;
	for (size_t i = 0; safe && i < len;) {
		uint32_t cp;
		size_t k = next_cp(t + i, len - i, &cp);
		safe = k > 0 && !unsafe_cp(cp) && cp != '\\';
		i += k > 0 ? k : 1;
	}
	fuzz_check(!safe || (n == len && memcmp(shown, text, len) == 0),
	    "safe text was changed");
}

static void
escape_one(const char *text, size_t len, size_t max_in)
{
	char *shown = chat_escape(text, len, max_in);
	check_shown(text, len, max_in, shown);
	mp_free(shown);
}

static void
lines(const uint8_t *data, size_t size)
{
	int fds[2];
	fuzz_check(pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0, "pipe2");
	(void)fuzz_write_some(fds[1], data, size);
	close(fds[1]);
	struct chat_reader r;
	chat_reader_init(&r, fds[0]);
	static char line[CHAT_MAX_LINE + 1];
	for (int i = 0; i < 100000; i++) {
		size_t len = 0;
		enum chat_line l = chat_reader_line(&r, line, &len, 0);
		if (l == CHAT_LINE_EOF) {
			break;
		}
		fuzz_check(l != CHAT_LINE_TIMEOUT, "a timeout at end of file");
		if (l == CHAT_LINE_OK) {
			fuzz_check(len <= CHAT_MAX_LINE && line[len] == '\0' &&
			    memchr(line, '\n', len) == NULL, "a bad line");
			escape_one(line, len, CHAT_MAX_LINE);
			(void)chat_name_ok(line);
		}
	}
	close(fds[0]);
}

static void
message(uint8_t mode, const uint8_t *data, size_t size)
{
	mp_obj_t *msg = NULL;
	if (mp__mgr_decode(data, size, 0, &msg, NULL, 0) != 0) {
		return;
	}
	struct chat c = { .s = { .name = "me" }, .seat = 1,
		.free_order = (mode & 8) != 0 };
	c.token = mp_tuple_of(2, mp_str("me"), mp_str(FUZZ_CHAT_NONCE));
	fuzz_check(c.token != NULL, "token: out of memory");
	if (mode & 4) {
		c.partner = chat_escape("them", 4, CHAT_MAX_NAME);
	}
	/*
	 * A join naming our nonce, before a partner is known, makes the
	 * participant ask the server who sits in seat 2: no server here, so
	 * that one message is not handed over (its text is still checked
	 * below).
	 */
	bool asks_server = c.partner == NULL &&
	    mp_obj_type(msg) == MP_TYPE_TUPLE && mp_obj_len(msg) == 3 &&
	    mp_str_data(mp_tuple_get(msg, 0), NULL) != NULL &&
	    strcmp(mp_str_data(mp_tuple_get(msg, 0), NULL), "join") == 0 &&
	    mp_str_data(mp_tuple_get(msg, 2), NULL) != NULL &&
	    strcmp(mp_str_data(mp_tuple_get(msg, 2), NULL),
	    FUZZ_CHAT_NONCE) == 0;
	bool said = false;
	if (!asks_server) {
		(void)on_message(&c, msg, &said);
	}
	char *holder = holder_name(msg);
	fuzz_check(holder != NULL, "holder_name: out of memory");
	mp_free(holder);
	/* What on_message shows, checked: the fields of a 3-tuple. */
	for (size_t i = 0; mp_obj_type(msg) == MP_TYPE_TUPLE &&
	    i < mp_obj_len(msg); i++) {
		size_t len;
		const char *s = mp_str_data(mp_tuple_get(msg, (ssize_t)i),
		    &len);
		if (s != NULL) {
			escape_one(s, len, i == 1 ? CHAT_MAX_NAME :
			    CHAT_MAX_LINE);
		}
	}
	mp_free(c.partner);
	mp_obj_unref(c.token);
	mp_obj_unref(msg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1) {
		return 0;
	}
	uint8_t mode = data[0];
	switch (mode & 3) {
	case 0:
		lines(data + 1, size - 1);
		break;
	case 1:
		message(mode, data + 1, size - 1);
		break;
	default: {
		size_t max_in = size > 1 ? (size_t)data[1] * 16 : 0;
		const uint8_t *t = size > 1 ? data + 2 : data + 1;
		size_t len = size > 1 ? size - 2 : 0;
		escape_one((const char *)t, len, max_in);
		char name[CHAT_MAX_NAME + 8];
		size_t n = len < sizeof(name) - 1 ? len : sizeof(name) - 1;
		memcpy(name, t, n);
		name[n] = '\0';
		(void)chat_name_ok(name);
		break;
	}
	}
	return 0;
}
