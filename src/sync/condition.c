/* SPDX-License-Identifier: MIT */
/* sync/condition.c: Condition, waiter slots with tickets under its lock. */
#include "shared/arena.h"
#include "sync/lock_internal.h"
#include "sync/wait.h"

#include <mproc/condition.h>

#include <stddef.h>

/*
 * Every waiter owns one slot while it waits: its thread id, its ticket
 * (arrival order) and a futex word of its own. mp_cond_notify picks the
 * waiting slots with the smallest tickets and flips their words to
 * NOTIFIED, so a notification is addressed to one waiter: a spurious
 * wake-up of another cannot consume it, and a thread that starts waiting
 * after the notify (it needs the lock, which the notifier holds) cannot
 * take it. Only the slot's word is touched without the lock.
 *
 * There is no queue to keep in order, only the tickets: every change is a
 * single store, so a holder that dies half-way through a notify leaves a
 * table that is still sound (a partial notify), and the next holder's
 * -EOWNERDEAD is about the caller's data, not ours.
 */
enum {
	SLOT_WAITING = 0,   /* waiting, maybe spinning */
	SLOT_NOTIFIED = 1,
	SLOT_SLEEPING = 2,  /* in futex_wait: the notifier must wake it */
};

struct cond_slot {
	_Atomic uint32_t state;
	int32_t tid;        /* 0: free */
	uint64_t ticket;
};

/*
 * lock_off is the distance from the condition to its lock: both live in
 * one mapping (the arena, or the named block that embeds the lock), which
 * every process of the family sees at one address (the arena), or which
 * holds both (a named block), so no pointer is stored.
 */
struct mp_cond {
	uint32_t magic;
	uint32_t pad;
	int64_t lock_off;
	struct mp_lock own;     /* the lock when the caller gave none */
	uint64_t next_ticket;   /* guarded by the lock */
	struct cond_slot slots[MP_COND_MAX_WAITERS];
};

#define COND_MAGIC 0x646e6f63u  /* "cond" */
#define COND_KIND  "cond"

_Static_assert(sizeof(struct cond_slot) == 16, "shared layout is pinned");
_Static_assert(offsetof(struct mp_cond, slots) == 48,
    "shared layout is pinned");

static inline struct mp_lock *
cond_lock(mp_cond_t *c)
{
	MP_ASSERT(c != NULL && c->magic == COND_MAGIC);
	return (struct mp_lock *)((char *)c + c->lock_off);
}

static void
cond_init(void *mem, void *arg)
{
	struct mp_cond *c = mem;
	struct mp_lock *lock = arg;
	if (lock == NULL) {
		mp__lock_init(&c->own, true);
		lock = &c->own;
	}
	c->lock_off = (char *)lock - (char *)c;
	c->next_ticket = 1;
	for (size_t i = 0; i < MP_COND_MAX_WAITERS; i++) {
		atomic_init(&c->slots[i].state, SLOT_WAITING);
		c->slots[i].tid = 0;
	}
	c->magic = COND_MAGIC;
}

int
mp_cond_new(mp_lock_t *lock, mp_cond_t **out)
{
	if (lock != NULL && (!mp__arena_contains(lock) ||
	    lock->magic != MP__LOCK_MAGIC)) {
		return -EINVAL;
	}
	void *mem;
	int rv = mp__arena_alloc(sizeof(struct mp_cond), &mem);
	if (rv != 0) {
		return rv;
	}
	cond_init(mem, lock);
	*out = mem;
	return 0;
}

void
mp_cond_free(mp_cond_t *c)
{
	if (c == NULL) {
		return;
	}
	MP_ASSERT(c->magic == COND_MAGIC);
	c->magic = 0;
	mp__arena_free(c);
}

int
mp_cond_open(const char *name, int flags, mp_cond_t **out)
{
	void *mem;
	int rv = mp__sync_named_open(COND_KIND, name, sizeof(struct mp_cond),
	    flags, cond_init, NULL, &mem);
	if (rv != 0) {
		return rv;
	}
	*out = mem;
	return 0;
}

void
mp_cond_close(mp_cond_t *c)
{
	if (c == NULL) {
		return;
	}
	MP_ASSERT(c->magic == COND_MAGIC);
	bool was_named = mp__sync_named_close(c);
	MP_ASSERT(was_named);
}

int
mp_cond_unlink(const char *name)
{
	return mp__sync_named_unlink(COND_KIND, name);
}

mp_lock_t *
mp_cond_lock(mp_cond_t *c)
{
	return cond_lock(c);
}

int
mp_cond_acquire(mp_cond_t *c, int64_t timeout_ms)
{
	return mp_lock_acquire(cond_lock(c), timeout_ms);
}

int
mp_cond_release(mp_cond_t *c)
{
	return mp_lock_release(cond_lock(c));
}

/*
 * Take a free slot (lock held). When all are taken, slots of dead waiters
 * (killed while waiting, or after a notify_all that did not check them)
 * are reclaimed first. Returns the index or -ENOSPC.
 */
static int
slot_take(mp_cond_t *c)
{
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < MP_COND_MAX_WAITERS; i++) {
			struct cond_slot *s = &c->slots[i];
			if (s->tid == 0) {
				s->ticket = c->next_ticket++;
				atomic_store_explicit(&s->state, SLOT_WAITING,
				    memory_order_relaxed);
				s->tid = mp__self_tid();
				return i;
			}
		}
		for (int i = 0; i < MP_COND_MAX_WAITERS; i++) {
			if (!mp__pid_alive(c->slots[i].tid)) {
				c->slots[i].tid = 0;
			}
		}
	}
	return -ENOSPC;
}

