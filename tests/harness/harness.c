/* SPDX-License-Identifier: MIT */
/* harness.c: leak checks after every case, and running child programs. */
#include "harness/harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#if defined(__SANITIZE_ADDRESS__)
#define HARNESS_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HARNESS_LSAN 1
#endif
#endif
#ifdef HARNESS_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#define MAX_FDS 1024

static bool open_before[MAX_FDS];

static void
scan_fds(bool *open)
{
	memset(open, 0, sizeof(bool) * MAX_FDS);
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL) {
		return;
	}
	int self = dirfd(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] != '.' && fd != self && fd < MAX_FDS) {
			open[fd] = true;
		}
	}
	closedir(d);
}

void
mp_test_setup(void)
{
	scan_fds(open_before);
}

/*
 * Kill and reap this process's children. A failed case ends its process
 * without the cleanup it skipped; a child left running (a started
 * manager's server) would then hold the runner's output pipe open and
 * outlive the run.
 */
static void
kill_children(void)
{
	DIR *d = opendir("/proc");
	if (d == NULL) {
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char path[64];
		char stat[512];
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			continue;
		}
		ssize_t n = read(fd, stat, sizeof(stat) - 1);
		close(fd);
		stat[n > 0 ? n : 0] = '\0';
		/* "pid (comm) state ppid": comm may hold spaces, so parse
		 * after its closing parenthesis. */
		char *rp = strrchr(stat, ')');
		int ppid = 0;
		char state;
		if (rp != NULL && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 &&
		    ppid == (int)getpid()) {
			pid_t pid = (pid_t)atoi(e->d_name);
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
	}
	closedir(d);
}

void
mp_test_teardown(void)
{
	int status;
	pid_t pid = waitpid(-1, &status, WNOHANG);
	bool child_left = pid != -1 || errno != ECHILD;
	static bool open_after[MAX_FDS];
	scan_fds(open_after);
	int leaked = -1;
	for (int fd = 0; fd < MAX_FDS; fd++) {
		if (open_after[fd] && !open_before[fd]) {
			leaked = fd;
			break;
		}
	}
	/*
	 * Criterion prints assertion failures raised in .fini but does not
	 * count them, so a leak ends the case's process instead: the case is
	 * then reported as crashed, which fails the run.
	 */
	if (child_left) {
		cr_log_error("LEAK: a child process was left behind (waitpid gave %d)",
		    (int)pid);
	}
	if (leaked >= 0) {
		cr_log_error("LEAK: fd %d was opened by the case and not closed",
		    leaked);
	}
	/*
	 * A case's process ends with _exit, which skips LeakSanitizer's
	 * check at exit: run it here, so the ASan build fails a case that
	 * leaks memory as it fails one that leaks an fd.
	 */
	bool mem_leak = false;
#ifdef HARNESS_LSAN
	mem_leak = __lsan_do_recoverable_leak_check() != 0;
	if (mem_leak) {
		cr_log_error("LEAK: memory was allocated by the case and not "
		    "released (LeakSanitizer's report above)");
	}
#endif
	if (child_left || leaked >= 0 || mem_leak) {
		fflush(NULL);
		kill_children();
		_exit(99);
	}
}

static char path_buf[2][4096];

const char *
mp_test_src(const char *rel)
{
	snprintf(path_buf[0], sizeof(path_buf[0]), "%s/%s", MP_TEST_SRCDIR, rel);
	return path_buf[0];
}

const char *
mp_test_bin(const char *rel)
{
	snprintf(path_buf[1], sizeof(path_buf[1]), "%s/%s", MP_TEST_BINDIR, rel);
	return path_buf[1];
}

struct sink {
	int fd;
	char *data;
	size_t len;
	size_t cap;
};

static void
sink_read(struct sink *s)
{
	if (s->cap - s->len < 65536) {
		s->cap = s->cap * 2 + 65536;
		s->data = realloc(s->data, s->cap + 1);
		cr_assert(s->data != NULL);
	}
	ssize_t n = read(s->fd, s->data + s->len, s->cap - s->len);
	if (n > 0) {
		s->len += (size_t)n;
	} else if (n == 0 || errno != EINTR) {
		close(s->fd);
		s->fd = -1;
	}
}

