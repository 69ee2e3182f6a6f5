/* SPDX-License-Identifier: MIT */
/* mpchat.h: what the files of the mpchat program share. */
#ifndef MPCHAT_H
#define MPCHAT_H

#include <mproc.h>
#if __has_include(<mproc/manager.h>)
/* Until mproc.h includes the manager headers. */
#include <mproc/manager.h>
#include <mproc/manager_server.h>
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest line a participant may send, in bytes (UTF-8). */
#define CHAT_MAX_LINE 4096
/* Longest name, in bytes. */
#define CHAT_MAX_NAME 32
/* Largest authkey read from a file or the environment. */
#define CHAT_MAX_KEY 4096
/* Address of the lecture's server, when none is given. */
#define CHAT_DEFAULT_ADDRESS "127.0.0.1:50000"

/*
 * The names the server registers, as the lecture's get_queue: one queue
 * of lines for each seat, and a dict that holds who sits where (keys 1
 * and 2) and the participants' heartbeats (keys "hb1" and "hb2").
 */
#define CHAT_INBOX1 "get_inbox1"
#define CHAT_INBOX2 "get_inbox2"
#define CHAT_SEATS "get_seats"

/* Exit statuses (docs/man/mpchat.1.md). */
enum {
	CHAT_EXIT_OK = 0,       /* the conversation ended: /quit or EOF */
	CHAT_EXIT_LOST = 1,     /* server or partner lost, cannot connect */
	CHAT_EXIT_USAGE = 2,
	CHAT_EXIT_REFUSED = 3,  /* the chat is full, or the name is taken */
};

/* Options both commands take. */
struct chat_opts {
	const char *address;
	char key[CHAT_MAX_KEY];
	size_t keylen;
};

/* Results of chat_reader_line. */
enum chat_line {
	CHAT_LINE_OK,
	CHAT_LINE_TIMEOUT,
	CHAT_LINE_EOF,
	CHAT_LINE_LONG,         /* longer than CHAT_MAX_LINE: dropped */
};

/*
 * A line reader on an fd that can wait with a timeout, which stdio
 * cannot: the participant has to beat its heart while its user types.
 */
struct chat_reader {
	int fd;
	size_t len;
	bool eof;
	bool skipping;          /* inside a line too long, dropping it */
	char buf[CHAT_MAX_LINE + 1];
};

void chat_reader_init(struct chat_reader *r, int fd);
enum chat_line chat_reader_line(struct chat_reader *r, char *line,
    size_t *len, int timeout_ms);

/*
 * chat_escape: text (len bytes, maybe invalid UTF-8) made safe for a
 * terminal: control characters, C1 controls, bidirectional overrides and
 * invalid bytes become \xNN or \uNNNN; at most max_in bytes of text are
 * shown, then " [truncated]". Returns a string released with mp_free, or
 * NULL when memory runs out.
 */
char *chat_escape(const char *text, size_t len, size_t max_in);

/* chat_name_ok: 1 to CHAT_MAX_NAME bytes of UTF-8 with no control
 * character, no space and no colon. */
bool chat_name_ok(const char *name);

int chat_serve(const struct chat_opts *o, bool verbose, bool free_order);
int chat_join(const struct chat_opts *o, const char *name);

#endif
