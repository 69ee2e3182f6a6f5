/* SPDX-License-Identifier: MIT */
/* conn/client.c: mp_client_connect, multiprocessing.connection.Client. */
#include "conn/addr.h"

#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/*
 * Connect a non-blocking socket, so the deadline holds, and make it
 * blocking again: the connection's fast path relies on blocking reads.
 */
static int
connect_one(int family, const struct sockaddr *sa, socklen_t len,
    int64_t deadline, int *out)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		return -errno;
	}
	int rv = 0;
	for (;;) {
		if (connect(fd, sa, len) == 0) {
			break;
		}
		if (errno == EINTR) {
			continue;
		}
		if (errno == EAGAIN && family == AF_UNIX) {
			/*
			 * A full Unix backlog: the kernel offers no readiness
			 * event for it, so retry after a short pause.
			 */
			if (mp__deadline_expired(deadline)) {
				rv = -ETIMEDOUT;
				goto out_close;
			}
			struct timespec ms = { 0, 1000000 };
			nanosleep(&ms, NULL);
			continue;
		}
		if (errno != EINPROGRESS) {
			rv = -errno;
			goto out_close;
		}
		int w = mp__fd_wait(fd, POLLOUT, deadline);
		if (w <= 0) {
			rv = w == 0 ? -ETIMEDOUT : w;
			goto out_close;
		}
		int err = 0;
		socklen_t elen = sizeof(err);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) {
			err = errno;
		}
		if (err != 0) {
			rv = -err;
			goto out_close;
		}
		break;
	}
	rv = mp__fd_set_nonblock(fd, false);
	if (rv != 0) {
		goto out_close;
	}
	*out = fd;
	return 0;
out_close:
	close(fd);
	return rv;
}

static int
connect_address(const struct mp__addr *a, int64_t deadline, int *fd)
{
	if (a->is_unix) {
		return connect_one(AF_UNIX, (const struct sockaddr *)&a->sun,
		    a->sun_len, deadline, fd);
	}
	struct addrinfo *res;
	int rv = mp__conn_resolve(a, false, &res);
	if (rv != 0) {
		return rv;
	}
	rv = -EHOSTUNREACH;
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		rv = connect_one(ai->ai_family, ai->ai_addr, ai->ai_addrlen,
		    deadline, fd);
		if (rv == 0 || rv == -ETIMEDOUT) {
			break;
		}
	}
	freeaddrinfo(res);
	if (rv == 0) {
		mp__conn_tune_socket(*fd);
	}
	return rv;
}

int
mp_client_connect(const char *address, const void *authkey, size_t keylen,
    int64_t timeout_ms, mp_conn_t **out)
{
	MP_ASSERT(out != NULL);
	struct mp__addr a;
	int rv = mp__conn_parse_address(address, &a);
	if (rv != 0) {
		return rv;
	}
	int64_t deadline = mp__deadline_from_timeout(timeout_ms);
	int fd;
	rv = connect_address(&a, deadline, &fd);
	if (rv != 0) {
		return rv;
	}
	mp_conn_t *c;
	rv = mp__conn_new(fd, true, true, true, &c);
	if (rv != 0) {
		close(fd);
		return rv;
	}
	if (authkey != NULL) {
		/* Client(): answer first, then deliver. */
		rv = mp__conn_handshake(c, authkey, keylen, false,
		    timeout_ms < 0 ? mp__conn_handshake_deadline(MP_FOREVER) :
		    deadline);
		if (rv != 0) {
			mp_conn_close(c);
			return rv;
		}
	}
	*out = c;
	return 0;
}
