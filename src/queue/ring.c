/* SPDX-License-Identifier: MIT */
/* queue/ring.c: the queue's ring in shared memory: records, fragments, waits and crash repair. */
#include "queue/queue_internal.h"
#include "core/buf.h"
#include "sync/wait.h"

#include <string.h>

/*
 * A message whose record would take more than this share of the ring is
 * streamed in fragments: otherwise it would wait for an almost empty ring
 * and leave no room for the producer to write while a consumer reads.
 */
#define WHOLE_SHARE 2
/* Fragments are at most a quarter of the ring, so two are in flight... */
#define FRAG_MAX_SHARE 4
/* ...and at least a sixteenth (or the rest), so each wake-up moves a lot. */
#define FRAG_MIN_SHARE 16

/*
 * Every fragment leaves this much room free behind it, so that whoever
 * withdraws the stream (the producer at its timeout, or the next producer
 * repairing after its death) always has room for the ABORT record.
 */
#define ABORT_RESERVE ((uint32_t)sizeof(struct mp__rec))

/*
 * A get or put with MP_NOWAIT still waits this long for the side's lock:
 * the holder is usually in a copy that ends within microseconds. A holder
 * that sleeps (a consumer waiting on an empty queue) makes it -EAGAIN.
 */
#define NOWAIT_LOCK_NS (1000000LL)

/* A thread's reusable buffer for small messages a get copies out
 * (released when the thread ends). */
static _Thread_local struct mp__tls_buf tls_in;
/* Messages above this are copied into a buffer of their own. */
#define TLS_KEEP_MAX ((size_t)64 * 1024)

static inline uint32_t
rec_size(size_t payload)
{
	return (uint32_t)(sizeof(struct mp__rec) +
	    ((payload + MP__REC_ALIGN - 1) & ~(size_t)(MP__REC_ALIGN - 1)));
}

static inline uint64_t
word_make(uint32_t count, uint32_t pos)
{
	return (uint64_t)count << 32 | pos;
}

static inline uint32_t
word_pos(uint64_t w)
{
	return (uint32_t)w;
}

static inline uint32_t
word_count(uint64_t w)
{
	return (uint32_t)(w >> 32);
}

static void
ring_write(mp_queue_t *q, uint32_t pos, const void *src, size_t n)
{
	uint32_t cap = q->sh->cap;
	uint32_t off = pos & (cap - 1);
	size_t first = n < cap - off ? n : cap - off;
	memcpy(q->ring + off, src, first);
	if (n > first) {
		memcpy(q->ring, (const uint8_t *)src + first, n - first);
	}
}

static void
ring_read(const mp_queue_t *q, uint32_t pos, void *dst, size_t n)
{
	uint32_t cap = q->sh->cap;
	uint32_t off = pos & (cap - 1);
	size_t first = n < cap - off ? n : cap - off;
	memcpy(dst, q->ring + off, first);
	if (n > first) {
		memcpy((uint8_t *)dst + first, q->ring, n - first);
	}
}

int
mp__queue_deadline(int64_t timeout_ms, int64_t *deadline)
{
	if (timeout_ms < MP_FOREVER) {
		return -EINVAL;
	}
	*deadline = mp__deadline_from_timeout(timeout_ms);
	return 0;
}

/*
 * Take one side's lock. A holder that died leaves -EOWNERDEAD: the ring's
 * words only ever describe whole records, so the state is consistent as
 * it is, except for a stream the dead producer left open, which the caller
 * withdraws (*repair) before it marks the lock consistent.
 */
static int
side_lock(struct mp_lock *l, bool nowait, int64_t deadline, bool *repair)
{
	int64_t until = nowait ? mp__now_ns() + NOWAIT_LOCK_NS : deadline;
	int rv = mp__lock_acquire_until(l, until);
	*repair = false;
	if (rv == -EOWNERDEAD) {
		*repair = true;
		return 0;
	}
	if (rv == -ETIMEDOUT && nowait) {
		return -EAGAIN;
	}
	return rv;
}

static void
side_unlock(struct mp_lock *l, bool repaired)
{
	if (repaired) {
		mp_lock_mark_consistent(l);
	}
	mp_lock_release(l);
}

