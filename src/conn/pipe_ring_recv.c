/* SPDX-License-Identifier: MIT */
/* conn/pipe_ring_recv.c: a duplex mp_pipe's shared rings: receiving, and readiness for poll and wait. */
#include "conn/pipe_ring.h"
#include "sync/wait.h"

#include <poll.h>
#include <string.h>
#include <sys/socket.h>

/* The protocol: docs/internals/pipe.md, and the top of pipe_ring.c. */

uint32_t
mp__pring_bells_owed(const mp_conn_t *c)
{
	struct mp__pring_dir *dir = mp__pring_recv_dir(c);
	return atomic_load_explicit(&dir->bells, memory_order_seq_cst) -
	    atomic_load_explicit(&dir->bells_taken, memory_order_relaxed);
}

void
mp__pring_bell_taken(mp_conn_t *c)
{
	atomic_fetch_add_explicit(&mp__pring_recv_dir(c)->bells_taken, 1,
	    memory_order_relaxed);
}

/*
 * Take the doorbells at the head of the socket, and nothing else: the
 * bytes after them belong to a frame. Only at a frame boundary (rbuf
 * empty) and, on a ring end, under the receive lock. Returns 0 (socket
 * empty), 1 (other bytes wait), 2 (end of file), or -errno.
 */
static int
drain_bells(mp_conn_t *c)
{
	for (;;) {
		uint8_t w[256];
		ssize_t r = recv(c->fd, w, sizeof(w), MSG_PEEK | MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EINTR) {
				continue;
			}
			return errno == EAGAIN ? 0 : -errno;
		}
		if (r == 0) {
			c->eof = true;
			return 2;
		}
		size_t owed = mp__pring_bells_owed(c);
		size_t k = 0;
		while (k < owed && 4 * k + 4 <= (size_t)r &&
		    memcmp(w + 4 * k, MP__PRING_BELL_BYTES, 4) == 0) {
			k++;
		}
		if (k == 0) {
			return 1;
		}
		while (recv(c->fd, w, 4 * k, MSG_DONTWAIT) < 0) {
			if (errno != EINTR) {
				return -errno;
			}
		}
		atomic_fetch_add_explicit(&mp__pring_recv_dir(c)->bells_taken,
		    (uint32_t)k, memory_order_relaxed);
	}
}

/* Whether the sender of d died inside a MARKER's frame. */
static bool
sender_died(struct mp__pring_dir *d)
{
	if (atomic_load_explicit(&d->broken, memory_order_relaxed)) {
		return true;
	}
	if (!atomic_load_explicit(&d->send_frame, memory_order_acquire)) {
		return false;
	}
	uint32_t w = atomic_load_explicit(&d->send_lock.word,
	    memory_order_relaxed) & MP__LOCK_TID_MASK;
	if (w == 0 || mp__pid_alive((pid_t)w)) {
		return false;
	}
	atomic_store_explicit(&d->broken, 1, memory_order_relaxed);
	return true;
}

/*
 * The frame a MARKER announced (or a parked part of one), read in slices
 * so that a sender dying in the middle of it ends in -EPROTO, not a hang.
 */
static int
frame_from_socket(mp_conn_t *c, struct mp__pring_dir *dir,
    struct mp__dest *d, int64_t deadline, bool nowait)
{
	for (;;) {
		int64_t until = deadline;
		if (!nowait) {
			int64_t slice = mp__now_ns() + MP__PRING_SLICE_NS;
			if (deadline < 0 || deadline > slice) {
				until = slice;
			}
		}
		int rv = mp__conn_recv_sock(c, d, until, nowait);
		if (rv == -ETIMEDOUT && until != deadline) {
			if (sender_died(dir)) {
				return -EPROTO;
			}
			continue;
		}
		if (rv == 0) {
			if (c->marker_due && d->kind == MP__DEST_VIEW &&
			    !d->owned) {
				c->view_kind = MP__VIEW_MARKER;
			}
			c->marker_due = false;
			atomic_store_explicit(&dir->recv_frame, 0,
			    memory_order_relaxed);
		} else if (c->pend != NULL) {
			c->marker_due = false; /* the parked part goes on */
		}
		return rv;
	}
}

