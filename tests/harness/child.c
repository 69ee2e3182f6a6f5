/* SPDX-License-Identifier: MIT */
/* child.c: helpers for cases that fork children and talk to them over pipes. */
#include "harness/harness.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>

void *
mp_test_shared_map(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert(p != MAP_FAILED);
	return p;
}

void
mp_test_pipe(int fds[2])
{
	cr_assert(pipe2(fds, O_CLOEXEC) == 0);
}

/* In a child, a failed write ends it (status 90): the parent sees that. */
void
mp_test_send_byte(int fd, char c)
{
	while (write(fd, &c, 1) != 1) {
		if (errno != EINTR) {
			_exit(90);
		}
	}
}

char
mp_test_recv_byte(int fd)
{
	char c;
	ssize_t n;
	do {
		n = read(fd, &c, 1);
	} while (n < 0 && errno == EINTR);
	return n == 1 ? c : '\0';
}

void
mp_test_send_int(int fd, int v)
{
	while (write(fd, &v, sizeof(v)) != sizeof(v)) {
		if (errno != EINTR) {
			_exit(90);
		}
	}
}

int
mp_test_recv_int(int fd)
{
	int v = 12345;
	ssize_t n;
	do {
		n = read(fd, &v, sizeof(v));
	} while (n < 0 && errno == EINTR);
	cr_assert_eq(n, (ssize_t)sizeof(v), "the child sent no result");
	return v;
}

int
mp_test_reap(pid_t pid)
{
	int status;
	pid_t r;
	do {
		r = waitpid(pid, &status, 0);
	} while (r < 0 && errno == EINTR);
	cr_assert_eq(r, pid);
	if (WIFSIGNALED(status)) {
		return -WTERMSIG(status);
	}
	return WEXITSTATUS(status);
}
