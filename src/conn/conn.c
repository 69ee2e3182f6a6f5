/* SPDX-License-Identifier: MIT */
/* conn/conn.c: multiprocessing.connection framing over an fd, with buffered receives. */
#include "conn/conn_internal.h"
#include "conn/pipe_ring.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* Shrink the send buffer back after a message made it larger than this. */
#define SBUF_KEEP ((size_t)4 << 20)

int
mp__conn_new(int fd, bool readable, bool writable, bool is_sock,
    mp_conn_t **out)
{
	mp_conn_t *c = mp__calloc(1, sizeof(*c));
	if (c == NULL) {
		return -ENOMEM;
	}
	c->fd = fd;
	c->readable = readable;
	c->writable = writable;
	c->is_sock = is_sock;
	c->max_message = MP_CONN_MAX_MESSAGE_DEFAULT;
	mp__buf_init(&c->sbuf);
	*out = c;
	return 0;
}

int
mp_conn_open_fd(int fd, mp_conn_t **out)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0) {
		return -errno;
	}
	int type;
	socklen_t tlen = sizeof(type);
	bool sock = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0;
	if (sock && type == SOCK_DGRAM) {
		return -EINVAL; /* framing needs a byte stream */
	}
	int acc = fl & O_ACCMODE;
	return mp__conn_new(fd, acc != O_WRONLY, acc != O_RDONLY, sock, out);
}

void
mp_conn_close(mp_conn_t *c)
{
	if (c == NULL) {
		return;
	}
	/* close(2) may fail with EINTR; the fd is gone either way on Linux. */
	close(c->fd);
	if (c->ring != NULL) {
		mp__pring_close(c->ring, c->ring_end, c->ring_refs);
	}
	mp__free(c->rview);
	mp__free(c->rbuf);
	mp__free(c->pend);
	mp__buf_fini(&c->sbuf);
	mp__free(c);
}

int
mp_conn_fileno(const mp_conn_t *c)
{
	MP_ASSERT(c != NULL);
	if (c->ring != NULL) {
		/* The caller will poll or read the fd: no more rings. */
		mp__pring_to_kernel(c->ring);
	}
	return c->fd;
}

bool
mp_conn_readable(const mp_conn_t *c)
{
	return c->readable;
}

bool
mp_conn_writable(const mp_conn_t *c)
{
	return c->writable;
}

void
mp_conn_set_max_message(mp_conn_t *c, size_t max)
{
	c->max_message = max == 0 ? MP_CONN_MAX_MESSAGE_DEFAULT : max;
}

size_t
mp_conn_max_message(const mp_conn_t *c)
{
	return c->max_message;
}

/* ---- Sending ------------------------------------------------------------ */

/*
 * Pipes have no MSG_NOSIGNAL. Block SIGPIPE in this thread around the
 * write and, if the write raised it, take the pending signal away before
 * unblocking, so the process never sees it. When the caller already blocks
 * SIGPIPE, any pending one is theirs and is left alone.
 */
static ssize_t
writev_nosignal(int fd, struct iovec *iov, int n)
{
	sigset_t pipe_set;
	sigset_t old;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	ssize_t r = writev(fd, iov, n);
	int err = errno;
	if (r < 0 && err == EPIPE && !sigismember(&old, SIGPIPE)) {
		struct timespec zero = { 0, 0 };
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 &&
		    errno == EINTR) {
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = err;
	return r;
}

/* Write every byte of iov[0..n), one syscall when the kernel takes it all. */
static int
write_iov(mp_conn_t *c, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t r;
		if (c->is_sock && n == 1) {
			/* send(2) skips sendmsg's msghdr and iovec copies. */
			r = send(c->fd, iov->iov_base, iov->iov_len,
			    MSG_NOSIGNAL);
		} else if (c->is_sock) {
			struct msghdr msg = { .msg_iov = iov,
				.msg_iovlen = (size_t)n };
			r = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
		} else {
			r = writev_nosignal(c->fd, iov, n);
		}
		if (r < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno == EAGAIN) {
				/* The caller made the fd non-blocking: wait. */
				int w = mp__fd_wait(c->fd, POLLOUT, -1);
				if (w < 0) {
					return w;
				}
				continue;
			}
			return -errno;
		}
		size_t done = (size_t)r;
		while (n > 0 && done >= iov->iov_len) {
			done -= iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + done;
			iov->iov_len -= done;
		}
	}
	return 0;
}

