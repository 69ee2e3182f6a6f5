/* SPDX-License-Identifier: MIT */
/* conn/pipe_ring.c: a duplex mp_pipe's messages through shared rings; the socket wakes sleepers and carries large frames. */
#include "conn/pipe_ring.h"
#include "sync/wait.h"

#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

/*
 * The protocol, the crash rules and the wake-up argument are in
 * docs/internals/pipe.md. In short: each direction is a ring of records
 * in memory shared over fork, written under a robust send lock and read
 * under a robust receive lock. The socketpair stays: a receiver with
 * nothing to read sleeps in poll(2) on it and a sender that sees a
 * sleeper rings a doorbell there; messages above MP__PRING_REC_MAX go
 * through it as ordinary frames, announced in order by a MARKER record.
 */

/* A sender waiting for room, or a receiver waiting for a MARKER's frame,
 * checks every slice that its peer still lives. */
#define SLICE_NS (50 * 1000000LL)

static const uint8_t bell[4] = { 0xFF, 0xFF, 0xFF, 0xFE };

static uint8_t *
ring_data(struct mp__pring *r, int e)
{
	return (uint8_t *)r + MP__PRING_DATA_OFF + (size_t)e * MP__PRING_CAP;
}

static struct mp__pring_dir *
send_dir(const mp_conn_t *c)
{
	return &c->ring->dir[c->ring_end];
}

static struct mp__pring_dir *
recv_dir(const mp_conn_t *c)
{
	return &c->ring->dir[1 - c->ring_end];
}

static uint64_t
rec_size(size_t n)
{
	return sizeof(struct mp__prec) + (((uint64_t)n + 7) & ~(uint64_t)7);
}

int
mp__pring_new(struct mp__pring **out)
{
	void *m = mmap(NULL, MP__PRING_MAP_SIZE, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		return -ENOMEM;
	}
	struct mp__pring *r = m; /* zero-filled */
	for (int e = 0; e < 2; e++) {
		mp__lock_init(&r->dir[e].send_lock, false);
		mp__lock_init(&r->dir[e].recv_lock, false);
	}
	*out = r;
	return 0;
}

int
mp__pring_dup(struct mp__pring *r, struct mp__pring **out)
{
	/*
	 * Old size 0 on a shared mapping makes a second mapping of the
	 * same pages (mremap(2)): each end unmaps its own at close.
	 */
	void *m = mremap(r, 0, MP__PRING_MAP_SIZE, MREMAP_MAYMOVE);
	if (m == MAP_FAILED) {
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

void
mp__pring_unmap(struct mp__pring *r)
{
	munmap(r, MP__PRING_MAP_SIZE);
}

void
mp__pring_close(struct mp__pring *r, int e)
{
	/* After close(2): a sender that sees the count move polls for HUP. */
	atomic_fetch_add_explicit(&r->closes[e], 1, memory_order_seq_cst);
	mp__pring_unmap(r);
}

/* ---- Locks -------------------------------------------------------------- */

/*
 * Take a side's lock. A holder that died is repaired here: the ring words
 * only ever describe whole records, so the only damage is a socket frame
 * cut in the middle (*frame set: a sender died writing a MARKER's frame,
 * or a receiver reading one); the stream has no framing left and the
 * direction is broken for good.
 */
static int
side_lock(struct mp__pring_dir *d, struct mp_lock *l, _Atomic uint32_t *frame,
    int64_t deadline, bool nowait, bool *dead)
{
	int rv = nowait ? mp_lock_acquire(l, 0) :
	    mp__lock_acquire_until(l, deadline);
	*dead = rv == -EOWNERDEAD;
	if (*dead) {
		if (atomic_load_explicit(frame, memory_order_relaxed) != 0) {
			atomic_store_explicit(&d->broken, 1,
			    memory_order_relaxed);
			atomic_store_explicit(frame, 0, memory_order_relaxed);
		}
		return 0;
	}
	return rv;
}

static void
side_unlock(struct mp_lock *l, bool dead)
{
	if (dead) {
		mp_lock_mark_consistent(l);
	}
	mp_lock_release(l);
}

/*
 * Put direction d on the socket for good, if its send lock is free (or
 * its holder dead): nobody then is between a look at the flag and a
 * publish. Returns whether d is now in kernel mode.
 */
static bool
try_kernel(struct mp__pring_dir *d)
{
	bool dead;
	if (side_lock(d, &d->send_lock, &d->send_frame, -1, true,
	    &dead) != 0) {
		return false;
	}
	atomic_store_explicit(&d->kernel, 1, memory_order_release);
	side_unlock(&d->send_lock, dead);
	return true;
}

void
mp__pring_to_kernel(struct mp__pring *r)
{
	for (int e = 0; e < 2; e++) {
		struct mp__pring_dir *d = &r->dir[e];
		if (atomic_load_explicit(&d->kernel, memory_order_acquire)) {
			continue;
		}
		/*
		 * A sender holding the lock sees the request: at its next
		 * send, or in its wait for room (woken here), where it moves
		 * over itself. A receiver finding the ring empty tries too.
		 */
		atomic_store_explicit(&d->kernel_req, 1, memory_order_seq_cst);
		try_kernel(d);
		atomic_fetch_add_explicit(&d->room_seq, 1, memory_order_seq_cst);
		mp__futex_wake(&d->room_seq, INT32_MAX);
	}
}

/* ---- Sending ------------------------------------------------------------ */

/* Whether every holder of the peer's end has closed it (POLLHUP). */
static bool
peer_gone(const mp_conn_t *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR)) != 0;
}

