/* SPDX-License-Identifier: MIT */
/* join.c: one participant of the alternating two-person chat. */
#include "mpchat.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * How the two participants meet, talk and notice each other's death,
 * using only the three objects the server registers (mpchat.h):
 *
 * - A seat is taken with seats.setdefault(seat, (name, nonce)): the
 *   server runs one request at a time, so of two participants racing for
 *   a seat exactly one gets its own token back. Seat 1 writes first.
 * - Seat 2 puts ("join", name, "") in seat 1's inbox. Every line then
 *   travels as ("say", name, text) through the other's inbox queue, and
 *   ("bye", name, "") ends the conversation for both.
 * - Nobody hangs on a dead partner: each participant sets seats["hbN"]
 *   to a growing counter every TICK_MS (while it waits for a line with a
 *   get bounded by TICK_MS, and while its user types), and gives up on a
 *   partner whose counter has not moved for DEAD_MS of its own clock. A
 *   dead server makes the next call fail at once.
 */
#define TICK_MS 500
#define DEAD_MS 4000
#define CALL_TIMEOUT_MS 5000
#define FREE_POLL_MS 100

/* Not an exit status: the conversation goes on. */
#define GOING (-1)

struct chat {
	mp_manager_t *m;
	mp_proxy_t *seats;
	mp_proxy_t *inbox;      /* lines for me */
	mp_proxy_t *outbox;     /* lines for the partner */
	const char *address;
	const char *name;
	char *partner;          /* escaped for display; NULL until known */
	int seat;
	bool tty;
	bool free_order;        /* serve --free: no turns */
	int64_t beats;
	int64_t next_tick;
	int64_t partner_beat;
	int64_t partner_seen;   /* when partner_beat last moved */
	struct chat_reader in;
	char line[CHAT_MAX_LINE + 1];
};

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* True while a prompt waits for its line: news then starts a line of
 * its own instead of following the prompt. */
static bool at_prompt;

/* Chat output is flushed at once: a prompt has no newline, and a pipe
 * reader (a test, a script) waits for each line. */
