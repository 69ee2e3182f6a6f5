/* SPDX-License-Identifier: MIT */
/* room.c: the chat rooms the server holds: members, one sequenced log per room, history. */
#include "mpchat.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * A room is a shared object in the server, as the lecture's queue is:
 * the typeid get_room(NAME) gives a proxy of room NAME (made on the first
 * join), whose methods are
 *
 *   join(name)          -> (token, seq, history, members)
 *   post(token, text)   -> seq
 *   fetch(token, after) -> [(seq, kind, name, text), ...]
 *   leave(token)        -> None
 *   members()           -> [name, ...]
 *
 * The server runs one request at a time, so the order in which it appends
 * entries to a room's log is the one order every member reads: each
 * entry gets the next sequence number, and members fetch what follows
 * the last one they showed. Kinds: "say", "join", "leave", "gone" (no
 * call from that member for CHAT_DEAD_MS: killed, or cut off), and "gap"
 * (a member fell more than ROOM_LOG entries behind; text: how many).
 *
 * Methods never block (the server's loop runs them): members poll with
 * fetch, which is also their heartbeat. Every call first drops the
 * members silent for CHAT_DEAD_MS, so the others read "gone" within a
 * poll of that. A token, not the name, names a member in post, fetch and
 * leave: a member dropped for silence cannot speak for a newcomer who
 * took its name, nor can a client of an earlier server.
 */
#define ROOM_LOG 128            /* entries kept for members catching up */
#define ROOM_HISTORY 50         /* lines a newcomer is shown */
#define ROOM_MEMBERS 64
#define ROOM_MAX 100            /* rooms a server holds */

struct member {
	char name[CHAT_MAX_NAME + 1];
	int64_t token;
	int64_t seen;           /* ms, the member's last call */
};

struct room {
	char name[CHAT_MAX_NAME + 1];
	int64_t seq;            /* of the newest entry; 0 before any */
	mp_obj_t *log[ROOM_LOG]; /* entry s is log[s % ROOM_LOG] */
	mp_obj_t *said[ROOM_HISTORY]; /* the n-th line is said[n % ...] */
	int64_t nsaid;
	struct member members[ROOM_MEMBERS];
	size_t nmembers;
};

/* What a proxy refers to: a room by name, found or made at join. */
struct room_ref {
	char name[CHAT_MAX_NAME + 1];
	struct room *room;
};

static struct room *rooms[ROOM_MAX];
static size_t nrooms;
static int64_t next_token;

static struct room *
room_find(const char *name)
{
	for (size_t i = 0; i < nrooms; i++) {
		if (strcmp(rooms[i]->name, name) == 0) {
			return rooms[i];
		}
	}
	return NULL;
}

void
chat_rooms_free(void)
{
	for (size_t i = 0; i < nrooms; i++) {
		for (size_t j = 0; j < ROOM_LOG; j++) {
			mp_obj_unref(rooms[i]->log[j]);
		}
		for (size_t j = 0; j < ROOM_HISTORY; j++) {
			mp_obj_unref(rooms[i]->said[j]);
		}
		free(rooms[i]);
	}
	nrooms = 0;
}

/* A Python exception for the client to raise: '#ERROR'. */
static int
fail(const char *cls, mp_obj_t **result, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(const char *cls, mp_obj_t **result, const char *fmt, ...)
{
	char msg[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	*result = mp_instance_new("builtins", cls, mp_tuple_of(1, mp_str(msg)),
	    NULL, false);
	return *result == NULL ? -ENOMEM : MP_EREMOTEERR;
}

/* Append (seq, kind, name, text) to the log; a "say" to the history. */
static int
append(struct room *r, const char *kind, const char *name, mp_obj_t *text)
{
	mp_obj_t *k = mp_str(kind);
	mp_obj_t *n = mp_str(name);
	if (text == NULL || k == NULL || n == NULL) {
		mp_obj_unref(text);
		mp_obj_unref(k);
		mp_obj_unref(n);
		return -ENOMEM;
	}
	mp_obj_t *e = mp_tuple_of(4, mp_int(r->seq + 1), k, n, text);
	if (e == NULL) {
		return -ENOMEM;
	}
	r->seq++;
	mp_obj_t **slot = &r->log[r->seq % ROOM_LOG];
	mp_obj_unref(*slot);
	*slot = e;
	if (strcmp(kind, "say") == 0) {
		slot = &r->said[r->nsaid++ % ROOM_HISTORY];
		mp_obj_unref(*slot);
		*slot = mp_obj_ref(e);
	}
	return 0;
}

/* Remove member m, keeping the others in the order they came. */
static void
drop(struct room *r, struct member *m)
{
	size_t i = (size_t)(m - r->members);
	memmove(m, m + 1, (r->nmembers - i - 1) * sizeof(*m));
	r->nmembers--;
}

/* Members silent for CHAT_DEAD_MS are gone: drop them, for all to read. */
static int
sweep(struct room *r, int64_t now)
{
	int rv = 0;
	for (size_t i = 0; i < r->nmembers;) {
		struct member *m = &r->members[i];
		if (now - m->seen < CHAT_DEAD_MS) {
			i++;
			continue;
		}
		int arv = append(r, "gone", m->name, mp_str(""));
		rv = rv != 0 ? rv : arv;
		drop(r, m);
	}
	return rv;
}

/* The member a token names, with its heartbeat taken, or NULL. */
static struct member *
member_of(struct room *r, const mp_obj_t *token, int64_t now)
{
	int64_t t;
	if (r == NULL || mp_obj_type(token) != MP_TYPE_INT ||
	    mp_int_value(token, &t) != 0) {
		return NULL;
	}
	for (size_t i = 0; i < r->nmembers; i++) {
		if (r->members[i].token == t) {
			r->members[i].seen = now;
			return &r->members[i];
		}
	}
	return NULL;
}

/*
 * Check a call's arguments: exactly n positional ones, no keywords.
 * Returns 0, or MP_EREMOTEERR with a TypeError in *result.
 */
static int
args_ok(const char *fn, const mp_obj_t *args, const mp_obj_t *kwds,
    size_t n, mp_obj_t **result)
{
	if (mp_obj_len(args) != n || mp_obj_len(kwds) != 0) {
		return fail("TypeError", result, "%s() takes %zu positional "
		    "argument%s", fn, n, n == 1 ? "" : "s");
	}
	return 0;
}

/* The room for a join: found, or made when there is room for one. */
static int
room_open(struct room_ref *ref, mp_obj_t **result)
{
	if (ref->room == NULL) {
		ref->room = room_find(ref->name);
	}
	if (ref->room != NULL) {
		return 0;
	}
	if (nrooms == ROOM_MAX) {
		return fail("ValueError", result, "the server holds %d "
		    "rooms already", ROOM_MAX);
	}
	struct room *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		return -ENOMEM;
	}
	snprintf(r->name, sizeof(r->name), "%s", ref->name);
	rooms[nrooms++] = r;
	ref->room = r;
	return 0;
}

/* The lines said, oldest first, each (seq, "say", name, text). */
static mp_obj_t *
history(const struct room *r)
{
	mp_obj_t *h = mp_list_new();
	int64_t first = r->nsaid > ROOM_HISTORY ? r->nsaid - ROOM_HISTORY : 0;
	for (int64_t i = first; h != NULL && i < r->nsaid; i++) {
		if (mp_list_append(h, mp_obj_ref(r->said[i % ROOM_HISTORY]))
		    != 0) {
			mp_obj_unref(h);
			h = NULL;
		}
	}
	return h;
}

static mp_obj_t *
member_names(const struct room *r)
{
	mp_obj_t *l = mp_list_new();
	for (size_t i = 0; r != NULL && l != NULL && i < r->nmembers; i++) {
		if (mp_list_append(l, mp_str(r->members[i].name)) != 0) {
			mp_obj_unref(l);
			l = NULL;
		}
	}
	return l;
}

static int
m_join(void *obj, const mp_obj_t *args, const mp_obj_t *kwds,
    mp_obj_t **result)
{
	struct room_ref *ref = obj;
	int rv = args_ok("join", args, kwds, 1, result);
	const mp_obj_t *name = mp_tuple_get(args, 0);
	if (rv == 0 && (mp_obj_type(name) != MP_TYPE_STR ||
	    !chat_name_ok(mp_str_data(name, NULL)))) {
		rv = fail("ValueError", result, "a name is 1 to %d bytes "
		    "of UTF-8 without spaces, colons or control characters",
		    CHAT_MAX_NAME);
	}
	if (rv == 0) {
		rv = room_open(ref, result);
	}
	if (rv != 0) {
		return rv;
	}
	struct room *r = ref->room;
	int64_t now = chat_now_ms();
	rv = sweep(r, now);
	const char *n = mp_str_data(name, NULL);
	for (size_t i = 0; rv == 0 && i < r->nmembers; i++) {
		if (strcmp(r->members[i].name, n) == 0) {
			return fail("ValueError", result, "the name %s is "
			    "taken in room %s", n, r->name);
		}
	}
	if (rv == 0 && r->nmembers == ROOM_MEMBERS) {
		return fail("ValueError", result, "room %s is full (%d "
		    "members)", r->name, ROOM_MEMBERS);
	}
	/* The history is what was said before this join. */
	mp_obj_t *h = rv == 0 ? history(r) : NULL;
	rv = rv != 0 ? rv : h == NULL ? -ENOMEM :
	    append(r, "join", n, mp_str(""));
	if (rv != 0) {
		mp_obj_unref(h);
		return rv;
	}
	struct member *m = &r->members[r->nmembers++];
	snprintf(m->name, sizeof(m->name), "%s", n);
	m->token = ++next_token;
	m->seen = now;
	*result = mp_tuple_of(4, mp_int(m->token), mp_int(r->seq), h,
	    member_names(r));
	return *result == NULL ? -ENOMEM : 0;
}

/*
 * The start of a member's call (token, arg): check the two arguments, drop
 * the silent members first (the caller's own call counts as a sign of
 * life), and find the caller by its token. 0 with *m, or the error.
 */
static int
member_call(struct room_ref *ref, const char *fn, const mp_obj_t *args,
    const mp_obj_t *kwds, mp_obj_t **result, struct member **m)
{
	int rv = args_ok(fn, args, kwds, 2, result);
	if (rv != 0) {
		return rv;
	}
	int64_t now = chat_now_ms();
	if (ref->room != NULL) {
		rv = sweep(ref->room, now);
	}
	*m = member_of(ref->room, mp_tuple_get(args, 0), now);
	if (rv != 0) {
		return rv;
	}
	if (*m == NULL) {
		return fail("KeyError", result, "not in room %s", ref->name);
	}
	return 0;
}

static int
m_post(void *obj, const mp_obj_t *args, const mp_obj_t *kwds,
    mp_obj_t **result)
{
	struct room_ref *ref = obj;
	struct member *m;
	int rv = member_call(ref, "post", args, kwds, result, &m);
	if (rv != 0) {
		return rv;
	}
	const mp_obj_t *text = mp_tuple_get(args, 1);
	size_t len = 0;
	if (mp_obj_type(text) != MP_TYPE_STR) {
		return fail("TypeError", result, "a line is a str");
	}
	mp_str_data(text, &len);
	if (len > CHAT_MAX_LINE) {
		return fail("ValueError", result, "line too long (more than "
		    "%d bytes)", CHAT_MAX_LINE);
	}
	rv = append(ref->room, "say", m->name, mp_obj_ref((mp_obj_t *)text));
	if (rv != 0) {
		return rv;
	}
	*result = mp_int(ref->room->seq);
	return *result == NULL ? -ENOMEM : 0;
}

/* The entries after seq after, at most CHAT_ROOM_FETCH, and a gap first when
 * some of them are no longer kept. */
static mp_obj_t *
entries_after(const struct room *r, int64_t after)
{
	mp_obj_t *l = mp_list_new();
	int64_t first = r->seq - ROOM_LOG + 1;
	if (after > r->seq) {
		after = r->seq; /* nothing newer; and after + 1 stays exact */
	}
	if (l != NULL && after + 1 < first) {
		char missed[24];
		snprintf(missed, sizeof(missed), "%lld",
		    (long long)(first - after - 1));
		if (mp_list_append(l, mp_tuple_of(4, mp_int(first - 1),
		    mp_str("gap"), mp_str(""), mp_str(missed))) != 0) {
			mp_obj_unref(l);
			return NULL;
		}
		after = first - 1;
	}
	for (int64_t s = after + 1; l != NULL && s <= r->seq &&
	    mp_obj_len(l) < CHAT_ROOM_FETCH; s++) {
		if (mp_list_append(l, mp_obj_ref(r->log[s % ROOM_LOG])) != 0) {
			mp_obj_unref(l);
			l = NULL;
		}
	}
	return l;
}

static int
m_fetch(void *obj, const mp_obj_t *args, const mp_obj_t *kwds,
    mp_obj_t **result)
{
	struct room_ref *ref = obj;
	struct member *m;
	int rv = member_call(ref, "fetch", args, kwds, result, &m);
	if (rv != 0) {
		return rv;
	}
	int64_t after;
	if (mp_int_value(mp_tuple_get(args, 1), &after) != 0 || after < 0) {
		return fail("ValueError", result, "after is a sequence "
		    "number (an int >= 0)");
	}
	*result = entries_after(ref->room, after);
	return *result == NULL ? -ENOMEM : 0;
}

static int
m_leave(void *obj, const mp_obj_t *args, const mp_obj_t *kwds,
    mp_obj_t **result)
{
	struct room_ref *ref = obj;
	int rv = args_ok("leave", args, kwds, 1, result);
	if (rv != 0) {
		return rv;
	}
	struct room *r = ref->room;
	int64_t now = chat_now_ms();
	struct member *m = member_of(r, mp_tuple_get(args, 0), now);
	if (m != NULL) {
		rv = append(r, "leave", m->name, mp_str(""));
		drop(r, m);
	}
	if (rv == 0 && r != NULL) {
		rv = sweep(r, now);
	}
	*result = rv == 0 ? mp_none() : NULL;
	return rv;
}

static int
m_members(void *obj, const mp_obj_t *args, const mp_obj_t *kwds,
    mp_obj_t **result)
{
	struct room_ref *ref = obj;
	int rv = args_ok("members", args, kwds, 0, result);
	if (rv == 0 && ref->room != NULL) {
		rv = sweep(ref->room, chat_now_ms());
	}
	if (rv != 0) {
		return rv;
	}
	*result = member_names(ref->room);
	return *result == NULL ? -ENOMEM : 0;
}

static int
ref_create(const mp_obj_t *args, const mp_obj_t *kwds, void **obj,
    mp_obj_t **error)
{
	const mp_obj_t *name = mp_tuple_get(args, 0);
	if (mp_obj_len(args) != 1 || mp_obj_len(kwds) != 0 ||
	    mp_obj_type(name) != MP_TYPE_STR ||
	    !chat_name_ok(mp_str_data(name, NULL))) {
		return fail("ValueError", error, "get_room(NAME): a room name "
		    "is 1 to %d bytes of UTF-8 without spaces, colons or "
		    "control characters", CHAT_MAX_NAME);
	}
	struct room_ref *ref = calloc(1, sizeof(*ref));
	if (ref == NULL) {
		return -ENOMEM;
	}
	snprintf(ref->name, sizeof(ref->name), "%s", mp_str_data(name, NULL));
	ref->room = room_find(ref->name);
	if (next_token == 0) {
		/* Tokens of different servers differ: a client of an
		 * earlier server at this address names nobody here. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		next_token = ((int64_t)getpid() << 40 ^ ts.tv_nsec ^
		    (int64_t)ts.tv_sec << 20) & 0x3fffffffffffffffLL;
	}
	*obj = ref;
	return 0;
}

static void
ref_free(void *obj)
{
	free(obj);
}

static int
ref_repr(void *obj, char **out)
{
	const struct room_ref *ref = obj;
	char buf[64];
	int n = snprintf(buf, sizeof(buf), "<Room %s>", ref->name);
	*out = mp_malloc((size_t)n + 1);
	if (*out == NULL) {
		return -ENOMEM;
	}
	memcpy(*out, buf, (size_t)n + 1);
	return 0;
}

static const struct mp_manager_method room_methods[] = {
	{ "join", m_join, NULL },
	{ "post", m_post, NULL },
	{ "fetch", m_fetch, NULL },
	{ "leave", m_leave, NULL },
	{ "members", m_members, NULL },
};

const struct mp_manager_type chat_room_type = {
	.name = "Room",
	.methods = room_methods,
	.n_methods = sizeof(room_methods) / sizeof(room_methods[0]),
	.create = ref_create,
	.free = ref_free,
	.repr = ref_repr,
};