/* Hand a message of n bytes at src to d (consumed by the caller after). */
static int
deliver(mp_conn_t *c, struct mp__dest *d, const uint8_t *src, size_t n)
{
	if (n > d->max) {
		return -EMSGSIZE;
	}
	switch (d->kind) {
	case MP__DEST_ALLOC:
		d->buf = mp__malloc(n > 0 ? n : 1);
		if (d->buf == NULL) {
			return -ENOMEM;
		}
		break;
	case MP__DEST_INTO:
		break;
	case MP__DEST_VIEW:
		if (c->rview == NULL) {
			c->rview = mp__malloc(MP__PRING_REC_MAX);
			if (c->rview == NULL) {
				return -ENOMEM;
			}
		}
		if (src != c->rview) {
			memcpy(c->rview, src, n);
		}
		d->buf = c->rview;
		c->rview_len = n;
		c->view_kind = MP__VIEW_RING;
		d->len = n;
		return 0;
	}
	if (n > 0) {
		memcpy(d->buf, src, n);
	}
	d->len = n;
	return 0;
}

/*
 * Advance head past what we read, then wake a sender waiting for room:
 * store, fence, read the flag (the mirror of wait_room). Once, when head
 * reached what it waits for: the exchange takes the flag, and a sender
 * that wants more raises it again.
 */
static void
consumed(struct mp__pring_dir *dir, uint64_t head)
{
	atomic_store_explicit(&dir->head, head, memory_order_release);
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&dir->room_wait, memory_order_acquire) &&
	    (int64_t)(head - atomic_load_explicit(&dir->room_want,
	    memory_order_relaxed)) >= 0 &&
	    atomic_exchange_explicit(&dir->room_wait, 0,
	    memory_order_relaxed)) {
		atomic_fetch_add_explicit(&dir->room_seq, 1,
		    memory_order_seq_cst);
		mp__futex_wake(&dir->room_seq, INT32_MAX);
	}
}

/*
 * Take the record at head (the ring is not empty). Returns 0 or an error
 * as recv_frame, or 1 when it was a WRAP (look again).
 */
static int
take(mp_conn_t *c, struct mp__pring_dir *dir, struct mp__dest *d,
    uint64_t head, int64_t deadline, bool nowait)
{
	const uint8_t *data = mp__pring_data(c->ring, 1 - c->ring_end);
	uint64_t pos = head & (MP__PRING_CAP - 1);
	struct mp__prec h;
	memcpy(&h, data + pos, sizeof(h));
	switch (h.type) {
	case MP__PREC_WRAP:
		consumed(dir, head + (MP__PRING_CAP - pos));
		return 1;
	case MP__PREC_MARKER:
		atomic_store_explicit(&dir->recv_frame, 1,
		    memory_order_relaxed);
		c->marker_due = true;
		consumed(dir, head + sizeof(h));
		return frame_from_socket(c, dir, d, deadline, nowait);
	case MP__PREC_DATA:
		if (h.len <= MP__PRING_REC_MAX) {
			int rv = deliver(c, d, data + pos + sizeof(h), h.len);
			if (rv == 0) {
				consumed(dir, head + mp__pring_rec_size(h.len));
			}
			return rv;
		}
		break;
	}
	/* Only our code writes records, so this is memory corruption. */
	atomic_store_explicit(&dir->broken, 1, memory_order_relaxed);
	return -EPROTO;
}

/*
 * Spin on tail for up to MP__CONN_SPIN_NS with plain loads, adaptive as
 * conn.c's recv_spin. True when a record arrived.
 */
static bool
ring_spin(mp_conn_t *c, struct mp__pring_dir *dir, uint64_t head,
    int64_t deadline)
{
	if (!c->spin || (c->spin_misses >= MP__CONN_SPIN_MISSES &&
	    ++c->spin_skipped % MP__CONN_SPIN_RETRY != 0)) {
		return false;
	}
	int64_t end = mp__now_ns() + MP__CONN_SPIN_NS;
	if (deadline >= 0 && deadline < end) {
		end = deadline;
	}
	for (unsigned turn = 1;; turn++) {
		if (atomic_load_explicit(&dir->tail, memory_order_relaxed) !=
		    head) {
			c->spin_misses = 0;
			return true;
		}
		mp__spin_pause();
		/*
		 * As sync/wait.h's spin: after ~1.5 us, yield now and then.
		 * A sender on our CPU then runs and fills the ring for its
		 * time slice, instead of waking us once per message.
		 */
		if (turn >= MP__WAIT_PURE_TURNS &&
		    turn % MP__WAIT_YIELD_EVERY == 0) {
			if (mp__now_ns() >= end) {
				break;
			}
			sched_yield();
		}
	}
	if (c->spin_misses < MP__CONN_SPIN_MISSES) {
		c->spin_misses++;
	}
	return false;
}

