/* SPDX-License-Identifier: MIT */
/* room_join.c: a member of a chat room: anyone writes any time, everyone reads one order. */
#include "mpchat.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/*
 * The member side of room.c: join, then the free-order loop of
 * session.c, whose drain fetches what follows the last entry shown (every
 * CHAT_POLL_MS, which is also the heartbeat the server watches) and whose
 * send posts a line. The member's own lines come back through the log
 * too, so each shows at its place in the one order.
 */
struct room_chat {
	struct chat_session s;
	mp_proxy_t *room;
	const char *room_name;
	mp_obj_t *token;        /* NULL once out of the room */
	int64_t after;          /* the newest entry shown */
};

/* The message of an exception a call raised ("" without one). */
static const char *
exc_message(const mp_obj_t *exc)
{
	const mp_obj_t *a = exc != NULL &&
	    mp_obj_type(exc) == MP_TYPE_INSTANCE ?
	    mp_tuple_get(mp_instance_args(exc), 0) : NULL;
	const char *msg = mp_str_data(a, NULL);
	return msg != NULL ? msg : "";
}

static bool
raised(int rv, const mp_obj_t *exc, const char *cls)
{
	return rv == MP_EREMOTEERR && exc != NULL &&
	    mp_obj_type(exc) == MP_TYPE_INSTANCE &&
	    strcmp(mp_instance_name(exc), cls) == 0;
}

/* room.method(*args); args is stolen. */
static int
call(struct room_chat *c, const char *method, mp_obj_t *args,
    mp_obj_t **result)
{
	int rv = args == NULL ? -ENOMEM : mp_proxy_call(c->room, method, args,
	    NULL, CHAT_CALL_TIMEOUT_MS, result);
	mp_obj_unref(args);
	return rv;
}

/* A call of a member failed: dropped by the server, or the server lost. */
static int
failed(struct room_chat *c, int rv, mp_obj_t *exc)
{
	if (raised(rv, exc, "KeyError")) {
		mp_obj_unref(c->token);
		c->token = NULL;
		chat_say("you were dropped from room %s (no sign of life for "
		    "%d s); the chat ends\n", c->room_name,
		    CHAT_DEAD_MS / 1000);
		rv = CHAT_EXIT_LOST;
	} else if (rv == MP_EREMOTEERR) {
		chat_say("the server refused: %s; the chat ends\n",
		    exc_message(exc));
		rv = CHAT_EXIT_LOST;
	} else {
		rv = chat_lost(&c->s, rv);
	}
	mp_obj_unref(exc);
	return rv;
}

/* An entry (seq, kind, name, text), its fields borrowed; false when it
 * has another shape. */
struct entry {
	int64_t seq;
	const char *kind;
	const char *who;
	size_t wlen;
	const char *text;
	size_t tlen;
};

static bool
entry_of(const mp_obj_t *e, struct entry *out)
{
	if (mp_obj_type(e) != MP_TYPE_TUPLE || mp_obj_len(e) != 4 ||
	    mp_int_value(mp_tuple_get(e, 0), &out->seq) != 0) {
		return false;
	}
	for (int i = 1; i < 4; i++) {
		if (mp_obj_type(mp_tuple_get(e, i)) != MP_TYPE_STR) {
			return false;
		}
	}
	out->kind = mp_str_data(mp_tuple_get(e, 1), NULL);
	out->who = mp_str_data(mp_tuple_get(e, 2), &out->wlen);
	out->text = mp_str_data(mp_tuple_get(e, 3), &out->tlen);
	return true;
}

/* Show an entry; names and lines come from anyone with the key, so they
 * are escaped. Returns false when memory runs out. */
static bool
show(const struct entry *e)
{
	char *w = chat_escape(e->who, e->wlen, CHAT_MAX_NAME);
	char *t = chat_escape(e->text, e->tlen, CHAT_MAX_LINE);
	if (w != NULL && t != NULL) {
		if (strcmp(e->kind, "say") == 0) {
			chat_say("%s: %s\n", w, t);
		} else if (strcmp(e->kind, "join") == 0) {
			chat_say("%s joined the room\n", w);
		} else if (strcmp(e->kind, "leave") == 0) {
			chat_say("%s left the room\n", w);
		} else if (strcmp(e->kind, "gone") == 0) {
			chat_say("%s is gone (no sign of life for %d s)\n", w,
			    CHAT_DEAD_MS / 1000);
		} else if (strcmp(e->kind, "gap") == 0) {
			chat_say("(%s messages were missed)\n", t);
		}
	}
	bool ok = w != NULL && t != NULL;
	mp_free(w);
	mp_free(t);
	return ok;
}

/* Every entry after the last one shown, in the room's order. */
static int
room_drain(void *u)
{
	struct room_chat *c = u;
	size_t n = CHAT_ROOM_FETCH;
	while (n == CHAT_ROOM_FETCH) {
		mp_obj_t *l = NULL;
		int rv = call(c, "fetch", mp_tuple_of(2, mp_obj_ref(c->token),
		    mp_int(c->after)), &l);
		if (rv != 0) {
			return failed(c, rv, l);
		}
		n = mp_obj_type(l) == MP_TYPE_LIST ? mp_obj_len(l) : 0;
		bool ok = mp_obj_type(l) == MP_TYPE_LIST;
		for (size_t i = 0; ok && i < n; i++) {
			struct entry e;
			ok = entry_of(mp_list_get(l, (ssize_t)i), &e) &&
			    e.seq > c->after;
			if (ok) {
				c->after = e.seq;
				ok = show(&e);
			}
		}
		mp_obj_unref(l);
		if (!ok) {
			chat_say("the server sent what no room sends; the chat "
			    "ends\n");
			return CHAT_EXIT_LOST;
		}
	}
	return CHAT_GOING;
}

