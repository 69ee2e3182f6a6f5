/* SPDX-License-Identifier: MIT */
/* sync/event.c: Event, a shared flag with spin-then-futex waiters. */
#include "shared/arena.h"
#include "sync/lock_internal.h"
#include "sync/wait.h"

#include <mproc/event.h>

/*
 * The whole event is one 32-bit futex word: bit 0 is the flag, the bits
 * above count the sets (each clear-to-set transition adds one). A waiter
 * that saw the word w with the flag clear returns as soon as the word is no
 * longer w: the only way to change a clear word is a set, so a set followed
 * at once by a clear still releases everyone who was waiting (threading.
 * Event semantics), and a spurious futex wake-up cannot release anyone.
 * The count wraps after 2^31 sets; a waiter could only be fooled if it
 * slept through exactly 2^31 sets and clears.
 */
struct mp_event {
	_Atomic uint32_t word;
	_Atomic uint32_t sleepers;  /* processes in futex_wait on word */
	uint32_t magic;
};

#define EVENT_MAGIC 0x74657665u  /* "evet" */
#define EVENT_FLAG  1u
#define EVENT_KIND  "event"

_Static_assert(sizeof(struct mp_event) == 12, "shared layout is pinned");

static void
event_init(void *mem, void *arg)
{
	(void)arg;
	struct mp_event *e = mem;
	atomic_init(&e->word, 0);
	atomic_init(&e->sleepers, 0);
	e->magic = EVENT_MAGIC;
}

int
mp_event_new(mp_event_t **out)
{
	void *mem;
	int rv = mp__arena_alloc(sizeof(struct mp_event), &mem);
	if (rv != 0) {
		return rv;
	}
	event_init(mem, NULL);
	*out = mem;
	return 0;
}

void
mp_event_free(mp_event_t *e)
{
	if (e == NULL) {
		return;
	}
	MP_ASSERT(e->magic == EVENT_MAGIC);
	e->magic = 0;
	mp__arena_free(e);
}

int
mp_event_open(const char *name, int flags, mp_event_t **out)
{
	void *mem;
	int rv = mp__sync_named_open(EVENT_KIND, name, sizeof(struct mp_event),
	    flags, event_init, NULL, &mem);
	if (rv != 0) {
		return rv;
	}
	*out = mem;
	return 0;
}

void
mp_event_close(mp_event_t *e)
{
	if (e == NULL) {
		return;
	}
	MP_ASSERT(e->magic == EVENT_MAGIC);
	bool was_named = mp__sync_named_close(e);
	MP_ASSERT(was_named);
}

int
mp_event_unlink(const char *name)
{
	return mp__sync_named_unlink(EVENT_KIND, name);
}

void
mp_event_set(mp_event_t *e)
{
	MP_ASSERT(e != NULL && e->magic == EVENT_MAGIC);
	uint32_t w = atomic_load_explicit(&e->word, memory_order_relaxed);
	do {
		if (w & EVENT_FLAG) {
			return;
		}
	} while (!atomic_compare_exchange_weak_explicit(&e->word, &w,
	    (w + 2) | EVENT_FLAG, memory_order_seq_cst, memory_order_relaxed));
	mp__wake_sleepers(&e->word, &e->sleepers);
}

void
mp_event_clear(mp_event_t *e)
{
	MP_ASSERT(e != NULL && e->magic == EVENT_MAGIC);
	atomic_fetch_and_explicit(&e->word, ~EVENT_FLAG, memory_order_release);
}

bool
mp_event_is_set(const mp_event_t *e)
{
	MP_ASSERT(e != NULL && e->magic == EVENT_MAGIC);
	struct mp_event *m = (struct mp_event *)e;
	uint32_t w = atomic_load_explicit(&m->word, memory_order_acquire);
	return (w & EVENT_FLAG) != 0;
}

int
mp_event_wait(mp_event_t *e, int64_t timeout_ms)
{
	MP_ASSERT(e != NULL && e->magic == EVENT_MAGIC);
	if (timeout_ms < MP_FOREVER) {
		return -EINVAL;
	}
	uint32_t w = atomic_load_explicit(&e->word, memory_order_acquire);
	if (w & EVENT_FLAG) {
		return 0;
	}
	if (timeout_ms == MP_NOWAIT) {
		return -EAGAIN;
	}
	int64_t deadline = mp__deadline_from_timeout(timeout_ms);
	if (mp__spin_while_eq(&e->word, w, MP__WAIT_SPIN_NS, deadline) != w) {
		return 0;
	}
	for (;;) {
		int rv = mp__sleep_while_eq(&e->word, w, &e->sleepers,
		    deadline);
		if (atomic_load_explicit(&e->word, memory_order_acquire) != w) {
			return 0;
		}
		if (rv == -ETIMEDOUT) {
			return -ETIMEDOUT;
		}
	}
}
