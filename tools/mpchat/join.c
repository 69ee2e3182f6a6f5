/* SPDX-License-Identifier: MIT */
/* join.c: one participant of the two-person chat (the lecture's exercise). */
#include "mpchat.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/*
 * How the two participants meet, talk, part and notice each other's
 * death, using only the three objects the server registers (mpchat.h):
 *
 * - A seat is taken with seats.setdefault(seat, (name, nonce)): the
 *   server runs one request at a time, so of two participants racing for
 *   a seat exactly one gets its own token back. Seat 1 writes first.
 * - Seat 2 empties its inbox (what an earlier conversation left there)
 *   and puts ("join", name, nonce of seat 1) in seat 1's inbox. Seat 1
 *   drops everything before a join that carries its own nonce. Every
 *   line then travels as ("say", name, text) through the other's inbox,
 *   and ("bye", name, "") ends the conversation for both.
 * - Whoever ends gives its seat back (seats.pop), before its bye, so that
 *   when both seats are free again both participants are done with them:
 *   the server then serves the next conversation.
 * - Nobody hangs on a dead partner: each participant sets seats["hbN"]
 *   to a growing counter every TICK_MS (while it waits for a line with a
 *   get bounded by TICK_MS, and while its user types) and looks at a copy
 *   of the seats: a partner whose counter has not moved for CHAT_DEAD_MS
 *   of its own clock is gone (its seat is then given back for it), one
 *   whose seat holds somebody else has left. A dead server makes the next
 *   call fail at once.
 * - A newcomer who finds both seats taken watches their heartbeats: a
 *   seat whose holder died without giving it back (killed alone, or after
 *   its partner left) is given back after CHAT_DEAD_MS, so no death blocks
 *   the server.
 */
#define TICK_MS 500

struct chat {
	struct chat_session s;
	mp_proxy_t *inbox;      /* lines for me */
	mp_proxy_t *outbox;     /* lines for the partner */
	mp_obj_t *token;        /* (name, nonce) in my seat */
	mp_obj_t *partner_token; /* in the partner's seat, once known */
	char *partner;          /* escaped for display; NULL until known */
	int seat;
	bool free_order;        /* serve --free: no turns */
	bool seat_given_back;
	bool partner_dead;
	int64_t beats;
	int64_t next_tick;
	int64_t partner_beat;
	int64_t partner_seen;   /* when partner_beat last moved */
};

/* A get that failed to decode its reply took the message off the queue. */
static bool
bad_message(int rv)
{
	return rv == MP_EPICKLE || rv == MP_EFORBIDDEN || rv == -EPROTO;
}

/* Say so and go on, rather than end the chat for one bad message. */
static bool
unreadable(int rv)
{
	if (!bad_message(rv)) {
		return false;
	}
	chat_say("(an unreadable message was dropped: %s)\n", mp_strerror(rv));
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
	mp_obj_t *msg = tuple3(mp_str(kind), mp_str(c->s.name), text);
	if (msg == NULL) {
		return -ENOMEM;
	}
	int rv = mp_proxy_queue_put(c->outbox, msg, CHAT_CALL_TIMEOUT_MS);
	mp_obj_unref(msg);
	return rv;
}

/* seats[seat] (a new reference), NULL when free; *rv the call's error. */
static mp_obj_t *
seat_holder(struct chat *c, int seat, int *rv)
{
	mp_obj_t *k = mp_int(seat);
	mp_obj_t *v = NULL;
	*rv = k == NULL ? -ENOMEM : mp_proxy_dict_get(c->s.seats, k, &v);
	mp_obj_unref(k);
	if (*rv == -ENOENT) {
		*rv = 0;
	}
	return v;
}

/* seats.pop(seat, None), when it holds holder (any holder if NULL). */
static void
free_seat(struct chat *c, int seat, const mp_obj_t *holder)
{
	int rv;
	mp_obj_t *now = seat_holder(c, seat, &rv);
	if (now != NULL && (holder == NULL || mp_obj_equal(now, holder))) {
		mp_obj_t *args = mp_tuple_of(2, mp_int(seat), mp_none());
		mp_obj_t *old = NULL;
		if (args != NULL) {
			(void)mp_proxy_call(c->s.seats, "pop", args, NULL,
			    CHAT_CALL_TIMEOUT_MS, &old);
		}
		mp_obj_unref(old);
		mp_obj_unref(args);
	}
	mp_obj_unref(now);
}

