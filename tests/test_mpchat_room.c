/* SPDX-License-Identifier: MIT */
/* test_mpchat_room.c: mpchat rooms: one order for all, history, names, deaths, restarts. */
#include "helpers/mpchat.h"

MP_TEST_SUITE(mpchat_room);

#define ROOM "lobby"

static const char *
prompt_of(const char *name)
{
	static char p[64];
	snprintf(p, sizeof(p), "[%s@%s] > ", name, ROOM);
	return p;
}

/* The next line of name's transcript that is not a prompt or an echo. */
static const char *
room_line(struct mp_test_child *ch, const char *name, const char *want)
{
	char prompt[64];
	snprintf(prompt, sizeof(prompt), "%s", prompt_of(name));
	return next_skipping(ch, prompt, want);
}

static void
expect_room(struct mp_test_child *ch, const char *name, const char *want)
{
	const char *line = room_line(ch, name, want);
	cr_assert_str_eq(line, want, "%s read \"%s\", not \"%s\"", name, line,
	    want);
}

/* name joins the room of no history; members is who is in then. */
static void
enter(const char *name, struct mp_test_child *ch, const char *members)
{
	char want[600];
	join_room(name, ROOM, ch);
	snprintf(want, sizeof(want), "joined room %s at %s as %s", ROOM, addr,
	    name);
	expect_line(ch, want);
	snprintf(want, sizeof(want), "in the room: %s", members);
	expect_line(ch, want);
}

static void
quit(struct mp_test_child *ch, const char *name)
{
	type(ch, "/quit");
	expect_room(ch, name, "you left the room");
	expect_exit(ch, 0);
}

#define MEMBERS 5
#define LINES 4

Test(mpchat_room, five_members_one_order)
{
	struct mp_test_child srv, p[MEMBERS];
	char names[MEMBERS][8], members[100] = "", want[100];
	start_server("127.0.0.1:0", &srv);
	for (int i = 0; i < MEMBERS; i++) {
		snprintf(names[i], sizeof(names[i]), "p%d", i);
		size_t n = strlen(members);
		snprintf(members + n, sizeof(members) - n, "%s%s",
		    i == 0 ? "" : ", ", names[i]);
		enter(names[i], &p[i], members);
		snprintf(want, sizeof(want), "%s joined the room", names[i]);
		for (int j = 0; j < i; j++) {
			expect_room(&p[j], names[j], want);
		}
	}
	/* Everyone types at once: the server decides one order. */
	for (int k = 0; k < LINES; k++) {
		for (int i = 0; i < MEMBERS; i++) {
			snprintf(want, sizeof(want), "line %d of %s", k,
			    names[i]);
			type(&p[i], want);
		}
	}
	static char seen[MEMBERS][MEMBERS * LINES][40];
	for (int i = 0; i < MEMBERS; i++) {
		for (int n = 0; n < MEMBERS * LINES; n++) {
			snprintf(seen[i][n], sizeof(seen[i][n]), "%s",
			    room_line(&p[i], names[i], "a line"));
		}
	}
	int next[MEMBERS] = { 0 };
	for (int n = 0; n < MEMBERS * LINES; n++) {
		for (int i = 1; i < MEMBERS; i++) {
			cr_assert_str_eq(seen[i][n], seen[0][n],
			    "line %d: p%d and p0 differ", n, i);
		}
		/* Each line once, each member's lines in the order typed. */
		int who, k, who2;
		cr_assert_eq(sscanf(seen[0][n], "p%d: line %d of p%d", &who,
		    &k, &who2), 3, "unexpected line \"%s\"", seen[0][n]);
		cr_assert(who == who2 && who >= 0 && who < MEMBERS);
		cr_assert_eq(k, next[who]++, "\"%s\" out of order", seen[0][n]);
	}
	for (int i = 0; i < MEMBERS; i++) {
		cr_assert_eq(next[i], LINES);
	}
	/* Leaving by /quit, end of input, SIGTERM: the others read it. */
	quit(&p[4], "p4");
	for (int i = 0; i < 4; i++) {
		expect_room(&p[i], names[i], "p4 left the room");
	}
	close(p[3].in_fd);
	p[3].in_fd = -1;
	expect_room(&p[3], "p3", "you left the room");
	expect_exit(&p[3], 0);
	for (int i = 0; i < 3; i++) {
		expect_room(&p[i], names[i], "p3 left the room");
	}
	cr_assert_eq(kill(p[2].pid, SIGTERM), 0);
	expect_room(&p[2], "p2", "you left the room");
	expect_exit(&p[2], 0);
	for (int i = 0; i < 2; i++) {
		expect_room(&p[i], names[i], "p2 left the room");
	}
	quit(&p[1], "p1");
	expect_room(&p[0], "p0", "p1 left the room");
	quit(&p[0], "p0");
	stop_server(&srv);
}

