/* SPDX-License-Identifier: MIT */
/* sync/lock.c: Lock and RLock on a futex word; takeover from dead owners. */
#include "sync/lock_internal.h"
#include "shared/arena.h"

/*
 * A sleeping waiter wakes at least this often to check that the owner
 * still lives: the detection delay for waiters already asleep when the
 * owner dies. Each check costs a few system calls, so 20 a second per
 * waiter is noise. Tests raise it to prove that no sleeper depends on it.
 */
int64_t mp__lock_check_slice_ns = 50 * 1000000LL;

void
mp__lock_init(struct mp_lock *l, bool recursive)
{
	atomic_store_explicit(&l->word, 0, memory_order_relaxed);
	atomic_store_explicit(&l->seq, 0, memory_order_relaxed);
	atomic_store_explicit(&l->waiters, 0, memory_order_relaxed);
	atomic_store_explicit(&l->mode, recursive ? MP__LOCK_RECURSIVE : 0,
	    memory_order_relaxed);
	l->count = 0;
	l->magic = MP__LOCK_MAGIC;
}

static int
lock_new(bool recursive, mp_lock_t **out)
{
	void *mem;
	int rv = mp__arena_alloc(sizeof(struct mp_lock), &mem);
	if (rv != 0) {
		return rv;
	}
	mp__lock_init(mem, recursive);
	*out = mem;
	return 0;
}

int
mp_lock_new(mp_lock_t **out)
{
	return lock_new(false, out);
}

int
mp_rlock_new(mp_rlock_t **out)
{
	return lock_new(true, out);
}

void
mp_lock_free(mp_lock_t *l)
{
	if (l == NULL) {
		return;
	}
	MP_ASSERT(l->magic == MP__LOCK_MAGIC);
	MP_ASSERT(mp__arena_contains(l));
	l->magic = 0;
	mp__arena_free(l);
}

static void
named_init(void *mem, void *arg)
{
	mp__lock_init(mem, *(bool *)arg);
}

static int
lock_open(const char *name, int flags, bool recursive, mp_lock_t **out)
{
	void *mem;
	int rv = mp__sync_named_open("lock", name, sizeof(struct mp_lock),
	    flags, named_init, &recursive, &mem);
	if (rv != 0) {
		return rv;
	}
	struct mp_lock *l = mem;
	uint32_t mode = atomic_load_explicit(&l->mode, memory_order_relaxed);
	bool is_recursive = (mode & MP__LOCK_RECURSIVE) != 0;
	if (l->magic != MP__LOCK_MAGIC || is_recursive != recursive) {
		mp__sync_named_close(mem);
		return -EPROTO;
	}
	*out = l;
	return 0;
}

int
mp_lock_open(const char *name, int flags, mp_lock_t **out)
{
	return lock_open(name, flags, false, out);
}

int
mp_rlock_open(const char *name, int flags, mp_rlock_t **out)
{
	return lock_open(name, flags, true, out);
}

void
mp_lock_close(mp_lock_t *l)
{
	if (l == NULL) {
		return;
	}
	MP_ASSERT(mp__sync_named_close(l));
}

int
mp_lock_unlink(const char *name)
{
	return mp__sync_named_unlink("lock", name);
}

/* The caller now holds the lock, plainly or (rv -EOWNERDEAD) by takeover. */
static int
lock_taken(struct mp_lock *l, int rv)
{
	l->count = 1;
	if (rv == -EOWNERDEAD) {
		atomic_fetch_or_explicit(&l->mode, MP__LOCK_INCONSISTENT,
		    memory_order_relaxed);
	}
	return rv;
}

static bool
owned_by(uint32_t w, uint32_t tid)
{
	/* MP__LOCK_NOTRECOVERABLE equals no thread id, so no special case. */
	return (w & MP__LOCK_TID_MASK) == tid;
}

/*
 * The owner is dead: take the lock over. The CAS from the exact word we
 * judged means a word that changed meanwhile (the lock passed to a live
 * thread, or another waiter took over first) is left alone.
 */
static bool
take_over(struct mp_lock *l, uint32_t w, uint32_t tid)
{
	return atomic_compare_exchange_strong_explicit(&l->word, &w, tid,
	    memory_order_acquire, memory_order_relaxed);
}

/*
 * Sleep while the lock stays taken, until wake_at. The release sequence is
 * read first, then the waiters flag raised, then the heavy fence, then the
 * word read again: a release that stored before the fence is seen here
 * (the word or the sequence changed), one after it sees the flag and wakes
 * us (docs/internals/sync.md, "The release"). Returns mp__futex_wait's
 * result, or 0 when the lock was released meanwhile.
 */
static int
lock_sleep(struct mp_lock *l, uint32_t w, int64_t wake_at)
{
	uint32_t seq = atomic_load_explicit(&l->seq, memory_order_relaxed);
	atomic_store_explicit(&l->waiters, 1, memory_order_seq_cst);
	mp__fence_heavy();
	if (atomic_load_explicit(&l->word, memory_order_relaxed) != w) {
		return 0;
	}
	return mp__futex_wait(&l->seq, seq, wake_at);
}

