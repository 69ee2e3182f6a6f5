/* SPDX-License-Identifier: MIT */
/* test_arena.c: the fork-inherited shared arena and named blocks. */
#include "harness/harness.h"
#include "shared/arena.h"

#include <sys/mman.h>
#include <sys/wait.h>

MP_TEST_SUITE(arena);

Test(arena, small_blocks_share_pages_and_are_aligned)
{
	void *blocks[64];
	for (int i = 0; i < 64; i++) {
		expect_ok(mp__arena_alloc(40, &blocks[i]));
		cr_assert_eq((uintptr_t)blocks[i] % 64, 0, "64-byte aligned");
		cr_assert(mp__arena_contains(blocks[i]));
	}
	/* 64 blocks of 64 bytes span at most two 4 KiB pages. */
	uintptr_t lo = (uintptr_t)blocks[0], hi = lo;
	for (int i = 1; i < 64; i++) {
		uintptr_t a = (uintptr_t)blocks[i];
		lo = a < lo ? a : lo;
		hi = a > hi ? a : hi;
	}
	cr_assert_leq(hi - lo, 8192 - 64, "blocks spread over %zu bytes",
	    (size_t)(hi - lo));
	for (int i = 0; i < 64; i++) {
		mp__arena_free(blocks[i]);
	}
}

Test(arena, freed_blocks_are_reused_and_zeroed)
{
	void *a;
	expect_ok(mp__arena_alloc(100, &a));
	memset(a, 0xab, 100);
	mp__arena_free(a);
	void *b;
	expect_ok(mp__arena_alloc(100, &b));
	cr_assert_eq(a, b, "the freed block comes back first");
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(((uint8_t *)b)[i], 0);
	}
	mp__arena_free(b);
}

Test(arena, large_blocks_are_reused_and_zeroed)
{
	void *a, *b, *c;
	expect_ok(mp__arena_alloc(1 << 20, &a));
	memset(a, 0xcd, 1 << 20);
	mp__arena_free(a);
	expect_ok(mp__arena_alloc(1 << 19, &b));
	cr_assert_eq(a, b, "a smaller large block is cut from the freed run");
	cr_assert_eq(((uint8_t *)b)[(1 << 19) - 1], 0);
	expect_ok(mp__arena_alloc(1 << 19, &c));
	cr_assert_eq((uint8_t *)c, (uint8_t *)a + (1 << 19), "the rest of the run");
	mp__arena_free(b);
	mp__arena_free(c);
}

Test(arena, bad_sizes_are_refused)
{
	void *p = NULL;
	expect_err(mp__arena_alloc(0, &p), -EINVAL);
	expect_err(mp__arena_alloc((size_t)1 << 40, &p), -ENOMEM);
	cr_assert_null(p);
	mp__arena_free(NULL);
}

Test(arena, memory_is_shared_with_fork_children)
{
	uint64_t *v;
	expect_ok(mp__arena_alloc(sizeof(*v), (void **)&v));
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		*v = 42;
		/* A block allocated in the child is visible to the parent too. */
		uint64_t *w;
		int rv = mp__arena_alloc(sizeof(*w), (void **)&w);
		if (rv == 0) {
			*w = 7;
			v[0] = (uint64_t)(uintptr_t)w;
		}
		_exit(rv == 0 ? 0 : 1);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	uint64_t *w = (uint64_t *)(uintptr_t)*v;
	cr_assert(mp__arena_contains(w));
	cr_assert_eq(*w, 7);
	mp__arena_free(w);
	mp__arena_free(v);
}

static void
init_counter(void *mem, void *arg)
{
	*(uint64_t *)mem = *(uint64_t *)arg;
}

Test(arena, named_blocks_open_by_name)
{
	char name[64];
	snprintf(name, sizeof(name), "test-arena-%d", (int)getpid());
	struct mp__named a, b, c;
	uint64_t init = 99;
	expect_err(mp__named_open("lock", name, 8, false, false, NULL, NULL, &a),
	    -ENOENT);
	expect_ok(mp__named_open("lock", name, 8, true, true, init_counter, &init,
	    &a));
	cr_assert(a.created);
	cr_assert_eq(*(uint64_t *)a.mem, 99);
	expect_err(mp__named_open("lock", name, 8, true, true, NULL, NULL, &b),
	    -EEXIST);
	expect_ok(mp__named_open("lock", name, 8, true, false, init_counter, &init,
	    &b));
	cr_assert(!b.created, "an existing block is attached, not re-created");
	*(uint64_t *)b.mem = 5;
	cr_assert_eq(*(uint64_t *)a.mem, 5, "both mappings see one object");
	expect_err(mp__named_open("event", name, 8, false, false, NULL, NULL, &c),
	    -ENOENT);
	expect_err(mp__named_open("lock", name, 16, false, false, NULL, NULL, &c),
	    -EPROTO);
	expect_err(mp__named_open("lock", "a/b", 8, true, false, NULL, NULL, &c),
	    -EINVAL);
	expect_err(mp__named_open("lock", "", 8, true, false, NULL, NULL, &c),
	    -EINVAL);
	mp__named_close(&b);
	expect_ok(mp__named_unlink(&a));
	mp__named_close(&a);
	expect_err(mp__named_open("lock", name, 8, false, false, NULL, NULL, &c),
	    -ENOENT);
}