/*
 * Only the holder of a side's lock ever sleeps on that side's futex word
 * (a consumer waiting for data holds get_lock, a producer waiting for room
 * holds put_lock), so each side has at most one sleeper and *sleeper is a
 * flag, not a count. The sleeper raises it, re-reads the published word
 * and sleeps; the waker publishes with a seq_cst exchange and then reads
 * the flag: one of the two sees the other (the Dekker pattern of
 * sync/wait.h), so no wake-up is lost. The waker also takes the flag
 * down, so only the first publish after a sleep pays for a system call,
 * not every publish until the woken process runs (about 30 us later), and
 * a flag left up by a process that died asleep costs one wake at most.
 */
static inline void
publish_word(_Atomic uint64_t *w64, uint64_t v, _Atomic uint32_t *word,
    _Atomic uint32_t *sleeper)
{
	atomic_exchange_explicit(w64, v, memory_order_seq_cst);
	if (atomic_load_explicit(sleeper, memory_order_seq_cst) != 0 &&
	    atomic_exchange_explicit(sleeper, 0, memory_order_seq_cst) != 0) {
		atomic_fetch_add_explicit(word, 1, memory_order_seq_cst);
		mp__futex_wake(word, INT32_MAX);
	}
}

/*
 * Wait until *w64 differs from old or the clock reaches wake_at (-1:
 * never). Spin first, about one wake-up's cost, yielding now and then so a
 * peer on our CPU can run; then sleep on the futex word fw. Returns 0 when
 * the word changed (or spuriously), -ETIMEDOUT at wake_at.
 *
 * A sleep lasts at most WAIT_SLICE_NS, after which the caller re-checks
 * its condition as after any spurious wake-up. This is a safety net: a
 * 2-producer/2-consumer benchmark run was once seen with the put-lock
 * holder asleep waiting for room and the get-lock holder asleep waiting
 * for data while the ring was empty (pub == con, both sleeper flags up),
 * a lost wake-up not yet explained; with the slice such a state heals
 * within WAIT_SLICE_NS instead of hanging forever.
 */
#define WAIT_SLICE_NS (100 * 1000000LL)

static int
wait_word(_Atomic uint64_t *w64, uint64_t old, _Atomic uint32_t *fw,
    _Atomic uint32_t *sleeper, int64_t wake_at)
{
	int64_t end = 0;
	for (unsigned turn = 1;; turn++) {
		if (atomic_load_explicit(w64, memory_order_acquire) != old) {
			return 0;
		}
		mp__spin_pause();
		if (turn % 64 == 0) {
			int64_t now = mp__now_ns();
			if (end == 0) {
				end = now + MP__WAIT_SPIN_NS;
				if (wake_at >= 0 && wake_at < end) {
					end = wake_at;
				}
			}
			if (now >= end) {
				break;
			}
			if (turn % MP__WAIT_YIELD_EVERY == 0) {
				sched_yield();
			}
		}
	}
	int64_t slice_end = mp__now_ns() + WAIT_SLICE_NS;
	bool sliced = wake_at < 0 || wake_at > slice_end;
	atomic_store_explicit(sleeper, 1, memory_order_seq_cst);
	uint32_t seen = atomic_load_explicit(fw, memory_order_seq_cst);
	int rv = 0;
	if (atomic_load_explicit(w64, memory_order_seq_cst) == old) {
		rv = mp__futex_wait(fw, seen, sliced ? slice_end : wake_at);
	}
	atomic_store_explicit(sleeper, 0, memory_order_relaxed);
	if (rv == -ETIMEDOUT && (sliced ||
	    atomic_load_explicit(w64, memory_order_acquire) != old)) {
		rv = 0;
	}
	return rv;
}

/* ---------------------------------------------------------------- put */

/*
 * Whether need bytes (and, with item, one more message under maxsize) fit.
 * The cached tail is refreshed only when the cache says no: one producer
 * and one consumer then touch each other's line once per ring-full, not
 * once per message.
 */
static bool
room_for(mp_queue_t *q, uint32_t need, bool item)
{
	struct mp__queue_shared *sh = q->sh;
	uint64_t p = atomic_load_explicit(&sh->pub, memory_order_relaxed);
	for (int fresh = 0; fresh < 2; fresh++) {
		uint32_t used = word_pos(p) - sh->tail_seen;
		uint32_t items = word_count(p) - sh->count_seen;
		if (sh->cap - used >= need && (!item || sh->maxsize == 0 ||
		    items < sh->maxsize)) {
			return true;
		}
		uint64_t c = atomic_load_explicit(&sh->con,
		    memory_order_acquire);
		sh->tail_seen = word_pos(c);
		sh->count_seen = word_count(c);
	}
	return false;
}