static void
say(const char *fmt, ...)
{
	if (at_prompt) {
		putchar('\n');
		at_prompt = false;
	}
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static int
server_lost(int rv)
{
	say("the chat server is gone (%s); the chat ends\n", mp_strerror(rv));
	return CHAT_EXIT_LOST;
}

/*
 * A get that fails to decode its reply took the message off the queue:
 * say so and go on, rather than end the chat for one bad message.
 */
static bool
unreadable(int rv)
{
	if (rv != MP_EPICKLE && rv != MP_EFORBIDDEN && rv != -EPROTO) {
		return false;
	}
	say("(an unreadable message was dropped: %s)\n", mp_strerror(rv));
	return true;
}

/* A tuple of three new references, or NULL (all released). */
static mp_obj_t *
tuple3(mp_obj_t *a, mp_obj_t *b, mp_obj_t *c)
{
	if (a == NULL || b == NULL || c == NULL) {
		mp_obj_unref(a);
		mp_obj_unref(b);
		mp_obj_unref(c);
		return NULL;
	}
	return mp_tuple_of(3, a, b, c);
}

/* Put (kind, my name, text) in the partner's inbox; text is stolen. */
static int
send_msg(struct chat *c, const char *kind, mp_obj_t *text)
{
	mp_obj_t *msg = tuple3(mp_str(kind), mp_str(c->name), text);
	if (msg == NULL) {
		return -ENOMEM;
	}
	int rv = mp_proxy_queue_put(c->outbox, msg, CALL_TIMEOUT_MS);
	mp_obj_unref(msg);
	return rv;
}

static int
read_beat(struct chat *c, int seat, int64_t *beat)
{
	char key[16];
	snprintf(key, sizeof(key), "hb%d", seat);
	mp_obj_t *k = mp_str(key);
	mp_obj_t *v = NULL;
	int rv = k == NULL ? -ENOMEM : mp_proxy_dict_get(c->seats, k, &v);
	mp_obj_unref(k);
	*beat = -1;
	if (rv == 0 && mp_int_value(v, beat) != 0) {
		*beat = -2;
	}
	mp_obj_unref(v);
	/* No key yet: the partner has not beaten once. */
	return rv == -ENOENT ? 0 : rv;
}

/*
 * Once every TICK_MS: show that I live, and check that the partner does.
 * Returns GOING or the exit status the chat ends with.
 */
static int
tick(struct chat *c)
{
	int64_t now = now_ms();
	if (now < c->next_tick) {
		return GOING;
	}
	c->next_tick = now + TICK_MS;
	char key[16];
	snprintf(key, sizeof(key), "hb%d", c->seat);
	mp_obj_t *k = mp_str(key);
	mp_obj_t *v = mp_int(++c->beats);
	int rv = k != NULL && v != NULL ?
	    mp_proxy_dict_set(c->seats, k, v) : -ENOMEM;
	mp_obj_unref(k);
	mp_obj_unref(v);
	if (rv != 0) {
		return server_lost(rv);
	}
	if (c->partner == NULL) {
		return GOING;
	}
	int64_t beat;
	rv = read_beat(c, 3 - c->seat, &beat);
	if (rv != 0) {
		return server_lost(rv);
	}
	if (beat != c->partner_beat) {
		c->partner_beat = beat;
		c->partner_seen = now;
	} else if (now - c->partner_seen >= DEAD_MS) {
		say("%s is gone (no sign of life for %d s); the chat ends\n",
		    c->partner, DEAD_MS / 1000);
		return CHAT_EXIT_LOST;
	}
	return GOING;
}

static void
met_partner(struct chat *c, char *escaped_name)
{
	mp_free(c->partner);
	c->partner = escaped_name;
	c->partner_beat = -3;
	c->partner_seen = now_ms();
}

/*
 * Show a message from the inbox. Its fields come from the partner, who
 * may be any program holding the key, so their shape is checked and
 * their text escaped. *said tells that a line arrived.
 */
static int
on_message(struct chat *c, const mp_obj_t *msg, bool *said)
{
	const mp_obj_t *f[3];
	bool ok = mp_obj_type(msg) == MP_TYPE_TUPLE && mp_obj_len(msg) == 3;
	for (int i = 0; ok && i < 3; i++) {
		f[i] = mp_tuple_get(msg, i);
		ok = mp_obj_type(f[i]) == MP_TYPE_STR;
	}
	if (!ok) {
		say("(a malformed message was ignored)\n");
		return GOING;
	}
	size_t wlen, tlen;
	const char *kind = mp_str_data(f[0], NULL);
	const char *who = mp_str_data(f[1], &wlen);
	const char *text = mp_str_data(f[2], &tlen);
	char *w = chat_escape(who, wlen, CHAT_MAX_NAME);
	char *t = chat_escape(text, tlen, CHAT_MAX_LINE);
	int rv = GOING;
	if (w == NULL || t == NULL) {
		rv = CHAT_EXIT_LOST;
		say("out of memory; the chat ends\n");
	} else if (strcmp(kind, "say") == 0) {
		say("%s: %s\n", w, t);
		*said = true;
	} else if (strcmp(kind, "bye") == 0) {
		say("%s left the chat\n", w);
		rv = CHAT_EXIT_OK;
	} else if (strcmp(kind, "join") == 0 && c->partner == NULL) {
		say("%s joined the chat; %s\n", w, c->free_order ?
		    "write whenever you like" : "you write first");
		met_partner(c, w);
		w = NULL;
	}
	mp_free(w);
	mp_free(t);
	return rv;
}

/* Seat 1 waits for seat 2's ("join", name, ""). */
static int
wait_partner(struct chat *c)
{
	say("waiting for a partner...\n");
	while (c->partner == NULL) {
		mp_obj_t *msg = NULL;
		int rv = mp_proxy_queue_get(c->inbox, TICK_MS, &msg);
		if (rv == 0) {
			bool said = false;
			rv = on_message(c, msg, &said);
			mp_obj_unref(msg);
		} else if (rv == -ETIMEDOUT || unreadable(rv)) {
			rv = GOING;
		} else {
			return server_lost(rv);
		}
		if (rv == GOING) {
			rv = tick(c);
		}
		if (rv != GOING) {
			return rv;
		}
	}
	return GOING;
}

/* The partner's turn: wait for their line (or bye, or their death). */
static int
read_turn(struct chat *c)
{
	say("waiting for %s...\n", c->partner);
	for (;;) {
		mp_obj_t *msg = NULL;
		int rv = mp_proxy_queue_get(c->inbox, TICK_MS, &msg);
		bool said = false;
		if (rv == 0) {
			rv = on_message(c, msg, &said);
			mp_obj_unref(msg);
		} else if (rv == -ETIMEDOUT || unreadable(rv)) {
			rv = GOING;
		} else {
			return server_lost(rv);
		}
		if (rv != GOING || said) {
			return rv;
		}
		rv = tick(c);
		if (rv != GOING) {
			return rv;
		}
	}
}

/*
 * While my user types: beat, watch the partner, and take a bye (or a
 * line out of turn, which only a misbehaving peer sends) from my inbox.
 */
static int
while_typing(struct chat *c, bool *reprompt)
{
	int rv = tick(c);
	if (rv != GOING) {
		return rv;
	}
	mp_obj_t *msg = NULL;
	rv = mp_proxy_queue_get(c->inbox, MP_NOWAIT, &msg);
	if (rv == -EAGAIN) {
		return GOING;
	}
	if (unreadable(rv)) {
		*reprompt = true;
		return GOING;
	}
	if (rv != 0) {
		return server_lost(rv);
	}
	bool said = false;
	rv = on_message(c, msg, &said);
	mp_obj_unref(msg);
	*reprompt = true;
	return rv;
}

/* What send_line returns, besides GOING and exit statuses, when the line
 * was not sent and the user may type another. */
#define RETRY (-2)

/* A line (or the end of the input) the user typed: echo, check, send. */
static int
send_line(struct chat *c, enum chat_line l, size_t len)
{
	at_prompt = false;
	/* Input from a pipe is not echoed by a terminal: echo it, so the
	 * transcript reads as the conversation did. */
	char *shown = chat_escape(c->line, l == CHAT_LINE_OK ? len : 0,
	    CHAT_MAX_LINE);
	if (shown == NULL) {
		say("out of memory; the chat ends\n");
		return CHAT_EXIT_LOST;
	}
	if (!c->tty || l == CHAT_LINE_EOF) {
		say("%s\n", shown);
	}
	mp_free(shown);
	if (l == CHAT_LINE_LONG) {
		say("line too long (more than %d bytes); not sent\n",
		    CHAT_MAX_LINE);
		return RETRY;
	}
	if (l == CHAT_LINE_EOF || strcmp(c->line, "/quit") == 0) {
		/* Leaving goes on even if the server is gone. */
		(void)send_msg(c, "bye", mp_str(""));
		say("you left the chat\n");
		return CHAT_EXIT_OK;
	}
	mp_obj_t *text = NULL;
	int rv = mp_str_new(c->line, len, &text);
	if (rv == -EINVAL) {
		say("the line is not valid UTF-8; not sent\n");
		return RETRY;
	}
	rv = rv == 0 ? send_msg(c, "say", text) : rv;
	return rv == 0 ? GOING : server_lost(rv);
}

/* My turn: one line from the input, checked, sent. */
static int
write_turn(struct chat *c)
{
	int rv = RETRY;
	while (rv == RETRY) {
		say("[%s, your turn] > ", c->name);
		at_prompt = true;
		enum chat_line l;
		size_t len = 0;
		bool reprompt = false;
		do {
			l = chat_reader_line(&c->in, c->line, &len, TICK_MS);
			if (l == CHAT_LINE_TIMEOUT) {
				rv = while_typing(c, &reprompt);
				if (rv != GOING) {
					return rv;
				}
			}
		} while (l == CHAT_LINE_TIMEOUT && !reprompt);
		rv = reprompt ? RETRY : send_line(c, l, len);
	}
	return rv;
}

/* Show every message waiting in my inbox; *news tells if there was one. */
static int
drain(struct chat *c, bool *news)
{
	int rv = tick(c);
	while (rv == GOING) {
		mp_obj_t *msg = NULL;
		rv = mp_proxy_queue_get(c->inbox, MP_NOWAIT, &msg);
		if (rv == -EAGAIN) {
			return GOING;
		}
		*news = true;
		if (unreadable(rv)) {
			rv = GOING;
			continue;
		}
		if (rv != 0) {
			return server_lost(rv);
		}
		bool said = false;
		rv = on_message(c, msg, &said);
		mp_obj_unref(msg);
	}
	return rv;
}

/*
 * Free order (serve --free): both write whenever they like. The input is
 * polled in short slices and the inbox drained between them, so a line
 * shows at most FREE_POLL_MS after it arrives, without a thread.
 */
static int
free_chat(struct chat *c)
{
	bool prompt = true;
	for (;;) {
		if (prompt) {
			say("[%s] > ", c->name);
			at_prompt = true;
		}
		size_t len = 0;
		enum chat_line l = chat_reader_line(&c->in, c->line, &len,
		    FREE_POLL_MS);
		int rv;
		if (l == CHAT_LINE_TIMEOUT) {
			prompt = false;
			rv = drain(c, &prompt);
		} else {
			prompt = true;
			rv = send_line(c, l, len);
		}
		if (rv != GOING && rv != RETRY) {
			return rv;
		}
	}
}

/* The name in a seat's (name, nonce) token, escaped ("someone" when the
 * token has another shape); NULL when memory runs out. */
static char *
holder_name(const mp_obj_t *holder)
{
	if (mp_obj_type(holder) != MP_TYPE_TUPLE || mp_obj_len(holder) < 1 ||
	    mp_obj_type(mp_tuple_get(holder, 0)) != MP_TYPE_STR) {
		return chat_escape("someone", 7, CHAT_MAX_NAME);
	}
	size_t len;
	const char *s = mp_str_data(mp_tuple_get(holder, 0), &len);
	return chat_escape(s, len, CHAT_MAX_NAME);
}

/*
 * Take seat 1, else seat 2 (see the top of this file). On success seat 2
 * learns its partner from seat 1's token. Returns GOING or the exit
 * status (the chat is full, the name taken, the server lost).
 */
static int
claim_seat(struct chat *c)
{
	char nonce[48];
	snprintf(nonce, sizeof(nonce), "%ld-%lld", (long)getpid(),
	    (long long)now_ms());
	mp_obj_t *token = mp_tuple_of(2, mp_str(c->name), mp_str(nonce));
	char *names[2] = { NULL, NULL };
	int rv = token == NULL ? -ENOMEM : 0;
	bool taken = false;
	for (int seat = 1; rv == 0 && seat <= 2 && c->seat == 0 && !taken;
	    seat++) {
		mp_obj_t *args = mp_tuple_of(2, mp_int(seat),
		    mp_obj_ref(token));
		mp_obj_t *holder = NULL;
		rv = args == NULL ? -ENOMEM : mp_proxy_call(c->seats,
		    "setdefault", args, NULL, CALL_TIMEOUT_MS, &holder);
		mp_obj_unref(args);
		if (rv == 0 && mp_obj_equal(holder, token)) {
			c->seat = seat;
		} else if (rv == 0) {
			names[seat - 1] = holder_name(holder);
			rv = names[seat - 1] == NULL ? -ENOMEM : 0;
			/* Two of one name would leave both unsure who
			 * speaks: refuse before taking seat 2. */
			taken = rv == 0 && strcmp(names[seat - 1], c->name) == 0;
		}
		mp_obj_unref(holder);
	}
	mp_obj_unref(token);
	int status = GOING;
	if (rv != 0) {
		fprintf(stderr, "mpchat: cannot take a seat: %s\n",
		    mp_strerror(rv));
		status = CHAT_EXIT_LOST;
	} else if (taken) {
		fprintf(stderr, "mpchat: the name %s is taken\n", c->name);
		status = CHAT_EXIT_REFUSED;
	} else if (c->seat == 0) {
		fprintf(stderr, "mpchat: the chat is full: %s and %s are "
		    "talking\n", names[0], names[1]);
		status = CHAT_EXIT_REFUSED;
	} else if (c->seat == 2) {
		met_partner(c, names[0]);
		names[0] = NULL;
	}
	mp_free(names[0]);
	mp_free(names[1]);
	return status;
}

static int
open_objects(struct chat *c, const struct chat_opts *o)
{
	int rv = mp_manager_connect(o->address, o->key, o->keylen,
	    CALL_TIMEOUT_MS, &c->m);
	if (rv != 0) {
		fprintf(stderr, "mpchat: cannot join the chat at %s: %s\n",
		    o->address, rv == MP_EAUTH ?
		    "wrong authkey (the server refused it)" : mp_strerror(rv));
		return CHAT_EXIT_LOST;
	}
	mp_proxy_t *in1 = NULL, *in2 = NULL;
	rv = mp_manager_create(c->m, CHAT_SEATS, NULL, NULL, &c->seats);
	if (rv == 0) {
		rv = mp_manager_create(c->m, CHAT_INBOX1, NULL, NULL, &in1);
	}
	if (rv == 0) {
		rv = mp_manager_create(c->m, CHAT_INBOX2, NULL, NULL, &in2);
	}
	if (rv != 0) {
		mp_proxy_free(in1);
		fprintf(stderr, "mpchat: %s is no chat server: %s\n",
		    o->address, mp_strerror(rv));
		return CHAT_EXIT_LOST;
	}
	c->inbox = in1;
	c->outbox = in2;
	/* The server says how the chat goes, so both sides agree. */
	mp_obj_t *k = mp_str("mode");
	mp_obj_t *mode = NULL;
	rv = k == NULL ? -ENOMEM : mp_proxy_dict_get(c->seats, k, &mode);
	mp_obj_unref(k);
	c->free_order = rv == 0 && mp_obj_type(mode) == MP_TYPE_STR &&
	    strcmp(mp_str_data(mode, NULL), "free") == 0;
	mp_obj_unref(mode);
	if (rv != 0 && rv != -ENOENT) {
		fprintf(stderr, "mpchat: %s\n", mp_strerror(rv));
		return CHAT_EXIT_LOST;
	}
	return GOING;
}

static int
converse(struct chat *c)
{
	int rv = claim_seat(c);
	if (rv != GOING) {
		return rv;
	}
	if (c->seat == 2) {
		mp_proxy_t *t = c->inbox;
		c->inbox = c->outbox;
		c->outbox = t;
	}
	say("joined the chat at %s as %s (seat %d)\n", c->address, c->name,
	    c->seat);
	if (c->seat == 1) {
		rv = wait_partner(c);
	} else {
		rv = send_msg(c, "join", mp_str(""));
		if (rv != 0) {
			return server_lost(rv);
		}
		if (c->free_order) {
			say("chatting with %s; write whenever you like\n",
			    c->partner);
		} else {
			say("chatting with %s; %s writes first\n", c->partner,
			    c->partner);
		}
		rv = GOING;
	}
	if (rv == GOING && c->free_order) {
		return free_chat(c);
	}
	for (bool mine = c->seat == 1; rv == GOING; mine = !mine) {
		rv = mine ? write_turn(c) : read_turn(c);
	}
	return rv;
}

int
chat_join(const struct chat_opts *o, const char *name)
{
	static struct chat c;
	c.address = o->address;
	c.name = name;
	c.tty = isatty(0) == 1;
	chat_reader_init(&c.in, 0);
	int rv = open_objects(&c, o);
	if (rv == GOING) {
		rv = converse(&c);
	}
	/* Releasing the proxies talks to the server, which may be gone:
	 * do not wait for it long. */
	if (c.m != NULL) {
		mp_manager_set_timeout(c.m, 1000);
	}
	mp_proxy_free(c.inbox);
	mp_proxy_free(c.outbox);
	mp_proxy_free(c.seats);
	mp_manager_free(c.m);
	mp_free(c.partner);
	return rv;
}
