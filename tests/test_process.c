/* SPDX-License-Identifier: MIT */
/* test_process.c: mp_process_t: start, join, exit codes, names, exit. */
#include "harness/harness.h"
#include "os/proc.h"
#include "process/process_int.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>

MP_TEST_SUITE(process);

#define LINE_TIMEOUT_MS 20000

static int
return_arg(void *arg)
{
	return (int)(intptr_t)arg;
}

/* Tell the parent we run, then block until a signal ends us. */
static int
ready_then_block(void *arg)
{
	int fd = *(int *)arg;
	if (write(fd, "ready\n", 6) != 6) {
		return 1;
	}
	for (;;) {
		pause();
	}
}

/* Write "<name> <pid> <parent pid>\n" of the current process to fd. */
static void
report_self(int fd)
{
	char line[256];
	int n = snprintf(line, sizeof(line), "%s %d %d\n",
	    mp_process_name(mp_current_process()),
	    (int)mp_process_pid(mp_current_process()), (int)mp_parent_pid());
	if (write(fd, line, (size_t)n) != n) {
		_exit(1);
	}
}

static int
report_target(void *arg)
{
	report_self(*(int *)arg);
	return 0;
}

/* A child that starts a grandchild, both reporting themselves. */
static int
nested_target(void *arg)
{
	int fd = *(int *)arg;
	report_self(fd);
	mp_process_t *g = NULL;
	if (mp_process_new(report_target, arg, NULL, &g) != 0 ||
	    mp_process_start(g) != 0 || mp_process_join(g, MP_FOREVER) != 0) {
		return 1;
	}
	mp_process_free(g);
	mp_process_t *g2 = NULL;
	if (mp_process_new(report_target, arg, NULL, &g2) != 0) {
		return 1;
	}
	char line[64];
	int n = snprintf(line, sizeof(line), "next %s\n", mp_process_name(g2));
	mp_process_free(g2);
	return write(fd, line, (size_t)n) == n ? 0 : 1;
}

static void
open_pipe(int fds[2])
{
	cr_assert(pipe2(fds, O_CLOEXEC) == 0, "pipe2: %s", strerror(errno));
}

static void
close_pipe(int fds[2])
{
	close(fds[0]);
	close(fds[1]);
}

static void
read_expected_line(int fd, const char *want)
{
	char line[256];
	ssize_t n = mp_test_read_line(fd, line, sizeof(line), LINE_TIMEOUT_MS);
	cr_assert(n >= 0, "no line from the child (expected \"%s\")", want);
	cr_assert_str_eq(line, want);
}

static mp_process_t *
start_blocker(int ready_fd[2])
{
	mp_process_t *p = NULL;
	expect_ok(mp_process_new(ready_then_block, &ready_fd[1], NULL, &p));
	expect_ok(mp_process_start(p));
	read_expected_line(ready_fd[0], "ready");
	return p;
}

static int
exit_code_of(mp_process_t *p)
{
	int code = -1000;
	expect_ok(mp_process_exitcode(p, &code));
	return code;
}

Test(process, start_join_returns_target_value)
{
	mp_process_t *p = NULL;
	expect_ok(mp_process_new(return_arg, (void *)(intptr_t)0, NULL, &p));
	cr_assert_eq(mp_process_pid(p), 0, "no pid before the start");
	expect_ok(mp_process_start(p));
	cr_assert_gt(mp_process_pid(p), 0);
	expect_ok(mp_process_join(p, MP_FOREVER));
	cr_assert_eq(exit_code_of(p), 0);
	expect_ok(mp_process_join(p, MP_FOREVER));
	expect_ok(mp_process_free(p));
}

