/* SPDX-License-Identifier: MIT */
/* alloc.c: a counting allocator and allocation-failure sweeps for tests. */
#include "harness/harness.h"
#include "core/internal.h"

#include <stdatomic.h>

/*
 * The counting allocator: installed by a case, it tells whether every
 * block the library allocated was released, which is how the ownership
 * rules and the failure paths are checked without relying on ASan alone
 * (the normal build and valgrind runs check the same counts).
 */
static atomic_long live_blocks;

static void *
count_malloc(size_t n)
{
	void *p = malloc(n);
	if (p != NULL) {
		atomic_fetch_add(&live_blocks, 1);
	}
	return p;
}

static void *
count_realloc(void *p, size_t n)
{
	void *q = realloc(p, n);
	if (q != NULL && p == NULL) {
		atomic_fetch_add(&live_blocks, 1);
	}
	return q;
}

static void
count_free(void *p)
{
	if (p != NULL) {
		atomic_fetch_sub(&live_blocks, 1);
	}
	free(p);
}

void
mp_test_count_start(void)
{
	atomic_store(&live_blocks, 0);
	mp_set_allocator(count_malloc, count_realloc, count_free);
}

long
mp_test_count_live(void)
{
	return atomic_load(&live_blocks);
}

void
mp_test_count_end(void)
{
	mp_set_allocator(NULL, NULL, NULL);
	cr_assert_eq(atomic_load(&live_blocks), 0, "%ld blocks leaked",
	    atomic_load(&live_blocks));
}

void
mp_test_sweep_start(struct mp_test_sweep *s, const char *what)
{
	memset(s, 0, sizeof(*s));
	s->what = what;
	s->hit = true;
	mp__alloc_fail_after(0);
}

bool
mp_test_sweep_next(struct mp_test_sweep *s)
{
	if (!s->hit) {
		/* Printed for docs/reliability.md's figures. */
		if (s->what == NULL) {
			return false;
		}
		fprintf(stderr, "sweep %s: %lu allocations, each failed once\n",
		    s->what, s->n - 1);
		return false;
	}
	s->n++;
	cr_assert_lt(s->n, MP_TEST_SWEEP_MAX, "sweep %s does not end",
	    s->what != NULL ? s->what : "");
	s->hit = false;
	return true;
}

void
mp_test_sweep_arm(struct mp_test_sweep *s)
{
	mp__alloc_fail_after(0);
	mp__alloc_fail_after(s->n);
}

int
mp_test_sweep_done(struct mp_test_sweep *s, int rv, int want, int also)
{
	unsigned long count = mp__alloc_fail_after(0);
	s->hit = count >= s->n;
	const char *what = s->what != NULL ? s->what : "";
	if (!s->hit) {
		cr_assert_eq(rv, want, "sweep %s: nothing failed, yet it "
		    "returned %s (%s), not %s", what, mp_err_name(rv),
		    mp_strerror(rv), mp_err_name(want));
		return rv;
	}
	cr_assert(rv == want || rv == -ENOMEM || (also != 0 && rv == also),
	    "sweep %s, allocation %lu failed: returned %s (%s)", what, s->n,
	    mp_err_name(rv), mp_strerror(rv));
	cr_assert_str_neq(mp_strerror(rv), "unknown error");
	return rv;
}