/* Header for n bytes into h (4 or 12 bytes); returns its length. */
static size_t
put_header(uint8_t *h, uint64_t n)
{
	if (n <= 0x7FFFFFFF) {
		h[0] = (uint8_t)(n >> 24);
		h[1] = (uint8_t)(n >> 16);
		h[2] = (uint8_t)(n >> 8);
		h[3] = (uint8_t)n;
		return 4;
	}
	memset(h, 0xFF, 4);
	for (int i = 0; i < 8; i++) {
		h[4 + i] = (uint8_t)(n >> (56 - 8 * i));
	}
	return 12;
}

static void
sbuf_trim(mp_conn_t *c)
{
	if (c->sbuf.cap > SBUF_KEEP) {
		mp__buf_fini(&c->sbuf);
	}
}

static int
send_bytes(mp_conn_t *c, const void *buf, size_t len)
{
	if (len <= MP__CONN_COPY_MAX) {
		/* Small: header and payload in one buffer, one write. */
		c->sbuf.len = 0;
		int rv = mp__buf_reserve(&c->sbuf, 4 + len);
		if (rv != 0) {
			return rv;
		}
		put_header(c->sbuf.data, len);
		if (len > 0) {
			memcpy(c->sbuf.data + 4, buf, len);
		}
		struct iovec iov = { c->sbuf.data, 4 + len };
		return write_iov(c, &iov, 1);
	}
	/* Large: no copy; the two iovecs still leave in one sendmsg. */
	uint8_t h[12];
	struct iovec iov[2] = {
		{ h, put_header(h, len) },
		{ (void *)buf, len },
	};
	return write_iov(c, iov, 2);
}

int
mp_conn_send_bytes(mp_conn_t *c, const void *buf, size_t len)
{
	MP_ASSERT(c != NULL);
	if (!c->writable) {
		return -EBADF;
	}
	if (c->ring != NULL) {
		return mp__pring_send(c, buf, len, false);
	}
	return send_bytes(c, buf, len);
}

/* The payload in sbuf after 4 reserved bytes, as one frame. */
static int
send_sbuf(mp_conn_t *c)
{
	size_t n = c->sbuf.len - 4;
	int rv;
	if (n <= 0x7FFFFFFF) {
		put_header(c->sbuf.data, n);
		struct iovec iov = { c->sbuf.data, c->sbuf.len };
		rv = write_iov(c, &iov, 1);
	} else {
		uint8_t h[12];
		struct iovec iov[2] = {
			{ h, put_header(h, n) },
			{ c->sbuf.data + 4, n },
		};
		rv = write_iov(c, iov, 2);
	}
	return rv;
}

int
mp__conn_send_frame(mp_conn_t *c, const void *p, size_t n, bool in_sbuf)
{
	return in_sbuf ? send_sbuf(c) : send_bytes(c, p, n);
}

/* Send the payload that sits in sbuf after 4 reserved bytes. */
int
mp__conn_send_sbuf(mp_conn_t *c)
{
	int rv;
	if (c->ring != NULL) {
		rv = mp__pring_send(c, c->sbuf.data + 4, c->sbuf.len - 4, true);
	} else {
		rv = send_sbuf(c);
	}
	sbuf_trim(c);
	return rv;
}

/* ---- Receiving ---------------------------------------------------------- */

/*
 * Before a receiver on a socket sleeps, it polls with non-blocking recvs
 * for up to MP__CONN_SPIN_NS. A sender whose peer sleeps pays the wake-up
 * in its send (~1 us here, more than the send itself), and the sleeper
 * pays ~20 us to get back on a CPU; a stream of small messages from a
 * process on another CPU arrives well within the spin, so neither is paid
 * (docs/internals/conn.md, "Spinning receivers"). Adaptive, as glibc's
 * adaptive mutex: after MP__CONN_SPIN_MISSES spins in a row that found
 * nothing, a connection spins only once in MP__CONN_SPIN_RETRY waits, so
 * an idle peer costs almost nothing. Returns true with *r set when the spin
 * got data, end of file or an error other than EAGAIN.
 */