/* The end of my part: my seat, and a dead partner's, are free again. */
static void
give_back_seats(struct chat *c)
{
	if (c->seat == 0 || c->seat_given_back || c->s.lost) {
		return;
	}
	c->seat_given_back = true;
	free_seat(c, c->seat, c->token);
	if (c->partner_dead) {
		free_seat(c, 3 - c->seat, c->partner_token);
	}
}

/* /quit, end of input or a signal. Leaving goes on even if the server is
 * gone. */
static int
leave(struct chat *c)
{
	give_back_seats(c);
	if (c->partner != NULL) {
		(void)send_msg(c, "bye", mp_str(""));
	}
	chat_say("you left the chat\n");
	return CHAT_EXIT_OK;
}

/* seat's entry in a copy of the seats dict (borrowed), or NULL. */
static const mp_obj_t *
entry(const mp_obj_t *snap, mp_obj_t *key)
{
	const mp_obj_t *v = key == NULL || mp_obj_type(snap) != MP_TYPE_DICT ?
	    NULL : mp_dict_get(snap, key);
	mp_obj_unref(key);
	return v;
}

/* seats["hbN"] in a copy of the seats: -1 when absent, -2 when no int. */
static int64_t
beat_of(const mp_obj_t *snap, int seat)
{
	char key[16];
	snprintf(key, sizeof(key), "hb%d", seat);
	int64_t beat = -1;
	const mp_obj_t *v = entry(snap, mp_str(key));
	if (v != NULL && mp_int_value(v, &beat) != 0) {
		beat = -2;
	}
	return beat;
}

/* What a copy of the seats says about my seat and the partner's. */
static int
check_seats(struct chat *c, const mp_obj_t *snap, int64_t now)
{
	const mp_obj_t *mine = entry(snap, mp_int(c->seat));
	if (mine == NULL || !mp_obj_equal(mine, c->token)) {
		/* My partner took me for dead and gave my seat back. */
		c->seat_given_back = true;
		chat_say("you lost your seat (silent for too long); the chat "
		    "ends\n");
		return CHAT_EXIT_LOST;
	}
	if (c->partner == NULL) {
		return CHAT_GOING;
	}
	const mp_obj_t *theirs = entry(snap, mp_int(3 - c->seat));
	if (theirs == NULL || !mp_obj_equal(theirs, c->partner_token)) {
		/* They gave their seat back: their bye is on its way. */
		chat_say("%s left the chat\n", c->partner);
		return CHAT_EXIT_OK;
	}
	int64_t beat = beat_of(snap, 3 - c->seat);
	if (beat != c->partner_beat) {
		c->partner_beat = beat;
		c->partner_seen = now;
	} else if (now - c->partner_seen >= CHAT_DEAD_MS) {
		c->partner_dead = true;
		chat_say("%s is gone (no sign of life for %d s); the chat "
		    "ends\n", c->partner, CHAT_DEAD_MS / 1000);
		return CHAT_EXIT_LOST;
	}
	return CHAT_GOING;
}

/*
 * Once every TICK_MS: show that I live, and look at the seats (one copy
 * of the dict). A signal leaves. Returns CHAT_GOING or the exit status
 * the chat ends with.
 */
static int
tick(struct chat *c)
{
	if (chat_stop) {
		return leave(c);
	}
	int64_t now = chat_now_ms();
	if (now < c->next_tick) {
		return CHAT_GOING;
	}
	c->next_tick = now + TICK_MS;
	char key[16];
	snprintf(key, sizeof(key), "hb%d", c->seat);
	mp_obj_t *k = mp_str(key);
	mp_obj_t *v = mp_int(++c->beats);
	int rv = k != NULL && v != NULL ?
	    mp_proxy_dict_set(c->s.seats, k, v) : -ENOMEM;
	mp_obj_unref(k);
	mp_obj_unref(v);
	mp_obj_t *snap = NULL;
	if (rv == 0) {
		rv = mp_proxy_getvalue(c->s.seats, &snap);
	}
	if (rv != 0) {
		return chat_lost(&c->s, rv);
	}
	rv = check_seats(c, snap, now);
	mp_obj_unref(snap);
	return rv;
}

