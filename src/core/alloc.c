/* SPDX-License-Identifier: MIT */
/* core/alloc.c: the allocation hook, also the fault-injection point for tests. */
#include "core/internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

static void *(*user_malloc)(size_t) = malloc;
static void *(*user_realloc)(void *, size_t) = realloc;
static void (*user_free)(void *) = free;

/*
 * Countdown for fault injection: when it reaches 1 the next allocation
 * fails. Atomic because threads of a manager server allocate concurrently.
 * Counting starts with the first call to mp__alloc_fail_after (tests only),
 * so a program that never calls it pays one plain load per allocation, not
 * an atomic read-modify-write on a shared cache line.
 */
static atomic_ulong fail_countdown;
static atomic_ulong alloc_count;
static atomic_bool injection_used;
/* When set, only allocations of that thread count (and fail). */
static atomic_bool one_thread;
static pthread_t only_thread;

static bool
should_fail(void)
{
	if (!atomic_load_explicit(&injection_used, memory_order_relaxed)) {
		return false;
	}
	if (atomic_load_explicit(&one_thread, memory_order_acquire) &&
	    !pthread_equal(pthread_self(), only_thread)) {
		return false;
	}
	atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
	unsigned long n = atomic_load_explicit(&fail_countdown,
	    memory_order_relaxed);
	if (n == 0) {
		return false;
	}
	if (n == 1) {
		atomic_store(&fail_countdown, 0);
		return true;
	}
	atomic_store(&fail_countdown, n - 1);
	return false;
}

_Atomic bool mp__alloc_cache_ok = true;

unsigned long
mp__alloc_fail_after(unsigned long n)
{
	atomic_store(&injection_used, true);
	atomic_store(&mp__alloc_cache_ok, false);
	atomic_store(&fail_countdown, n);
	return atomic_exchange(&alloc_count, 0);
}

void
mp__alloc_fail_only(const pthread_t *thread)
{
	atomic_store(&one_thread, false);
	if (thread != NULL) {
		only_thread = *thread;
		atomic_store_explicit(&one_thread, true, memory_order_release);
	}
}

void *
mp__malloc(size_t size)
{
	if (should_fail()) {
		return NULL;
	}
	return user_malloc(size == 0 ? 1 : size);
}

void *
mp__calloc(size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size) {
		return NULL;
	}
	void *p = mp__malloc(n * size);
	if (p != NULL) {
		memset(p, 0, n * size);
	}
	return p;
}

void *
mp__realloc(void *ptr, size_t size)
{
	if (should_fail()) {
		return NULL;
	}
	return user_realloc(ptr, size == 0 ? 1 : size);
}

void
mp__free(void *ptr)
{
	if (ptr != NULL) {
		user_free(ptr);
	}
}

char *
mp__strdup(const char *s)
{
	size_t len = strlen(s) + 1;
	char *p = mp__malloc(len);
	if (p != NULL) {
		memcpy(p, s, len);
	}
	return p;
}

void *
mp_malloc(size_t size)
{
	return mp__malloc(size);
}

void *
mp_realloc(void *ptr, size_t size)
{
	return mp__realloc(ptr, size);
}

void
mp_free(void *ptr)
{
	mp__free(ptr);
}

void
mp_set_allocator(void *(*malloc_fn)(size_t),
    void *(*realloc_fn)(void *, size_t), void (*free_fn)(void *))
{
	bool all = malloc_fn != NULL && realloc_fn != NULL && free_fn != NULL;
	mp__obj_cache_drain();
	user_malloc = all ? malloc_fn : malloc;
	user_realloc = all ? realloc_fn : realloc;
	user_free = all ? free_fn : free;
	atomic_store(&mp__alloc_cache_ok,
	    !all && !atomic_load(&injection_used));
}