/*
 * The ring is empty: wait for a record, a switch to the socket, end of
 * file or the deadline. Returns 0 to look again, -EAGAIN, -ETIMEDOUT or
 * -errno. The sleep: sleepers raised (a seq_cst read-modify-write, a full
 * fence), tail read again, then poll(2); the mirror of send_locked's
 * publish, fence, read of sleepers.
 */
static int
wait_data(mp_conn_t *c, struct mp__pring_dir *dir, uint64_t head,
    int64_t deadline, bool nowait)
{
	if (nowait) {
		int x = drain_bells(c);
		if (x < 0) {
			return x;
		}
		if (x == 2 || atomic_load_explicit(&dir->tail,
		    memory_order_acquire) != head) {
			return 0;
		}
		return -EAGAIN;
	}
	if (ring_spin(c, dir, head, deadline)) {
		return 0;
	}
	if (mp__deadline_expired(deadline)) {
		return -ETIMEDOUT;
	}
	int rv = 0;
	atomic_fetch_add_explicit(&dir->sleepers, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&dir->tail, memory_order_seq_cst) == head &&
	    !atomic_load_explicit(&dir->kernel, memory_order_acquire)) {
		rv = mp__fd_wait(c->fd, POLLIN, deadline);
		if (rv == 0) {
			rv = -ETIMEDOUT;
		} else if (rv > 0) {
			rv = drain_bells(c);
			rv = rv < 0 ? rv : 0;
		}
	}
	atomic_fetch_sub_explicit(&dir->sleepers, 1, memory_order_relaxed);
	return rv;
}

/* Give back the record mp__conn_unrecv returned to rview. */
static int
give_rview(mp_conn_t *c, struct mp__dest *d)
{
	int rv = deliver(c, d, c->rview, c->rview_len);
	if (rv == 0) {
		c->rview_pending = false;
	}
	return rv;
}

/* Whether the ring of dir is empty, in the order a switch needs. */
static bool
ring_empty(mp_conn_t *c, struct mp__pring_dir *dir, uint64_t head,
    bool *kernel)
{
	/* kernel first: records published before the switch are seen. */
	*kernel = atomic_load_explicit(&dir->kernel, memory_order_acquire);
	c->tail_seen = atomic_load_explicit(&dir->tail, memory_order_acquire);
	return c->tail_seen == head;
}

static int
recv_locked(mp_conn_t *c, struct mp__pring_dir *dir, struct mp__dest *d,
    int64_t deadline, bool nowait)
{
	if (atomic_load_explicit(&dir->broken, memory_order_relaxed)) {
		return -EPROTO;
	}
	if (c->rview_pending) {
		return give_rview(c, d);
	}
	for (;;) {
		if (c->pend != NULL || c->marker_due) {
			return frame_from_socket(c, dir, d, deadline, nowait);
		}
		if (c->kmode) {
			return mp__conn_recv_sock(c, d, deadline, nowait);
		}
		uint64_t head = atomic_load_explicit(&dir->head,
		    memory_order_relaxed);
		/* tail_seen is a lower bound; other receivers move head. */
		if ((int64_t)(c->tail_seen - head) <= 0) {
			c->tail_seen = atomic_load_explicit(&dir->tail,
			    memory_order_acquire);
		}
		int rv;
		bool kernel;
		if (c->tail_seen != head ||
		    !ring_empty(c, dir, head, &kernel)) {
			rv = take(c, dir, d, head, deadline, nowait);
			if (rv == 1) {
				continue;
			}
			return rv;
		}
		if (kernel) {
			c->kmode = true; /* drained, and nothing comes after */
			continue;
		}
		if (atomic_load_explicit(&dir->broken, memory_order_relaxed)) {
			return -EPROTO;
		}
		if (atomic_load_explicit(&dir->kernel_req,
		    memory_order_relaxed) && mp__pring_try_kernel(dir)) {
			continue;
		}
		if (c->eof) {
			/* Seen after the ring was found empty: the end. */
			return mp__conn_recv_sock(c, d, deadline, nowait);
		}
		rv = wait_data(c, dir, head, deadline, nowait);
		if (rv != 0) {
			return rv;
		}
	}
}