static bool
recv_spin(mp_conn_t *c, void *p, size_t n, int64_t deadline, ssize_t *r)
{
	if (!c->spin) {
		return false;
	}
	if (c->spin_misses >= MP__CONN_SPIN_MISSES &&
	    ++c->spin_skipped % MP__CONN_SPIN_RETRY != 0) {
		return false;
	}
	int64_t end = mp__now_ns() + MP__CONN_SPIN_NS;
	if (deadline >= 0 && deadline < end) {
		end = deadline;
	}
	do {
		for (int i = 0; i < 8; i++) {
			*r = recv(c->fd, p, n, MSG_DONTWAIT);
			if (*r >= 0 || (errno != EAGAIN && errno != EINTR)) {
				c->spin_misses = 0;
				return true;
			}
		}
	} while (mp__now_ns() < end);
	if (c->spin_misses < MP__CONN_SPIN_MISSES) {
		c->spin_misses++;
	}
	return false;
}

/*
 * Read at most n bytes into p. With no deadline (forever) the read blocks
 * in the kernel with no poll first, after a spin when nothing has arrived.
 * With a deadline, sockets try a non-blocking recv (and the spin) before
 * polling; pipes have no per-call non-blocking flag, so they poll first.
 * Returns the byte count, 0 at end of file, -EAGAIN (nowait) or
 * -ETIMEDOUT.
 */
static ssize_t
read_some(mp_conn_t *c, void *p, size_t n, int64_t deadline, bool nowait)
{
	for (;;) {
		ssize_t r;
		if (c->spin && !nowait) {
			r = recv(c->fd, p, n, MSG_DONTWAIT);
			if (r < 0 && errno == EAGAIN &&
			    !recv_spin(c, p, n, deadline, &r) && deadline < 0) {
				r = read(c->fd, p, n);
			}
		} else if (deadline < 0 && !nowait) {
			r = read(c->fd, p, n);
		} else if (c->is_sock) {
			r = recv(c->fd, p, n, MSG_DONTWAIT);
		} else {
			errno = EAGAIN;
			r = -1;
		}
		if (r >= 0) {
			return r;
		}
		if (errno == EINTR) {
			continue;
		}
		if (errno != EAGAIN) {
			return -errno;
		}
		int w = mp__fd_wait(c->fd, POLLIN, nowait ? 0 : deadline);
		if (w < 0) {
			return w;
		}
		if (w == 0) {
			return nowait ? -EAGAIN : -ETIMEDOUT;
		}
		if (!c->is_sock) {
			r = read(c->fd, p, n);
			if (r >= 0) {
				return r;
			}
			if (errno != EINTR && errno != EAGAIN) {
				return -errno;
			}
		}
	}
}

/* Make rbuf hold at least want (<= MP__CONN_RBUF_SIZE) unconsumed bytes. */
static int
need(mp_conn_t *c, size_t want, int64_t deadline, bool nowait)
{
	if (MP__CONN_RBUF_SIZE - c->rpos < want) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rend - c->rpos);
		c->rend -= c->rpos;
		c->rpos = 0;
	}
	while (c->rend - c->rpos < want) {
		if (c->eof) {
			return c->rend == c->rpos ? MP_EOF : MP_ETRUNCATED;
		}
		/*
		 * A ring end reads no further than the frame: the bytes after
		 * it belong to whichever receiver takes the next MARKER.
		 */
		size_t room = MP__CONN_RBUF_SIZE - c->rend;
		if (c->ring != NULL && !c->kmode) {
			room = want - (c->rend - c->rpos);
		}
		ssize_t r = read_some(c, c->rbuf + c->rend, room, deadline,
		    nowait);
		if (r < 0) {
			return (int)r;
		}
		if (r == 0) {
			c->eof = true;
		}
		c->rend += (size_t)r;
	}
	return 0;
}