/* name types the lines m<from> to m<to> and sees them come back. */
static void
say_lines(struct mp_test_child *ch, const char *name, int from, int to)
{
	char want[64];
	for (int k = from; k <= to; k++) {
		snprintf(want, sizeof(want), "m%d", k);
		type(ch, want);
	}
	for (int k = from; k <= to; k++) {
		snprintf(want, sizeof(want), "%s: m%d", name, k);
		expect_room(ch, name, want);
	}
}

/* A newcomer's first lines: ana's lines m<from> to m<to>, exactly. */
static void
expect_history(struct mp_test_child *ch, int from, int to)
{
	char want[64];
	expect_prefix(ch, "joined room lobby at ");
	snprintf(want, sizeof(want), "the last %d messages:", to - from + 1);
	expect_line(ch, want);
	for (int k = from; k <= to; k++) {
		snprintf(want, sizeof(want), "ana: m%d", k);
		expect_line(ch, want);
	}
}

Test(mpchat_room, late_joiner_sees_the_last_50_lines)
{
	struct mp_test_child srv, ana, bob, carl;
	start_server("127.0.0.1:0", &srv);
	enter("ana", &ana, "ana");
	say_lines(&ana, "ana", 1, 30);
	/* Notices are no lines: they do not push lines out of history. */
	join_room("carl", ROOM, &carl);
	expect_history(&carl, 1, 30);
	expect_line(&carl, "in the room: ana, carl");
	quit(&carl, "carl");
	expect_room(&ana, "ana", "carl joined the room");
	expect_room(&ana, "ana", "carl left the room");
	say_lines(&ana, "ana", 31, 60);
	join_room("bob", ROOM, &bob);
	expect_history(&bob, 11, 60);
	expect_line(&bob, "in the room: ana, bob");
	expect_room(&ana, "ana", "bob joined the room");
	quit(&bob, "bob");
	expect_room(&ana, "ana", "bob left the room");
	quit(&ana, "ana");
	stop_server(&srv);
}

Test(mpchat_room, taken_name_refused)
{
	struct mp_test_child srv, ana, other;
	start_server("127.0.0.1:0", &srv);
	enter("ana", &ana, "ana");
	const char *same[] = { "--room", ROOM, NULL };
	char *err = NULL;
	int st = join_once("ana", same, &err);
	cr_assert_eq(st, 3, "status %d, stderr %s", st, err);
	cr_assert_str_eq(err, "mpchat: the name ana is taken in room lobby\n");
	free(err);
	const char *bad[] = { "--room", "two words", NULL };
	st = join_once("bob", bad, &err);
	cr_assert_eq(st, 2, "status %d, stderr %s", st, err);
	cr_assert_not_null(strstr(err, "a room name is 1 to 32 bytes"), "%s",
	    err);
	free(err);
	/* Names are unique within a room only. */
	join_room("ana", "kitchen", &other);
	char want[600];
	snprintf(want, sizeof(want), "joined room kitchen at %s as ana", addr);
	expect_line(&other, want);
	expect_line(&other, "in the room: ana");
	type(&other, "/quit");
	expect_news(&other, "[ana@kitchen] > /quit");
	expect_line(&other, "you left the room");
	expect_exit(&other, 0);
	/* The refused left no trace in the room. */
	quit(&ana, "ana");
	stop_server(&srv);
}

Test(mpchat_room, killed_member_noticed)
{
	struct mp_test_child srv, ana, bob, carl;
	start_server("127.0.0.1:0", &srv);
	enter("ana", &ana, "ana");
	enter("bob", &bob, "ana, bob");
	enter("carl", &carl, "ana, bob, carl");
	expect_room(&ana, "ana", "bob joined the room");
	expect_room(&ana, "ana", "carl joined the room");
	expect_room(&bob, "bob", "carl joined the room");
	cr_assert_eq(kill(bob.pid, SIGKILL), 0);
	expect_exit(&bob, -SIGKILL);
	expect_room(&ana, "ana", "bob is gone (no sign of life for 4 s)");
	expect_room(&carl, "carl", "bob is gone (no sign of life for 4 s)");
	/* His name is free again. */
	enter("bob", &bob, "ana, carl, bob");
	expect_room(&ana, "ana", "bob joined the room");
	expect_room(&carl, "carl", "bob joined the room");
	quit(&bob, "bob");
	expect_room(&ana, "ana", "bob left the room");
	expect_room(&carl, "carl", "bob left the room");
	quit(&carl, "carl");
	expect_room(&ana, "ana", "carl left the room");
	quit(&ana, "ana");
	stop_server(&srv);
}

