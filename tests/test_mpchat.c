/* SPDX-License-Identifier: MIT */
/* test_mpchat.c: the mpchat program: turns, refusals, and what ends a chat. */
#include "harness/harness.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

MP_TEST_SUITE(mpchat);

/* A prompt alone on its line: news came before anything was typed. */
static bool
is_prompt(const char *line, ssize_t n)
{
	return n >= 5 && line[0] == '[' && strcmp(line + n - 4, "] > ") == 0;
}

/* Failure guards only: every step waits for a line the program prints. */
#define WAIT_MS 60000
#define KEY "chat-test-key"
#define LINE_MAX_TEST 16384

static char addr[512];

static const char *
mpchat(void)
{
	static char path[4096];
	snprintf(path, sizeof(path), "%s", mp_test_bin("bin/mpchat"));
	return path;
}

/* `mpchat serve --listen listen`; addr gets the address it prints. */
static void
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

static void
start_server(const char *listen, struct mp_test_child *srv)
{
	start_server_with(listen, NULL, srv);
}

static void
stop_server(struct mp_test_child *srv)
{
	cr_assert_eq(kill(srv->pid, SIGTERM), 0);
	int st = mp_test_wait(srv, WAIT_MS);
	cr_assert_eq(st, 0, "mpchat serve exited with %d", st);
}

static void
join(const char *name, struct mp_test_child *ch)
{
	const char *argv[] = { mpchat(), "join", name, "--connect", addr,
		NULL };
	mp_test_spawn(argv, ch);
}

static void
expect_line(struct mp_test_child *ch, const char *want)
{
	static char line[LINE_MAX_TEST];
	ssize_t n = mp_test_read_line(ch->out_fd, line, sizeof(line), WAIT_MS);
	cr_assert(n >= 0, "no line from pid %d, expected \"%s\"", (int)ch->pid,
	    want);
	cr_assert_str_eq(line, want);
}

/*
 * A line that starts with prefix (the rest names an error). A prompt
 * before it is skipped: whether the news comes before or after the
 * prompt is the race the test provokes.
 */
static void
expect_prefix(struct mp_test_child *ch, const char *prefix)
{
	static char line[LINE_MAX_TEST];
	ssize_t n;
	do {
		n = mp_test_read_line(ch->out_fd, line, sizeof(line), WAIT_MS);
	} while (n >= 0 && is_prompt(line, n));
	cr_assert(n >= 0, "no line, expected \"%s...\"", prefix);
	cr_assert(strncmp(line, prefix, strlen(prefix)) == 0,
	    "got \"%s\", expected \"%s...\"", line, prefix);
}

static void
type(struct mp_test_child *ch, const char *text)
{
	size_t len = strlen(text);
	cr_assert_eq(write(ch->in_fd, text, len), (ssize_t)len);
	cr_assert_eq(write(ch->in_fd, "\n", 1), 1);
}

static void
expect_exit(struct mp_test_child *ch, int want)
{
	int st = mp_test_wait(ch, WAIT_MS);
	cr_assert_eq(st, want, "exit status %d, expected %d", st, want);
}

/* ana takes seat 1, then bob seat 2; both wait for ana's first line. */
static void
seat_two(struct mp_test_child *ana, struct mp_test_child *bob)
{
	char want[600];
	join("ana", ana);
	snprintf(want, sizeof(want), "joined the chat at %s as ana (seat 1)",
	    addr);
	expect_line(ana, want);
	expect_line(ana, "waiting for a partner...");
	join("bob", bob);
	snprintf(want, sizeof(want), "joined the chat at %s as bob (seat 2)",
	    addr);
	expect_line(bob, want);
	expect_line(bob, "chatting with ana; ana writes first");
	expect_line(bob, "waiting for ana...");
	expect_line(ana, "bob joined the chat; you write first");
}

/* One line from `from` (whose name is fname) to `to`, both transcripts. */
static void
exchange(struct mp_test_child *from, const char *fname,
    struct mp_test_child *to, const char *tname, const char *text)
{
	char want[LINE_MAX_TEST];
	type(from, text);
	snprintf(want, sizeof(want), "[%s, your turn] > %s", fname, text);
	expect_line(from, want);
	snprintf(want, sizeof(want), "waiting for %s...", tname);
	expect_line(from, want);
	snprintf(want, sizeof(want), "%s: %s", fname, text);
	expect_line(to, want);
}