static void
met_partner(struct chat *c, char *escaped_name, mp_obj_t *token)
{
	mp_free(c->partner);
	mp_obj_unref(c->partner_token);
	c->partner = escaped_name;
	c->partner_token = token;
	c->partner_beat = -3;
	c->partner_seen = chat_now_ms();
}

/*
 * Seat 1: a join for me (it carries my nonce) from whoever sits in seat
 * 2 under that name. Anything else came from an earlier conversation.
 */
static int
on_join(struct chat *c, const char *who, const char *text, char *w)
{
	const mp_obj_t *nonce = mp_tuple_get(c->token, 1);
	if (strcmp(text, mp_str_data(nonce, NULL)) != 0) {
		mp_free(w);
		return CHAT_GOING;
	}
	int rv;
	mp_obj_t *holder = seat_holder(c, 2, &rv);
	if (rv != 0) {
		mp_free(w);
		return chat_lost(&c->s, rv);
	}
	/* mp_str_data is NULL for what is no str (or no holder). */
	const char *hname = mp_str_data(mp_tuple_get(holder, 0), NULL);
	if (hname == NULL || strcmp(hname, who) != 0) {
		mp_obj_unref(holder);
		mp_free(w);
		return CHAT_GOING;
	}
	chat_say("%s joined the chat; %s\n", w, c->free_order ?
	    "write whenever you like" : "you write first");
	met_partner(c, w, holder);
	return CHAT_GOING;
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
		/* Before a partner, it is an earlier conversation's. */
		if (c->partner != NULL) {
			chat_say("(a malformed message was ignored)\n");
		}
		return CHAT_GOING;
	}
	size_t wlen, tlen;
	const char *kind = mp_str_data(f[0], NULL);
	const char *who = mp_str_data(f[1], &wlen);
	const char *text = mp_str_data(f[2], &tlen);
	char *w = chat_escape(who, wlen, CHAT_MAX_NAME);
	char *t = chat_escape(text, tlen, CHAT_MAX_LINE);
	int rv = CHAT_GOING;
	if (w == NULL || t == NULL) {
		rv = CHAT_EXIT_LOST;
		chat_say("out of memory; the chat ends\n");
	} else if (c->partner == NULL) {
		if (strcmp(kind, "join") == 0) {
			rv = on_join(c, who, text, w);
			w = NULL;
		}
	} else if (strcmp(kind, "say") == 0) {
		chat_say("%s: %s\n", w, t);
		*said = true;
	} else if (strcmp(kind, "bye") == 0) {
		chat_say("%s left the chat\n", w);
		rv = CHAT_EXIT_OK;
	}
	mp_free(w);
	mp_free(t);
	return rv;
}

/*
 * Take the next message, waiting at most timeout_ms, and show it.
 * *got tells a message came, *said that it was a line.
 */
static int
take_message(struct chat *c, int64_t timeout_ms, bool *got, bool *said)
{
	mp_obj_t *msg = NULL;
	int rv = mp_proxy_queue_get(c->inbox, timeout_ms, &msg);
	*got = rv == 0 || bad_message(rv);
	if (rv == 0) {
		rv = on_message(c, msg, said);
		mp_obj_unref(msg);
		return rv;
	}
	if (rv == -ETIMEDOUT || rv == -EAGAIN || unreadable(rv)) {
		return CHAT_GOING;
	}
	return chat_lost(&c->s, rv);
}

/* Seat 1 waits for seat 2's join. */
static int
wait_partner(struct chat *c)
{
	chat_say("waiting for a partner...\n");
	while (c->partner == NULL) {
		bool got, said = false;
		int rv = take_message(c, TICK_MS, &got, &said);
		if (rv == CHAT_GOING) {
			rv = tick(c);
		}
		if (rv != CHAT_GOING) {
			return rv;
		}
	}
	return CHAT_GOING;
}