Test(process, exit_codes_are_the_return_value_masked_to_a_byte)
{
	static const struct {
		int ret;
		int code;
	} cases[] = {
		{ 0, 0 }, { 3, 3 }, { 255, 255 }, { 256, 0 }, { -1, 255 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		mp_process_t *p = NULL;
		expect_ok(mp_process_new(return_arg,
		    (void *)(intptr_t)cases[i].ret, NULL, &p));
		expect_ok(mp_process_start(p));
		expect_ok(mp_process_join(p, MP_FOREVER));
		cr_assert_eq(exit_code_of(p), cases[i].code,
		    "return %d must give exit code %d", cases[i].ret,
		    cases[i].code);
		expect_ok(mp_process_free(p));
	}
}

Test(process, kill_gives_minus_9)
{
	int ready[2];
	open_pipe(ready);
	mp_process_t *p = start_blocker(ready);
	cr_assert(mp_process_is_alive(p));
	expect_ok(mp_process_kill(p));
	expect_ok(mp_process_join(p, MP_FOREVER));
	cr_assert_eq(exit_code_of(p), -SIGKILL);
	cr_assert_not(mp_process_is_alive(p));
	/* Signalling a reaped child does nothing and is no error. */
	expect_ok(mp_process_kill(p));
	expect_ok(mp_process_terminate(p));
	expect_ok(mp_process_free(p));
	close_pipe(ready);
}

Test(process, terminate_gives_minus_15)
{
	int ready[2];
	open_pipe(ready);
	mp_process_t *p = start_blocker(ready);
	expect_ok(mp_process_terminate(p));
	expect_ok(mp_process_join(p, MP_FOREVER));
	cr_assert_eq(exit_code_of(p), -SIGTERM);
	expect_ok(mp_process_free(p));
	close_pipe(ready);
}

Test(process, join_times_out_while_alive_then_succeeds_after_kill)
{
	int ready[2];
	open_pipe(ready);
	mp_process_t *p = start_blocker(ready);
	expect_err(mp_process_join(p, 30), -ETIMEDOUT);
	expect_err(mp_process_join(p, MP_NOWAIT), -EAGAIN);
	int code = 12345;
	expect_err(mp_process_exitcode(p, &code), -EAGAIN);
	cr_assert_eq(code, 12345, "exitcode untouched while running");
	cr_assert(mp_process_is_alive(p));
	expect_ok(mp_process_kill(p));
	expect_ok(mp_process_join(p, 60000));
	cr_assert_eq(exit_code_of(p), -SIGKILL);
	expect_ok(mp_process_free(p));
	close_pipe(ready);
}

Test(process, names_count_like_python)
{
	cr_assert_str_eq(mp_process_name(mp_current_process()), "MainProcess");
	cr_assert_eq(mp_process_pid(mp_current_process()), getpid());
	cr_assert_eq(mp_parent_pid(), 0, "Python: parent_process() is None");
	mp_process_t *a = NULL, *b = NULL, *c = NULL;
	expect_ok(mp_process_new(return_arg, NULL, NULL, &a));
	struct mp_process_opts opts = { .name = "worker" };
	expect_ok(mp_process_new(return_arg, NULL, &opts, &b));
	expect_ok(mp_process_new(return_arg, NULL, NULL, &c));
	cr_assert_str_eq(mp_process_name(a), "Process-1");
	cr_assert_str_eq(mp_process_name(b), "worker");
	/* A named handle still takes its number, as in Python. */
	cr_assert_str_eq(mp_process_name(c), "Process-3");
	cr_assert_not(mp_process_is_daemon(a));
	expect_ok(mp_process_free(a));
	expect_ok(mp_process_free(b));
	expect_ok(mp_process_free(c));
}

Test(process, current_process_in_child_is_its_handle)
{
	int fds[2];
	open_pipe(fds);
	struct mp_process_opts opts = { .name = "reporter" };
	mp_process_t *p = NULL;
	expect_ok(mp_process_new(report_target, &fds[1], &opts, &p));
	expect_ok(mp_process_start(p));
	expect_ok(mp_process_join(p, MP_FOREVER));
	char want[128];
	snprintf(want, sizeof(want), "reporter %d %d", (int)mp_process_pid(p),
	    (int)getpid());
	read_expected_line(fds[0], want);
	cr_assert_eq(exit_code_of(p), 0);
	expect_ok(mp_process_free(p));
	close_pipe(fds);
}

Test(process, nested_children_are_numbered_under_their_parent)
{
	int fds[2];
	open_pipe(fds);
	mp_process_t *p = NULL, *next = NULL;
	expect_ok(mp_process_new(nested_target, &fds[1], NULL, &p));
	expect_ok(mp_process_start(p));
	expect_ok(mp_process_join(p, MP_FOREVER));
	cr_assert_eq(exit_code_of(p), 0);
	char want[128];
	snprintf(want, sizeof(want), "Process-1 %d %d", (int)mp_process_pid(p),
	    (int)getpid());
	read_expected_line(fds[0], want);
	char line[128];
	cr_assert(mp_test_read_line(fds[0], line, sizeof(line),
	    LINE_TIMEOUT_MS) > 0);
	char name[64];
	int gpid = 0, gparent = 0;
	cr_assert_eq(sscanf(line, "%63s %d %d", name, &gpid, &gparent), 3,
	    "bad line \"%s\"", line);
	cr_assert_str_eq(name, "Process-1:1");
	cr_assert_eq(gparent, (int)mp_process_pid(p),
	    "the grandchild's parent is the child");
	read_expected_line(fds[0], "next Process-1:2");
	/* The parent's own numbering went on undisturbed. */
	expect_ok(mp_process_new(return_arg, NULL, NULL, &next));
	cr_assert_str_eq(mp_process_name(next), "Process-2");
	expect_ok(mp_process_free(next));
	expect_ok(mp_process_free(p));
	close_pipe(fds);
}

Test(process, active_children_lists_running_and_reaps_finished)
{
	int ready[2];
	open_pipe(ready);
	mp_process_t *blocker = start_blocker(ready);
	mp_process_t *quick = NULL;
	void *four = (void *)(intptr_t)4;
	expect_ok(mp_process_new(return_arg, four, NULL, &quick));
	expect_ok(mp_process_start(quick));
	/* Wait until it has ended without reaping it (WNOWAIT). */
	siginfo_t info;
	cr_assert(waitid(P_PID, (id_t)mp_process_pid(quick), &info,
	    WEXITED | WNOWAIT) == 0);

	mp_process_t *list[4] = { NULL };
	cr_assert_eq(mp_active_children(list, 4), 1);
	cr_assert_eq(list[0], blocker);
	int status;
	cr_assert_eq(waitpid(mp_process_pid(quick), &status, WNOHANG), -1,
	    "active_children reaped the finished child");
	cr_assert_eq(errno, ECHILD);
	cr_assert_eq(exit_code_of(quick), 4);
	cr_assert_eq(mp_active_children(NULL, 0), 1);

	expect_ok(mp_process_kill(blocker));
	expect_ok(mp_process_join(blocker, MP_FOREVER));
	cr_assert_eq(mp_active_children(list, 4), 0);
	expect_ok(mp_process_free(blocker));
	expect_ok(mp_process_free(quick));
	close_pipe(ready);
}

/* In a child, a handle inherited from the parent is not our child. */
static int
inherited_handle_target(void *arg)
{
	mp_process_t *sibling = arg;
	int code = 0;
	code |= mp_process_join(sibling, MP_NOWAIT) != -ECHILD ? 1 : 0;
	code |= mp_process_kill(sibling) != -ECHILD ? 2 : 0;
	code |= mp_process_is_alive(sibling) ? 4 : 0;
	code |= mp_active_children(NULL, 0) != 0 ? 8 : 0;
	code |= mp_process_free(sibling) != 0 ? 16 : 0;
	/* The sibling's pidfd watches the parent's child: closed here. */
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	while (d != NULL && (e = readdir(d)) != NULL) {
		char path[300], target[256];
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(path, target, sizeof(target) - 1);
		if (n > 0) {
			target[n] = '\0';
			if (strstr(target, "pidfd") != NULL) {
				code |= 32;
			}
		}
	}
	if (d != NULL) {
		closedir(d);
	}
	return code;
}

Test(process, handles_inherited_by_a_child_are_not_its_children)
{
	int ready[2];
	open_pipe(ready);
	mp_process_t *sibling = start_blocker(ready);
	mp_process_t *p = NULL;
	expect_ok(mp_process_new(inherited_handle_target, sibling, NULL, &p));
	expect_ok(mp_process_start(p));
	expect_ok(mp_process_join(p, MP_FOREVER));
	cr_assert_eq(exit_code_of(p), 0, "the child saw wrong results (bits)");
	cr_assert(mp_process_is_alive(sibling), "the sibling was not touched");
	expect_ok(mp_process_kill(sibling));
	expect_ok(mp_process_join(sibling, MP_FOREVER));
	expect_ok(mp_process_free(sibling));
	expect_ok(mp_process_free(p));
	close_pipe(ready);
}

/* A daemon that tries to start a child: 42 when refused with -EPERM. */
static int
daemon_starts_child(void *arg)
{
	(void)arg;
	mp_process_t *c = NULL;
	if (mp_process_new(return_arg, NULL, NULL, &c) != 0) {
		return 1;
	}
	int rv = mp_process_start(c);
	mp_process_free(c);
	return rv == -EPERM ? 42 : 2;
}

Test(process, daemons_may_not_have_children)
{
	struct mp_process_opts opts = { .daemon = true };
	mp_process_t *p = NULL;
	expect_ok(mp_process_new(daemon_starts_child, NULL, &opts, &p));
	cr_assert(mp_process_is_daemon(p));
	expect_ok(mp_process_start(p));
	expect_ok(mp_process_join(p, MP_FOREVER));
	cr_assert_eq(exit_code_of(p), 42);
	expect_ok(mp_process_free(p));
}

struct exit_args {
	int gate_r;
	int gate_w;
	int report_w;
};

/* Block until the gate's write end is closed everywhere. */
static int
wait_gate(void *arg)
{
	struct exit_args *a = arg;
	char c;
	while (read(a->gate_r, &c, 1) != 0) {
	}
	return 5;
}

static int
wait_signal(void *arg)
{
	(void)arg;
	for (;;) {
		pause();
	}
	return 0;
}

/*
 * A child whose target returns without joining its own children: a
 * non-daemon grandchild held by a gate and a daemon that blocks. The
 * child's exit must terminate the daemon and wait for the grandchild.
 */
static int
leave_children_target(void *arg)
{
	struct exit_args *a = arg;
	close(a->gate_w);
	mp_process_t *g = NULL, *d = NULL;
	struct mp_process_opts daemon = { .daemon = true };
	if (mp_process_new(wait_gate, a, NULL, &g) != 0 ||
	    mp_process_start(g) != 0 ||
	    mp_process_new(wait_signal, NULL, &daemon, &d) != 0 ||
	    mp_process_start(d) != 0) {
		return 1;
	}
	char line[64];
	int n = snprintf(line, sizeof(line), "%d %d\n", (int)mp_process_pid(g),
	    (int)mp_process_pid(d));
	return write(a->report_w, line, (size_t)n) == n ? 0 : 1;
}

Test(process, child_exit_joins_children_and_terminates_daemons)
{
	int gate[2], report[2];
	open_pipe(gate);
	open_pipe(report);
	struct exit_args a = { gate[0], gate[1], report[1] };
	mp_process_t *p = NULL;
	expect_ok(mp_process_new(leave_children_target, &a, NULL, &p));
	expect_ok(mp_process_start(p));
	char line[64];
	cr_assert(mp_test_read_line(report[0], line, sizeof(line),
	    LINE_TIMEOUT_MS) > 0);
	int gpid = 0, dpid = 0;
	cr_assert_eq(sscanf(line, "%d %d", &gpid, &dpid), 2);
	/* The grandchild cannot end before the gate opens, so neither can p. */
	expect_err(mp_process_join(p, 20), -ETIMEDOUT);
	close(gate[1]);
	expect_ok(mp_process_join(p, MP_FOREVER));
	cr_assert_eq(exit_code_of(p), 0);
	cr_assert(kill(gpid, 0) == -1 && errno == ESRCH,
	    "the grandchild was reaped by its parent");
	cr_assert(kill(dpid, 0) == -1 && errno == ESRCH,
	    "the daemon was terminated and reaped by its parent");
	expect_ok(mp_process_free(p));
	close(gate[0]);
	close_pipe(report);
}

/*
 * These cases need a process of their own that ends with exit() (so that
 * the atexit handlers run) and whose stdout is a pipe: the test binary
 * re-executes itself with MP_TEST_PROCESS_HELPER set, and the constructor
 * below runs the helper before Criterion starts.
 */
static mp_process_t *helper_child;

static void
helper_report_exitcode(void)
{
	int code = 0;
	int rv = mp_process_exitcode(helper_child, &code);
	printf("exitcode %d %s\n", code, mp_err_name(rv));
	fflush(stdout);
	mp_process_free(helper_child);
}

static int
helper_print_child(void *arg)
{
	(void)arg;
	printf("child\n");
	return 0;
}

static int
helper_wait_stdin_copy(void *arg)
{
	int fd = *(int *)arg;
	char c;
	while (read(fd, &c, 1) < 0 && errno == EINTR) {
	}
	printf("child done\n");
	return 7;
}

static void
helper_run(const char *mode)
{
	/* Registered before the library's handler, so it runs after it. */
	atexit(helper_report_exitcode);
	struct mp_process_opts opts = { 0 };
	mp_target_fn fn = wait_signal;
	static int go_fd = -1;
	if (strcmp(mode, "daemon") == 0) {
		opts.daemon = true;
	} else if (strcmp(mode, "join") == 0) {
		/* The child's stdin becomes /dev/null; give it a copy. */
		go_fd = fcntl(0, F_DUPFD_CLOEXEC, 3);
		fn = helper_wait_stdin_copy;
	} else if (strcmp(mode, "stdio") == 0) {
		/* Not flushed: mp_process_start must flush it. */
		printf("parent-");
		fn = helper_print_child;
	}
	if (mp_process_new(fn, &go_fd, &opts, &helper_child) != 0 ||
	    mp_process_start(helper_child) != 0) {
		_exit(3);
	}
	if (strcmp(mode, "stdio") == 0) {
		mp_process_join(helper_child, MP_FOREVER);
		printf("end\n");
		exit(0);
	}
	printf("pid %d\n", (int)mp_process_pid(helper_child));
	fflush(stdout);
	exit(0);
}

__attribute__((constructor)) static void
helper_main(void)
{
	const char *mode = getenv("MP_TEST_PROCESS_HELPER");
	if (mode != NULL) {
		helper_run(mode);
	}
}

static void
spawn_helper(const char *mode, struct mp_test_child *child)
{
	const char *argv[] = { "/proc/self/exe", NULL };
	setenv("MP_TEST_PROCESS_HELPER", mode, 1);
	mp_test_spawn(argv, child);
	unsetenv("MP_TEST_PROCESS_HELPER");
}

static int
read_pid_line(int fd)
{
	char line[64];
	int pid = 0;
	ssize_t n = mp_test_read_line(fd, line, sizeof(line), LINE_TIMEOUT_MS);
	cr_assert(n > 0, "no pid from the helper");
	cr_assert_eq(sscanf(line, "pid %d", &pid), 1, "bad line \"%s\"", line);
	return pid;
}

/*
 * A child the helper failed to reap would outlive the case: end it before
 * any assertion can stop the case, then report.
 */
static bool
reap_check_gone(int pid)
{
	bool gone = kill(pid, 0) == -1 && errno == ESRCH;
	if (!gone) {
		kill(pid, SIGKILL);
	}
	return gone;
}

Test(process, daemon_is_terminated_when_the_parent_exits)
{
	struct mp_test_child helper;
	spawn_helper("daemon", &helper);
	int pid = read_pid_line(helper.out_fd);
	char line[64] = "";
	mp_test_read_line(helper.out_fd, line, sizeof(line), LINE_TIMEOUT_MS);
	int status = mp_test_wait(&helper, LINE_TIMEOUT_MS);
	bool gone = reap_check_gone(pid);
	cr_assert_str_eq(line, "exitcode -15 OK");
	cr_assert_eq(status, 0);
	cr_assert(gone, "the daemon %d outlived its parent", pid);
}

Test(process, non_daemon_is_joined_when_the_parent_exits)
{
	struct mp_test_child helper;
	spawn_helper("join", &helper);
	int pid = read_pid_line(helper.out_fd);
	/* The helper is now in exit(), held by its child until we say go. */
	cr_assert(write(helper.in_fd, "g", 1) == 1);
	char done[64] = "", code[64] = "";
	mp_test_read_line(helper.out_fd, done, sizeof(done), LINE_TIMEOUT_MS);
	mp_test_read_line(helper.out_fd, code, sizeof(code), LINE_TIMEOUT_MS);
	int status = mp_test_wait(&helper, LINE_TIMEOUT_MS);
	bool gone = reap_check_gone(pid);
	cr_assert_str_eq(done, "child done");
	cr_assert_str_eq(code, "exitcode 7 OK");
	cr_assert_eq(status, 0);
	cr_assert(gone, "the child %d outlived its parent", pid);
}

Test(process, buffered_stdout_is_flushed_before_the_fork)
{
	struct mp_test_child helper;
	spawn_helper("stdio", &helper);
	/* Once "parent-" only: it was flushed before the fork. */
	read_expected_line(helper.out_fd, "parent-child");
	read_expected_line(helper.out_fd, "end");
	read_expected_line(helper.out_fd, "exitcode 0 OK");
	char rest[64];
	cr_assert_eq(mp_test_read_line(helper.out_fd, rest, sizeof(rest),
	    LINE_TIMEOUT_MS), -1, "nothing after the last line");
	cr_assert_eq(mp_test_wait(&helper, LINE_TIMEOUT_MS), 0);
}

/* 0 when fd 0 is /dev/null, as Python's _close_stdin makes it. */
static int
stdin_is_devnull(void *arg)
{
	(void)arg;
	struct stat in, null;
	if (fstat(0, &in) != 0 || stat("/dev/null", &null) != 0) {
		return 2;
	}
	return S_ISCHR(in.st_mode) && in.st_rdev == null.st_rdev ? 0 : 1;
}

Test(process, child_stdin_is_dev_null_unless_kept)
{
	int fds[2];
	open_pipe(fds);
	int saved = fcntl(0, F_DUPFD_CLOEXEC, 3);
	cr_assert(saved >= 0);
	cr_assert(dup2(fds[0], 0) == 0, "stdin becomes a pipe for the case");
	mp_process_t *p = NULL, *kept = NULL;
	struct mp_process_opts keep = { .keep_stdin = true };
	expect_ok(mp_process_new(stdin_is_devnull, NULL, NULL, &p));
	expect_ok(mp_process_new(stdin_is_devnull, NULL, &keep, &kept));
	expect_ok(mp_process_start(p));
	expect_ok(mp_process_start(kept));
	expect_ok(mp_process_join(p, MP_FOREVER));
	expect_ok(mp_process_join(kept, MP_FOREVER));
	dup2(saved, 0);
	close(saved);
	cr_assert_eq(exit_code_of(p), 0);
	cr_assert_eq(exit_code_of(kept), 1, "keep_stdin leaves the pipe");
	expect_ok(mp_process_free(p));
	expect_ok(mp_process_free(kept));
	close_pipe(fds);
}

Test(process, bad_arguments_and_states_are_errors)
{
	mp_process_t *p = NULL;
	expect_err(mp_process_new(NULL, NULL, NULL, &p), -EINVAL);
	cr_assert_null(p, "out untouched on failure");
	expect_err(mp_process_new(return_arg, NULL, NULL, NULL), -EINVAL);

	expect_ok(mp_process_new(return_arg, NULL, NULL, &p));
	cr_assert_not(mp_process_is_alive(p), "not alive before the start");
	expect_err(mp_process_join(p, MP_FOREVER), -ESRCH);
	int code = 99;
	expect_err(mp_process_exitcode(p, &code), -ESRCH);
	cr_assert_eq(code, 99);
	expect_err(mp_process_terminate(p), -ESRCH);
	expect_err(mp_process_kill(p), -ESRCH);
	expect_ok(mp_process_start(p));
	expect_err(mp_process_start(p), -EALREADY);
	expect_ok(mp_process_join(p, MP_FOREVER));
	expect_err(mp_process_start(p), -EALREADY);
	expect_ok(mp_process_free(p));

	expect_ok(mp_process_free(NULL));
	expect_err(mp_process_free(mp_current_process()), -EBUSY);
	expect_err(mp_process_join(mp_current_process(), 0), -ECHILD);
}

Test(process, a_child_set_up_failure_is_reported_and_leaves_no_child)
{
	int fds[2];
	open_pipe(fds);
	mp_process_t *p = NULL;
	expect_ok(mp_process_new(report_target, &fds[1], NULL, &p));
	mp__proc_inject_start_error(-EMFILE);
	expect_err(mp_process_start(p), -EMFILE);
	mp__proc_inject_start_error(0);
	cr_assert_eq(mp_process_pid(p), 0, "the handle was not started");
	cr_assert_eq(mp_active_children(NULL, 0), 0);
	/* As Python's Process after a failed _Popen, it can start again. */
	expect_ok(mp_process_start(p));
	expect_ok(mp_process_join(p, MP_FOREVER));
	char want[64];
	snprintf(want, sizeof(want), "Process-1 %d %d", (int)mp_process_pid(p),
	    (int)getpid());
	read_expected_line(fds[0], want);
	expect_ok(mp_process_free(p));
	close_pipe(fds);
}

Test(process, free_refuses_a_running_child)
{
	int ready[2];
	open_pipe(ready);
	mp_process_t *p = start_blocker(ready);
	expect_err(mp_process_free(p), -EBUSY);
	cr_assert(mp_process_is_alive(p), "the handle is still valid");
	expect_ok(mp_process_kill(p));
	expect_ok(mp_process_join(p, MP_FOREVER));
	expect_ok(mp_process_free(p));
	close_pipe(ready);
}

Test(process, free_reaps_a_child_that_ended)
{
	mp_process_t *p = NULL;
	expect_ok(mp_process_new(return_arg, NULL, NULL, &p));
	expect_ok(mp_process_start(p));
	pid_t pid = mp_process_pid(p);
	siginfo_t info;
	cr_assert(waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) == 0);
	expect_ok(mp_process_free(p));
	int status;
	cr_assert_eq(waitpid(pid, &status, WNOHANG), -1, "no zombie left");
}