static int
room_send(void *u, mp_obj_t *text)
{
	struct room_chat *c = u;
	mp_obj_t *seq = NULL;
	int rv = call(c, "post", mp_tuple_of(2, mp_obj_ref(c->token), text),
	    &seq);
	if (rv != 0) {
		return failed(c, rv, seq);
	}
	mp_obj_unref(seq);
	return CHAT_GOING;
}

/* Leave the room (the others read "NAME left the room"). */
static void
part(struct room_chat *c)
{
	if (c->token == NULL || c->s.lost) {
		return;
	}
	mp_obj_t *r = NULL;
	(void)call(c, "leave", mp_tuple_of(1, c->token), &r);
	c->token = NULL;
	mp_obj_unref(r);
}

static int
room_quit(void *u)
{
	part(u);
	chat_say("you left the room\n");
	return CHAT_EXIT_OK;
}

/* What join returned: (token, seq, history, members). */
static bool
joined(struct room_chat *c, const mp_obj_t *r)
{
	const mp_obj_t *h = mp_tuple_get(r, 2);
	const mp_obj_t *names = mp_tuple_get(r, 3);
	int64_t token;
	if (mp_obj_type(r) != MP_TYPE_TUPLE || mp_obj_len(r) != 4 ||
	    mp_int_value(mp_tuple_get(r, 0), &token) != 0 ||
	    mp_int_value(mp_tuple_get(r, 1), &c->after) != 0 ||
	    mp_obj_type(h) != MP_TYPE_LIST ||
	    mp_obj_type(names) != MP_TYPE_LIST) {
		return false;
	}
	c->token = mp_obj_ref(mp_tuple_get(r, 0));
	chat_say("joined room %s at %s as %s\n", c->room_name,
	    c->s.o->address, c->s.name);
	if (mp_obj_len(h) > 0) {
		chat_say("the last %zu message%s:\n", mp_obj_len(h),
		    mp_obj_len(h) == 1 ? "" : "s");
	}
	bool ok = true;
	for (size_t i = 0; ok && i < mp_obj_len(h); i++) {
		struct entry e;
		ok = entry_of(mp_list_get(h, (ssize_t)i), &e) && show(&e);
	}
	chat_say("in the room:");
	for (size_t i = 0; ok && i < mp_obj_len(names); i++) {
		const mp_obj_t *n = mp_list_get(names, (ssize_t)i);
		size_t len = 0;
		const char *s = mp_obj_type(n) == MP_TYPE_STR ?
		    mp_str_data(n, &len) : "?";
		char *w = chat_escape(s, len, CHAT_MAX_NAME);
		ok = w != NULL;
		chat_say("%s %s", i == 0 ? "" : ",", ok ? w : "");
		mp_free(w);
	}
	chat_say("\n");
	return ok;
}

/* Open the room and join it. CHAT_GOING or the exit status. */
static int
enter(struct room_chat *c)
{
	mp_obj_t *args = mp_tuple_of(1, mp_str(c->room_name));
	int rv = args == NULL ? -ENOMEM :
	    mp_manager_create(c->s.m, CHAT_ROOM, args, NULL, &c->room);
	mp_obj_unref(args);
	if (rv != 0) {
		fprintf(stderr, "mpchat: %s has no room %s: %s\n",
		    c->s.o->address, c->room_name, mp_strerror(rv));
		return CHAT_EXIT_LOST;
	}
	mp_obj_t *r = NULL;
	rv = call(c, "join", mp_tuple_of(1, mp_str(c->s.name)), &r);
	int status = CHAT_GOING;
	if (raised(rv, r, "ValueError")) {
		/* The name is taken, the room full, the server full. */
		fprintf(stderr, "mpchat: %s\n", exc_message(r));
		status = CHAT_EXIT_REFUSED;
	} else if (rv != 0) {
		fprintf(stderr, "mpchat: cannot join room %s: %s\n",
		    c->room_name, rv == MP_EREMOTEERR ? exc_message(r) :
		    mp_strerror(rv));
		status = CHAT_EXIT_LOST;
	} else if (!joined(c, r)) {
		chat_say("the server sent what no room sends; the chat ends\n");
		status = CHAT_EXIT_LOST;
	}
	mp_obj_unref(r);
	return status;
}

int
chat_room_join(const struct chat_opts *o, const char *name, const char *room)
{
	static struct room_chat c;
	c.room_name = room;
	int rv = chat_open(&c.s, o, name);
	if (rv == CHAT_GOING) {
		rv = enter(&c);
	}
	if (rv == CHAT_GOING) {
		chat_catch_signals();
		static const struct chat_free_ops ops = {
			room_drain, room_send, room_quit,
		};
		char prompt[2 * CHAT_MAX_NAME + 8];
		snprintf(prompt, sizeof(prompt), "[%s@%s] > ", name, room);
		rv = chat_free_loop(&c.s, prompt, &ops, &c);
	}
	/* Whatever ended the chat, the others read that I left. */
	part(&c);
	mp_obj_unref(c.token);
	chat_close(&c.s, &c.room, 1);
	return rv;
}