/* Wait (holding the put lock) until room_for(need, item). */
static int
wait_room(mp_queue_t *q, uint32_t need, bool item, bool nowait,
    int64_t deadline)
{
	struct mp__queue_shared *sh = q->sh;
	for (;;) {
		if (room_for(q, need, item)) {
			return 0;
		}
		if (nowait) {
			return -EAGAIN;
		}
		if (mp__deadline_expired(deadline)) {
			return -ETIMEDOUT;
		}
		uint64_t c = word_make(sh->count_seen, sh->tail_seen);
		wait_word(&sh->con, c, &sh->space_word, &sh->put_sleepers,
		    deadline);
	}
}

/* Write one record at the head and publish it (count: messages it ends). */
static void
publish(mp_queue_t *q, const struct mp__rec *h, const void *pre, size_t npre,
    const void *data, size_t n, uint32_t count)
{
	struct mp__queue_shared *sh = q->sh;
	uint64_t p = atomic_load_explicit(&sh->pub, memory_order_relaxed);
	uint32_t head = word_pos(p);
	ring_write(q, head, h, sizeof(*h));
	if (npre > 0) {
		ring_write(q, head + (uint32_t)sizeof(*h), pre, npre);
	}
	if (n > 0) {
		ring_write(q, head + (uint32_t)(sizeof(*h) + npre), data, n);
	}
	uint64_t next = word_make(word_count(p) + count,
	    head + rec_size(npre + n));
	publish_word(&sh->pub, next, &sh->data_word, &sh->get_sleepers);
}

/* Withdraw the open stream (room is reserved for this record). */
static void
abort_stream(mp_queue_t *q)
{
	struct mp__queue_shared *sh = q->sh;
	struct mp__rec h = { .type = MP__REC_ABORT, .seq = sh->stream_seq };
	sh->streaming = 0;
	if (room_for(q, rec_size(0), false)) {
		publish(q, &h, NULL, 0, NULL, 0, 0);
	}
}

/*
 * Stream a message too large for one record. The put lock stays ours from
 * the first fragment to the last, so the fragments are contiguous and each
 * producer's messages stay in order. A consumer holds the get lock for the
 * same span and assembles them.
 */
static int
put_stream(mp_queue_t *q, uint8_t fmt, const uint8_t *data, size_t len,
    bool nowait, int64_t deadline)
{
	struct mp__queue_shared *sh = q->sh;
	uint32_t cap = sh->cap;
	uint64_t total = len;
	struct mp__rec h = { .fmt = fmt, .tid = (uint32_t)mp__self_tid() };
	/* Stream numbers are the put side's own, so none repeats soon. */
	h.seq = sh->stream_seq + 1;
	size_t sent = 0;
	bool first = true;
	while (first || sent < len) {
		size_t left = len - sent;
		size_t pre = first ? sizeof(total) : 0;
		size_t want = left < cap / FRAG_MIN_SHARE ? left :
		    cap / FRAG_MIN_SHARE;
		int rv = wait_room(q, rec_size(pre + want) + ABORT_RESERVE,
		    first, nowait, deadline);
		if (rv != 0) {
			if (!first) {
				abort_stream(q);
			}
			return rv;
		}
		uint32_t used = word_pos(atomic_load_explicit(&sh->pub,
		    memory_order_relaxed)) - sh->tail_seen;
		/* Whole 16-byte units, so the padded record fits too. */
		size_t room = cap - used - ABORT_RESERVE - sizeof(struct mp__rec);
		room &= ~(size_t)(MP__REC_ALIGN - 1);
		room -= pre;
		size_t n = left < room ? left : room;
		if (n > cap / FRAG_MAX_SHARE) {
			n = cap / FRAG_MAX_SHARE;
		}
		if (first) {
			/* Declared before the FIRST record can be seen. */
			sh->stream_seq = h.seq;
			sh->streaming = 1;
		}
		h.type = first ? MP__REC_FIRST :
		    (sent + n == len ? MP__REC_LAST : MP__REC_MID);
		h.len = (uint32_t)(pre + n);
		publish(q, &h, first ? &total : NULL, pre, data + sent, n,
		    h.type == MP__REC_LAST);
		sent += n;
		first = false;
	}
	sh->streaming = 0;
	return 0;
}