Test(mpchat, help)
{
	const char *argv[] = { mpchat(), "--help", NULL };
	char *out = NULL;
	int st = mp_test_run(argv, NULL, 0, &out, NULL, NULL);
	cr_assert_eq(st, 0);
	cr_assert_not_null(strstr(out, "mpchat join NAME"), "%s", out);
	free(out);
	const char *bad[] = { mpchat(), "talk", NULL };
	char *err = NULL;
	st = mp_test_run(bad, NULL, 0, &out, NULL, &err);
	cr_assert_eq(st, 2);
	cr_assert_not_null(strstr(err, "unknown command talk"), "%s", err);
	free(out);
	free(err);
}

Test(mpchat, alternating_conversation_over_tcp)
{
	struct mp_test_child srv, ana, bob;
	start_server("127.0.0.1:0", &srv);
	seat_two(&ana, &bob);
	exchange(&ana, "ana", &bob, "bob", "hello bob");
	exchange(&bob, "bob", &ana, "ana", "hi ana, how are you?");
	exchange(&ana, "ana", &bob, "bob", "fine, olá, 日本語");
	exchange(&bob, "bob", &ana, "ana", "");
	type(&ana, "/quit");
	expect_line(&ana, "[ana, your turn] > /quit");
	expect_line(&ana, "you left the chat");
	expect_line(&bob, "ana left the chat");
	expect_exit(&ana, 0);
	expect_exit(&bob, 0);
	stop_server(&srv);
}

Test(mpchat, end_of_input_over_a_unix_socket)
{
	char dir[] = "/tmp/mpchat-test-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char path[600];
	snprintf(path, sizeof(path), "%s/chat.sock", dir);
	struct mp_test_child srv, ana, bob;
	start_server(path, &srv);
	cr_assert_str_eq(addr, path);
	seat_two(&ana, &bob);
	exchange(&ana, "ana", &bob, "bob", "are you there?");
	/* bob's input ends at his turn: he leaves, for both. */
	close(bob.in_fd);
	bob.in_fd = -1;
	expect_line(&bob, "[bob, your turn] > ");
	expect_line(&bob, "you left the chat");
	expect_line(&ana, "bob left the chat");
	expect_exit(&ana, 0);
	expect_exit(&bob, 0);
	stop_server(&srv);
	cr_assert_eq(access(path, F_OK), -1, "the socket was left behind");
	cr_assert_eq(rmdir(dir), 0);
}

/* Run `mpchat join name` to its end; returns the status, *err stderr. */
static int
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

Test(mpchat, third_participant_and_taken_name_refused)
{
	struct mp_test_child srv, ana, bob;
	start_server("127.0.0.1:0", &srv);
	seat_two(&ana, &bob);
	char *err = NULL;
	int st = join_once("carl", NULL, &err);
	cr_assert_eq(st, 3, "carl: status %d, stderr %s", st, err);
	cr_assert_str_eq(err, "mpchat: the chat is full: ana and bob are "
	    "talking\n");
	free(err);
	st = join_once("ana", NULL, &err);
	cr_assert_eq(st, 3, "second ana: status %d, stderr %s", st, err);
	cr_assert_str_eq(err, "mpchat: the name ana is taken\n");
	free(err);
	/* The refused did not disturb the two. */
	exchange(&ana, "ana", &bob, "bob", "still here");
	close(bob.in_fd);
	bob.in_fd = -1;
	expect_line(&bob, "[bob, your turn] > ");
	expect_line(&bob, "you left the chat");
	expect_line(&ana, "bob left the chat");
	expect_exit(&ana, 0);
	expect_exit(&bob, 0);
	stop_server(&srv);
}

Test(mpchat, wrong_authkey_refused)
{
	struct mp_test_child srv;
	start_server("127.0.0.1:0", &srv);
	char file[] = "/tmp/mpchat-key-XXXXXX";
	int fd = mkstemp(file);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, "not-the-key", 11), 11);
	close(fd);
	const char *extra[] = { "--authkey-file", file, NULL };
	char *err = NULL;
	int st = join_once("eve", extra, &err);
	unlink(file);
	cr_assert_eq(st, 1, "status %d, stderr %s", st, err);
	cr_assert_not_null(strstr(err, "wrong authkey"), "stderr: %s", err);
	free(err);
	/* No authkey at all is a usage error. */
	unsetenv("MPROC_AUTHKEY");
	st = join_once("eve", NULL, &err);
	cr_assert_eq(st, 2, "status %d, stderr %s", st, err);
	cr_assert_not_null(strstr(err, "no authkey"), "stderr: %s", err);
	free(err);
	stop_server(&srv);
}

