/* SPDX-License-Identifier: MIT */
/* conn/wait.c: mp_conn_poll and mp_conn_wait, which see buffered messages as well as the fds. */
#include "conn/conn_internal.h"
#include "conn/pipe_ring.h"

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
	int64_t deadline = mp__deadline_from_timeout(timeout_ms);
	if (c->ring != NULL) {
		return mp__pring_poll(c, deadline);
	}
	if (mp__conn_frame_buffered(c)) {
		return 1;
	}
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

/* Whether a receive on c returns at once (a message buffered, ...). */
static bool
ready_now(mp_conn_t *c)
{
	if (!c->readable) {
		return false;
	}
	return c->ring != NULL ? mp__pring_ready(c) :
	    mp__conn_frame_buffered(c);
}

/*
 * A ring end counted as a sleeper around the poll carries this extra
 * event bit (which changes nothing in what poll reports for it), so the
 * count is undone exactly for those.
 */
#define COUNTED POLLRDNORM

/*
 * One poll over every connection not ready yet. Returns the number ready
 * (ready[] set), 0 when nothing became ready (a ring end woken only by
 * doorbells counts as not ready), or -errno.
 */
static int
wait_once(mp_conn_t *const *conns, size_t n, struct pollfd *pfd,
    int64_t deadline, bool *ready)
{
	int buffered = 0;
	for (size_t i = 0; i < n; i++) {
		mp_conn_t *c = conns[i];
		ready[i] = ready_now(c);
		pfd[i].fd = ready[i] || !c->readable ? -1 : c->fd;
		pfd[i].events = POLLIN;
		pfd[i].revents = 0;
		if (pfd[i].fd >= 0 && c->ring != NULL) {
			int s = mp__pring_sleep_begin(c);
			if (s == 1) {
				ready[i] = true;
				pfd[i].fd = -1;
			} else if (s == 0) {
				pfd[i].events |= COUNTED;
			}
		}
		buffered += ready[i];
	}
	/*
	 * A message already in a connection's buffer makes it ready now, and
	 * then the others are only checked, not waited for.
	 */
	int rv = poll_deadline(pfd, n, buffered > 0 ?
	    mp__deadline_from_timeout(0) : deadline);
	for (size_t i = 0; i < n; i++) {
		if ((pfd[i].events & COUNTED) != 0) {
			mp__pring_sleep_end(conns[i]);
		}
	}
	if (rv < 0) {
		return rv;
	}
	rv = buffered;
	for (size_t i = 0; i < n; i++) {
		mp_conn_t *c = conns[i];
		if (pfd[i].fd >= 0 && pfd[i].revents != 0 &&
		    (c->ring == NULL || mp__pring_after_wake(c))) {
			ready[i] = true;
			rv++;
		}
	}
	return rv;
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
	int64_t deadline = mp__deadline_from_timeout(timeout_ms);
	int rv;
	do {
		rv = wait_once(conns, n, pfd, deadline, ready);
	} while (rv == 0 && !mp__deadline_expired(deadline));
	if (pfd != stack) {
		mp__free(pfd);
	}
	return rv;
}
