/* SPDX-License-Identifier: MIT */
/* queue/joinable.c: JoinableQueue's task_done and join, counted from the published messages. */
#include "queue/queue_internal.h"
#include "sync/wait.h"

/*
 * Unfinished tasks are not a counter of their own: they are the messages
 * published (the count in pub, raised by the same store that makes a
 * message visible) minus the task_done calls (done). A producer killed
 * between the two halves of a put cannot leave a task that no message
 * stands for, nor a message with no task, as a separate counter could.
 * Both counts wrap at 2^32; their difference stays right while fewer than
 * 2^31 tasks are open.
 */
static uint32_t
unfinished(const struct mp__queue_shared *sh, uint32_t done)
{
	uint64_t p = atomic_load_explicit(&((struct mp__queue_shared *)sh)->pub,
	    memory_order_acquire);
	return (uint32_t)(p >> 32) - done;
}

static int
check_joinable(const mp_queue_t *q)
{
	MP_ASSERT(q != NULL && q->magic == MP__QUEUE_HANDLE_MAGIC);
	if (q->closed) {
		return MP_ECLOSED;
	}
	return q->sh->joinable ? 0 : -ENOTSUP;
}

int
mp_queue_task_done(mp_queue_t *q)
{
	int rv = check_joinable(q);
	if (rv != 0) {
		return rv;
	}
	struct mp__queue_shared *sh = q->sh;
	uint32_t d = atomic_load_explicit(&sh->done, memory_order_acquire);
	do {
		if (unfinished(sh, d) == 0) {
			return -EINVAL;
		}
	} while (!atomic_compare_exchange_weak_explicit(&sh->done, &d, d + 1,
	    memory_order_seq_cst, memory_order_acquire));
	if (unfinished(sh, d + 1) == 0) {
		mp__wake_sleepers(&sh->done, &sh->join_sleepers);
	}
	return 0;
}

int
mp_queue_join(mp_queue_t *q, int64_t timeout_ms)
{
	int rv = check_joinable(q);
	if (rv != 0) {
		return rv;
	}
	int64_t deadline;
	rv = mp__queue_deadline(timeout_ms, &deadline);
	if (rv != 0) {
		return rv;
	}
	struct mp__queue_shared *sh = q->sh;
	for (;;) {
		uint32_t d = atomic_load_explicit(&sh->done,
		    memory_order_acquire);
		if (unfinished(sh, d) == 0) {
			return 0;
		}
		if (timeout_ms == MP_NOWAIT) {
			return -EAGAIN;
		}
		if (mp__deadline_expired(deadline)) {
			return -ETIMEDOUT;
		}
		/* Only a task_done changes the answer from "not yet". */
		if (mp__spin_while_eq(&sh->done, d, MP__WAIT_SPIN_NS,
		    deadline) == d) {
			mp__sleep_while_eq(&sh->done, d, &sh->join_sleepers,
			    deadline);
		}
	}
}
