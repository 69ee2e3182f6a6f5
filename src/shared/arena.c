/* SPDX-License-Identifier: MIT */
/* shared/arena.c: a slab allocator in one MAP_SHARED mapping that fork children inherit. */
#include "shared/arena.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

/*
 * Layout. The mapping is cut into 64 KiB chunks. Chunk 0 holds the header
 * (and the chunk table); every other chunk is either free, a slab of blocks
 * of one size class (64 B ... 32 KiB, powers of two), or part of a run of
 * chunks given to one large block. Shared memory holds no pointers: free
 * lists link blocks by their offset from the base, so the same state is
 * valid at any address (and stays valid if a later version maps the arena
 * at different addresses in different processes).
 *
 * Freed blocks go back to their class's free list; freed large runs go to a
 * first-fit list of runs and are split when reused. Nothing is ever returned
 * to the kernel: the arena lives as long as the process family.
 */
#define ARENA_RESERVE  ((size_t)1 << 30)  /* address space, not memory */
#define CHUNK_SHIFT    16
#define CHUNK_SIZE     ((size_t)1 << CHUNK_SHIFT)
#define N_CHUNKS       (ARENA_RESERVE / CHUNK_SIZE)
#define MIN_SHIFT      6                  /* 64-byte blocks */
#define N_CLASSES      (CHUNK_SHIFT - MIN_SHIFT)  /* 64 B ... 32 KiB */
#define ARENA_MAGIC    0x6d70617265616e61ULL  /* "mparena" */

/* Chunk table entry: what a chunk holds. */
enum {
	CHUNK_FREE = 0,     /* never used yet (above the bump pointer) */
	CHUNK_HEADER = 1,
	CHUNK_SLAB = 2,     /* class in the low byte of info */
	CHUNK_LARGE = 3,    /* first chunk of a run; n chunks in info */
	CHUNK_LARGE_TAIL = 4,
	CHUNK_RUN_FREE = 5, /* first chunk of a free run; n chunks in info */
};

struct chunk_entry {
	uint8_t kind;
	uint8_t pad[3];
	uint32_t info;
};

struct arena_header {
	uint64_t magic;
	pthread_mutex_t lock;        /* process-shared, robust */
	uint64_t next_chunk;         /* bump pointer, in chunks */
	uint64_t free_block[N_CLASSES]; /* offset of the first free block, 0 = none */
	uint64_t free_run;           /* offset of the first free run, 0 = none */
	struct chunk_entry chunks[N_CHUNKS];
};

_Static_assert(sizeof(struct arena_header) <= CHUNK_SIZE * 4,
    "the header fits in the chunks reserved for it");

#define HEADER_CHUNKS \
	((sizeof(struct arena_header) + CHUNK_SIZE - 1) / CHUNK_SIZE)

/* A free run keeps its successor and length in its first bytes. */
struct free_run {
	uint64_t next;
	uint64_t n_chunks;
};

static uint8_t *arena_base;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;
static int arena_error;

static struct arena_header *
header(void)
{
	return (struct arena_header *)arena_base;
}

