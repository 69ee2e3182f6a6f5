/* SPDX-License-Identifier: MIT */
/* core/internal.h: helpers shared by every layer of the library (not installed). */
#ifndef MP_CORE_INTERNAL_H
#define MP_CORE_INTERNAL_H

#include <mproc/common.h>
#include <mproc/error.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

/*
 * MP_ASSERT: a broken precondition (NULL handle, double close, releasing
 * another's lock) is a bug in the caller. Print file:line and abort. Never
 * compiled out.
 */
#define MP_ASSERT(cond) \
	do { \
		if (!(cond)) { \
			mp__panic(__FILE__, __LINE__, #cond); \
		} \
	} while (0)

_Noreturn void mp__panic(const char *file, int line, const char *what);

/* Allocation: the user hook and the fault-injection point. */
void *mp__malloc(size_t size);
void *mp__calloc(size_t n, size_t size);
void *mp__realloc(void *ptr, size_t size);
void mp__free(void *ptr);
char *mp__strdup(const char *s);

/*
 * Fault injection for tests: when set to N > 0, the Nth allocation from now
 * fails (returns NULL); 0 disables. Returns how many allocations were made
 * since the last call (counting starts at the first call).
 */
MP_API unsigned long mp__alloc_fail_after(unsigned long n);
/*
 * Restrict that counting and failing to the allocations of one thread (a
 * manager server's loop, while the test's own thread plays the client);
 * NULL counts every thread again. Call it while that thread is not
 * allocating.
 */
MP_API void mp__alloc_fail_only(const pthread_t *thread);
/*
 * Whether blocks may be kept in a cache of freed blocks (obj/cache.c):
 * only while the library uses libc's malloc and fault injection was never
 * used in this process (so that every allocation of a test is counted).
 * A plain flag read on every object allocation; alloc.c keeps it.
 */
extern _Atomic bool mp__alloc_cache_ok;

static inline bool
mp__alloc_cacheable(void)
{
	return atomic_load_explicit(&mp__alloc_cache_ok, memory_order_relaxed);
}
/* Return the calling thread's cached object blocks to libc (obj/cache.c);
 * mp_set_allocator calls it before switching allocators. */
void mp__obj_cache_drain(void);

/* Monotonic time and deadlines. A deadline of -1 means "forever". */
int64_t mp__now_ns(void);
int64_t mp__deadline_from_timeout(int64_t timeout_ms);
/* Milliseconds left until the deadline (>= 0), or -1 for forever. */
int mp__deadline_remaining_ms(int64_t deadline_ns);
bool mp__deadline_expired(int64_t deadline_ns);

/* fd helpers: all EINTR-safe, all return 0 / bytes or -errno. */
int mp__fd_set_nonblock(int fd, bool on);
int mp__fd_set_cloexec(int fd);
/* Wait for POLLIN/POLLOUT (events) on fd until the deadline: 1 ready, 0 timeout. */
int mp__fd_wait(int fd, short events, int64_t deadline_ns);
/* Write all of buf, looping on short writes (MSG_NOSIGNAL for sockets). */
int mp__fd_write_all(int fd, const void *buf, size_t len);

#define MP__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
