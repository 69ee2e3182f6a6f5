/* SPDX-License-Identifier: MIT */
/* sync/futex.h: futex, spin, thread id and liveness under every sync object. */
#ifndef MP_SYNC_FUTEX_H
#define MP_SYNC_FUTEX_H

#include "core/internal.h"

#include <sys/types.h>

/*
 * mp__futex_wait: sleep while the 32-bit word at addr (a uint32_t or an
 * _Atomic uint32_t, 4-byte aligned, usually in shared memory) holds val,
 * until mp__futex_wake on it or the absolute CLOCK_MONOTONIC deadline
 * (nanoseconds, -1 for forever). The futex is process-shared (no
 * FUTEX_PRIVATE_FLAG), so it works across processes that map the word at
 * different addresses. Returns 0 when woken (or when the word no longer
 * held val: callers re-check their condition in every case), -ETIMEDOUT
 * when the deadline passed. EINTR is reported as 0 (a spurious wake-up).
 * Threads: safe. Fork: usable.
 */
int mp__futex_wait(void *addr, uint32_t val, int64_t deadline_ns);

/*
 * mp__futex_wake: wake at most n waiters sleeping on addr (INT32_MAX: all).
 * Returns how many were woken (>= 0). Cannot fail on a valid address.
 * Threads: safe. Fork: usable.
 */
int mp__futex_wake(void *addr, int n);

/*
 * mp__spin_pause: a CPU hint for one turn of a spin-wait loop (x86 pause,
 * arm yield), so a spinning vCPU yields pipeline resources to its sibling
 * and leaves the loop quickly when the word changes. Cannot fail.
 */
static inline void
mp__spin_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/*
 * MP__SPIN_LIMIT: turns of mp__spin_pause a contended acquirer spins before
 * it sleeps, a few microseconds. Waking a sleeping process costs about 30 us
 * on the target machines, so a short spin wins whenever the holder is
 * running on another CPU and releases soon.
 */
#define MP__SPIN_LIMIT 200

/*
 * mp__self_tid: the kernel thread id of the calling thread (gettid), cached
 * per thread and reset in a forked child. It is never 0. Cannot fail.
 * Threads: safe. Fork: the child gets its own id.
 */
extern _Thread_local pid_t mp__tid_cache
    __attribute__((tls_model("initial-exec")));
pid_t mp__self_tid_slow(void);

static inline pid_t
mp__self_tid(void)
{
	pid_t tid = mp__tid_cache;
	if (__builtin_expect(tid == 0, 0)) {
		tid = mp__self_tid_slow();
	}
	return tid;
}

/*
 * Asymmetric fences (docs/internals/sync.md, "The release"): a lock's
 * release publishes the free word with a plain store and then reads the
 * sleeper count, with no fence between, which is what makes it cheap. A
 * thread about to sleep pays instead: after counting itself as a sleeper
 * it calls mp__fence_heavy, which runs a full barrier on every CPU that
 * runs a registered process (membarrier(2), MEMBARRIER_CMD_GLOBAL_EXPEDITED).
 * Either the releaser's store is then visible to the sleeper's next load,
 * or the releaser's load sees the sleeper counted.
 *
 * mp__fence_light_ok: whether this process is registered, so its releases
 * may use the plain store. Registration happens in mp__self_tid's slow
 * path, which every lock operation passes through once per thread, and is
 * redone in a forked child (which starts unregistered). A process whose
 * kernel refuses membarrier stays unregistered and releases with an
 * exchange (a full barrier), as before.
 * mp__fence_heavy: the sleeper's side. Cannot fail; without membarrier it
 * is a plain full fence, enough against unregistered releasers.
 * Threads: safe. Fork: see above.
 */
extern bool mp__fence_light_registered;
/* Tests clear it (before the first lock operation) to act as a kernel
 * without membarrier. */
extern bool mp__fence_light_allowed;

static inline bool
mp__fence_light_ok(void)
{
	return __atomic_load_n(&mp__fence_light_registered, __ATOMIC_RELAXED);
}

void mp__fence_heavy(void);

/*
 * mp__pid_alive: whether the process or thread pid (a thread id works too:
 * Linux thread ids and process ids share one namespace) still runs. A
 * zombie (ended, not yet reaped) counts as dead. A pid owned by another
 * user counts as alive when it exists. Costs a few system calls (pidfd_open
 * and poll, or /proc/<pid>/stat where pidfds are missing): call it only on
 * slow paths. Limit: a pid the kernel has already given to a new process
 * reads as alive. Cannot fail.
 * Threads: safe. Fork: usable.
 */
bool mp__pid_alive(pid_t pid);

#endif
