/* SPDX-License-Identifier: MIT */
/* test_mpchat.c: the mpchat program: turns, refusals, and what ends a chat. */
#include "helpers/mpchat.h"

#include <fcntl.h>
#include <sys/stat.h>

MP_TEST_SUITE(mpchat);

/* a takes seat 1, then b seat 2; both wait for a's first line. */
static void
seat_pair(struct mp_test_child *a, const char *an, struct mp_test_child *b,
    const char *bn)
{
	char want[600];
	join(an, a);
	snprintf(want, sizeof(want), "joined the chat at %s as %s (seat 1)",
	    addr, an);
	expect_line(a, want);
	expect_line(a, "waiting for a partner...");
	join(bn, b);
	snprintf(want, sizeof(want), "joined the chat at %s as %s (seat 2)",
	    addr, bn);
	expect_line(b, want);
	snprintf(want, sizeof(want), "chatting with %s; %s writes first", an,
	    an);
	expect_line(b, want);
	snprintf(want, sizeof(want), "waiting for %s...", an);
	expect_line(b, want);
	snprintf(want, sizeof(want), "%s joined the chat; you write first", bn);
	expect_line(a, want);
}

/* ana takes seat 1, then bob seat 2; both wait for ana's first line. */
static void
seat_two(struct mp_test_child *ana, struct mp_test_child *bob)
{
	seat_pair(ana, "ana", bob, "bob");
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

/* b, a's partner, is killed: a notices and ends with status 1. */
static void
partner_killed(struct mp_test_child *a, struct mp_test_child *b,
    const char *bn)
{
	char want[200];
	cr_assert_eq(kill(b->pid, SIGKILL), 0);
	expect_exit(b, -SIGKILL);
	snprintf(want, sizeof(want), "%s is gone (no sign of life for 4 s); "
	    "the chat ends", bn);
	expect_news(a, want);
	expect_exit(a, 1);
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
	partner_killed(&ana, &bob, "bob");
	stop_server(&srv);
}

Test(mpchat, peer_killed_while_the_other_types)
{
	struct mp_test_child srv, ana, bob;
	start_server("127.0.0.1:0", &srv);
	seat_two(&ana, &bob);
	/* ana's prompt is out, with no line typed; the news follows it. */
	partner_killed(&ana, &bob, "bob");
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

/* a (seat 1) sends b one line and quits: both end with status 0. */
static void
short_conversation(struct mp_test_child *a, const char *an,
    struct mp_test_child *b, const char *bn)
{
	char want[200];
	exchange(a, an, b, bn, "one line");
	exchange(b, bn, a, an, "one answer");
	type(a, "/quit");
	snprintf(want, sizeof(want), "[%s, your turn] > /quit", an);
	expect_line(a, want);
	expect_line(a, "you left the chat");
	snprintf(want, sizeof(want), "%s left the chat", an);
	expect_line(b, want);
	expect_exit(a, 0);
	expect_exit(b, 0);
}

Test(mpchat, one_server_serves_one_conversation_after_another)
{
	struct mp_test_child srv, a, b;
	start_server("127.0.0.1:0", &srv);
	seat_pair(&a, "ana", &b, "bob");
	short_conversation(&a, "ana", &b, "bob");
	/* Ended by seat 2's end of input. */
	seat_pair(&a, "carl", &b, "dave");
	exchange(&a, "carl", &b, "dave", "hi dave");
	close(b.in_fd);
	b.in_fd = -1;
	expect_line(&b, "[dave, your turn] > ");
	expect_line(&b, "you left the chat");
	expect_line(&a, "dave left the chat");
	expect_exit(&a, 0);
	expect_exit(&b, 0);
	/* Ended by a death: the survivor gives both seats back. */
	seat_pair(&a, "eve", &b, "fay");
	exchange(&a, "eve", &b, "fay", "are you there?");
	partner_killed(&a, &b, "fay");
	seat_pair(&a, "gus", &b, "hal");
	short_conversation(&a, "gus", &b, "hal");
	stop_server(&srv);
}

Test(mpchat, seats_of_the_dead_are_given_back)
{
	struct mp_test_child srv, a, b;
	start_server("127.0.0.1:0", &srv);
	seat_two(&a, &b);
	/* Both die before either notices the other's death. */
	cr_assert_eq(kill(a.pid, SIGKILL), 0);
	cr_assert_eq(kill(b.pid, SIGKILL), 0);
	expect_exit(&a, -SIGKILL);
	expect_exit(&b, -SIGKILL);
	seat_pair(&a, "carl", &b, "dave");
	short_conversation(&a, "carl", &b, "dave");
	stop_server(&srv);
}

Test(mpchat, signal_leaves_the_chat)
{
	struct mp_test_child srv, ana, bob;
	start_server("127.0.0.1:0", &srv);
	seat_two(&ana, &bob);
	/* bob waits for ana's line: SIGINT (Ctrl-C) is his /quit. */
	cr_assert_eq(kill(bob.pid, SIGINT), 0);
	expect_line(&bob, "you left the chat");
	expect_exit(&bob, 0);
	expect_news(&ana, "bob left the chat");
	expect_exit(&ana, 0);
	stop_server(&srv);
}

Test(mpchat, server_restarted_participants_told)
{
	struct mp_test_child old, srv, ana, bob;
	start_server("127.0.0.1:0", &old);
	seat_two(&ana, &bob);
	exchange(&ana, "ana", &bob, "bob", "before the restart");
	restart_server(&old, &srv, &ana, &bob);
	resume(&ana, &bob);
	expect_news(&ana, RESTARTED);
	expect_news(&bob, RESTARTED);
	expect_exit(&ana, 1);
	expect_exit(&bob, 1);
	/* The new server serves a new conversation, undisturbed. */
	seat_pair(&ana, "carl", &bob, "dave");
	short_conversation(&ana, "carl", &bob, "dave");
	stop_server(&srv);
}