/* The partner's turn: wait for their line (or bye, or their death). */
static int
read_turn(struct chat *c)
{
	chat_say("waiting for %s...\n", c->partner);
	for (;;) {
		bool got, said = false;
		int rv = take_message(c, TICK_MS, &got, &said);
		if (rv != CHAT_GOING || said) {
			return rv;
		}
		rv = tick(c);
		if (rv != CHAT_GOING) {
			return rv;
		}
	}
}

/* My turn: one line from the input, checked, sent. While my user types:
 * beat, watch the partner, and take a bye (or a line out of turn, which
 * only a misbehaving peer sends) from my inbox. */
static int
write_turn(struct chat *c)
{
	for (;;) {
		chat_prompt("[%s, your turn] > ", c->s.name);
		enum chat_line l;
		size_t len = 0;
		bool got = false;
		do {
			l = chat_reader_line(&c->s.in, c->s.line, &len,
			    TICK_MS);
			if (l == CHAT_LINE_TIMEOUT) {
				bool said = false;
				int rv = tick(c);
				if (rv == CHAT_GOING) {
					rv = take_message(c, MP_NOWAIT, &got,
					    &said);
				}
				if (rv != CHAT_GOING) {
					return rv;
				}
			}
		} while (l == CHAT_LINE_TIMEOUT && !got);
		if (got) {
			continue;
		}
		mp_obj_t *text = NULL;
		switch (chat_typed(&c->s, l, len, &text)) {
		case CHAT_TYPED_SEND: {
			int rv = send_msg(c, "say", text);
			return rv == 0 ? CHAT_GOING : chat_lost(&c->s, rv);
		}
		case CHAT_TYPED_RETRY:
			continue;
		case CHAT_TYPED_QUIT:
			return leave(c);
		case CHAT_TYPED_FAIL:
			return CHAT_EXIT_LOST;
		}
	}
}

/* Free order: every message waiting in my inbox, shown. */
static int
free_drain(void *u)
{
	struct chat *c = u;
	int rv = tick(c);
	bool got = true;
	while (rv == CHAT_GOING && got) {
		bool said = false;
		rv = take_message(c, MP_NOWAIT, &got, &said);
	}
	return rv;
}

static int
free_send(void *u, mp_obj_t *text)
{
	struct chat *c = u;
	int rv = send_msg(c, "say", text);
	return rv == 0 ? CHAT_GOING : chat_lost(&c->s, rv);
}

static int
free_quit(void *u)
{
	return leave(u);
}

/* The name in a seat's (name, nonce) token, escaped ("someone" when the
 * token has another shape); NULL when memory runs out. */
static char *
holder_name(const mp_obj_t *holder)
{
	size_t len;
	const char *s = mp_str_data(mp_tuple_get(holder, 0), &len);
	if (s == NULL) {
		return chat_escape("someone", 7, CHAT_MAX_NAME);
	}
	return chat_escape(s, len, CHAT_MAX_NAME);
}

/* setdefault(seat, token): 0 with the holder (maybe the token). */
static int
try_seat(struct chat *c, int seat, mp_obj_t **holder)
{
	mp_obj_t *args = mp_tuple_of(2, mp_int(seat), mp_obj_ref(c->token));
	int rv = args == NULL ? -ENOMEM : mp_proxy_call(c->s.seats,
	    "setdefault", args, NULL, CHAT_CALL_TIMEOUT_MS, holder);
	mp_obj_unref(args);
	return rv;
}

/*
 * Both seats are taken, by holders who beat every TICK_MS while they
 * live. Watch the heartbeats until both have moved (the chat is full:
 * returns 1) or one has not for CHAT_DEAD_MS: its holder died without
 * giving its seat back (killed alone, or after its partner left), and the
 * seat is given back for it (returns 0: try again, as when a seat changes
 * hands meanwhile). Or a call's error.
 */