int
mp_test_run(const char *const argv[], const char *input, size_t input_len,
    char **out, size_t *out_len, char **err)
{
	int in_p[2], out_p[2], err_p[2];
	cr_assert(pipe2(in_p, O_CLOEXEC) == 0 && pipe2(out_p, O_CLOEXEC) == 0 &&
	    pipe2(err_p, O_CLOEXEC) == 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		dup2(in_p[0], 0);
		dup2(out_p[1], 1);
		dup2(err_p[1], 2);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(in_p[0]);
	close(out_p[1]);
	close(err_p[1]);
	signal(SIGPIPE, SIG_IGN);
	struct sink so = { .fd = out_p[0] }, se = { .fd = err_p[0] };
	size_t written = 0;
	int in_fd = in_p[1];
	if (input_len == 0) {
		close(in_fd);
		in_fd = -1;
	}
	while (so.fd >= 0 || se.fd >= 0) {
		struct pollfd p[3] = {
			{ .fd = so.fd, .events = POLLIN },
			{ .fd = se.fd, .events = POLLIN },
			{ .fd = in_fd, .events = POLLOUT },
		};
		if (poll(p, 3, -1) < 0) {
			continue;
		}
		if (p[0].revents != 0) {
			sink_read(&so);
		}
		if (p[1].revents != 0) {
			sink_read(&se);
		}
		if (in_fd >= 0 && p[2].revents != 0) {
			ssize_t n = write(in_fd, input + written, input_len - written);
			if (n > 0) {
				written += (size_t)n;
			}
			if (n < 0 || written == input_len) {
				close(in_fd);
				in_fd = -1;
			}
		}
	}
	if (in_fd >= 0) {
		close(in_fd);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		cr_assert(errno == EINTR);
	}
	if (so.data == NULL) {
		so.data = malloc(1);
	}
	so.data[so.len] = '\0';
	if (se.data == NULL) {
		se.data = malloc(1);
	}
	se.data[se.len] = '\0';
	if (out != NULL) {
		*out = so.data;
	} else {
		free(so.data);
	}
	if (out_len != NULL) {
		*out_len = so.len;
	}
	if (err != NULL) {
		*err = se.data;
	} else {
		if (se.len > 0) {
			fputs(se.data, stderr);
		}
		free(se.data);
	}
	if (WIFSIGNALED(status)) {
		return -WTERMSIG(status);
	}
	int code = WEXITSTATUS(status);
	return code == 127 ? -1000 : code;
}

void
mp_test_spawn(const char *const argv[], struct mp_test_child *child)
{
	int in_p[2], out_p[2];
	/*
	 * "/proc/self/exe" is resolved here, not by execve: under valgrind
	 * the kernel's link names valgrind's loader, while readlink gives
	 * the test program (valgrind emulates it).
	 */
	char self[4096];
	const char *path = argv[0];
	if (strcmp(path, "/proc/self/exe") == 0) {
		ssize_t n = readlink(path, self, sizeof(self) - 1);
		cr_assert(n > 0);
		self[n] = '\0';
		path = self;
	}
	cr_assert(pipe2(in_p, O_CLOEXEC) == 0 && pipe2(out_p, O_CLOEXEC) == 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		dup2(in_p[0], 0);
		dup2(out_p[1], 1);
		execvp(path, (char *const *)argv);
		_exit(127);
	}
	close(in_p[0]);
	close(out_p[1]);
	child->pid = pid;
	child->in_fd = in_p[1];
	child->out_fd = out_p[0];
}

void
mp_test_spawn_py(const char *python, const char *script,
    const char *const args[], struct mp_test_child *child)
{
	const char *argv[32];
	size_t n = 0;
	char script_path[4096];
	snprintf(script_path, sizeof(script_path), "%s/tests/py/%s",
	    MP_TEST_SRCDIR, script);
	argv[n++] = python;
	argv[n++] = "-S";
	argv[n++] = script_path;
	for (size_t i = 0; args != NULL && args[i] != NULL && n < 31; i++) {
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	mp_test_spawn(argv, child);
}

ssize_t
mp_test_read_line(int fd, char *buf, size_t size, int timeout_ms)
{
	size_t len = 0;
	while (len + 1 < size) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int rv = poll(&p, 1, timeout_ms);
		if (rv < 0 && errno == EINTR) {
			continue;
		}
		if (rv <= 0) {
			return -1;
		}
		ssize_t n = read(fd, buf + len, 1);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			return -1;
		}
		if (buf[len] == '\n') {
			break;
		}
		len++;
	}
	buf[len] = '\0';
	return (ssize_t)len;
}

int
mp_test_wait(struct mp_test_child *child, int timeout_ms)
{
	if (child->in_fd >= 0) {
		close(child->in_fd);
		child->in_fd = -1;
	}
	if (child->out_fd >= 0) {
		close(child->out_fd);
		child->out_fd = -1;
	}
	int status = 0;
	for (int waited = 0;; waited += 10) {
		pid_t r = waitpid(child->pid, &status, WNOHANG);
		if (r == child->pid) {
			break;
		}
		if (waited >= timeout_ms) {
			kill(child->pid, SIGKILL);
			waitpid(child->pid, &status, 0);
			break;
		}
		/* Polling the exit status of a helper being shut down, not
		 * synchronising with it: its readiness comes over its pipe. */
		poll(NULL, 0, 10);
	}
	child->pid = -1;
	if (WIFSIGNALED(status)) {
		return -WTERMSIG(status);
	}
	return WEXITSTATUS(status);
}

mp_obj_t *
mp_test_int(const char *decimal)
{
	mp_obj_t *o = NULL;
	expect_ok(mp_int_from_str(decimal, &o));
	return o;
}

const char mp_test_two_1000[] =
    "10715086071862673209484250490600018105614048117055336074437503883703"
    "51051124936122493198378815695858127594672917553146825187145285692314"
    "04359845775746985748039345677748242309854210746050623711418779541821"
    "53046474983581941267398767559165543946077062914571196477686542167660"
    "429831652624386837205668069376";
