/* SPDX-License-Identifier: MIT */
/* test_array.c: Array: elements, indexes, slices, repr, locking modes, exactness under contention. */
#include "harness/harness.h"

#include "core/internal.h"

#include <mproc/shared.h>

#include <sys/wait.h>

MP_TEST_SUITE(array);

static void
reap_ok(pid_t pid)
{
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "child %d ended with status 0x%x", (int)pid, status);
}

static void
expect_repr(mp_array_t *a, const char *want)
{
	mp_obj_t *o;
	char *text;
	expect_ok(mp_array_get_obj(a, &o));
	expect_ok(mp_obj_repr(o, &text));
	cr_assert_str_eq(text, want);
	mp_free(text);
	mp_obj_unref(o);
}

Test(array, zeros_init_and_repr_as_python)
{
	mp_array_t *a, *b, *c, *e;
	expect_ok(mp_array_new('i', 10, NULL, NULL, &a));
	cr_assert_eq(mp_array_len(a), 10);
	cr_assert_eq(mp_array_typecode(a), 'i');
	cr_assert_eq(mp_array_itemsize(a), sizeof(int));
	expect_repr(a, "[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]");

	double init[3] = { 1.5, -0.0, 2.0 };
	expect_ok(mp_array_new('d', 3, init, NULL, &b));
	expect_repr(b, "[1.5, -0.0, 2.0]");

	expect_ok(mp_array_new('c', 3, "ab\n", NULL, &c));
	expect_repr(c, "b'ab\\n'");

	expect_ok(mp_array_new('Q', 0, NULL, NULL, &e));
	cr_assert_eq(mp_array_len(e), 0);
	cr_assert_not_null(mp_array_ptr(e));
	expect_repr(e, "[]");
	mp_array_free(a);
	mp_array_free(b);
	mp_array_free(c);
	mp_array_free(e);
}

Test(array, elements_ranges_and_indexes)
{
	short init[4] = { -1, 2, 300, -32768 };
	mp_array_t *a;
	expect_ok(mp_array_new('h', 4, init, NULL, &a));
	int64_t got = 99;
	for (size_t i = 0; i < 4; i++) {
		expect_ok(mp_array_get_long(a, i, &got));
		cr_assert_eq(got, init[i]);
	}
	expect_err(mp_array_get_long(a, 4, &got), -EINVAL);
	expect_err(mp_array_set_long(a, (size_t)-1, 0), -EINVAL);
	expect_err(mp_array_add_long(a, 4, 1), -EINVAL);
	cr_assert_eq(got, -32768, "untouched on failure");
	expect_err(mp_array_add_long(a, 3, -1), -ERANGE);
	expect_err(mp_array_set_long(a, 0, 32768), -ERANGE);
	expect_ok(mp_array_set_long(a, 0, 32767));
	expect_ok(mp_array_add_long(a, 1, 8));
	uint64_t u;
	expect_err(mp_array_get_ulong(a, 3, &u), -ERANGE);
	expect_ok(mp_array_get_ulong(a, 1, &u));
	cr_assert_eq(u, 10);
	expect_ok(mp_array_set_ulong(a, 2, 7));
	double d;
	expect_ok(mp_array_get_double(a, 2, &d));
	cr_assert_float_eq(d, 7.0, 0);
	expect_err(mp_array_set_double(a, 2, 1.0), -EINVAL);
	expect_repr(a, "[32767, 10, 7, -32768]");
	mp_array_free(a);

	mp_array_t *f;
	expect_ok(mp_array_new('f', 2, NULL, NULL, &f));
	expect_ok(mp_array_set_double(f, 1, 0.25));
	expect_ok(mp_array_add_double(f, 1, 0.5));
	expect_ok(mp_array_add_long(f, 0, -2));
	expect_err(mp_array_get_double(f, 2, &d), -EINVAL);
	expect_repr(f, "[-2.0, 0.75]");
	mp_array_free(f);
}

Test(array, slices_read_and_write_under_the_lock)
{
	int init[5] = { 1, 2, 3, 4, 5 };
	mp_array_t *a;
	expect_ok(mp_array_new('i', 5, init, NULL, &a));
	int out[5] = { 0 };
	expect_ok(mp_array_read(a, 1, 3, out));
	cr_assert(out[0] == 2 && out[1] == 3 && out[2] == 4 && out[3] == 0);
	int in[2] = { 40, 50 };
	expect_ok(mp_array_write(a, 3, 2, in));
	expect_err(mp_array_write(a, 4, 2, in), -EINVAL);
	expect_err(mp_array_read(a, 6, 0, out), -EINVAL);
	expect_err(mp_array_read(a, 1, (size_t)-1, out), -EINVAL);
	expect_ok(mp_array_read(a, 5, 0, out));
	expect_repr(a, "[1, 2, 3, 40, 50]");
	mp_array_free(a);
}