/*
 * Parse a header at p (avail bytes). Returns 0 with *hdr and *n set, the
 * number of bytes needed when the header is incomplete, or -EPROTO.
 */
static int
parse_header(const uint8_t *p, size_t avail, size_t *hdr, uint64_t *n)
{
	if (avail < 4) {
		return 4;
	}
	uint32_t v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
	if (v <= 0x7FFFFFFF) {
		*hdr = 4;
		*n = v;
		return 0;
	}
	if (v != 0xFFFFFFFF) {
		return -EPROTO;
	}
	if (avail < 12) {
		return 12;
	}
	uint64_t big = 0;
	for (int i = 4; i < 12; i++) {
		big = big << 8 | p[i];
	}
	*hdr = 12;
	*n = big;
	return 0;
}

/*
 * A doorbell of a ring end (pipe_ring.c) at rbuf[pos..rend), with skipped
 * of them already passed over in this scan? Only as many as were rung:
 * any other 0xFFFFFFFE is a bad header.
 */
static bool
is_bell(const mp_conn_t *c, size_t pos, uint32_t skipped)
{
	const uint8_t *p = c->rbuf + pos;
	return c->ring != NULL && c->rend - pos >= 4 && p[0] == 0xFF &&
	    p[1] == 0xFF && p[2] == 0xFF && p[3] == 0xFE &&
	    mp__pring_bells_owed(c) > skipped;
}

bool
mp__conn_frame_buffered(const mp_conn_t *c)
{
	if (c->eof || c->broken) {
		return true;
	}
	if (c->pend != NULL) {
		/* A message given back by mp__conn_unrecv is complete. */
		return c->pend_got == c->pend_len;
	}
	if (c->rbuf == NULL) {
		return false;
	}
	size_t pos = c->rpos;
	for (uint32_t k = 0; is_bell(c, pos, k); k++) {
		pos += 4;
	}
	size_t avail = c->rend - pos;
	size_t hdr;
	uint64_t n;
	int rv = parse_header(c->rbuf + pos, avail, &hdr, &n);
	if (rv < 0) {
		return true; /* the receive fails at once */
	}
	return rv == 0 && n <= avail - hdr;
}

/*
 * Finish a large message whose header is consumed: bytes land in *dst
 * until *got reaches n. With cap non-NULL *dst holds *cap bytes and grows
 * (doubling, up to n) as bytes arrive, so that a header alone cannot make
 * us allocate all it announces; with cap NULL it holds n. On a timeout
 * *got tells how far it came.
 */
static int
recv_large(mp_conn_t *c, uint8_t **dst, size_t *cap, size_t n, size_t *got,
    int64_t deadline, bool nowait)
{
	while (*got < n) {
		size_t room = cap != NULL ? *cap : n;
		if (*got == room) {
			size_t more = room > n - room ? n : room * 2;
			uint8_t *p = mp__realloc(*dst, more);
			if (p == NULL) {
				return -ENOMEM;
			}
			*dst = p;
			*cap = room = more;
		}
		ssize_t r = 0;
		if (!c->eof) {
			r = read_some(c, *dst + *got, room - *got, deadline,
			    nowait);
		}
		if (r == 0) {
			c->eof = true;
			return MP_ETRUNCATED;
		}
		if (r < 0) {
			return (int)r;
		}
		*got += (size_t)r;
	}
	return 0;
}

/*
 * Park a large message interrupted by a timeout inside the connection, so
 * the next receive continues it and the stream stays framed. A caller's
 * buffer cannot be kept, so its part is copied.
 */
static int
park(mp_conn_t *c, const struct mp__dest *d, uint8_t *dst, size_t cap,
    size_t n, size_t got)
{
	if (d->kind == MP__DEST_INTO) {
		uint8_t *p = mp__malloc(got > 0 ? got : 1);
		if (p == NULL) {
			return -ENOMEM;
		}
		memcpy(p, dst, got);
		dst = p;
		cap = got > 0 ? got : 1;
	}
	c->pend = dst;
	c->pend_cap = cap;
	c->pend_len = n;
	c->pend_got = got;
	return 0;
}

