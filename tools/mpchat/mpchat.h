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

#include <signal.h>
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
 * and 2), the participants' heartbeats (keys "hb1" and "hb2"), the
 * server's identity (key "server", new at each start) and, for a free
 * chat, "mode". get_room is a typeid: get_room(NAME) gives a proxy of
 * the room NAME (room.c).
 */
#define CHAT_INBOX1 "get_inbox1"
#define CHAT_INBOX2 "get_inbox2"
#define CHAT_SEATS "get_seats"
#define CHAT_ROOM "get_room"

/* A participant silent this long is taken for dead, by its partner (two
 * people) or by the server (rooms). */
#define CHAT_DEAD_MS 4000
/* How long one call to the server may take before the chat gives up. */
#define CHAT_CALL_TIMEOUT_MS 5000
/* Free order and rooms: the input is polled in slices this long, and
 * news is looked for between them. */
#define CHAT_POLL_MS 100
/* Most entries one room.fetch returns: a full reply means "fetch again". */
#define CHAT_ROOM_FETCH 32

/* Exit statuses (docs/man/mpchat.1.md). */
enum {
	CHAT_EXIT_OK = 0,       /* the conversation ended: /quit or EOF */
	CHAT_EXIT_LOST = 1,     /* server or partner lost, cannot connect */
	CHAT_EXIT_USAGE = 2,
	CHAT_EXIT_REFUSED = 3,  /* the chat or room is full, the name taken */
};

/* Not an exit status: the conversation goes on. */
#define CHAT_GOING (-1)

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
	CHAT_LINE_STOP,         /* SIGINT, SIGTERM or SIGHUP: leave */
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
	bool term;              /* a terminal that term.c edits on */
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

/* ---- What every participant does (session.c) ---------------------------- */

/* Set by SIGINT, SIGTERM and SIGHUP once chat_catch_signals ran: the
 * participant leaves as with /quit. */
extern volatile sig_atomic_t chat_stop;
void chat_catch_signals(void);

int64_t chat_now_ms(void);

/* term.c. Print and flush. A prompt waiting for its line is first ended
 * (off a terminal) or erased, to come back under the news with what was
 * typed (on a terminal mpchat edits on). */
void chat_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print a prompt (no newline) and remember it for redrawing. */
void chat_prompt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Whether a prompt waits on the screen; a line was read for it. */
bool chat_prompt_shown(void);
void chat_prompt_answered(void);
/* Edit lines typed on fd (non-canonical mode, own echo) when fd and the
 * output are terminals; false, and nothing changed, otherwise. The mode
 * the user had comes back at chat_term_end, at exit and on Ctrl-Z. */
bool chat_term_start(int fd);
/* chat_reader_line's work on that terminal. */
enum chat_line chat_term_line(char *line, size_t *len, int timeout_ms);

/* A participant's connection and input. */
struct chat_session {
	const struct chat_opts *o;
	const char *name;
	mp_manager_t *m;
	mp_proxy_t *seats;
	char *server_id;        /* seats["server"] at joining, or NULL */
	bool tty;
	bool lost;              /* the server went away */
	struct chat_reader in;
	char line[CHAT_MAX_LINE + 1];
};

/* Connect and open get_seats. CHAT_GOING, or the exit status (with the
 * reason on stderr). */
int chat_open(struct chat_session *s, const struct chat_opts *o,
    const char *name);
/* Release the proxies p[0..n) and the session. */
void chat_close(struct chat_session *s, mp_proxy_t *const *p, size_t n);
/* A call failed with rv: tell whether the server is gone or restarted.
 * Returns CHAT_EXIT_LOST. */
int chat_lost(struct chat_session *s, int rv);

/*
 * Free order (serve --free, and rooms): the input is read in slices of
 * CHAT_POLL_MS and drain shows the news between them. send gets each
 * line typed (a str, stolen), quit is called on /quit, end of input or
 * a signal. Each returns CHAT_GOING or an exit status, which ends the
 * loop.
 */
struct chat_free_ops {
	int (*drain)(void *u);
	int (*send)(void *u, mp_obj_t *text);
	int (*quit)(void *u);
};
int chat_free_loop(struct chat_session *s, const char *prompt,
    const struct chat_free_ops *ops, void *u);

/* What a typed line asks for (chat_typed). */
enum chat_typed {
	CHAT_TYPED_SEND,        /* *text holds the line */
	CHAT_TYPED_RETRY,       /* not sent (said why): type another */
	CHAT_TYPED_QUIT,        /* /quit, end of input or a signal */
	CHAT_TYPED_FAIL,        /* out of memory (said) */
};
/* Echo the line read as l (when the input is no terminal) and check it. */
enum chat_typed chat_typed(struct chat_session *s, enum chat_line l,
    size_t len, mp_obj_t **text);

/* ---- Commands ------------------------------------------------------------ */

int chat_serve(const struct chat_opts *o, bool verbose, bool free_order);
int chat_join(const struct chat_opts *o, const char *name);
int chat_room_join(const struct chat_opts *o, const char *name,
    const char *room);

/* The room typeid the server registers (room.c), and the release of the
 * rooms once the server is closed. */
extern const struct mp_manager_type chat_room_type;
void chat_rooms_free(void);

#endif