Test(mpchat, peer_killed_while_the_other_waits)
{
	struct mp_test_child srv, ana, bob;
	start_server("127.0.0.1:0", &srv);
	seat_two(&ana, &bob);
	exchange(&ana, "ana", &bob, "bob", "hello");
	cr_assert_eq(kill(bob.pid, SIGKILL), 0);
	expect_exit(&bob, -SIGKILL);
	expect_line(&ana, "bob is gone (no sign of life for 4 s); the chat ends");
	expect_exit(&ana, 1);
	stop_server(&srv);
}

Test(mpchat, peer_killed_while_the_other_types)
{
	struct mp_test_child srv, ana, bob;
	start_server("127.0.0.1:0", &srv);
	seat_two(&ana, &bob);
	cr_assert_eq(kill(bob.pid, SIGKILL), 0);
	expect_exit(&bob, -SIGKILL);
	/* ana's prompt is out, with no line typed; the news follows it. */
	expect_prefix(&ana, "bob is gone (no sign of life for 4 s); the chat "
	    "ends");
	expect_exit(&ana, 1);
	stop_server(&srv);
}

Test(mpchat, server_killed_both_end)
{
	struct mp_test_child srv, ana, bob;
	start_server("127.0.0.1:0", &srv);
	seat_two(&ana, &bob);
	cr_assert_eq(kill(srv.pid, SIGKILL), 0);
	expect_exit(&srv, -SIGKILL);
	expect_prefix(&ana, "the chat server is gone (");
	expect_prefix(&bob, "the chat server is gone (");
	expect_exit(&ana, 1);
	expect_exit(&bob, 1);
}

/* Like expect_line, skipping prompts that news interrupted. */
static void
expect_news(struct mp_test_child *ch, const char *want)
{
	static char line[LINE_MAX_TEST];
	ssize_t n;
	do {
		n = mp_test_read_line(ch->out_fd, line, sizeof(line), WAIT_MS);
	} while (n >= 0 && is_prompt(line, n));
	cr_assert(n >= 0, "no line, expected \"%s\"", want);
	cr_assert_str_eq(line, want);
}

Test(mpchat, bad_input_rejected_or_escaped)
{
	struct mp_test_child srv, ana, bob;
	start_server("127.0.0.1:0", &srv);
	seat_two(&ana, &bob);
	static char big[6000];
	memset(big, 'x', 5000);
	big[5000] = '\0';
	type(&ana, big);
	expect_line(&ana, "[ana, your turn] > ");
	expect_line(&ana, "line too long (more than 4096 bytes); not sent");
	type(&ana, "\xff\xfe" "abc");
	expect_line(&ana, "[ana, your turn] > \\xff\\xfeabc");
	expect_line(&ana, "the line is not valid UTF-8; not sent");
	type(&ana, "a\x1b[31mred\x07\xe2\x80\xae!");
	expect_line(&ana, "[ana, your turn] > a\\x1b[31mred\\x07\\u202e!");
	expect_line(&ana, "waiting for bob...");
	expect_line(&bob, "ana: a\\x1b[31mred\\x07\\u202e!");
	/* The longest line that may be sent arrives whole. */
	memset(big, 'y', 4096);
	big[4096] = '\0';
	exchange(&bob, "bob", &ana, "ana", big);
	type(&ana, "/quit");
	expect_line(&ana, "[ana, your turn] > /quit");
	expect_line(&ana, "you left the chat");
	expect_line(&bob, "ana left the chat");
	expect_exit(&ana, 0);
	expect_exit(&bob, 0);
	stop_server(&srv);
}

/* The first CPython the harness found, for tests that need only one. */
static const struct mp_test_python *
one_python(void)
{
	const struct mp_test_python *pys;
	size_t n = mp_test_pythons(&pys);
	if (n == 0) {
		cr_skip_test("no CPython found");
	}
	return &pys[0];
}

