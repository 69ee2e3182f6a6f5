/* SPDX-License-Identifier: MIT */
/* core/fd.c: EINTR-safe descriptor helpers. */
#include "core/internal.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

int
mp__fd_set_nonblock(int fd, bool on)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0) {
		return -errno;
	}
	int want = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
	if (want != flags && fcntl(fd, F_SETFL, want) < 0) {
		return -errno;
	}
	return 0;
}

int
mp__fd_set_cloexec(int fd)
{
	int flags = fcntl(fd, F_GETFD);
	if (flags < 0) {
		return -errno;
	}
	if ((flags & FD_CLOEXEC) == 0 && fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
		return -errno;
	}
	return 0;
}

int
mp__fd_wait(int fd, short events, int64_t deadline_ns)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	for (;;) {
		int rv = poll(&pfd, 1, mp__deadline_remaining_ms(deadline_ns));
		if (rv > 0) {
			return 1;
		}
		if (rv == 0) {
			if (mp__deadline_expired(deadline_ns)) {
				return 0;
			}
			continue;
		}
		if (errno != EINTR) {
			return -errno;
		}
	}
}

int
mp__fd_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	bool sock = true;
	while (len > 0) {
		ssize_t n;
		if (sock) {
			n = send(fd, p, len, MSG_NOSIGNAL);
			if (n < 0 && errno == ENOTSOCK) {
				sock = false;
				continue;
			}
		} else {
			n = write(fd, p, len);
		}
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno == EAGAIN) {
				int rv = mp__fd_wait(fd, POLLOUT, -1);
				if (rv < 0) {
					return rv;
				}
				continue;
			}
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