Test(process, cpu_count_matches_sysconf)
{
	int n = mp_cpu_count();
	cr_assert_geq(n, 1);
	cr_assert_eq(n, (int)sysconf(_SC_NPROCESSORS_ONLN));
}

Test(process, fallback_without_pidfd_joins_times_out_and_kills)
{
	mp__pidfd_set_disabled(true);
	int ready[2];
	open_pipe(ready);
	mp_process_t *p = start_blocker(ready);
	expect_err(mp_process_join(p, 30), -ETIMEDOUT);
	expect_err(mp_process_join(p, MP_NOWAIT), -EAGAIN);
	expect_ok(mp_process_terminate(p));
	expect_ok(mp_process_join(p, 60000));
	cr_assert_eq(exit_code_of(p), -SIGTERM);
	expect_ok(mp_process_free(p));

	mp_process_t *q = NULL;
	expect_ok(mp_process_new(return_arg, (void *)(intptr_t)9, NULL, &q));
	expect_ok(mp_process_start(q));
	expect_ok(mp_process_join(q, MP_FOREVER));
	cr_assert_eq(exit_code_of(q), 9);
	expect_ok(mp_process_free(q));
	mp__pidfd_set_disabled(false);
	close_pipe(ready);
}

Test(process, allocation_failure_is_enomem_and_leaves_out_untouched)
{
	mp_process_t *p = NULL;
	mp__alloc_fail_after(1);
	expect_err(mp_process_new(return_arg, NULL, NULL, &p), -ENOMEM);
	mp__alloc_fail_after(0);
	cr_assert_null(p);
	/* The failed call still took number 1, as Python's counter would. */
	expect_ok(mp_process_new(return_arg, NULL, NULL, &p));
	cr_assert_str_eq(mp_process_name(p), "Process-2");
	expect_ok(mp_process_free(p));
}