/*
 * Spin a few microseconds: the holder may be about to release. The gap
 * between two looks at the word doubles (up to 128 pauses): a spinner that
 * reads the word on every turn pulls the cache line away from a holder
 * that is taking the lock again and again (a tight locked loop on a shared
 * counter), and the two processes then pay a line transfer per increment.
 */
static bool
lock_spin(struct mp_lock *l, uint32_t tid)
{
	unsigned gap = 1;
	for (int i = 0; i < MP__SPIN_LIMIT; i += (int)gap) {
		for (unsigned k = 0; k < gap; k++) {
			mp__spin_pause();
		}
		if (gap < 128) {
			gap *= 2;
		}
		uint32_t w = atomic_load_explicit(&l->word,
		    memory_order_relaxed);
		if (w == 0 && atomic_compare_exchange_weak_explicit(&l->word,
		    &w, tid, memory_order_acquire, memory_order_relaxed)) {
			return true;
		}
		if (w == MP__LOCK_NOTRECOVERABLE) {
			return false;
		}
	}
	return false;
}

/*
 * The contended path. A thread that has slept raises the waiters flag
 * again once it holds the lock: the release that woke it cleared the flag,
 * and others may still sleep. At worst one needless wake-up at release,
 * never a lost one (Drepper, "Futexes Are Tricky", mutex take 2, with the
 * flag in a word of its own). Barging is allowed: whoever finds the word 0
 * may take it, whether it slept or just arrived.
 */
static int
lock_wait(struct mp_lock *l, uint32_t tid, bool nowait, int64_t deadline)
{
	bool check_owner = true;
	bool woken = false;
	bool slept = false;
	int rv;
	for (;;) {
		uint32_t w = atomic_load_explicit(&l->word,
		    memory_order_relaxed);
		if (w == 0) {
			if (atomic_compare_exchange_weak_explicit(&l->word, &w,
			    tid, memory_order_acquire, memory_order_relaxed)) {
				if (slept) {
					atomic_store_explicit(&l->waiters, 1,
					    memory_order_relaxed);
				}
				return lock_taken(l, 0);
			}
			continue;
		}
		if (w == MP__LOCK_NOTRECOVERABLE) {
			return -ENOTRECOVERABLE;
		}
		if (check_owner) {
			check_owner = false;
			if (!mp__pid_alive((pid_t)(w & MP__LOCK_TID_MASK))) {
				if (take_over(l, w, tid)) {
					return lock_taken(l, -EOWNERDEAD);
				}
				check_owner = true;
				continue;
			}
		}
		if (nowait) {
			return -EAGAIN;
		}
		if (mp__deadline_expired(deadline)) {
			rv = -ETIMEDOUT;
			goto out_pass_wake;
		}
		int64_t wake_at = mp__now_ns() + mp__lock_check_slice_ns;
		if (deadline >= 0 && deadline < wake_at) {
			wake_at = deadline;
		}
		slept = true;
		if (lock_sleep(l, w, wake_at) == -ETIMEDOUT) {
			check_owner = true;
		} else {
			woken = true;
		}
	}
out_pass_wake:
	/*
	 * A release wakes one sleeper. One that gives up instead may have
	 * taken the only wake-up, leaving others asleep behind a lock that
	 * may be free: pass the wake-up on.
	 */
	if (woken) {
		mp__futex_wake(&l->seq, 1);
	}
	return rv;
}

/* Everything but the uncontended first acquire. */
static int
lock_acquire_slow(struct mp_lock *l, uint32_t tid, bool nowait,
    int64_t timeout_ms, int64_t deadline)
{
	uint32_t w = atomic_load_explicit(&l->word, memory_order_relaxed);
	if (owned_by(w, tid)) {
		uint32_t mode = atomic_load_explicit(&l->mode,
		    memory_order_relaxed);
		if ((mode & MP__LOCK_RECURSIVE) == 0) {
			return -EDEADLK;
		}
		if (l->count == UINT32_MAX) {
			return -EOVERFLOW;
		}
		l->count++;
		return 0;
	}
	if (w == MP__LOCK_NOTRECOVERABLE) {
		return -ENOTRECOVERABLE;
	}
	if (timeout_ms > 0) {
		deadline = mp__deadline_from_timeout(timeout_ms);
	}
	if (!nowait && lock_spin(l, tid)) {
		return lock_taken(l, 0);
	}
	return lock_wait(l, tid, nowait, deadline);
}

int
mp_lock_acquire(mp_lock_t *l, int64_t timeout_ms)
{
	uint32_t tid = (uint32_t)mp__self_tid();
	uint32_t expected = 0;
	if (__builtin_expect(atomic_compare_exchange_strong_explicit(&l->word,
	    &expected, tid, memory_order_acquire, memory_order_relaxed), 1)) {
		l->count = 1;
		return 0;
	}
	return lock_acquire_slow(l, tid, timeout_ms == 0, timeout_ms, -1);
}

