/* SPDX-License-Identifier: MIT */
/* sync/semaphore.c: Semaphore and BoundedSemaphore on one futex word. */
#include "sync/lock_internal.h"
#include "shared/arena.h"

#include <limits.h>

/*
 * A release wakes one sleeper. If that one is killed before it runs, the
 * wake-up dies with it and the value stays up while others sleep: so
 * sleepers also look again this often. The same delay bounds how long a
 * dead waiter can hold others up.
 */
#define RECHECK_SLICE_NS (50 * 1000000LL)

void
mp__sem_init(struct mp_sem *s, unsigned value, bool bounded)
{
	atomic_store_explicit(&s->value, value, memory_order_relaxed);
	atomic_store_explicit(&s->waiters, 0, memory_order_relaxed);
	s->max = bounded ? value : INT32_MAX;
	s->magic = MP__SEM_MAGIC;
}

static int
sem_new(unsigned value, bool bounded, mp_sem_t **out)
{
	if (value > INT32_MAX) {
		return -EINVAL;
	}
	void *mem;
	int rv = mp__arena_alloc(sizeof(struct mp_sem), &mem);
	if (rv != 0) {
		return rv;
	}
	mp__sem_init(mem, value, bounded);
	*out = mem;
	return 0;
}

int
mp_sem_new(unsigned value, mp_sem_t **out)
{
	return sem_new(value, false, out);
}

int
mp_bounded_sem_new(unsigned value, mp_sem_t **out)
{
	return sem_new(value, true, out);
}

void
mp_sem_free(mp_sem_t *s)
{
	if (s == NULL) {
		return;
	}
	MP_ASSERT(s->magic == MP__SEM_MAGIC);
	MP_ASSERT(mp__arena_contains(s));
	s->magic = 0;
	mp__arena_free(s);
}

struct sem_args {
	unsigned value;
	bool bounded;
};

static void
named_init(void *mem, void *arg)
{
	struct sem_args *a = arg;
	mp__sem_init(mem, a->value, a->bounded);
}

int
mp_sem_open(const char *name, int flags, unsigned value, bool bounded,
    mp_sem_t **out)
{
	if (value > INT32_MAX) {
		return -EINVAL;
	}
	struct sem_args a = { .value = value, .bounded = bounded };
	void *mem;
	int rv = mp__sync_named_open("sem", name, sizeof(struct mp_sem), flags,
	    named_init, &a, &mem);
	if (rv != 0) {
		return rv;
	}
	struct mp_sem *s = mem;
	if (s->magic != MP__SEM_MAGIC) {
		mp__sync_named_close(mem);
		return -EPROTO;
	}
	*out = s;
	return 0;
}

void
mp_sem_close(mp_sem_t *s)
{
	if (s == NULL) {
		return;
	}
	MP_ASSERT(mp__sync_named_close(s));
}

int
mp_sem_unlink(const char *name)
{
	return mp__sync_named_unlink("sem", name);
}

static bool
sem_try(struct mp_sem *s)
{
	uint32_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
	while (v > 0) {
		if (atomic_compare_exchange_weak_explicit(&s->value, &v, v - 1,
		    memory_order_acquire, memory_order_relaxed)) {
			return true;
		}
	}
	return false;
}

/*
 * Sleep while the value is zero. The waiter count and the value form a
 * Dekker pair (both sequentially consistent): a releaser that misses our
 * count increment made the value non-zero before we slept, so the futex
 * refuses to sleep; otherwise it sees the count and wakes us.
 */
static int
sem_wait(struct mp_sem *s, int64_t deadline)
{
	for (int i = 0; i < MP__SPIN_LIMIT; i++) {
		mp__spin_pause();
		if (sem_try(s)) {
			return 0;
		}
	}
	for (;;) {
		atomic_fetch_add(&s->waiters, 1);
		int64_t wake_at = mp__now_ns() + RECHECK_SLICE_NS;
		if (deadline >= 0 && deadline < wake_at) {
			wake_at = deadline;
		}
		if (atomic_load(&s->value) == 0) {
			mp__futex_wait(&s->value, 0, wake_at);
		}
		atomic_fetch_sub(&s->waiters, 1);
		/* A wake-up racing the deadline still takes its due. */
		if (sem_try(s)) {
			return 0;
		}
		if (mp__deadline_expired(deadline)) {
			return -ETIMEDOUT;
		}
	}
}

int
mp_sem_acquire(mp_sem_t *s, int64_t timeout_ms)
{
	if (sem_try(s)) {
		return 0;
	}
	if (timeout_ms == 0) {
		return -EAGAIN;
	}
	return sem_wait(s, mp__deadline_from_timeout(timeout_ms));
}

int
mp_sem_release(mp_sem_t *s)
{
	uint32_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
	do {
		if (v >= s->max) {
			return -EOVERFLOW;
		}
	} while (!atomic_compare_exchange_weak(&s->value, &v, v + 1));
	if (atomic_load(&s->waiters) > 0) {
		mp__futex_wake(&s->value, 1);
	}
	return 0;
}

int
mp_sem_get_value(const mp_sem_t *s, int *out)
{
	*out = (int)atomic_load_explicit(&((struct mp_sem *)s)->value,
	    memory_order_relaxed);
	return 0;
}
