/* SPDX-License-Identifier: MIT */
/* helpers/mpchat.h: running mpchat servers and participants in tests/test_mpchat*.c. */
#ifndef MP_TEST_MPCHAT_H
#define MP_TEST_MPCHAT_H

#include "harness/harness.h"

#include <signal.h>

/*
 * Every step waits for a line the program prints; WAIT_MS only bounds a
 * step that fails. Helpers are static inline: each test file uses some.
 */
#define WAIT_MS 60000
#define KEY "chat-test-key"
#define LINE_MAX_TEST 16384

/* The address the last server started prints. */
static char addr[512];

static inline const char *
mpchat(void)
{
	static char path[4096];
	snprintf(path, sizeof(path), "%s", mp_test_bin("bin/mpchat"));
	return path;
}

/* `mpchat serve --listen listen [opt]`; addr gets the address printed. */
static inline void
start_server_with(const char *listen, const char *opt,
    struct mp_test_child *srv)
{
	setenv("MPROC_AUTHKEY", KEY, 1);
	const char *argv[] = { mpchat(), "serve", "--listen", listen, opt,
		NULL };
	mp_test_spawn(argv, srv);
	ssize_t n = mp_test_read_line(srv->out_fd, addr, sizeof(addr), WAIT_MS);
	cr_assert(n > 0, "mpchat serve printed no address");
}

static inline void
start_server(const char *listen, struct mp_test_child *srv)
{
	start_server_with(listen, NULL, srv);
}

static inline void
stop_server(struct mp_test_child *srv)
{
	cr_assert_eq(kill(srv->pid, SIGTERM), 0);
	int st = mp_test_wait(srv, WAIT_MS);
	cr_assert_eq(st, 0, "mpchat serve exited with %d", st);
}

/* `mpchat join name --connect addr [--room room]`. */
static inline void
join_room(const char *name, const char *room, struct mp_test_child *ch)
{
	const char *argv[] = { mpchat(), "join", name, "--connect", addr,
		room != NULL ? "--room" : NULL, room, NULL };
	mp_test_spawn(argv, ch);
}

static inline void
join(const char *name, struct mp_test_child *ch)
{
	join_room(name, NULL, ch);
}

/* Run `mpchat join name --connect addr extra...` to its end; returns the
 * status, *err its stderr. */
static inline int
join_once(const char *name, const char *const extra[], char **err)
{
	const char *argv[16] = { mpchat(), "join", name, "--connect", addr };
	size_t n = 5;
	for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
		argv[n++] = extra[i];
	}
	argv[n] = NULL;
	char *out = NULL;
	int st = mp_test_run(argv, NULL, 0, &out, NULL, err);
	free(out);
	return st;
}

/* A prompt alone on its line: news came before anything was typed. */
static inline bool
is_prompt(const char *line, ssize_t n)
{
	return n >= 5 && line[0] == '[' && strcmp(line + n - 4, "] > ") == 0;
}

/* The next line, which must come. */
static inline const char *
next_line(struct mp_test_child *ch, const char *want)
{
	static char line[LINE_MAX_TEST];
	ssize_t n = mp_test_read_line(ch->out_fd, line, sizeof(line), WAIT_MS);
	cr_assert(n >= 0, "no line from pid %d, expected \"%s\"", (int)ch->pid,
	    want);
	return line;
}

static inline void
expect_line(struct mp_test_child *ch, const char *want)
{
	cr_assert_str_eq(next_line(ch, want), want);
}

/*
 * The next line that does not start with skip (a prompt, or a prompt
 * and the line echoed after it): whether news comes before or after a
 * prompt is a race the tests do not decide.
 */
static inline const char *
next_skipping(struct mp_test_child *ch, const char *skip, const char *want)
{
	const char *line;
	do {
		line = next_line(ch, want);
	} while (strncmp(line, skip, strlen(skip)) == 0);
	return line;
}

/* The next line that is not a prompt news interrupted. */
static inline const char *
next_news(struct mp_test_child *ch, const char *want)
{
	const char *line;
	do {
		line = next_line(ch, want);
	} while (is_prompt(line, (ssize_t)strlen(line)));
	return line;
}

static inline void
expect_news(struct mp_test_child *ch, const char *want)
{
	cr_assert_str_eq(next_news(ch, want), want);
}

/* A line that starts with prefix (the rest names an error), after any
 * prompts. */
static inline void
expect_prefix(struct mp_test_child *ch, const char *prefix)
{
	const char *line = next_news(ch, prefix);
	cr_assert(strncmp(line, prefix, strlen(prefix)) == 0,
	    "got \"%s\", expected \"%s...\"", line, prefix);
}

static inline void
type(struct mp_test_child *ch, const char *text)
{
	size_t len = strlen(text);
	cr_assert_eq(write(ch->in_fd, text, len), (ssize_t)len);
	cr_assert_eq(write(ch->in_fd, "\n", 1), 1);
}

static inline void
expect_exit(struct mp_test_child *ch, int want)
{
	int st = mp_test_wait(ch, WAIT_MS);
	cr_assert_eq(st, want, "exit status %d, expected %d", st, want);
}

/* What a participant of a server killed and started again says. */
#define RESTARTED "the chat server was restarted; this chat is over " \
	"(join again to chat on the new one)"

/*
 * Kill the server old and start srv at its address, while the
 * participants a and b are stopped: they cannot notice the old server's
 * death before the new one listens, and so are sure to find it, as
 * participants who look a little later do. resume() lets them go on.
 */
static inline void
restart_server(struct mp_test_child *old, struct mp_test_child *srv,
    struct mp_test_child *a, struct mp_test_child *b)
{
	char same[sizeof(addr)];
	snprintf(same, sizeof(same), "%s", addr);
	cr_assert_eq(kill(a->pid, SIGSTOP), 0);
	cr_assert_eq(kill(b->pid, SIGSTOP), 0);
	cr_assert_eq(kill(old->pid, SIGKILL), 0);
	expect_exit(old, -SIGKILL);
	start_server(same, srv);
	cr_assert_str_eq(addr, same);
}

static inline void
resume(struct mp_test_child *a, struct mp_test_child *b)
{
	cr_assert_eq(kill(a->pid, SIGCONT), 0);
	cr_assert_eq(kill(b->pid, SIGCONT), 0);
}

/* The first CPython the harness found, for tests that need only one. */
static inline const struct mp_test_python *
one_python(void)
{
	const struct mp_test_python *pys;
	size_t n = mp_test_pythons(&pys);
	if (n == 0) {
		cr_skip_test("no CPython found");
	}
	return &pys[0];
}

#endif