int
mp__lock_acquire_until(struct mp_lock *l, int64_t deadline_ns)
{
	uint32_t tid = (uint32_t)mp__self_tid();
	uint32_t expected = 0;
	if (atomic_compare_exchange_strong_explicit(&l->word, &expected, tid,
	    memory_order_acquire, memory_order_relaxed)) {
		l->count = 1;
		return 0;
	}
	return lock_acquire_slow(l, tid, false, -1, deadline_ns);
}

/*
 * Store the word and wake one sleeper if any. In a registered process the
 * store is plain and only the compiler is fenced: the sleeper's heavy
 * fence orders the pair (docs/internals/sync.md, "The release").
 * Elsewhere an exchange is the full barrier between store and load.
 */
static inline void
lock_put_word(struct mp_lock *l, uint32_t next)
{
	/* Only the owner writes seq, so a plain increment is enough. */
	uint32_t seq = atomic_load_explicit(&l->seq, memory_order_relaxed) + 1;
	if (__builtin_expect(mp__fence_light_ok(), 1)) {
		atomic_store_explicit(&l->word, next, memory_order_release);
		atomic_store_explicit(&l->seq, seq, memory_order_relaxed);
		atomic_signal_fence(memory_order_seq_cst);
	} else {
		atomic_store_explicit(&l->word, next, memory_order_release);
		atomic_store_explicit(&l->seq, seq, memory_order_relaxed);
		atomic_thread_fence(memory_order_seq_cst);
	}
	if (atomic_load_explicit(&l->waiters, memory_order_relaxed) != 0 &&
	    atomic_exchange_explicit(&l->waiters, 0, memory_order_relaxed)) {
		mp__futex_wake(&l->seq,
		    next == MP__LOCK_NOTRECOVERABLE ? INT32_MAX : 1);
	}
}

/*
 * Give the word up. A lock whose dead owner's state was not repaired
 * becomes not recoverable, and every sleeper is woken to learn it.
 */
static void
lock_unlock_word(struct mp_lock *l)
{
	uint32_t mode = atomic_load_explicit(&l->mode, memory_order_relaxed);
	uint32_t next = 0;
	l->count = 0;
	if ((mode & MP__LOCK_INCONSISTENT) != 0) {
		atomic_fetch_and_explicit(&l->mode, ~MP__LOCK_INCONSISTENT,
		    memory_order_relaxed);
		next = MP__LOCK_NOTRECOVERABLE;
	}
	lock_put_word(l, next);
}

static int
lock_release_slow(struct mp_lock *l, uint32_t tid)
{
	uint32_t w = atomic_load_explicit(&l->word, memory_order_relaxed);
	if (!owned_by(w, tid)) {
		return -EPERM;
	}
	if (l->count > 1) {
		l->count--;
		return 0;
	}
	lock_unlock_word(l);
	return 0;
}

int
mp_lock_release(mp_lock_t *l)
{
	uint32_t tid = (uint32_t)mp__self_tid();
	/*
	 * A plain Lock in a consistent state, held by the caller: no atomic
	 * read-modify-write at all (lock_put_word). Anything else (an RLock,
	 * a dead owner's state, a non-owner) goes the slow way.
	 */
	if (atomic_load_explicit(&l->mode, memory_order_relaxed) == 0 &&
	    atomic_load_explicit(&l->word, memory_order_relaxed) == tid) {
		lock_put_word(l, 0);
		return 0;
	}
	return lock_release_slow(l, tid);
}

int
mp_lock_mark_consistent(mp_lock_t *l)
{
	uint32_t tid = (uint32_t)mp__self_tid();
	if (!owned_by(atomic_load_explicit(&l->word, memory_order_relaxed),
	    tid)) {
		return -EPERM;
	}
	uint32_t mode = atomic_load_explicit(&l->mode, memory_order_relaxed);
	if ((mode & MP__LOCK_INCONSISTENT) == 0) {
		return -EINVAL;
	}
	atomic_fetch_and_explicit(&l->mode, ~MP__LOCK_INCONSISTENT,
	    memory_order_relaxed);
	return 0;
}

bool
mp_lock_is_mine(const mp_lock_t *l)
{
	uint32_t w = atomic_load_explicit(&((struct mp_lock *)l)->word,
	    memory_order_relaxed);
	return owned_by(w, (uint32_t)mp__self_tid());
}

unsigned
mp_rlock_count(const mp_rlock_t *l)
{
	return mp_lock_is_mine(l) ? l->count : 0;
}

int
mp__lock_release_save(struct mp_lock *l, struct mp__lock_saved *st)
{
	uint32_t tid = (uint32_t)mp__self_tid();
	if (!owned_by(atomic_load_explicit(&l->word, memory_order_relaxed),
	    tid)) {
		return -EPERM;
	}
	st->count = l->count;
	lock_unlock_word(l);
	return 0;
}

int
mp__lock_acquire_restore(struct mp_lock *l, const struct mp__lock_saved *st,
    int64_t deadline_ns)
{
	int rv = mp__lock_acquire_until(l, deadline_ns);
	if (rv == 0 || rv == -EOWNERDEAD) {
		l->count = st->count;
	}
	return rv;
}
