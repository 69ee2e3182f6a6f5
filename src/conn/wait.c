/* SPDX-License-Identifier: MIT */
/* conn/wait.c: mp_conn_poll and mp_conn_wait, which see buffered messages as well as the fds. */
#include "conn/conn_internal.h"

#include <poll.h>

/* Stack space for this many fds; more are allocated. */
#define WAIT_STACK 32

int
mp_conn_poll(mp_conn_t *c, int64_t timeout_ms)
{
	MP_ASSERT(c != NULL);
	if (!c->readable) {
		return -EBADF;
	}
	if (mp__conn_frame_buffered(c)) {
		return 1;
	}
	int64_t deadline = mp__deadline_from_timeout(timeout_ms);
	return mp__fd_wait(c->fd, POLLIN, deadline);
}

static int
poll_deadline(struct pollfd *pfd, size_t n, int64_t deadline)
{
	for (;;) {
		int rv = poll(pfd, n, mp__deadline_remaining_ms(deadline));
		if (rv >= 0) {
			/* A long deadline is clamped to INT_MAX ms: go on. */
			if (rv == 0 && !mp__deadline_expired(deadline)) {
				continue;
			}
			return rv;
		}
		if (errno != EINTR) {
			return -errno;
		}
	}
}

int
mp_conn_wait(mp_conn_t *const *conns, size_t n, int64_t timeout_ms,
    bool *ready)
{
	MP_ASSERT(n == 0 || (conns != NULL && ready != NULL));
	if (n == 0 && timeout_ms < 0) {
		return -EINVAL;
	}
	if (n > INT32_MAX) {
		return -EINVAL;
	}
	struct pollfd stack[WAIT_STACK];
	struct pollfd *pfd = stack;
	if (n > WAIT_STACK) {
		pfd = mp__calloc(n, sizeof(*pfd));
		if (pfd == NULL) {
			return -ENOMEM;
		}
	}
	/*
	 * A message already in a connection's buffer makes it ready now, and
	 * then the others are only checked, not waited for.
	 */
	int buffered = 0;
	for (size_t i = 0; i < n; i++) {
		ready[i] = conns[i]->readable &&
		    mp__conn_frame_buffered(conns[i]);
		buffered += ready[i];
		pfd[i].fd = ready[i] || !conns[i]->readable ? -1 : conns[i]->fd;
		pfd[i].events = POLLIN;
		pfd[i].revents = 0;
	}
	int64_t deadline = buffered > 0 ? mp__deadline_from_timeout(0) :
	    mp__deadline_from_timeout(timeout_ms);
	int rv = poll_deadline(pfd, n, deadline);
	if (rv >= 0) {
		rv = buffered;
		for (size_t i = 0; i < n; i++) {
			if (pfd[i].fd >= 0 && pfd[i].revents != 0) {
				ready[i] = true;
				rv++;
			}
		}
	}
	if (pfd != stack) {
		mp__free(pfd);
	}
	return rv;
}
