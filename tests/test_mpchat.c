/* SPDX-License-Identifier: MIT */
/* test_mpchat.c: the mpchat program: two people, their turns, and what ends a chat. */
#include "harness/harness.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

MP_TEST_SUITE(mpchat);

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
start_server(const char *listen, struct mp_test_child *srv)
{
	setenv("MPROC_AUTHKEY", KEY, 1);
	const char *argv[] = { mpchat(), "serve", "--listen", listen, NULL };
	mp_test_spawn(argv, srv);
	ssize_t n = mp_test_read_line(srv->out_fd, addr, sizeof(addr), WAIT_MS);
	cr_assert(n > 0, "mpchat serve printed no address");
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
	} while (n >= 0 && strstr(line, ", your turn] > ") != NULL &&
	    line[n - 1] == ' ');
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
