/* SPDX-License-Identifier: MIT */
/* test_mpchat_tmux.c: mpchat in real terminals: tmux windows, keys typed, screens read. */
#include "helpers/mpchat.h"

#include <sys/wait.h>
#include <time.h>

/*
 * A tmux server of the test's own: its socket in a new directory and no
 * configuration read (-f /dev/null), so no other tmux server is touched.
 * Each participant runs in a window of session "chat"; keys go in with
 * send-keys, and what the terminal shows comes back with capture-pane,
 * read again until the expected text is there or WAIT_MS has passed.
 * A window's shell prints mpchat's exit status when it ends, and waits.
 */
static char tmux_dir[64];
static char tmux_sock[128];
static pid_t tmux_pid;

/* Between two looks at a condition: false once the bound (WAIT_MS / 2
 * at least, within the suite's timeout) has passed. */
static bool
look_again(int *looks)
{
	if (++*looks > WAIT_MS / 2 / 20) {
		return false;
	}
	struct timespec pause = { 0, 20 * 1000000 };
	nanosleep(&pause, NULL);
	return true;
}

/* tmux -S sock args...: its exit status, and *out its stdout (free). */
static int
tmux(char **out, const char *const args[])
{
	const char *argv[32] = { "tmux", "-u", "-S", tmux_sock, "-f",
		"/dev/null" };
	size_t n = 6;
	for (size_t i = 0; args[i] != NULL && n < 31; i++) {
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	char *o = NULL;
	char *err = NULL;
	int st = mp_test_run(argv, NULL, 0, &o, NULL, &err);
	if (st != 0) {
		fprintf(stderr, "tmux %s: status %d: %s", args[0], st, err);
	}
	free(err);
	if (out != NULL) {
		*out = o;
	} else {
		free(o);
	}
	return st;
}

/* Stop the private tmux server, if one runs, and wait for its end. */
static void
tmux_stop(void)
{
	if (tmux_pid <= 0) {
		return;
	}
	tmux(NULL, (const char *[]){ "kill-server", NULL });
	/* It is no child of ours (tmux daemonises), unless we reap
	 * orphans: then it is reaped here. */
	int looks = 0;
	while (waitpid(tmux_pid, NULL, WNOHANG) != tmux_pid &&
	    kill(tmux_pid, 0) == 0 && look_again(&looks)) {
	}
	cr_assert(kill(tmux_pid, 0) != 0, "tmux server %d did not stop",
	    (int)tmux_pid);
	tmux_pid = 0;
	unlink(tmux_sock);
	rmdir(tmux_dir);
}

/* The chat server of the case. */
static struct mp_test_child srv;

/* A failed case must not leave the tmux server, its windows and the chat
 * server behind. */
static void
fini(void)
{
	tmux_stop();
	if (srv.pid > 0) {
		kill(srv.pid, SIGKILL);
		mp_test_wait(&srv, WAIT_MS);
		srv.pid = 0;
	}
	mp_test_teardown();
}

TestSuite(mpchat_tmux, .init = mp_test_setup, .fini = fini, .timeout = 120);

/* The shell command that joins: `mpchat join name [--room room]`. */
static const char *
mpchat_cmd(const char *name, const char *room)
{
	static char cmd[8192];
	snprintf(cmd, sizeof(cmd), "env MPROC_AUTHKEY='%s' '%s' join %s "
	    "--connect '%s'%s%s", KEY, mpchat(), name, addr,
	    room != NULL ? " --room " : "", room != NULL ? room : "");
	return cmd;
}

/* Shell text that expands to the terminal's "icanon echo " when it is in
 * canonical mode with echo ("-icanon -echo " when raw). */
#define TTY_MODE "$(stty -a | tr ' ;' '\\n\\n' | grep -x -e -icanon " \
	"-e icanon -e -echo -e echo | tr '\\n' ' ')"

/*
 * The pane command: mpchat_cmd in the terminal, then its exit status on
 * the screen and whether the terminal is back in canonical mode with
 * echo, as mpchat found it. The shell then waits (for a line that never
 * comes, until the tmux server ends): tmux may drop what a pane's last
 * process wrote just before it exited.
 */
static const char *
join_cmd(const char *name, const char *room)
{
	static char cmd[8192 + 256];
	snprintf(cmd, sizeof(cmd), "%s; echo \"(mpchat exited: $?)\"; "
	    "echo \"(tty: " TTY_MODE ")\"; read x", mpchat_cmd(name, room));
	return cmd;
}

/* tmux must be there (scripts/setup installs it); then a chat server. */
static void
start(void)
{
	int st = mp_test_run((const char *[]){ "tmux", "-V", NULL }, NULL, 0,
	    NULL, NULL, NULL);
	cr_assert_eq(st, 0, "tmux is missing (status %d): scripts/setup "
	    "installs it (apt-get install tmux)", st);
	start_server("127.0.0.1:0", &srv);
}

static void
stop(void)
{
	tmux_stop();
	stop_server(&srv);
	srv.pid = 0;
}

/* A session "chat" whose first window, name, runs the shell command cmd. */
static void
tmux_start_cmd(const char *name, const char *cmd)
{
	snprintf(tmux_dir, sizeof(tmux_dir), "/tmp/mpchat-tmux-XXXXXX");
	cr_assert_not_null(mkdtemp(tmux_dir));
	snprintf(tmux_sock, sizeof(tmux_sock), "%s/sock", tmux_dir);
	cr_assert_eq(tmux(NULL, (const char *[]){ "new-session", "-d", "-s",
	    "chat", "-x", "100", "-y", "40", "-n", name, cmd, NULL }), 0);
	char *pid = NULL;
	cr_assert_eq(tmux(&pid, (const char *[]){ "display-message", "-p",
	    "#{pid}", NULL }), 0);
	tmux_pid = (pid_t)atoi(pid);
	free(pid);
	cr_assert(tmux_pid > 0);
}

/* A session "chat" whose first window, name, runs join_cmd. */
static void
tmux_start(const char *name, const char *room)
{
	tmux_start_cmd(name, join_cmd(name, room));
}

static void
tmux_window(const char *name, const char *room)
{
	cr_assert_eq(tmux(NULL, (const char *[]){ "new-window", "-d", "-t",
	    "chat", "-n", name, join_cmd(name, room), NULL }), 0);
}

static const char *
target(const char *win)
{
	static char t[64];
	snprintf(t, sizeof(t), "chat:%s", win);
	return t;
}

/* Type text in window win, then Enter when enter is true. */
static void
keys(const char *win, const char *text, bool enter)
{
	cr_assert_eq(tmux(NULL, (const char *[]){ "send-keys", "-t",
	    target(win), "-l", text, NULL }), 0);
	if (enter) {
		cr_assert_eq(tmux(NULL, (const char *[]){ "send-keys", "-t",
		    target(win), "Enter", NULL }), 0);
	}
}

/* Press a key in window win, by tmux's name for it (BSpace, C-u...). */
static void
press(const char *win, const char *name)
{
	cr_assert_eq(tmux(NULL, (const char *[]){ "send-keys", "-t",
	    target(win), name, NULL }), 0);
}

/* What window win has shown (its history and screen; free()). */
static char *
screen(const char *win)
{
	char *out = NULL;
	cr_assert_eq(tmux(&out, (const char *[]){ "capture-pane", "-p", "-S",
	    "-", "-t", target(win), NULL }), 0);
	return out;
}

/* Read win's screen until it shows text; returns that screen (free()). */
static char *
wait_screen(const char *win, const char *text)
{
	int looks = 0;
	for (;;) {
		char *s = screen(win);
		if (strstr(s, text) != NULL) {
			return s;
		}
		if (!look_again(&looks)) {
			cr_assert_fail("window %s never showed \"%s\"; it "
			    "shows:\n%s", win, text, s);
		}
		free(s);
	}
}

/* The last line with text (where the cursor is), trailing blanks cut. */
static const char *
last_line(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ')) {
		s[--n] = '\0';
	}
	char *nl = strrchr(s, '\n');
	return nl != NULL ? nl + 1 : s;
}