Test(process, sigchld_ignored_loses_the_status_without_hanging)
{
	signal(SIGCHLD, SIG_IGN);
	mp_process_t *p = NULL;
	expect_ok(mp_process_new(return_arg, NULL, NULL, &p));
	expect_ok(mp_process_start(p));
	expect_err(mp_process_join(p, MP_FOREVER), -ECHILD);
	int code = 77;
	expect_err(mp_process_exitcode(p, &code), -ECHILD);
	cr_assert_not(mp_process_is_alive(p));
	expect_ok(mp_process_free(p));
	signal(SIGCHLD, SIG_DFL);
}

#define THREAD_STARTS 25

/*
 * Where each thread keeps its process handle: in static memory rather
 * than on its stack, because a child forked by the other thread has no
 * copy of this thread's stack to find it in, and valgrind would call the
 * handle lost in that child.
 */
static mp_process_t *thread_handle[2];

static void *
start_many(void *arg)
{
	intptr_t base = (intptr_t)arg;
	for (intptr_t i = 0; i < THREAD_STARTS; i++) {
		mp_process_t **pp = &thread_handle[base != 0];
		void *arg = (void *)(base + i);
		*pp = NULL;
		if (mp_process_new(return_arg, arg, NULL, pp) != 0 ||
		    mp_process_start(*pp) != 0 ||
		    mp_process_join(*pp, MP_FOREVER) != 0) {
			return (void *)1;
		}
		int code = -1;
		if (mp_process_exitcode(*pp, &code) != 0 || code != base + i ||
		    mp_process_free(*pp) != 0) {
			return (void *)1;
		}
	}
	return NULL;
}

Test(process, threads_start_and_join_while_another_lists_children)
{
	pthread_t t[2];
	cr_assert(pthread_create(&t[0], NULL, start_many, (void *)0) == 0);
	cr_assert(pthread_create(&t[1], NULL, start_many, (void *)100) == 0);
	/* Reaping from here must never make a join in a thread fail. */
	for (int i = 0; i < 200; i++) {
		mp_process_t *list[8];
		cr_assert_leq(mp_active_children(list, 8), 2);
	}
	void *r0, *r1;
	pthread_join(t[0], &r0);
	pthread_join(t[1], &r1);
	cr_assert_null(r0, "thread 0 saw a failure");
	cr_assert_null(r1, "thread 1 saw a failure");
	cr_assert_eq(mp_active_children(NULL, 0), 0);
}