int
mp__queue_put_msg(mp_queue_t *q, uint8_t fmt, const void *data, size_t len,
    int64_t timeout_ms)
{
	int64_t deadline;
	int rv = mp__queue_deadline(timeout_ms, &deadline);
	if (rv != 0) {
		return rv;
	}
	struct mp__queue_shared *sh = q->sh;
	bool nowait = timeout_ms == MP_NOWAIT, repair;
	rv = side_lock(&sh->put_lock, nowait, deadline, &repair);
	if (rv != 0) {
		return rv;
	}
	if (repair) {
		/* The dead holder may have died asleep (publish_word). */
		atomic_store_explicit(&sh->put_sleepers, 0, memory_order_relaxed);
		if (sh->streaming) {
			abort_stream(q);
		}
	}
	if (len <= sh->cap / WHOLE_SHARE - sizeof(struct mp__rec)) {
		rv = wait_room(q, rec_size(len), true, nowait, deadline);
		if (rv == 0) {
			struct mp__rec h = { .len = (uint32_t)len,
			    .type = MP__REC_WHOLE, .fmt = fmt };
			publish(q, &h, NULL, 0, data, len, 1);
		}
	} else {
		rv = put_stream(q, fmt, data, len, nowait, deadline);
	}
	side_unlock(&sh->put_lock, repair);
	return rv;
}

/* ---------------------------------------------------------------- get */

/* A message being assembled from fragments. */
struct stream {
	bool active;
	uint8_t fmt;
	uint32_t seq;
	uint32_t tid;
	uint64_t total;
	uint64_t got;
	uint8_t *buf;
};

static void
stream_drop(struct stream *st)
{
	mp__free(st->buf);
	*st = (struct stream){ 0 };
}

/* Release the record at the tail (and its message, with count). */
static void
consume(mp_queue_t *q, uint64_t c, uint32_t size, uint32_t count)
{
	struct mp__queue_shared *sh = q->sh;
	publish_word(&sh->con, word_make(word_count(c) + count,
	    word_pos(c) + size), &sh->space_word, &sh->put_sleepers);
}

/* Where a get's message goes: the thread's buffer, or one of its own. */
static int
take_buffer(size_t len, bool own, uint8_t **buf, bool *owned)
{
	if (own || len > TLS_KEEP_MAX) {
		*buf = mp__malloc(len > 0 ? len : 1);
		*owned = true;
		return *buf == NULL ? -ENOMEM : 0;
	}
	int rv = mp__tls_buf_use(&tls_in);
	if (rv == 0 && (tls_in.b.cap < len || tls_in.b.data == NULL)) {
		rv = mp__buf_reserve(&tls_in.b, len > 0 ? len : 1);
	}
	if (rv != 0) {
		return rv;
	}
	*buf = tls_in.b.data;
	*owned = false;
	return 0;
}

/*
 * Handle the record h at the tail. Returns 1 when a message is complete
 * (in *st, with st->buf its bytes), 0 to go on reading, or a negative
 * error with the record left in place.
 */
static int
take_record(mp_queue_t *q, uint64_t c, const struct mp__rec *h, bool own,
    struct stream *st, bool *owned)
{
	uint32_t tail = word_pos(c) + (uint32_t)sizeof(*h);
	uint32_t size = rec_size(h->len);
	bool mine = st->active && h->seq == st->seq;
	if (h->type == MP__REC_WHOLE || h->type == MP__REC_FIRST) {
		/* A new message while assembling: the old stream died. */
		stream_drop(st);
	}
	switch (h->type) {
	case MP__REC_WHOLE: {
		uint8_t *buf;
		int rv = take_buffer(h->len, own, &buf, owned);
		if (rv != 0) {
			return rv;
		}
		ring_read(q, tail, buf, h->len);
		consume(q, c, size, 1);
		*st = (struct stream){ .fmt = h->fmt, .total = h->len,
		    .got = h->len, .buf = buf };
		return 1;
	}
	case MP__REC_FIRST: {
		uint64_t total;
		ring_read(q, tail, &total, sizeof(total));
		uint64_t n = h->len - sizeof(total);
		uint8_t *buf = n <= total ? mp__malloc(total > 0 ? total : 1) :
		    NULL;
		if (buf == NULL && n <= total) {
			return -ENOMEM;
		}
		if (buf != NULL) {
			ring_read(q, tail + (uint32_t)sizeof(total), buf, n);
			*st = (struct stream){ .active = true, .fmt = h->fmt,
			    .seq = h->seq, .tid = h->tid, .total = total,
			    .got = n, .buf = buf };
		}
		/* Only now may a producer write over the record. */
		consume(q, c, size, 0);
		return 0;
	}
	case MP__REC_MID:
	case MP__REC_LAST:
		if (mine && st->got + h->len <= st->total) {
			ring_read(q, tail, st->buf + st->got, h->len);
			st->got += h->len;
		} else if (mine) {
			stream_drop(st);
			mine = false;
		}
		consume(q, c, size, h->type == MP__REC_LAST);
		if (h->type == MP__REC_LAST && mine) {
			st->active = false;
			*owned = true;
			return st->got == st->total ? 1 : (stream_drop(st), 0);
		}
		return 0;
	case MP__REC_ABORT:
		if (mine) {
			stream_drop(st);
		}
		consume(q, c, size, 0);
		return 0;
	default:
		MP_ASSERT(!"corrupt queue record");
	}
	return 0;
}

