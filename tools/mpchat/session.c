/* SPDX-License-Identifier: MIT */
/* session.c: what every participant does: connect, show, read lines, tell a restarted server. */
#include "mpchat.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t chat_stop;

static void
on_stop(int sig)
{
	(void)sig;
	chat_stop = 1;
}

void
chat_catch_signals(void)
{
	/* No SA_RESTART: the signal ends the wait for input at once, and
	 * the participant leaves as with /quit (its partner or room is told
	 * now, not when its heartbeat is missed). */
	struct sigaction sa = { .sa_handler = on_stop };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

int64_t
chat_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* seats["server"], copied (NULL when the server sets none); *rv gets 0
 * or the error of the call. */
static char *
read_server_id(mp_proxy_t *seats, int *rv)
{
	mp_obj_t *k = mp_str("server");
	mp_obj_t *v = NULL;
	*rv = k == NULL ? -ENOMEM : mp_proxy_dict_get(seats, k, &v);
	mp_obj_unref(k);
	char *id = NULL;
	if (*rv == 0 && mp_obj_type(v) == MP_TYPE_STR) {
		size_t len;
		const char *d = mp_str_data(v, &len);
		id = mp_malloc(len + 1);
		if (id != NULL) {
			memcpy(id, d, len + 1);
		}
	}
	if (*rv == -ENOENT) {
		*rv = 0;
	}
	mp_obj_unref(v);
	return id;
}

int
chat_open(struct chat_session *s, const struct chat_opts *o, const char *name)
{
	s->o = o;
	s->name = name;
	s->tty = isatty(0) == 1;
	chat_reader_init(&s->in, 0);
	s->in.term = chat_term_start(0);
	int rv = mp_manager_connect(o->address, o->key, o->keylen,
	    CHAT_CALL_TIMEOUT_MS, &s->m);
	if (rv != 0) {
		fprintf(stderr, "mpchat: cannot join the chat at %s: %s\n",
		    o->address, rv == MP_EAUTH ?
		    "wrong authkey (the server refused it)" : mp_strerror(rv));
		return CHAT_EXIT_LOST;
	}
	rv = mp_manager_create(s->m, CHAT_SEATS, NULL, NULL, &s->seats);
	if (rv == 0) {
		s->server_id = read_server_id(s->seats, &rv);
	}
	if (rv != 0) {
		fprintf(stderr, "mpchat: %s is no chat server: %s\n",
		    o->address, mp_strerror(rv));
		return CHAT_EXIT_LOST;
	}
	return CHAT_GOING;
}

void
chat_close(struct chat_session *s, mp_proxy_t *const *p, size_t n)
{
	if (s->m != NULL) {
		/* Releasing the proxies talks to the server, which may be
		 * gone: do not wait for it long. */
		mp_manager_set_timeout(s->m, 1000);
	}
	if (s->lost) {
		/*
		 * Another server may listen at the address by now, whose
		 * objects have the idents ours had: a decref would release
		 * one of them. Closing the manager first makes the proxies'
		 * release send nothing; the dead server needs no decref.
		 */
		mp_manager_free(s->m);
		s->m = NULL;
	}
	for (size_t i = 0; i < n; i++) {
		mp_proxy_free(p[i]);
	}
	mp_proxy_free(s->seats);
	mp_manager_free(s->m);
	mp_free(s->server_id);
}

/* Who answers at the address now: nobody, the same server, another. */
enum answer { NOBODY, SAME, OTHER };

static enum answer
who_answers(const struct chat_session *s)
{
	const struct chat_opts *o = s->o;
	mp_manager_t *m = NULL;
	mp_proxy_t *seats = NULL;
	int rv = mp_manager_connect(o->address, o->key, o->keylen, 1000, &m);
	if (rv == 0) {
		rv = mp_manager_create(m, CHAT_SEATS, NULL, NULL, &seats);
	}
	char *id = rv == 0 ? read_server_id(seats, &rv) : NULL;
	enum answer a = NOBODY;
	if (rv == 0 && id != NULL && s->server_id != NULL) {
		a = strcmp(id, s->server_id) == 0 ? SAME : OTHER;
	}
	mp_free(id);
	mp_proxy_free(seats);
	mp_manager_free(m);
	return a;
}

int
chat_lost(struct chat_session *s, int rv)
{
	s->lost = true;
	switch (who_answers(s)) {
	case OTHER:
		chat_say("the chat server was restarted; this chat is over "
		    "(join again to chat on the new one)\n");
		break;
	case SAME:
		chat_say("the connection to the chat server broke (%s); the "
		    "chat ends\n", mp_strerror(rv));
		break;
	default:
		chat_say("the chat server is gone (%s); the chat ends\n",
		    mp_strerror(rv));
	}
	return CHAT_EXIT_LOST;
}

enum chat_typed
chat_typed(struct chat_session *s, enum chat_line l, size_t len,
    mp_obj_t **text)
{
	chat_prompt_answered();
	char *shown = chat_escape(s->line, l == CHAT_LINE_OK ? len : 0,
	    CHAT_MAX_LINE);
	if (shown == NULL) {
		chat_say("out of memory; the chat ends\n");
		return CHAT_TYPED_FAIL;
	}
	/* Input from a pipe is not echoed by a terminal: echo it, so the
	 * transcript reads as the conversation did. The end of the input,
	 * or a signal, ends the prompt's line. (A terminal mpchat edits
	 * on has shown the line and ended it already.) */
	if (!s->in.term &&
	    (!s->tty || l == CHAT_LINE_EOF || l == CHAT_LINE_STOP)) {
		chat_say("%s\n", shown);
	}
	mp_free(shown);
	if (l == CHAT_LINE_LONG) {
		chat_say("line too long (more than %d bytes); not sent\n",
		    CHAT_MAX_LINE);
		return CHAT_TYPED_RETRY;
	}
	if (l != CHAT_LINE_OK || strcmp(s->line, "/quit") == 0) {
		return CHAT_TYPED_QUIT;
	}
	int rv = mp_str_new(s->line, len, text);
	if (rv == -EINVAL) {
		chat_say("the line is not valid UTF-8; not sent\n");
		return CHAT_TYPED_RETRY;
	}
	if (rv != 0) {
		chat_say("out of memory; the chat ends\n");
		return CHAT_TYPED_FAIL;
	}
	return CHAT_TYPED_SEND;
}

/*
 * The input is polled in short slices and news drained between them, so
 * a line shows at most CHAT_POLL_MS after it arrives, without a thread.
 * News that comes while the user types shows above the prompt, which
 * comes back with the typed text (term.c); off a terminal it ends the
 * prompt's line and a new prompt follows.
 */
int
chat_free_loop(struct chat_session *s, const char *prompt,
    const struct chat_free_ops *ops, void *u)
{
	for (;;) {
		if (!chat_prompt_shown()) {
			chat_prompt("%s", prompt);
		}
		size_t len = 0;
		enum chat_line l = chat_reader_line(&s->in, s->line, &len,
		    CHAT_POLL_MS);
		int rv = CHAT_GOING;
		mp_obj_t *text = NULL;
		switch (l == CHAT_LINE_TIMEOUT ? CHAT_TYPED_RETRY :
		    chat_typed(s, l, len, &text)) {
		case CHAT_TYPED_SEND:
			rv = ops->send(u, text);
			break;
		case CHAT_TYPED_RETRY:
			break;
		case CHAT_TYPED_QUIT:
			return ops->quit(u);
		case CHAT_TYPED_FAIL:
			return CHAT_EXIT_LOST;
		}
		/* After a line is sent too: what it caused (its own place in
		 * a room's order) shows before the next prompt. */
		if (rv == CHAT_GOING) {
			rv = ops->drain(u);
		}
		if (rv != CHAT_GOING) {
			return rv;
		}
	}
}