/*
 * Wait (lock released) until the slot is notified or the deadline passes.
 * Returns whether it was notified by then; the caller checks again under
 * the lock, since a notify may land between a timeout and the re-lock.
 */
static bool
slot_wait(struct cond_slot *s, int64_t deadline)
{
	uint32_t st = mp__spin_while_eq(&s->state, SLOT_WAITING,
	    MP__WAIT_SPIN_NS, deadline);
	if (st == SLOT_NOTIFIED) {
		return true;
	}
	uint32_t expect = SLOT_WAITING;
	if (!atomic_compare_exchange_strong(&s->state, &expect,
	    SLOT_SLEEPING)) {
		return true;
	}
	for (;;) {
		int rv = mp__futex_wait(&s->state, SLOT_SLEEPING, deadline);
		if (atomic_load(&s->state) == SLOT_NOTIFIED) {
			return true;
		}
		if (rv == -ETIMEDOUT) {
			return false;
		}
	}
}

/* mp_cond_wait with an absolute deadline (-1: forever). */
static int
cond_wait_until(mp_cond_t *c, int64_t deadline)
{
	struct mp_lock *lock = cond_lock(c);
	if (!mp_lock_is_mine(lock)) {
		return -EPERM;
	}
	int i = slot_take(c);
	if (i < 0) {
		return i;
	}
	struct cond_slot *s = &c->slots[i];
	struct mp__lock_saved saved;
	int rv = mp__lock_release_save(lock, &saved);
	MP_ASSERT(rv == 0);
	bool notified = slot_wait(s, deadline);
	rv = mp__lock_acquire_restore(lock, &saved, -1);
	if (rv == -ENOTRECOVERABLE) {
		/* We do not hold the lock: the slot stays ours, and is lost. */
		return rv;
	}
	notified = atomic_load(&s->state) == SLOT_NOTIFIED;
	s->tid = 0;
	if (rv != 0) {
		return rv;
	}
	return notified ? 0 : -ETIMEDOUT;
}

int
mp_cond_wait(mp_cond_t *c, int64_t timeout_ms)
{
	if (timeout_ms < MP_FOREVER) {
		return -EINVAL;
	}
	if (timeout_ms == MP_NOWAIT) {
		int rv = cond_wait_until(c, mp__now_ns());
		return rv == -ETIMEDOUT ? -EAGAIN : rv;
	}
	return cond_wait_until(c, mp__deadline_from_timeout(timeout_ms));
}

int
mp_cond_wait_for(mp_cond_t *c, bool (*pred)(void *arg), void *arg,
    int64_t timeout_ms)
{
	if (timeout_ms < MP_FOREVER) {
		return -EINVAL;
	}
	if (!mp_lock_is_mine(cond_lock(c))) {
		return -EPERM;
	}
	if (pred(arg)) {
		return 0;
	}
	if (timeout_ms == MP_NOWAIT) {
		return -EAGAIN;
	}
	int64_t deadline = mp__deadline_from_timeout(timeout_ms);
	for (;;) {
		int rv = cond_wait_until(c, deadline);
		if (rv != 0 && rv != -ETIMEDOUT) {
			return rv;
		}
		if (pred(arg)) {
			return 0;
		}
		if (rv == -ETIMEDOUT || mp__deadline_expired(deadline)) {
			return -ETIMEDOUT;
		}
	}
}

static inline bool
slot_waiting(const struct cond_slot *s)
{
	return s->tid != 0 &&
	    atomic_load_explicit(&s->state, memory_order_relaxed) !=
	    SLOT_NOTIFIED;
}

static void
slot_notify(struct cond_slot *s)
{
	uint32_t old = atomic_exchange(&s->state, SLOT_NOTIFIED);
	if (old == SLOT_SLEEPING) {
		mp__futex_wake(&s->state, 1);
	}
}

/* The waiting slot with the smallest ticket, or -1. */
static int
oldest_waiting(mp_cond_t *c)
{
	int best = -1;
	for (int i = 0; i < MP_COND_MAX_WAITERS; i++) {
		const struct cond_slot *s = &c->slots[i];
		if (slot_waiting(s) &&
		    (best < 0 || s->ticket < c->slots[best].ticket)) {
			best = i;
		}
	}
	return best;
}

int
mp_cond_notify(mp_cond_t *c, unsigned n)
{
	if (!mp_lock_is_mine(cond_lock(c))) {
		return -EPERM;
	}
	unsigned waiting = 0;
	for (int i = 0; i < MP_COND_MAX_WAITERS; i++) {
		waiting += slot_waiting(&c->slots[i]);
	}
	if (n >= waiting) {
		/*
		 * Everyone is woken: nobody can be short-changed by a dead
		 * waiter, so skip the liveness checks (a dead waiter's slot
		 * is reclaimed when the table fills up).
		 */
		for (int i = 0; i < MP_COND_MAX_WAITERS; i++) {
			if (slot_waiting(&c->slots[i])) {
				slot_notify(&c->slots[i]);
			}
		}
		return 0;
	}
	while (n > 0) {
		int i = oldest_waiting(c);
		if (i < 0) {
			break;
		}
		struct cond_slot *s = &c->slots[i];
		if (!mp__pid_alive(s->tid)) {
			/* Killed while waiting: forget it, pick another. */
			s->tid = 0;
			continue;
		}
		slot_notify(s);
		n--;
	}
	return 0;
}

int
mp_cond_notify_all(mp_cond_t *c)
{
	return mp_cond_notify(c, UINT32_MAX);
}