int
mp__pring_recv(mp_conn_t *c, struct mp__dest *d, int64_t deadline,
    bool nowait)
{
	struct mp__pring_dir *dir = mp__pring_recv_dir(c);
	bool dead;
	int rv = mp__pring_lock(dir, &dir->recv_lock, &dir->recv_frame,
	    deadline, nowait, &dead);
	if (rv != 0) {
		return rv == -ETIMEDOUT && nowait ? -EAGAIN : rv;
	}
	rv = recv_locked(c, dir, d, deadline, nowait);
	mp__pring_unlock(&dir->recv_lock, dead);
	return rv;
}

/* ---- Readiness ---------------------------------------------------------- */

bool
mp__pring_ready(mp_conn_t *c)
{
	if (c->rview_pending || c->eof || c->broken) {
		return true;
	}
	if (c->kmode || c->pend != NULL || c->marker_due) {
		return mp__conn_frame_buffered(c);
	}
	struct mp__pring_dir *dir = mp__pring_recv_dir(c);
	uint64_t head = atomic_load_explicit(&dir->head, memory_order_relaxed);
	bool kernel;
	if (!ring_empty(c, dir, head, &kernel) ||
	    atomic_load_explicit(&dir->broken, memory_order_relaxed)) {
		return true;
	}
	if (!kernel && atomic_load_explicit(&dir->kernel_req,
	    memory_order_relaxed) && mp__pring_try_kernel(dir) &&
	    !ring_empty(c, dir, head, &kernel)) {
		return true;
	}
	if (kernel) {
		c->kmode = true;
		return mp__conn_frame_buffered(c);
	}
	return false;
}

int
mp__pring_sleep_begin(mp_conn_t *c)
{
	if (c->kmode || c->pend != NULL || c->marker_due) {
		return -1; /* the plain poll of the fd applies */
	}
	struct mp__pring_dir *dir = mp__pring_recv_dir(c);
	atomic_fetch_add_explicit(&dir->sleepers, 1, memory_order_seq_cst);
	uint64_t head = atomic_load_explicit(&dir->head, memory_order_relaxed);
	if (atomic_load_explicit(&dir->tail, memory_order_seq_cst) != head) {
		mp__pring_sleep_end(c);
		return 1;
	}
	return 0;
}

void
mp__pring_sleep_end(mp_conn_t *c)
{
	atomic_fetch_sub_explicit(&mp__pring_recv_dir(c)->sleepers, 1,
	    memory_order_relaxed);
}

bool
mp__pring_after_wake(mp_conn_t *c)
{
	if (c->pend != NULL || c->marker_due || c->rend != c->rpos) {
		return true; /* mid-frame: new bytes are progress, as before */
	}
	if (c->kmode) {
		return drain_bells(c) != 0;
	}
	struct mp__pring_dir *dir = mp__pring_recv_dir(c);
	bool dead;
	if (mp__pring_lock(dir, &dir->recv_lock, &dir->recv_frame, -1, true,
	    &dead) != 0) {
		return true; /* another receiver is at it: let the caller try */
	}
	int x = drain_bells(c);
	mp__pring_unlock(&dir->recv_lock, dead);
	return x != 0 || mp__pring_ready(c);
}

int
mp__pring_poll(mp_conn_t *c, int64_t deadline)
{
	for (;;) {
		if (mp__pring_ready(c)) {
			return 1;
		}
		int s = mp__pring_sleep_begin(c);
		if (s == 1) {
			return 1;
		}
		bool counted = s == 0;
		int w = mp__fd_wait(c->fd, POLLIN, deadline);
		if (counted) {
			mp__pring_sleep_end(c);
		}
		if (w <= 0) {
			return w;
		}
		if (mp__pring_after_wake(c)) {
			return 1;
		}
	}
}