Test(mpchat_room, bad_input_rejected_or_escaped)
{
	const struct mp_test_python *py = one_python();
	struct mp_test_child srv, ana, mal;
	start_server("127.0.0.1:0", &srv);
	enter("ana", &ana, "ana");
	static char big[6000];
	memset(big, 'x', 5000);
	type(&ana, big);
	expect_room(&ana, "ana", "line too long (more than 4096 bytes); not "
	    "sent");
	type(&ana, "\xff\xfe" "abc");
	expect_room(&ana, "ana", "the line is not valid UTF-8; not sent");
	type(&ana, "a\x1b[31mred\x07\xe2\x80\xae!");
	expect_room(&ana, "ana", "ana: a\\x1b[31mred\\x07\\u202e!");
	/* A CPython client calling the room with what mpchat never sends. */
	const char *args[] = { addr, NULL };
	mp_test_spawn_py(py->path, "mpchat_room_hostile.py", args, &mal);
	static const char *const verdicts[] = {
		"room name with a space RemoteError",
		"name with an escape ValueError",
		"empty name ValueError",
		"name not a str ValueError",
		"keyword TypeError",
		"name taken ValueError",
		"post with a wrong token KeyError",
		"post not a str TypeError",
		"post too long ValueError",
		"fetch before 0 ValueError",
		"fetch after a str ValueError",
		"post escapes accepted",
		"post after leaving KeyError",
		"done",
	};
	for (size_t i = 0; i < sizeof(verdicts) / sizeof(verdicts[0]); i++) {
		expect_line(&mal, verdicts[i]);
	}
	expect_exit(&mal, 0);
	expect_room(&ana, "ana", "mal joined the room");
	expect_room(&ana, "ana", "mal: \\x1b]0;pwned\\x07\\u202eevil\\x9b"
	    "\xf0\x9f\x98\x80");
	expect_room(&ana, "ana", "mal left the room");
	quit(&ana, "ana");
	stop_server(&srv);
}

Test(mpchat_room, cpython_member)
{
	const struct mp_test_python *pys;
	size_t n = mp_test_pythons(&pys);
	struct mp_test_child srv, ana, py;
	char script[4096];
	snprintf(script, sizeof(script), "%s",
	    mp_test_src("examples/mpchat_room.py"));
	for (size_t i = 0; i < n; i++) {
		fprintf(stderr, "mpchat room with python %s\n", pys[i].label);
		start_server("127.0.0.1:0", &srv);
		enter("ana", &ana, "ana");
		const char *argv[] = { pys[i].path, script, "pyo", ROOM, addr,
			NULL };
		mp_test_spawn(argv, &py);
		expect_line(&py, "in the room: ana, pyo");
		expect_room(&ana, "ana", "pyo joined the room");
		type(&ana, "hello python");
		expect_room(&ana, "ana", "ana: hello python");
		expect_line(&py, "ana: hello python");
		type(&py, "olá C");
		expect_line(&py, "pyo: olá C");
		expect_room(&ana, "ana", "pyo: olá C");
		close(py.in_fd);
		py.in_fd = -1;
		expect_line(&py, "you left the room");
		expect_exit(&py, 0);
		expect_room(&ana, "ana", "pyo left the room");
		quit(&ana, "ana");
		stop_server(&srv);
	}
}

Test(mpchat_room, server_restarted_members_told)
{
	struct mp_test_child old, srv, ana, bob, carl, dave;
	start_server("127.0.0.1:0", &old);
	enter("ana", &ana, "ana");
	enter("bob", &bob, "ana, bob");
	expect_room(&ana, "ana", "bob joined the room");
	restart_server(&old, &srv, &ana, &bob);
	/* carl's room on the new server has the ident ana's had on the
	 * old one: ana's and bob's ends must not touch it. */
	enter("carl", &carl, "carl");
	resume(&ana, &bob);
	expect_room(&ana, "ana", RESTARTED);
	expect_room(&bob, "bob", RESTARTED);
	expect_exit(&ana, 1);
	expect_exit(&bob, 1);
	enter("dave", &dave, "carl, dave");
	expect_room(&carl, "carl", "dave joined the room");
	type(&carl, "after the restart");
	expect_room(&carl, "carl", "carl: after the restart");
	expect_room(&dave, "dave", "carl: after the restart");
	quit(&dave, "dave");
	expect_room(&carl, "carl", "dave left the room");
	quit(&carl, "carl");
	stop_server(&srv);
}
