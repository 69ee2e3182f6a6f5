/* SPDX-License-Identifier: MIT */
/* text.c: mpchat's input lines and the escaping of what it shows. */
#include "mpchat.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void
chat_reader_init(struct chat_reader *r, int fd)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
}

/* Take the first len bytes of the buffer, and the newline after them. */
static void
take(struct chat_reader *r, size_t len, char *line, size_t *out_len)
{
	if (line != NULL) {
		memcpy(line, r->buf, len);
		line[len] = '\0';
		*out_len = len;
	}
	size_t used = len < r->len ? len + 1 : len;
	memmove(r->buf, r->buf + used, r->len - used);
	r->len -= used;
}

/*
 * chat_reader_line: the next line, without its newline (and without a
 * trailing CR, for input typed on another system), into line, which has
 * room for CHAT_MAX_LINE + 1 bytes. A line longer than that is dropped
 * whole, so its tail is not taken for the next line, and reported once.
 * A last line without a newline counts as a line. A signal that sets
 * chat_stop ends the wait with CHAT_LINE_STOP.
 */
enum chat_line
chat_reader_line(struct chat_reader *r, char *line, size_t *len,
    int timeout_ms)
{
	if (r->term) {
		return chat_term_line(line, len, timeout_ms);
	}
	for (;;) {
		char *nl = memchr(r->buf, '\n', r->len);
		if (nl != NULL) {
			size_t n = (size_t)(nl - r->buf);
			if (r->skipping) {
				take(r, n, NULL, NULL);
				r->skipping = false;
				return CHAT_LINE_LONG;
			}
			if (n > 0 && r->buf[n - 1] == '\r') {
				take(r, n, line, len);
				line[--*len] = '\0';
			} else {
				take(r, n, line, len);
			}
			return CHAT_LINE_OK;
		}
		if (r->len == sizeof(r->buf)) {
			/* Full and no newline: longer than any line we take. */
			r->skipping = true;
			r->len = 0;
		}
		if (r->eof) {
			if (r->skipping) {
				r->skipping = false;
				return CHAT_LINE_LONG;
			}
			if (r->len == 0) {
				return CHAT_LINE_EOF;
			}
			take(r, r->len, line, len);
			return CHAT_LINE_OK;
		}
		/* A signal that came while the program was elsewhere did
		 * not interrupt this poll: look at the flag first. */
		if (chat_stop) {
			return CHAT_LINE_STOP;
		}
		struct pollfd p = { .fd = r->fd, .events = POLLIN };
		int rv = poll(&p, 1, timeout_ms);
		if (rv < 0 && errno == EINTR) {
			continue;
		}
		if (rv == 0) {
			return CHAT_LINE_TIMEOUT;
		}
		ssize_t n = rv < 0 ? -1 :
		    read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			/* A read error ends the input as end of file does. */
			r->eof = true;
		} else {
			r->len += (size_t)n;
		}
	}
}

/*
 * Length of the valid UTF-8 sequence at s (at most n bytes), with its
 * code point in *cp, or 0 when the bytes are not valid UTF-8 (overlong
 * forms and surrogates included, as CPython's strict decoder says).
 */
static size_t
utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char b = s[0];
	if (b < 0x80) {
		*cp = b;
		return 1;
	}
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;
	if (b >= 0xc2 && b <= 0xdf) {
		len = 2;
		*cp = b & 0x1f;
	} else if (b >= 0xe0 && b <= 0xef) {
		len = 3;
		*cp = b & 0x0f;
		lo = b == 0xe0 ? 0xa0 : 0x80;
		hi = b == 0xed ? 0x9f : 0xbf;
	} else if (b >= 0xf0 && b <= 0xf4) {
		len = 4;
		*cp = b & 0x07;
		lo = b == 0xf0 ? 0x90 : 0x80;
		hi = b == 0xf4 ? 0x8f : 0xbf;
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
		*cp = (*cp << 6) | (s[i] & 0x3f);
	}
	return len;
}

/*
 * Characters a peer could use to rewrite the reader's screen: C0 and C1
 * controls (escape sequences), DEL, line and paragraph separators, and
 * the bidirectional overrides and isolates that reorder what follows.
 */
static bool
is_unsafe(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) ||
	    cp == 0x2028 || cp == 0x2029 || (cp >= 0x202a && cp <= 0x202e) ||
	    (cp >= 0x2066 && cp <= 0x2069);
}

char *
chat_escape(const char *text, size_t len, size_t max_in)
{
	bool cut = len > max_in;
	if (cut) {
		/* Cut before a character, not inside one. */
		len = max_in;
		while (len > 0 && ((unsigned char)text[len] & 0xc0) == 0x80) {
			len--;
		}
	}
	/* Worst case: every byte becomes "\xNN", or a 3-byte character
	 * "\uNNNN"; 4 bytes out per byte in is enough for both. */
	char *out = mp_malloc(len * 4 + sizeof(" [truncated]"));
	if (out == NULL) {
		return NULL;
	}
	const unsigned char *s = (const unsigned char *)text;
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = utf8_next(s + i, len - i, &cp);
		if (n == 0) {
			o += (size_t)snprintf(out + o, 5, "\\x%02x", s[i]);
			i++;
		} else if (is_unsafe(cp)) {
			if (cp < 0x100) {
				o += (size_t)snprintf(out + o, 5, "\\x%02x",
				    (unsigned)cp);
			} else {
				o += (size_t)snprintf(out + o, 7, "\\u%04x",
				    (unsigned)cp);
			}
			i += n;
		} else {
			memcpy(out + o, s + i, n);
			o += n;
			i += n;
		}
	}
	if (cut) {
		memcpy(out + o, " [truncated]", sizeof(" [truncated]"));
	} else {
		out[o] = '\0';
	}
	return out;
}

bool
chat_name_ok(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > CHAT_MAX_NAME) {
		return false;
	}
	const unsigned char *s = (const unsigned char *)name;
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = utf8_next(s + i, len - i, &cp);
		if (n == 0 || is_unsafe(cp) || cp == ' ' || cp == ':') {
			return false;
		}
		i += n;
	}
	return true;
}