static void
arena_create(void)
{
	void *p = mmap(NULL, ARENA_RESERVE, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		arena_error = -errno;
		return;
	}
	struct arena_header *h = p;
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	int rv = pthread_mutex_init(&h->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	if (rv != 0) {
		munmap(p, ARENA_RESERVE);
		arena_error = -rv;
		return;
	}
	for (size_t i = 0; i < HEADER_CHUNKS; i++) {
		h->chunks[i].kind = CHUNK_HEADER;
	}
	h->next_chunk = HEADER_CHUNKS;
	h->magic = ARENA_MAGIC;
	arena_base = p;
}

/*
 * The allocator's state changes by single stores of offsets, ordered so
 * that a holder killed mid-operation can at worst leak a block, never link
 * one twice. So after EOWNERDEAD the state is usable as it is.
 */
static void
arena_lock(struct arena_header *h)
{
	int rv = pthread_mutex_lock(&h->lock);
	if (rv == EOWNERDEAD) {
		pthread_mutex_consistent(&h->lock);
	}
}

static void
arena_unlock(struct arena_header *h)
{
	pthread_mutex_unlock(&h->lock);
}

static size_t
class_of(size_t size)
{
	size_t c = 0;
	while (((size_t)1 << (c + MIN_SHIFT)) < size) {
		c++;
	}
	return c;
}

static uint64_t
offset_of(const void *p)
{
	return (uint64_t)((const uint8_t *)p - arena_base);
}

/* Take n fresh or recycled chunks; returns the first chunk index or 0. */
static uint64_t
take_chunks(struct arena_header *h, uint64_t n)
{
	uint64_t *link = &h->free_run;
	while (*link != 0) {
		struct free_run *run = (struct free_run *)(arena_base + *link);
		uint64_t first = *link >> CHUNK_SHIFT;
		if (run->n_chunks >= n) {
			if (run->n_chunks == n) {
				*link = run->next;
			} else {
				/* Keep the tail of the run on the list. */
				uint64_t rest = first + n;
				struct free_run *tail = (struct free_run *)(arena_base +
				    (rest << CHUNK_SHIFT));
				tail->next = run->next;
				tail->n_chunks = run->n_chunks - n;
				h->chunks[rest].kind = CHUNK_RUN_FREE;
				h->chunks[rest].info = (uint32_t)tail->n_chunks;
				*link = rest << CHUNK_SHIFT;
			}
			/* Recycled memory must come back zeroed. */
			memset(arena_base + (first << CHUNK_SHIFT), 0,
			    n << CHUNK_SHIFT);
			return first;
		}
		link = &run->next;
	}
	if (h->next_chunk + n > N_CHUNKS) {
		return 0;
	}
	uint64_t first = h->next_chunk;
	h->next_chunk += n;
	return first;
}

static int
alloc_large(struct arena_header *h, size_t size, void **out)
{
	uint64_t n = (size + CHUNK_SIZE - 1) >> CHUNK_SHIFT;
	uint64_t first = take_chunks(h, n);
	if (first == 0) {
		return -ENOMEM;
	}
	for (uint64_t i = 1; i < n; i++) {
		h->chunks[first + i].kind = CHUNK_LARGE_TAIL;
	}
	h->chunks[first].info = (uint32_t)n;
	h->chunks[first].kind = CHUNK_LARGE;
	*out = arena_base + (first << CHUNK_SHIFT);
	return 0;
}

static int
alloc_small(struct arena_header *h, size_t c, void **out)
{
	size_t block = (size_t)1 << (c + MIN_SHIFT);
	if (h->free_block[c] == 0) {
		uint64_t chunk = take_chunks(h, 1);
		if (chunk == 0) {
			return -ENOMEM;
		}
		/* Thread the new slab's blocks onto the free list, last first. */
		uint64_t base = chunk << CHUNK_SHIFT;
		uint64_t next = 0;
		for (size_t off = CHUNK_SIZE; off >= block; off -= block) {
			uint64_t at = base + off - block;
			*(uint64_t *)(arena_base + at) = next;
			next = at;
		}
		h->chunks[chunk].info = (uint32_t)c;
		h->chunks[chunk].kind = CHUNK_SLAB;
		h->free_block[c] = next;
	}
	uint64_t at = h->free_block[c];
	uint64_t *slot = (uint64_t *)(arena_base + at);
	h->free_block[c] = *slot;
	/* Blocks are zeroed on the way out: the free-list link is the only
	 * non-zero word of a never-used block, but a recycled one is dirty. */
	memset(slot, 0, block);
	*out = slot;
	return 0;
}

int
mp__arena_alloc(size_t size, void **out)
{
	if (size == 0) {
		return -EINVAL;
	}
	pthread_once(&arena_once, arena_create);
	if (arena_base == NULL) {
		return arena_error != 0 ? arena_error : -ENOMEM;
	}
	if (size > ARENA_RESERVE / 2) {
		return -ENOMEM;
	}
	struct arena_header *h = header();
	arena_lock(h);
	int rv;
	if (size > CHUNK_SIZE / 2) {
		rv = alloc_large(h, size, out);
	} else {
		rv = alloc_small(h, class_of(size), out);
	}
	arena_unlock(h);
	return rv;
}

bool
mp__arena_contains(const void *p)
{
	const uint8_t *q = p;
	return arena_base != NULL && q >= arena_base + HEADER_CHUNKS * CHUNK_SIZE &&
	    q < arena_base + ARENA_RESERVE;
}

void
mp__arena_free(void *p)
{
	if (p == NULL) {
		return;
	}
	MP_ASSERT(mp__arena_contains(p));
	struct arena_header *h = header();
	uint64_t off = offset_of(p);
	uint64_t chunk = off >> CHUNK_SHIFT;
	arena_lock(h);
	struct chunk_entry *e = &h->chunks[chunk];
	if (e->kind == CHUNK_SLAB) {
		size_t c = e->info;
		MP_ASSERT((off & (((uint64_t)1 << (c + MIN_SHIFT)) - 1)) == 0);
		*(uint64_t *)p = h->free_block[c];
		h->free_block[c] = off;
	} else {
		MP_ASSERT(e->kind == CHUNK_LARGE && (off & (CHUNK_SIZE - 1)) == 0);
		uint64_t n = e->info;
		struct free_run *run = p;
		run->n_chunks = n;
		run->next = h->free_run;
		for (uint64_t i = 0; i < n; i++) {
			h->chunks[chunk + i].kind = CHUNK_RUN_FREE;
		}
		e->info = (uint32_t)n;
		h->free_run = off;
	}
	arena_unlock(h);
}