/*
 * A doorbell still in the socket wakes every receiver that polls it
 * (poll returns at once), so a second one is needless: a receiver woken
 * but not yet running (on our CPU, say) would otherwise cost a bell per
 * message. The receiver counts bells taken before it sleeps again (a
 * seq_cst read-modify-write of sleepers between), and we read the count
 * after the fence that follows our publish: if we see its bell count
 * old, it sees our record.
 */
static bool
bell_needed(struct mp__pring_dir *d)
{
	return atomic_load_explicit(&d->bells, memory_order_relaxed) ==
	    atomic_load_explicit(&d->bells_taken, memory_order_relaxed);
}

/*
 * Wake the sleeping receiver: one doorbell header in the socket, counted
 * first (a receiver takes no more than the count). A full socket is
 * readable already, so EAGAIN loses nothing.
 */
static int
ring_bell(mp_conn_t *c, struct mp__pring_dir *d)
{
	atomic_fetch_add_explicit(&d->bells, 1, memory_order_seq_cst);
	size_t done = 0;
	while (done < sizeof(bell)) {
		ssize_t r = send(c->fd, bell + done, sizeof(bell) - done,
		    MSG_NOSIGNAL | (done == 0 ? MSG_DONTWAIT : 0));
		if (r >= 0) {
			done += (size_t)r;
		} else if (errno == EAGAIN && done == 0) {
			atomic_fetch_sub_explicit(&d->bells, 1,
			    memory_order_relaxed);
			return 0;
		} else if (errno != EINTR) {
			return -errno;
		}
	}
	return 0;
}

/*
 * A full ring whose receiver is busy frees room within microseconds:
 * spin up to MP__CONN_SPIN_NS for head to reach want_head first. True
 * when the room came.
 */
static bool
room_spin(mp_conn_t *c, struct mp__pring_dir *d, uint64_t want_head)
{
	int64_t end = mp__now_ns() + MP__CONN_SPIN_NS;
	for (unsigned turn = 1;; turn++) {
		c->head_seen = atomic_load_explicit(&d->head,
		    memory_order_acquire);
		if ((int64_t)(want_head - c->head_seen) <= 0) {
			return true;
		}
		mp__spin_pause();
		/* A receiver on our CPU runs while we yield (ring_spin). */
		if (turn >= MP__WAIT_PURE_TURNS &&
		    turn % MP__WAIT_YIELD_EVERY == 0) {
			if (mp__now_ns() >= end) {
				return false;
			}
			sched_yield();
		}
	}
}

/*
 * Wait, holding the send lock, until head reaches want_head: a spin, then
 * sleeps on room_seq in slices: the flag room_wait, a fence, then head
 * read again (a receiver stores head, fences, reads the flag: one of the
 * two sees the other). Returns 0; 1 to go through the socket, when
 * mp_conn_fileno asked for it or when a whole slice passed without the
 * receiver taking anything (it does not consume: asleep elsewhere, or
 * the sending thread itself receives later; the socket's larger buffer
 * must then take the messages, as before the rings); -EPIPE when the
 * peer's end is gone.
 */