/* Wait for win to show text, with want as the line of the cursor. */
static void
expect_screen(const char *win, const char *text, const char *want)
{
	char *s = wait_screen(win, text);
	const char *last = last_line(s);
	cr_assert_str_eq(last, want, "window %s ends with \"%s\", not \"%s\"",
	    win, last, want);
	free(s);
}

/* Wait for win's mpchat to end; returns the exit status the pane's shell
 * prints, once it has shown the terminal back in its own mode. */
static int
exit_status(const char *win)
{
	char *s = wait_screen(win, "(tty: ");
	int st = -1;
	const char *at = strstr(s, "(mpchat exited: ");
	cr_assert_not_null(at, "%s", s);
	sscanf(at, "(mpchat exited: %d)", &st);
	cr_assert_not_null(strstr(s, "(tty: icanon echo )"),
	    "mpchat left the terminal in another mode:\n%s", s);
	free(s);
	return st;
}

/* How many times needle occurs in s. */
static int
count(const char *s, const char *needle)
{
	int n = 0;
	for (const char *p = strstr(s, needle); p != NULL;
	    p = strstr(p + 1, needle)) {
		n++;
	}
	return n;
}

Test(mpchat_tmux, two_terminals_take_turns)
{
	start();
	tmux_start("ana", NULL);
	expect_screen("ana", "waiting for a partner...",
	    "waiting for a partner...");
	tmux_window("bob", NULL);
	/* The prompt says whose turn it is. */
	expect_screen("ana", "bob joined the chat; you write first\n"
	    "[ana, your turn] >", "[ana, your turn] >");
	expect_screen("bob", "chatting with ana; ana writes first\n"
	    "waiting for ana...", "waiting for ana...");
	keys("ana", "hello bob", true);
	expect_screen("ana", "[ana, your turn] > hello bob\n"
	    "waiting for bob...", "waiting for bob...");
	expect_screen("bob", "ana: hello bob\n[bob, your turn] >",
	    "[bob, your turn] >");
	keys("bob", "olá, ana! tudo bem?", true);
	expect_screen("bob", "[bob, your turn] > olá, ana! tudo bem?\n"
	    "waiting for ana...", "waiting for ana...");
	expect_screen("ana", "bob: olá, ana! tudo bem?\n[ana, your turn] >",
	    "[ana, your turn] >");
	keys("ana", "/quit", true);
	free(wait_screen("ana", "[ana, your turn] > /quit\n"
	    "you left the chat"));
	free(wait_screen("bob", "ana left the chat"));
	cr_assert_eq(exit_status("ana"), 0);
	cr_assert_eq(exit_status("bob"), 0);
	stop();
}