static int
free_dead_seat(struct chat *c, mp_obj_t *const holders[2])
{
	int64_t first[2] = { 0, 0 };
	bool moved[2] = { false, false };
	int64_t start = chat_now_ms();
	for (int look = 0;; look++) {
		mp_obj_t *snap = NULL;
		int rv = mp_proxy_getvalue(c->s.seats, &snap);
		bool changed = false;
		for (int i = 0; rv == 0 && i < 2; i++) {
			const mp_obj_t *h = entry(snap, mp_int(i + 1));
			changed = changed || h == NULL ||
			    !mp_obj_equal(h, holders[i]);
			int64_t beat = beat_of(snap, i + 1);
			moved[i] = moved[i] || (look > 0 && beat != first[i]);
			first[i] = look == 0 ? beat : first[i];
		}
		mp_obj_unref(snap);
		if (rv != 0 || changed) {
			return rv;
		}
		if (moved[0] && moved[1]) {
			return 1;
		}
		if (chat_now_ms() - start >= CHAT_DEAD_MS) {
			for (int i = 0; i < 2; i++) {
				if (!moved[i]) {
					free_seat(c, i + 1, holders[i]);
				}
			}
			return 0;
		}
		/* The holders' state is on the server: look again later. */
		poll(NULL, 0, TICK_MS);
	}
}

/* Take seat 1, else seat 2: 0 with c->seat set, or holders and *taken
 * (seat 1 is held under my name) told, or a call's error. */
static int
try_seats(struct chat *c, mp_obj_t *holders[2], bool *taken)
{
	int rv = 0;
	for (int seat = 1; rv == 0 && seat <= 2 && c->seat == 0 && !*taken;
	    seat++) {
		rv = try_seat(c, seat, &holders[seat - 1]);
		if (rv == 0 && mp_obj_equal(holders[seat - 1], c->token)) {
			c->seat = seat;
		} else if (rv == 0) {
			/* Two of one name would leave both unsure who
			 * speaks: refuse before taking seat 2. */
			const char *n = mp_str_data(
			    mp_tuple_get(holders[seat - 1], 0), NULL);
			*taken = n != NULL && strcmp(n, c->s.name) == 0;
		}
	}
	return rv;
}

/*
 * Take seat 1, else seat 2 (see the top of this file). On success seat 2
 * learns its partner from seat 1's token. Returns CHAT_GOING or the exit
 * status (the chat is full, the name taken, the server lost).
 */
static int
claim_seat(struct chat *c)
{
	char nonce[48];
	snprintf(nonce, sizeof(nonce), "%ld-%lld", (long)getpid(),
	    (long long)chat_now_ms());
	c->token = mp_tuple_of(2, mp_str(c->s.name), mp_str(nonce));
	mp_obj_t *holders[2] = { NULL, NULL };
	int rv = c->token == NULL ? -ENOMEM : 0;
	bool taken = false;
	/* A third try finds the seats as the second left them. */
	for (int tries = 0; rv == 0 && tries < 3; tries++) {
		rv = try_seats(c, holders, &taken);
		if (rv != 0 || c->seat != 0 || taken || tries == 2) {
			break;
		}
		rv = free_dead_seat(c, holders);
		if (rv != 0) {
			rv = rv > 0 ? 0 : rv;
			break;
		}
		mp_obj_unref(holders[0]);
		mp_obj_unref(holders[1]);
		holders[0] = holders[1] = NULL;
	}
	char *names[2] = { NULL, NULL };
	int status = CHAT_GOING;
	if (rv != 0) {
		fprintf(stderr, "mpchat: cannot take a seat: %s\n",
		    mp_strerror(rv));
		status = CHAT_EXIT_LOST;
	} else if (taken) {
		fprintf(stderr, "mpchat: the name %s is taken\n", c->s.name);
		status = CHAT_EXIT_REFUSED;
	} else if (c->seat == 0) {
		names[0] = holder_name(holders[0]);
		names[1] = holder_name(holders[1]);
		fprintf(stderr, "mpchat: the chat is full: %s and %s are "
		    "talking\n", names[0] != NULL ? names[0] : "?",
		    names[1] != NULL ? names[1] : "?");
		status = CHAT_EXIT_REFUSED;
	} else if (c->seat == 2) {
		char *w = holder_name(holders[0]);
		if (w == NULL) {
			fputs("mpchat: out of memory\n", stderr);
			status = CHAT_EXIT_LOST;
		} else {
			met_partner(c, w, holders[0]);
			holders[0] = NULL;
		}
	}
	mp_free(names[0]);
	mp_free(names[1]);
	mp_obj_unref(holders[0]);
	mp_obj_unref(holders[1]);
	return status;
}