static int
wait_room(mp_conn_t *c, struct mp__pring_dir *d, uint64_t want_head)
{
	if (room_spin(c, d, want_head)) {
		return 0;
	}
	uint64_t before = c->head_seen;
	/*
	 * Asleep, wait for a quarter of the ring more than we need (no
	 * further than the tail, so a receiver that drains it all reaches
	 * it): a wake-up then buys many messages, not one.
	 */
	uint64_t tail = atomic_load_explicit(&d->tail, memory_order_relaxed);
	uint64_t want = want_head + MP__PRING_CAP / 4;
	atomic_store_explicit(&d->room_want,
	    (int64_t)(want - tail) > 0 ? tail : want, memory_order_relaxed);
	int rv;
	for (;;) {
		uint32_t seq = atomic_load_explicit(&d->room_seq,
		    memory_order_acquire);
		atomic_store_explicit(&d->room_wait, 1, memory_order_seq_cst);
		atomic_thread_fence(memory_order_seq_cst);
		c->head_seen = atomic_load_explicit(&d->head,
		    memory_order_acquire);
		if ((int64_t)(want_head - c->head_seen) <= 0) {
			rv = 0;
			break;
		}
		if (atomic_load_explicit(&d->kernel_req, memory_order_relaxed)) {
			rv = 1;
			break;
		}
		if (peer_gone(c)) {
			rv = -EPIPE;
			break;
		}
		if (mp__futex_wait(&d->room_seq, seq,
		    mp__now_ns() + SLICE_NS) == -ETIMEDOUT) {
			uint64_t now_head = atomic_load_explicit(&d->head,
			    memory_order_acquire);
			if (now_head == before) {
				rv = 1;
				break;
			}
			before = now_head;
		}
	}
	atomic_store_explicit(&d->room_wait, 0, memory_order_relaxed);
	return rv;
}

/*
 * Publish one record. The bytes go in first, then tail with a release
 * store: a sender killed before that store published nothing, and the
 * next one writes over its half record. Returns 0, 1 (go to the socket:
 * wait_room), -EPIPE.
 */
static int
ring_put(mp_conn_t *c, struct mp__pring_dir *d, uint32_t type, const void *p,
    size_t n)
{
	uint8_t *data = ring_data(c->ring, c->ring_end);
	uint64_t rec = rec_size(n);
	uint64_t tail = atomic_load_explicit(&d->tail, memory_order_relaxed);
	uint64_t pos = tail & (MP__PRING_CAP - 1);
	uint64_t to_end = MP__PRING_CAP - pos;
	uint64_t need = rec <= to_end ? rec : to_end + rec;
	if (tail + need - c->head_seen > MP__PRING_CAP) {
		c->head_seen = atomic_load_explicit(&d->head,
		    memory_order_acquire);
		if (tail + need - c->head_seen > MP__PRING_CAP) {
			int rv = wait_room(c, d, tail + need - MP__PRING_CAP);
			if (rv != 0) {
				return rv;
			}
		}
	}
	if (rec > to_end) {
		struct mp__prec w = { 0, MP__PREC_WRAP };
		memcpy(data + pos, &w, sizeof(w));
		tail += to_end;
		pos = 0;
	}
	struct mp__prec h = { (uint32_t)n, type };
	memcpy(data + pos, &h, sizeof(h));
	if (n > 0) {
		memcpy(data + pos + sizeof(h), p, n);
	}
	atomic_store_explicit(&d->tail, tail + rec, memory_order_release);
	return 0;
}

/* Under the send lock: whether d goes through the socket (now). */
static bool
use_kernel(struct mp__pring_dir *d)
{
	if (atomic_load_explicit(&d->kernel, memory_order_relaxed)) {
		return true;
	}
	if (atomic_load_explicit(&d->kernel_req, memory_order_relaxed)) {
		atomic_store_explicit(&d->kernel, 1, memory_order_release);
		return true;
	}
	return false;
}

