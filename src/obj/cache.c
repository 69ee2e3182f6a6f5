/* SPDX-License-Identifier: MIT */
/* obj/cache.c: each thread's cache of freed small object blocks. */
#include "obj/obj_impl.h"

#include <pthread.h>
#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define CACHE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CACHE_ASAN 1
#endif
#endif
#ifdef CACHE_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/*
 * A received message is decoded into a handful of small blocks (a list,
 * its strings) that its reader frees a moment later, millions of times a
 * second on a queue. malloc and free cost about a fifth of that reader's
 * time, even through glibc's own per-thread cache, so the blocks of small
 * objects come back here instead: a LIFO stack per size class per thread,
 * one load and one store each way.
 *
 * Blocks are sized by class (MP__OBJ_CACHE_GRAIN steps up to
 * MP__OBJ_CACHE_MAX bytes), so a block freed by one object fits any later
 * object of its class. A thread frees into its own cache whatever thread
 * allocated the block; each class keeps at most CACHE_DEPTH blocks and
 * the rest go back to the allocator, so a thread holds at most ~70 KiB.
 * A thread's blocks are returned when it exits (a key destructor); the
 * main thread's stay reachable until the process ends.
 *
 * Only libc's malloc is cached: with an allocator set by mp_set_allocator,
 * or once fault injection is used (tests), every block goes through
 * mp__malloc and mp__free, so counting allocators and the Nth-allocation
 * sweeps see every object; mp_set_allocator first returns the calling
 * thread's cached blocks to libc. Under AddressSanitizer cached blocks are poisoned, so a
 * use after free is still reported.
 */
#define CACHE_DEPTH 32
#define N_CLASSES (MP__OBJ_CACHE_MAX / MP__OBJ_CACHE_GRAIN)

/*
 * A cached block keeps its link after the object header, so that under
 * ASan the header (refs, type: what a use after free touches first) stays
 * poisoned while LeakSanitizer, which does not read poisoned memory, still
 * follows the chain from the thread's cache and sees no leak.
 */
struct free_block {
	uint8_t header[16];
	struct free_block *next;
};
#define LINK_OFFSET offsetof(struct free_block, next)
#define LINK_SIZE sizeof(struct free_block *)
_Static_assert(sizeof(struct free_block) <= sizeof(mp_obj_t),
    "every object block holds the link");

struct cache {
	struct free_block *head[N_CLASSES];
	uint8_t n[N_CLASSES];
	bool registered;
};

static _Thread_local struct cache cache;

static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
static bool exit_key_ok;

/* Cached blocks all came from libc's malloc (mp__alloc_cacheable). */
static void
cache_drain(void *unused)
{
	(void)unused;
	for (size_t c = 0; c < N_CLASSES; c++) {
		struct free_block *b = cache.head[c];
		while (b != NULL) {
			struct free_block *next = b->next;
			UNPOISON(b, (c + 1) * MP__OBJ_CACHE_GRAIN);
			free(b);
			b = next;
		}
		cache.head[c] = NULL;
		cache.n[c] = 0;
	}
}

void
mp__obj_cache_drain(void)
{
	cache_drain(NULL);
}

static void
make_exit_key(void)
{
	exit_key_ok = pthread_key_create(&exit_key, cache_drain) == 0;
}

/*
 * A thread's first cached block registers the destructor that returns
 * them all; without a key (none left) the thread does not cache.
 */
static bool
cache_register(void)
{
	(void)pthread_once(&exit_once, make_exit_key);
	if (!exit_key_ok || pthread_setspecific(exit_key, &cache) != 0) {
		return false;
	}
	cache.registered = true;
	return true;
}

void *
mp__obj_cache_take(unsigned cls)
{
	size_t size = (size_t)cls * MP__OBJ_CACHE_GRAIN;
	struct free_block *b = cache.head[cls - 1];
	if (b == NULL || !mp__alloc_cacheable()) {
		return mp__malloc(size);
	}
	UNPOISON(b, size);
	cache.head[cls - 1] = b->next;
	cache.n[cls - 1]--;
	return b;
}

void
mp__obj_cache_give(void *block, unsigned cls)
{
	if (cache.n[cls - 1] >= CACHE_DEPTH || !mp__alloc_cacheable() ||
	    (!cache.registered && !cache_register())) {
		mp__free(block);
		return;
	}
	struct free_block *b = block;
	b->next = cache.head[cls - 1];
	cache.head[cls - 1] = b;
	cache.n[cls - 1]++;
	size_t size = (size_t)cls * MP__OBJ_CACHE_GRAIN;
	POISON(b, LINK_OFFSET);
	POISON((uint8_t *)b + LINK_OFFSET + LINK_SIZE,
	    size - LINK_OFFSET - LINK_SIZE);
}