/* Continue a parked message; rbuf is empty while one is parked. */
static int
recv_pending(mp_conn_t *c, struct mp__dest *d, int64_t deadline, bool nowait)
{
	if (c->pend_len > d->max) {
		return -EMSGSIZE;
	}
	int rv = recv_large(c, &c->pend, &c->pend_cap, c->pend_len,
	    &c->pend_got, deadline, nowait);
	if (rv != 0) {
		return rv;
	}
	if (d->kind == MP__DEST_INTO) {
		memcpy(d->buf, c->pend, c->pend_len);
		mp__free(c->pend);
	} else {
		d->buf = c->pend;
		d->owned = true;
	}
	d->len = c->pend_len;
	c->pend = NULL;
	return 0;
}

int
mp__conn_recv_sock(mp_conn_t *c, struct mp__dest *d, int64_t deadline,
    bool nowait)
{
	if (c->rbuf == NULL) {
		/*
		 * Allocated at the first receive, so that ends which never
		 * receive (and idle server connections) cost no 64 KiB.
		 */
		c->rbuf = mp__malloc(MP__CONN_RBUF_SIZE);
		if (c->rbuf == NULL) {
			return -ENOMEM;
		}
	}
	if (c->pend != NULL) {
		return recv_pending(c, d, deadline, nowait);
	}
	size_t hdr;
	uint64_t n;
	for (;;) {
		if (is_bell(c, c->rpos, 0)) {
			mp__pring_bell_taken(c);
			c->rpos += 4;
			continue;
		}
		int rv = parse_header(c->rbuf + c->rpos, c->rend - c->rpos,
		    &hdr, &n);
		if (rv <= 0) {
			if (rv < 0) {
				return rv;
			}
			break;
		}
		rv = need(c, (size_t)rv, deadline, nowait);
		if (rv != 0) {
			return rv;
		}
	}
	if (n > d->max) {
		return -EMSGSIZE;
	}
	if (n <= MP__CONN_RBUF_SIZE - hdr) {
		int rv = need(c, hdr + n, deadline, nowait);
		if (rv != 0) {
			return rv;
		}
		uint8_t *src = c->rbuf + c->rpos + hdr;
		if (d->kind == MP__DEST_ALLOC) {
			d->buf = mp__malloc(n > 0 ? n : 1);
			if (d->buf == NULL) {
				return -ENOMEM;
			}
		}
		if (d->kind == MP__DEST_VIEW) {
			d->buf = src;
			c->view_pos = c->rpos;
			c->view_end = c->rend;
		} else if (n > 0) {
			memcpy(d->buf, src, n);
		}
		d->len = n;
		/* A view stays valid: rbuf moves only in the next receive. */
		c->rpos += hdr + n;
		if (c->rpos == c->rend) {
			c->rpos = c->rend = 0;
		}
		return 0;
	}
	/* Large: straight into its destination, bypassing rbuf. */
	uint8_t *dst = d->buf;
	size_t cap = (size_t)n;
	if (d->kind != MP__DEST_INTO) {
		cap = n < MP__CONN_ALLOC_AHEAD ? (size_t)n :
		    MP__CONN_ALLOC_AHEAD;
		dst = mp__malloc(cap);
		if (dst == NULL) {
			return -ENOMEM;
		}
	}
	size_t got = c->rend - c->rpos - hdr; /* < n, see the test above */
	memcpy(dst, c->rbuf + c->rpos + hdr, got);
	c->rpos = c->rend = 0;
	int rv = recv_large(c, &dst, d->kind != MP__DEST_INTO ? &cap : NULL,
	    (size_t)n, &got, deadline, nowait);
	if (rv == -ETIMEDOUT || rv == -EAGAIN) {
		int prv = park(c, d, dst, cap, n, got);
		if (prv != 0 && d->kind != MP__DEST_INTO) {
			mp__free(dst);
		}
		if (prv != 0) {
			c->broken = true; /* the part is lost: no framing */
			return prv;
		}
		return rv;
	}
	if (rv != 0) {
		if (d->kind != MP__DEST_INTO) {
			mp__free(dst);
		}
		return rv;
	}
	d->buf = dst;
	d->len = n;
	d->owned = d->kind != MP__DEST_INTO;
	return 0;
}