/* The send, under the send lock. */
static int
send_locked(mp_conn_t *c, struct mp__pring_dir *d, const void *p, size_t n,
    bool in_sbuf)
{
	if (atomic_load_explicit(&d->broken, memory_order_relaxed)) {
		return -EPROTO;
	}
	if (use_kernel(d)) {
		return mp__conn_send_frame(c, p, n, in_sbuf);
	}
	if (n <= MP__PRING_REC_MAX) {
		int rv = ring_put(c, d, MP__PREC_DATA, p, n);
		if (rv == 1) {
			atomic_store_explicit(&d->kernel, 1,
			    memory_order_release);
			return mp__conn_send_frame(c, p, n, in_sbuf);
		}
		if (rv != 0) {
			return rv;
		}
		/*
		 * The publish (release store of tail) and this load are
		 * separated by a full fence; the receiver raises sleepers,
		 * fences, then reads tail (wait_data). Either it sees the
		 * record, or we see it counted and ring.
		 */
		atomic_thread_fence(memory_order_seq_cst);
		if (atomic_load_explicit(&d->sleepers, memory_order_relaxed) &&
		    bell_needed(d)) {
			return ring_bell(c, d);
		}
		return 0;
	}
	/* Large: a MARKER keeps the order, the frame itself wakes. */
	atomic_store_explicit(&d->send_frame, 1, memory_order_relaxed);
	int rv = ring_put(c, d, MP__PREC_MARKER, NULL, 0);
	if (rv == 1) {
		atomic_store_explicit(&d->kernel, 1, memory_order_release);
	}
	if (rv == 0 || rv == 1) {
		rv = mp__conn_send_frame(c, p, n, in_sbuf);
	}
	atomic_store_explicit(&d->send_frame, 0, memory_order_release);
	return rv;
}

int
mp__pring_send(mp_conn_t *c, const void *p, size_t n, bool in_sbuf)
{
	/* A close of the peer's end since we last looked: is it the last? */
	uint32_t closes = atomic_load_explicit(
	    &c->ring->closes[1 - c->ring_end], memory_order_relaxed);
	if (closes != c->closes_seen) {
		if (peer_gone(c)) {
			return -EPIPE;
		}
		c->closes_seen = closes;
	}
	struct mp__pring_dir *d = send_dir(c);
	bool dead;
	int rv = side_lock(d, &d->send_lock, &d->send_frame, -1, false, &dead);
	if (rv != 0) {
		return rv;
	}
	rv = send_locked(c, d, p, n, in_sbuf);
	side_unlock(&d->send_lock, dead);
	return rv;
}

/* ---- Receiving ---------------------------------------------------------- */

uint32_t
mp__pring_bells_owed(const mp_conn_t *c)
{
	struct mp__pring_dir *dir = recv_dir(c);
	return atomic_load_explicit(&dir->bells, memory_order_seq_cst) -
	    atomic_load_explicit(&dir->bells_taken, memory_order_relaxed);
}

void
mp__pring_bell_taken(mp_conn_t *c)
{
	atomic_fetch_add_explicit(&recv_dir(c)->bells_taken, 1,
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
		    memcmp(w + 4 * k, bell, 4) == 0) {
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
		atomic_fetch_add_explicit(&recv_dir(c)->bells_taken,
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
			int64_t slice = mp__now_ns() + SLICE_NS;
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
	const uint8_t *data = ring_data(c->ring, 1 - c->ring_end);
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
				consumed(dir, head + rec_size(h.len));
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
		if (c->tail_seen != head || !ring_empty(c, dir, head, &kernel)) {
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
		    memory_order_relaxed) && try_kernel(dir)) {
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
	struct mp__pring_dir *dir = recv_dir(c);
	bool dead;
	int rv = side_lock(dir, &dir->recv_lock, &dir->recv_frame, deadline,
	    nowait, &dead);
	if (rv != 0) {
		return rv == -ETIMEDOUT && nowait ? -EAGAIN : rv;
	}
	rv = recv_locked(c, dir, d, deadline, nowait);
	side_unlock(&dir->recv_lock, dead);
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
	struct mp__pring_dir *dir = recv_dir(c);
	uint64_t head = atomic_load_explicit(&dir->head, memory_order_relaxed);
	bool kernel;
	if (!ring_empty(c, dir, head, &kernel) ||
	    atomic_load_explicit(&dir->broken, memory_order_relaxed)) {
		return true;
	}
	if (!kernel && atomic_load_explicit(&dir->kernel_req,
	    memory_order_relaxed) && try_kernel(dir) &&
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
	struct mp__pring_dir *dir = recv_dir(c);
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
	atomic_fetch_sub_explicit(&recv_dir(c)->sleepers, 1,
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
	struct mp__pring_dir *dir = recv_dir(c);
	bool dead;
	if (side_lock(dir, &dir->recv_lock, &dir->recv_frame, -1, true,
	    &dead) != 0) {
		return true; /* another receiver is at it: let the caller try */
	}
	int x = drain_bells(c);
	side_unlock(&dir->recv_lock, dead);
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
