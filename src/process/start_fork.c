/* SPDX-License-Identifier: MIT */
/* process/start_fork.c: mp_process_start by fork; the child's first steps. */
#include "process/process_int.h"
#include "os/proc.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
/* Read in the child, so a plain int: the fork copies the value in. */
static int injected_start_error;

int
mp__proc_inject_start_error(int err)
{
	mp__procs_lock();
	int old = injected_start_error;
	injected_start_error = err;
	mp__procs_unlock();
	return old;
}

static void
register_exit_function(void)
{
	/*
	 * Registered on the first start, as Python registers _exit_function
	 * on import. If atexit() fails (it only fails for memory), children
	 * are simply not reaped at exit, which the kernel then does.
	 */
	(void)atexit(mp__proc_exit_function);
}

/* Python's util._close_stdin: the child reads /dev/null, not our stdin. */
static int
child_close_stdin(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return -errno;
	}
	if (fd == 0) {
		/* fd 0 was closed; the new one must survive an exec. */
		return fcntl(0, F_SETFD, 0) == 0 ? 0 : -errno;
	}
	int rv = dup2(fd, 0) == 0 ? 0 : -errno;
	close(fd);
	return rv;
}

/*
 * The child, from fork() to the end of the target. Until the target runs
 * only async-signal-safe calls are made: the parent may have had other
 * threads, whose locks (malloc's included) are frozen in this copy. A
 * failure is written to err_fd as a negative int and ends the child with
 * 127, as libuv's uv__process_child_init does; closing err_fd is the
 * success signal the parent waits for.
 */
static _Noreturn void
child_main(struct mp_process *p, int err_fd)
{
	mp__procs_reset_in_child(p);
	int err = injected_start_error;
	if (err == 0 && !p->keep_stdin) {
		err = child_close_stdin();
	}
	if (err != 0) {
		/* Should this write fail, the parent sees EOF, then 127. */
		ssize_t n = write(err_fd, &err, sizeof(err));
		(void)n;
		_exit(127);
	}
	close(err_fd);
	int code = p->fn(p->arg);
	mp__proc_exit_function();
	fflush(NULL);
	_exit(code & 0xff);
}

/* What the child reported: 0 for EOF (set-up done), or its error. */
static int
read_start_result(int fd)
{
	int err = 0;
	size_t got = 0;
	while (got < sizeof(err)) {
		ssize_t n = read(fd, (char *)&err + got, sizeof(err) - got);
		if (n == 0) {
			break;
		}
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		got += (size_t)n;
	}
	if (got == 0) {
		return 0;
	}
	return got == sizeof(err) && err < 0 ? err : -EPROTO;
}

static int
check_startable(const struct mp_process *p)
{
	if (p->creator != getpid()) {
		return -ECHILD;
	}
	if (p->state != MP__PROC_NEW) {
		return -EALREADY;
	}
	if (mp__procs.current->daemon) {
		return -EPERM;
	}
	return 0;
}

int
mp_process_start(mp_process_t *p)
{
	MP_ASSERT(p != NULL);
	pthread_once(&exit_once, register_exit_function);

	int fds[2];
	mp__procs_lock();
	int rv = check_startable(p);
	if (rv != 0) {
		goto out_unlock;
	}
	/*
	 * The lock is held from the pipe to the listing of the child, so no
	 * concurrent start forks a child that inherits this pipe (whose write
	 * end would hold our read() open for that child's lifetime) or a
	 * pidfd that is not yet listed for the child to close (libuv's
	 * cloexec_lock). The child does not need the lock: it replaces it.
	 */
	if (pipe2(fds, O_CLOEXEC) != 0) {
		rv = -errno;
		goto out_unlock;
	}
	/* Python's Popen flushes too: buffered output must not be doubled. */
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		rv = -errno;
		goto out_close;
	}
	if (pid == 0) {
		close(fds[0]);
		child_main(p, fds[1]);
	}
	close(fds[1]);
	rv = read_start_result(fds[0]);
	close(fds[0]);
	if (rv != 0) {
		/* Not yet listed, so nobody else reaps it; it ends at once. */
		int status;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
		}
		goto out_unlock;
	}
	int pidfd = -1;
	/*
	 * Any failure (no kernel support, EMFILE, a seccomp filter) leaves
	 * the handle on the waitpid fallback rather than failing a start
	 * whose child already runs.
	 */
	(void)mp__pidfd_open(pid, &pidfd);
	p->pid = pid;
	p->pidfd = pidfd;
	p->state = MP__PROC_RUNNING;
	mp__procs_add(p);
	mp__procs_unlock();
	return 0;
out_close:
	close(fds[0]);
	close(fds[1]);
out_unlock:
	mp__procs_unlock();
	return rv;
}