/* Seat 2: empty my inbox of an earlier conversation, then announce
 * myself to seat 1 with its nonce. */
static int
announce(struct chat *c)
{
	for (;;) {
		mp_obj_t *msg = NULL;
		int rv = mp_proxy_queue_get(c->inbox, MP_NOWAIT, &msg);
		mp_obj_unref(msg);
		if (rv == -EAGAIN) {
			break;
		}
		if (rv != 0 && !bad_message(rv)) {
			return chat_lost(&c->s, rv);
		}
	}
	const char *nonce = mp_str_data(mp_tuple_get(c->partner_token, 1),
	    NULL);
	int rv = send_msg(c, "join", mp_str(nonce != NULL ? nonce : ""));
	return rv == 0 ? CHAT_GOING : chat_lost(&c->s, rv);
}

static int
open_objects(struct chat *c)
{
	mp_manager_t *m = c->s.m;
	int rv = mp_manager_create(m, CHAT_INBOX1, NULL, NULL, &c->inbox);
	if (rv == 0) {
		rv = mp_manager_create(m, CHAT_INBOX2, NULL, NULL,
		    &c->outbox);
	}
	mp_obj_t *mode = NULL;
	if (rv == 0) {
		/* The server says how the chat goes, so both sides agree. */
		mp_obj_t *k = mp_str("mode");
		rv = k == NULL ? -ENOMEM :
		    mp_proxy_dict_get(c->s.seats, k, &mode);
		mp_obj_unref(k);
		rv = rv == -ENOENT ? 0 : rv;
	}
	c->free_order = rv == 0 && mode != NULL &&
	    mp_obj_type(mode) == MP_TYPE_STR &&
	    strcmp(mp_str_data(mode, NULL), "free") == 0;
	mp_obj_unref(mode);
	if (rv != 0) {
		fprintf(stderr, "mpchat: %s is no chat server: %s\n",
		    c->s.o->address, mp_strerror(rv));
		return CHAT_EXIT_LOST;
	}
	return CHAT_GOING;
}

static int
converse(struct chat *c)
{
	int rv = claim_seat(c);
	if (rv != CHAT_GOING) {
		return rv;
	}
	if (c->seat == 2) {
		mp_proxy_t *t = c->inbox;
		c->inbox = c->outbox;
		c->outbox = t;
		rv = announce(c);
		if (rv != CHAT_GOING) {
			return rv;
		}
	}
	chat_say("joined the chat at %s as %s (seat %d)\n", c->s.o->address,
	    c->s.name, c->seat);
	if (c->seat == 1) {
		rv = wait_partner(c);
	} else if (c->free_order) {
		chat_say("chatting with %s; write whenever you like\n",
		    c->partner);
	} else {
		chat_say("chatting with %s; %s writes first\n", c->partner,
		    c->partner);
	}
	if (rv == CHAT_GOING && c->free_order) {
		static const struct chat_free_ops ops = {
			free_drain, free_send, free_quit,
		};
		char prompt[CHAT_MAX_NAME + 8];
		snprintf(prompt, sizeof(prompt), "[%s] > ", c->s.name);
		return chat_free_loop(&c->s, prompt, &ops, c);
	}
	for (bool mine = c->seat == 1; rv == CHAT_GOING; mine = !mine) {
		rv = mine ? write_turn(c) : read_turn(c);
	}
	return rv;
}

int
chat_join(const struct chat_opts *o, const char *name)
{
	static struct chat c;
	int rv = chat_open(&c.s, o, name);
	if (rv == CHAT_GOING) {
		rv = open_objects(&c);
	}
	if (rv == CHAT_GOING) {
		chat_catch_signals();
		rv = converse(&c);
		give_back_seats(&c);
	}
	mp_proxy_t *p[] = { c.inbox, c.outbox };
	chat_close(&c.s, p, 2);
	mp_obj_unref(c.token);
	mp_obj_unref(c.partner_token);
	mp_free(c.partner);
	return rv;
}
