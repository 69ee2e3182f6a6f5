/* SPDX-License-Identifier: MIT */
/* conn/pipe_ring.c: a duplex mp_pipe's shared rings: the mapping, the locks, the switch to the socket, sending. */
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

int
mp__pring_new(struct mp__pring **out, _Atomic uint32_t **refs)
{
	_Atomic uint32_t *n = mp__malloc(sizeof(*n));
	if (n == NULL) {
		return -ENOMEM;
	}
	void *m = mmap(NULL, MP__PRING_MAP_SIZE, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		mp__free(n);
		return -ENOMEM;
	}
	struct mp__pring *r = m; /* zero-filled */
	for (int e = 0; e < 2; e++) {
		mp__lock_init(&r->dir[e].send_lock, false);
		mp__lock_init(&r->dir[e].recv_lock, false);
	}
	atomic_init(n, 2);
	*out = r;
	*refs = n;
	return 0;
}

void
mp__pring_free(struct mp__pring *r, _Atomic uint32_t *refs)
{
	munmap(r, MP__PRING_MAP_SIZE);
	mp__free(refs);
}

void
mp__pring_close(struct mp__pring *r, int e, _Atomic uint32_t *refs)
{
	/* After close(2): a sender that sees the count move polls for HUP. */
	atomic_fetch_add_explicit(&r->closes[e], 1, memory_order_seq_cst);
	if (atomic_fetch_sub_explicit(refs, 1, memory_order_acq_rel) == 1) {
		mp__pring_free(r, refs);
	}
}

/* ---- Locks -------------------------------------------------------------- */

/*
 * Take a side's lock. A holder that died is repaired here: the ring words
 * only ever describe whole records, so the only damage is a socket frame
 * cut in the middle (*frame set: a sender died writing a MARKER's frame,
 * or a receiver reading one); the stream has no framing left and the
 * direction is broken for good.
 */
int
mp__pring_lock(struct mp__pring_dir *d, struct mp_lock *l,
    _Atomic uint32_t *frame, int64_t deadline, bool nowait, bool *dead)
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

void
mp__pring_unlock(struct mp_lock *l, bool dead)
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
bool
mp__pring_try_kernel(struct mp__pring_dir *d)
{
	bool dead;
	if (mp__pring_lock(d, &d->send_lock, &d->send_frame, -1, true,
	    &dead) != 0) {
		return false;
	}
	atomic_store_explicit(&d->kernel, 1, memory_order_release);
	mp__pring_unlock(&d->send_lock, dead);
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
		mp__pring_try_kernel(d);
		atomic_fetch_add_explicit(&d->room_seq, 1,
		    memory_order_seq_cst);
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
	while (done < 4) {
		ssize_t r = send(c->fd, &MP__PRING_BELL_BYTES[done], 4 - done,
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
		if (atomic_load_explicit(&d->kernel_req,
		    memory_order_relaxed)) {
			rv = 1;
			break;
		}
		if (peer_gone(c)) {
			rv = -EPIPE;
			break;
		}
		if (mp__futex_wait(&d->room_seq, seq,
		    mp__now_ns() + MP__PRING_SLICE_NS) == -ETIMEDOUT) {
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
	uint8_t *data = mp__pring_data(c->ring, c->ring_end);
	uint64_t rec = mp__pring_rec_size(n);
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
	struct mp__pring_dir *d = mp__pring_send_dir(c);
	bool dead;
	int rv = mp__pring_lock(d, &d->send_lock, &d->send_frame, -1, false,
	    &dead);
	if (rv != 0) {
		return rv;
	}
	rv = send_locked(c, d, p, n, in_sbuf);
	mp__pring_unlock(&d->send_lock, dead);
	return rv;
}