/*
 * Wait (holding the get lock) for the head to move past the tail. While a
 * stream is open the caller's deadline no longer applies: the rest of the
 * message is owed to it. Its producer is checked every slice instead, and
 * a dead producer's stream is dropped.
 */
static int
wait_data(mp_queue_t *q, uint64_t p, struct stream *st, bool nowait,
    int64_t deadline)
{
	struct mp__queue_shared *sh = q->sh;
	if (!st->active) {
		if (nowait) {
			return -EAGAIN;
		}
		if (mp__deadline_expired(deadline)) {
			return -ETIMEDOUT;
		}
		wait_word(&sh->pub, p, &sh->data_word, &sh->get_sleepers,
		    deadline);
		return 0;
	}
	int64_t slice = mp__now_ns() + MP__WAIT_SLICE_NS;
	if (wait_word(&sh->pub, p, &sh->data_word, &sh->get_sleepers,
	    slice) == -ETIMEDOUT && !mp__pid_alive((pid_t)st->tid)) {
		stream_drop(st);
	}
	return 0;
}

int
mp__queue_get_msg(mp_queue_t *q, bool own, uint8_t **data, size_t *len,
    uint8_t *fmt, bool *owned, int64_t timeout_ms)
{
	int64_t deadline;
	int rv = mp__queue_deadline(timeout_ms, &deadline);
	if (rv != 0) {
		return rv;
	}
	struct mp__queue_shared *sh = q->sh;
	bool nowait = timeout_ms == MP_NOWAIT, repair;
	if (nowait && atomic_load_explicit(&sh->pub, memory_order_acquire) ==
	    atomic_load_explicit(&sh->con, memory_order_acquire)) {
		return -EAGAIN;
	}
	rv = side_lock(&sh->get_lock, nowait, deadline, &repair);
	if (rv != 0) {
		return rv;
	}
	/*
	 * A consumer that died holding the lock left at worst a record it
	 * copied but did not release (the next get delivers it again: it
	 * was never delivered) or a stream half read, whose remaining
	 * fragments take_record skips as orphans. Only the holder sleeps for
	 * data, so a sleeper flag it left up is taken down.
	 */
	if (repair) {
		atomic_store_explicit(&sh->get_sleepers, 0, memory_order_relaxed);
	}
	struct stream st = { 0 };
	for (;;) {
		uint64_t c = atomic_load_explicit(&sh->con,
		    memory_order_relaxed);
		if (sh->head_seen == word_pos(c)) {
			uint64_t p = atomic_load_explicit(&sh->pub,
			    memory_order_acquire);
			sh->head_seen = word_pos(p);
			if (sh->head_seen == word_pos(c)) {
				rv = wait_data(q, p, &st, nowait, deadline);
				if (rv != 0) {
					break;
				}
				continue;
			}
		}
		struct mp__rec h;
		ring_read(q, word_pos(c), &h, sizeof(h));
		rv = take_record(q, c, &h, own, &st, owned);
		if (rv != 0) {
			break;
		}
	}
	side_unlock(&sh->get_lock, repair);
	if (rv < 0) {
		stream_drop(&st);
		return rv;
	}
	*data = st.buf;
	*len = (size_t)st.total;
	*fmt = st.fmt;
	return 0;
}