static int
recv_frame(mp_conn_t *c, struct mp__dest *d, int64_t deadline, bool nowait)
{
	if (!c->readable) {
		return -EBADF;
	}
	if (c->broken) {
		return -EPROTO;
	}
	if (c->ring != NULL && !c->kmode) {
		return mp__pring_recv(c, d, deadline, nowait);
	}
	return mp__conn_recv_sock(c, d, deadline, nowait);
}

int
mp__conn_recv_deadline(mp_conn_t *c, size_t maxlen, int64_t deadline_ns,
    bool nowait, void **out, size_t *len)
{
	struct mp__dest d = { .kind = MP__DEST_ALLOC, .max = maxlen };
	int rv = recv_frame(c, &d, deadline_ns, nowait);
	if (rv != 0) {
		return rv;
	}
	*out = d.buf;
	*len = d.len;
	return 0;
}

int
mp__conn_recv_into_deadline(mp_conn_t *c, void *buf, size_t cap,
    int64_t deadline_ns, bool nowait, size_t *len)
{
	struct mp__dest d = { .kind = MP__DEST_INTO, .buf = buf, .max = cap };
	int rv = recv_frame(c, &d, deadline_ns, nowait);
	if (rv != 0) {
		return rv;
	}
	*len = d.len;
	return 0;
}

/*
 * A view of the next message: into rbuf when it fits there (no copy, no
 * allocation), else a buffer of its own that *owned tells the caller to
 * free. The view is valid until the next receive on c.
 */
int
mp__conn_recv_view(mp_conn_t *c, size_t maxlen, int64_t deadline_ns,
    bool nowait, const uint8_t **data, size_t *len, bool *owned)
{
	struct mp__dest d = { .kind = MP__DEST_VIEW, .max = maxlen };
	c->view_kind = MP__VIEW_RBUF;
	int rv = recv_frame(c, &d, deadline_ns, nowait);
	if (rv != 0) {
		return rv;
	}
	*data = d.buf;
	*len = d.len;
	*owned = d.owned;
	return 0;
}

void
mp__conn_unrecv(mp_conn_t *c, const uint8_t *data, size_t len, bool owned)
{
	if (c->view_kind == MP__VIEW_RING) {
		/* A ring record, already consumed: rview keeps it. */
		c->rview_pending = true;
		return;
	}
	if (owned) {
		/* A large message bypassed rbuf, which is empty: park it
		 * whole, as a message cut by a timeout is parked. */
		c->pend = (uint8_t *)data;
		c->pend_len = len;
		c->pend_got = len;
		return;
	}
	/* The bytes are still in rbuf: only rbuf's next receive moves them. */
	c->rpos = c->view_pos;
	c->rend = c->view_end;
	if (c->view_kind == MP__VIEW_MARKER) {
		/* Its MARKER is consumed: the frame comes first again. */
		c->marker_due = true;
	}
}

int
mp_conn_recv_bytes(mp_conn_t *c, size_t maxlen, int64_t timeout_ms,
    void **out, size_t *len)
{
	MP_ASSERT(c != NULL && out != NULL && len != NULL);
	return mp__conn_recv_deadline(c, maxlen,
	    mp__deadline_from_timeout(timeout_ms), timeout_ms == 0, out, len);
}

int
mp_conn_recv_bytes_into(mp_conn_t *c, void *buf, size_t cap,
    int64_t timeout_ms, size_t *len)
{
	MP_ASSERT(c != NULL && (buf != NULL || cap == 0) && len != NULL);
	return mp__conn_recv_into_deadline(c, buf, cap,
	    mp__deadline_from_timeout(timeout_ms), timeout_ms == 0, len);
}