Test(array, bad_arguments)
{
	mp_array_t *a = NULL;
	expect_err(mp_array_new('u', 3, NULL, NULL, &a), -EINVAL);
	expect_err(mp_array_new('i', 3, NULL, NULL, NULL), -EINVAL);
	expect_err(mp_array_new('q', SIZE_MAX / 4, NULL, NULL, &a), -ENOMEM);
	expect_err(mp_array_new('q', (size_t)1 << 40, NULL, NULL, &a), -ENOMEM);
	cr_assert_null(a);
	mp_array_free(NULL);
}

Test(array, raw_arrays_and_a_lock_shared_with_a_value)
{
	struct mp_value_opts raw = { .lock_mode = MP_LOCK_NONE };
	mp_array_t *r;
	expect_ok(mp_array_new('B', 4, NULL, &raw, &r));
	cr_assert_null(mp_array_get_lock(r));
	expect_err(mp_array_lock(r, MP_NOWAIT), -EINVAL);
	expect_err(mp_array_unlock(r), -EINVAL);
	((unsigned char *)mp_array_ptr(r))[3] = 255;
	expect_err(mp_array_add_long(r, 3, 1), -ERANGE);
	mp_array_free(r);

	mp_rlock_t *lock;
	expect_ok(mp_rlock_new(&lock));
	struct mp_value_opts given = {
		.lock_mode = MP_LOCK_GIVEN,
		.lock = lock,
	};
	mp_array_t *a;
	mp_value_t *total;
	expect_ok(mp_array_new('l', 3, NULL, &given, &a));
	expect_ok(mp_value_new('l', NULL, &given, &total));
	cr_assert_eq(mp_array_get_lock(a), mp_value_get_lock(total));
	/* One critical section across both objects. */
	expect_ok(mp_array_lock(a, MP_FOREVER));
	expect_ok(mp_array_add_long(a, 2, 5));
	expect_ok(mp_value_add_long(total, 5));
	cr_assert_eq(mp_rlock_count(lock), 1);
	expect_ok(mp_array_unlock(a));
	cr_assert_eq(mp_rlock_count(lock), 0);
	mp_array_free(a);
	mp_value_free(total);
	mp_rlock_free(lock);
}

Test(array, a_dead_holder_is_reported_once)
{
	mp_array_t *a;
	expect_ok(mp_array_new('i', 2, NULL, NULL, &a));
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		_exit(mp_array_lock(a, MP_FOREVER) == 0 ? 0 : 1);
	}
	reap_ok(pid);
	int out[2];
	expect_err(mp_array_read(a, 0, 2, out), -EOWNERDEAD);
	expect_ok(mp_array_read(a, 0, 2, out));
	mp_array_free(a);
}

#define N_PROCS 8
#define N_INCS 100000
#define LEN 10

Test(array, locked_increments_are_exact_under_contention)
{
	mp_array_t *a;
	expect_ok(mp_array_new('i', LEN, NULL, NULL, &a));
	pid_t pids[N_PROCS];
	for (int k = 0; k < N_PROCS; k++) {
		pids[k] = fork();
		cr_assert_geq(pids[k], 0);
		if (pids[k] == 0) {
			int rv = 0;
			/* Half through the accessor, half by hand, locked. */
			for (int i = 0; i < N_INCS / 2 && rv == 0; i++) {
				rv = mp_array_add_long(a, (size_t)(i % LEN), 1);
			}
			int *p = mp_array_ptr(a);
			for (int i = 0; i < N_INCS / 2 && rv == 0; i++) {
				rv = mp_array_lock(a, MP_FOREVER);
				p[i % LEN] += 1;
				rv |= mp_array_unlock(a);
			}
			_exit(rv == 0 ? 0 : 1);
		}
	}
	for (int k = 0; k < N_PROCS; k++) {
		reap_ok(pids[k]);
	}
	int out[LEN];
	expect_ok(mp_array_read(a, 0, LEN, out));
	int64_t sum = 0;
	for (int i = 0; i < LEN; i++) {
		cr_assert_eq(out[i], N_PROCS * N_INCS / LEN, "element %d", i);
		sum += out[i];
	}
	cr_assert_eq(sum, N_PROCS * N_INCS);
	mp_array_free(a);
}

Test(array, every_allocation_failure_of_get_obj_is_clean)
{
	mp_array_t *a;
	expect_ok(mp_array_new('q', 4, NULL, NULL, &a));
	/* Fail the 1st, 2nd, ... allocation until one call gets through. */
	for (unsigned long nth = 1;; nth++) {
		mp_obj_t *o = NULL;
		mp__alloc_fail_after(nth);
		int rv = mp_array_get_obj(a, &o);
		mp__alloc_fail_after(0);
		if (rv == 0) {
			cr_assert_gt(nth, 2, "a copy, a list and its items");
			mp_obj_unref(o);
			break;
		}
		expect_err(rv, -ENOMEM);
		cr_assert_null(o);
	}
	mp_array_free(a);
}