Test(mpchat_tmux, room_news_leaves_the_typed_line_whole)
{
	start();
	tmux_start("ana", "lobby");
	expect_screen("ana", "in the room: ana\n[ana@lobby] >",
	    "[ana@lobby] >");
	tmux_window("bob", "lobby");
	expect_screen("bob", "in the room: ana, bob\n[bob@lobby] >",
	    "[bob@lobby] >");
	expect_screen("ana", "bob joined the room\n[ana@lobby] >",
	    "[ana@lobby] >");
	/* ana is typing when bob's line comes: it shows where the prompt
	 * was, and the prompt comes back under it with what ana typed. */
	keys("ana", "half a li", false);
	free(wait_screen("ana", "[ana@lobby] > half a li"));
	keys("bob", "news from bob", true);
	expect_screen("ana", "bob joined the room\nbob: news from bob\n"
	    "[ana@lobby] > half a li", "[ana@lobby] > half a li");
	keys("ana", "ne", true);
	expect_screen("ana", "[ana@lobby] > half a line\nana: half a line\n"
	    "[ana@lobby] >", "[ana@lobby] >");
	/* bob's screen: his line, then ana's, in the room's order. */
	char *s = wait_screen("bob", "ana: half a line\n[bob@lobby] >");
	const char *mine = strstr(s, "\nbob: news from bob\n");
	cr_assert(mine != NULL && mine < strstr(s, "ana: half a line"),
	    "bob's screen:\n%s", s);
	cr_assert_str_eq(last_line(s), "[bob@lobby] >");
	free(s);
	keys("bob", "/quit", true);
	free(wait_screen("bob", "you left the room"));
	expect_screen("ana", "bob left the room\n[ana@lobby] >",
	    "[ana@lobby] >");
	keys("ana", "/quit", true);
	free(wait_screen("ana", "you left the room"));
	cr_assert_eq(exit_status("ana"), 0);
	cr_assert_eq(exit_status("bob"), 0);
	stop();
}