Test(mpchat, hostile_peer_cannot_break_a_participant)
{
	const struct mp_test_python *py = one_python();
	struct mp_test_child srv, ana, mal;
	start_server("127.0.0.1:0", &srv);
	join("ana", &ana);
	expect_prefix(&ana, "joined the chat at ");
	expect_line(&ana, "waiting for a partner...");
	const char *args[] = { addr, NULL };
	mp_test_spawn_py(py->path, "mpchat_hostile.py", args, &mal);
	expect_line(&ana, "mal\\x1b[2Jlory joined the chat; you write first");
	type(&ana, "hi");
	expect_line(&ana, "[ana, your turn] > hi");
	expect_line(&ana, "waiting for mal\\x1b[2Jlory...");
	expect_line(&mal, "hi");
	expect_line(&ana, "(a malformed message was ignored)");
	expect_line(&ana, "(a malformed message was ignored)");
	static char want[LINE_MAX_TEST];
	int n = snprintf(want, sizeof(want), "mal\\x1b[2Jlory: ");
	memset(want + n, 'x', 4096);
	snprintf(want + n + 4096, sizeof(want) - (size_t)n - 4096,
	    " [truncated]");
	expect_line(&ana, want);
	expect_news(&ana, "mal\\x1b[2Jlory: \\x1b]0;pwned\\x07\\u202eevil\\x9b"
	    "\xf0\x9f\x98\x80");
	expect_news(&ana, "mal\\x1b[2Jlory left the chat");
	expect_exit(&ana, 0);
	expect_line(&mal, "done");
	expect_exit(&mal, 0);
	stop_server(&srv);
}

/*
 * One conversation between mpchat (C) and examples/mpchat_client.py;
 * python_first also puts the server on a Unix socket.
 */
static void
chat_with_python(const struct mp_test_python *py, bool python_first)
{
	struct mp_test_child srv, c, p;
	char dir[] = "/tmp/mpchat-test-XXXXXX";
	char path[600];
	if (python_first) {
		cr_assert_not_null(mkdtemp(dir));
		snprintf(path, sizeof(path), "%s/chat.sock", dir);
	} else {
		snprintf(path, sizeof(path), "127.0.0.1:0");
	}
	start_server(path, &srv);
	char script[4096];
	snprintf(script, sizeof(script), "%s",
	    mp_test_src("examples/mpchat_client.py"));
	const char *pargv[] = { py->path, script, "pyo", addr, NULL };
	if (python_first) {
		mp_test_spawn(pargv, &p);
		expect_line(&p, "waiting for a partner...");
		join("cleo", &c);
		expect_prefix(&c, "joined the chat at ");
		expect_line(&c, "chatting with pyo; pyo writes first");
		expect_line(&p, "cleo joined the chat; you write first");
		expect_line(&c, "waiting for pyo...");
		type(&p, "hello from python");
		expect_line(&c, "pyo: hello from python");
	} else {
		join("cleo", &c);
		expect_prefix(&c, "joined the chat at ");
		expect_line(&c, "waiting for a partner...");
		mp_test_spawn(pargv, &p);
		expect_line(&c, "pyo joined the chat; you write first");
	}
	exchange(&c, "cleo", &p, "pyo", "hello from C, ça va?");
	type(&p, "bien");
	expect_line(&c, "pyo: bien");
	exchange(&c, "cleo", &p, "pyo", "bye then");
	close(p.in_fd);
	p.in_fd = -1;
	expect_line(&p, "you left the chat");
	expect_line(&c, "pyo left the chat");
	int st = mp_test_wait(&p, WAIT_MS);
	cr_assert_eq(st, 0, "python %s exited with %d", py->label, st);
	expect_exit(&c, 0);
	stop_server(&srv);
	if (python_first) {
		cr_assert_eq(rmdir(dir), 0);
	}
}

Test(mpchat, cpython_participant_in_either_seat)
{
	const struct mp_test_python *pys;
	size_t n = mp_test_pythons(&pys);
	for (size_t i = 0; i < n; i++) {
		fprintf(stderr, "mpchat with python %s\n", pys[i].label);
		chat_with_python(&pys[i], false);
		chat_with_python(&pys[i], true);
	}
}

Test(mpchat, free_order_both_write_when_they_like)
{
	struct mp_test_child srv, ana, bob;
	start_server_with("127.0.0.1:0", "--free", &srv);
	join("ana", &ana);
	expect_prefix(&ana, "joined the chat at ");
	expect_line(&ana, "waiting for a partner...");
	join("bob", &bob);
	expect_prefix(&bob, "joined the chat at ");
	expect_line(&bob, "chatting with ana; write whenever you like");
	expect_line(&ana, "bob joined the chat; write whenever you like");
	type(&ana, "one");
	type(&ana, "two");
	expect_news(&ana, "[ana] > one");
	expect_news(&ana, "[ana] > two");
	expect_news(&bob, "ana: one");
	expect_news(&bob, "ana: two");
	type(&bob, "three");
	expect_news(&bob, "[bob] > three");
	expect_news(&ana, "bob: three");
	type(&bob, "/quit");
	expect_news(&bob, "[bob] > /quit");
	expect_news(&bob, "you left the chat");
	expect_news(&ana, "bob left the chat");
	expect_exit(&ana, 0);
	expect_exit(&bob, 0);
	stop_server(&srv);
}