Test(mpchat_tmux, the_typed_line_is_edited_and_kept_whole_when_it_wraps)
{
	start();
	tmux_start("ana", "lobby");
	expect_screen("ana", "in the room: ana\n[ana@lobby] >",
	    "[ana@lobby] >");
	/* Backspace takes a whole character (é is two bytes), the arrow
	 * keys do nothing, Ctrl-W takes a word, Ctrl-U the line. */
	keys("ana", "junk", false);
	press("ana", "C-u");
	keys("ana", "olx", false);
	press("ana", "BSpace");
	keys("ana", "é", false);
	press("ana", "BSpace");
	keys("ana", "á mundo cruel", false);
	press("ana", "Left");
	press("ana", "Up");
	press("ana", "C-w");
	keys("ana", "!", true);
	expect_screen("ana", "[ana@lobby] > olá mundo !\nana: olá mundo !\n"
	    "[ana@lobby] >", "[ana@lobby] >");
	char *shown = screen("ana");
	cr_assert_eq(count(shown, "junk"), 0, "%s", shown);
	free(shown);

	/* 150 columns typed in a 100-column window take two rows; news
	 * erases both and the prompt comes back whole under it. */
	char typed[151];
	memset(typed, 'x', 150);
	typed[150] = '\0';
	keys("ana", typed, false);
	char want[200];
	snprintf(want, sizeof(want), "[ana@lobby] > %.86s\n%s", typed,
	    typed + 86);
	free(wait_screen("ana", want));
	tmux_window("bob", "lobby");
	char *s = wait_screen("ana", "bob joined the room\n[ana@lobby] > x");
	cr_assert_eq(count(s, "[ana@lobby] > x"), 1, "%s", s);
	cr_assert_not_null(strstr(s, want), "%s", s);
	cr_assert_str_eq(last_line(s), typed + 86);
	free(s);
	press("ana", "Enter");
	snprintf(want, sizeof(want), "ana: %.95s\n%s\n[ana@lobby] >", typed,
	    typed + 95);
	free(wait_screen("ana", want));
	free(wait_screen("bob", "ana: xxxxx"));

	/* A two-byte character that fills the row: the row breaks after
	 * it, not inside it. */
	char fill[96];
	snprintf(fill, sizeof(fill), "%.85sé", typed);
	keys("ana", fill, false);
	keys("ana", "y", false);
	snprintf(want, sizeof(want), "[ana@lobby] > %s\ny", fill);
	s = wait_screen("ana", want);
	cr_assert_str_eq(last_line(s), "y");
	free(s);
	press("ana", "Enter");
	snprintf(want, sizeof(want), "ana: %sy\n[ana@lobby] >", fill);
	free(wait_screen("ana", want));

	/* Ctrl-D on an empty line leaves, as the end of input does. */
	press("ana", "C-d");
	free(wait_screen("ana", "you left the room"));
	free(wait_screen("bob", "ana left the room"));
	keys("bob", "/quit", true);
	cr_assert_eq(exit_status("ana"), 0);
	cr_assert_eq(exit_status("bob"), 0);
	stop();
}

Test(mpchat_tmux, ctrl_z_gives_the_terminal_back_and_fg_takes_it_again)
{
	start();
	/* An interactive shell, for job control. */
	tmux_start_cmd("ana", "env PS1='$ ' bash --norc --noprofile -i");
	free(wait_screen("ana", "$"));
	keys("ana", mpchat_cmd("ana", "lobby"), true);
	expect_screen("ana", "in the room: ana\n[ana@lobby] >",
	    "[ana@lobby] >");
	keys("ana", "half", false);
	free(wait_screen("ana", "[ana@lobby] > half"));
	/* Stopped: the shell has the terminal in canonical mode with echo.
	 * (bash resets its own mode too, so this alone does not show that
	 * mpchat gave it back; the exit check of the other cases does.) */
	press("ana", "C-z");
	free(wait_screen("ana", "Stopped"));
	keys("ana", "echo \"(tty: " TTY_MODE ")\"", true);
	free(wait_screen("ana", "(tty: icanon echo )"));
	/* fg: the terminal is mpchat's again, the prompt and the typed
	 * text come back, and the line goes out whole. */
	keys("ana", "fg", true);
	expect_screen("ana", "\n[ana@lobby] > half", "[ana@lobby] > half");
	keys("ana", "way", true);
	expect_screen("ana", "[ana@lobby] > halfway\nana: halfway\n"
	    "[ana@lobby] >", "[ana@lobby] >");
	keys("ana", "/quit", true);
	free(wait_screen("ana", "you left the room"));
	keys("ana", "echo \"(after: " TTY_MODE ")\"", true);
	free(wait_screen("ana", "(after: icanon echo )"));
	stop();
}
