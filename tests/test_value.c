/* SPDX-License-Identifier: MIT */
/* test_value.c: Value (and raw shared blocks): typecodes, ranges, locking modes, exactness under contention. */
#include "harness/harness.h"

#include <mproc/shared.h>

#include <float.h>
#include <limits.h>
#include <math.h>
#include <sys/wait.h>

MP_TEST_SUITE(value);

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Reap a forked child and check it exited with 0. */
static void
reap_ok(pid_t pid)
{
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "child %d ended with status 0x%x", (int)pid, status);
}

struct int_case {
	char code;
	int64_t min;
	uint64_t max;
	size_t size;
};

static const struct int_case int_cases[] = {
	{ 'c', 0, UCHAR_MAX, 1 },
	{ 'b', SCHAR_MIN, SCHAR_MAX, 1 },
	{ 'B', 0, UCHAR_MAX, 1 },
	{ 'h', SHRT_MIN, SHRT_MAX, sizeof(short) },
	{ 'H', 0, USHRT_MAX, sizeof(short) },
	{ 'i', INT_MIN, INT_MAX, sizeof(int) },
	{ 'I', 0, UINT_MAX, sizeof(int) },
	{ 'l', LONG_MIN, LONG_MAX, sizeof(long) },
	{ 'L', 0, ULONG_MAX, sizeof(long) },
	{ 'q', LLONG_MIN, LLONG_MAX, 8 },
	{ 'Q', 0, ULLONG_MAX, 8 },
};

Test(value, every_integer_typecode_round_trips_and_checks_its_range)
{
	for (size_t k = 0; k < N_ELEMS(int_cases); k++) {
		const struct int_case *c = &int_cases[k];
		mp_value_t *v;
		expect_ok(mp_value_new(c->code, NULL, NULL, &v));
		cr_assert_eq(mp_value_typecode(v), c->code);
		cr_assert_eq(mp_value_size(v), c->size, "size of '%c'",
		    c->code);
		int64_t got = -1;
		expect_ok(mp_value_get_long(v, &got));
		cr_assert_eq(got, 0, "a new value is zero");

		expect_ok(mp_value_set_long(v, c->min));
		expect_ok(mp_value_get_long(v, &got));
		cr_assert_eq(got, c->min, "'%c' min", c->code);
		expect_ok(mp_value_set_ulong(v, c->max));
		uint64_t ugot = 0;
		expect_ok(mp_value_get_ulong(v, &ugot));
		cr_assert_eq(ugot, c->max, "'%c' max", c->code);

		/* One past either end is refused and leaves the value alone. */
		if (c->max < UINT64_MAX) {
			expect_err(mp_value_set_ulong(v, c->max + 1), -ERANGE);
			expect_err(mp_value_add_long(v, 1), -ERANGE);
		}
		expect_ok(mp_value_get_ulong(v, &ugot));
		cr_assert_eq(ugot, c->max);
		expect_ok(mp_value_set_long(v, c->min));
		if (c->min > INT64_MIN) {
			expect_err(mp_value_set_long(v, c->min - 1), -ERANGE);
		}
		expect_err(mp_value_add_long(v, -1), -ERANGE);
		expect_ok(mp_value_get_long(v, &got));
		cr_assert_eq(got, c->min);

		/* Floats are not integers (Python's TypeError). */
		expect_err(mp_value_set_double(v, 1.5), -EINVAL);
		expect_err(mp_value_add_double(v, 1.5), -EINVAL);
		double d;
		expect_ok(mp_value_set_long(v, 7));
		expect_ok(mp_value_get_double(v, &d));
		cr_assert_float_eq(d, 7.0, 0);
		mp_value_free(v);
	}
}

Test(value, unsigned_values_beyond_int64_and_negative_values)
{
	mp_value_t *q, *i;
	expect_ok(mp_value_new('Q', NULL, NULL, &q));
	expect_ok(mp_value_set_ulong(q, UINT64_MAX));
	int64_t got = 5;
	expect_err(mp_value_get_long(q, &got), -ERANGE);
	cr_assert_eq(got, 5, "out-parameters stay untouched on failure");
	expect_err(mp_value_set_long(q, -1), -ERANGE);
	int init = -3;
	expect_ok(mp_value_new('i', &init, NULL, &i));
	uint64_t u = 9;
	expect_err(mp_value_get_ulong(i, &u), -ERANGE);
	cr_assert_eq(u, 9);
	expect_ok(mp_value_get_long(i, &got));
	cr_assert_eq(got, -3, "init is copied");
	expect_ok(mp_value_add_long(i, INT_MAX));
	expect_ok(mp_value_get_long(i, &got));
	cr_assert_eq(got, INT_MAX - 3);
	expect_err(mp_value_add_long(i, INT64_MAX), -ERANGE);
	mp_value_free(q);
	mp_value_free(i);
}

Test(value, float_typecodes)
{
	mp_value_t *d, *f;
	double init = 2.5;
	expect_ok(mp_value_new('d', &init, NULL, &d));
	expect_ok(mp_value_new('f', NULL, NULL, &f));
	cr_assert_eq(mp_value_size(d), 8);
	cr_assert_eq(mp_value_size(f), 4);
	double x;
	expect_ok(mp_value_get_double(d, &x));
	cr_assert_float_eq(x, 2.5, 0);
	/* Python: n.value -= 1 on a double. */
	expect_ok(mp_value_add_long(d, -1));
	expect_ok(mp_value_add_double(d, 0.25));
	expect_ok(mp_value_get_double(d, &x));
	cr_assert_float_eq(x, 1.75, 0);
	expect_ok(mp_value_set_long(d, 3));
	expect_ok(mp_value_get_double(d, &x));
	cr_assert_float_eq(x, 3.0, 0);
	int64_t l;
	expect_err(mp_value_get_long(d, &l), -EINVAL);

	expect_ok(mp_value_set_double(f, 0.5));
	expect_ok(mp_value_get_double(f, &x));
	cr_assert_float_eq(x, 0.5, 0);
	expect_err(mp_value_set_double(f, 1e300), -ERANGE);
	expect_ok(mp_value_set_double(f, (double)INFINITY));
	expect_ok(mp_value_set_double(f, (double)FLT_MAX));
	expect_err(mp_value_add_double(f, (double)FLT_MAX), -ERANGE);
	expect_ok(mp_value_get_double(f, &x));
	cr_assert_float_eq(x, (double)FLT_MAX, 0);
	mp_value_free(d);
	mp_value_free(f);
}

Test(value, bad_arguments)
{
	mp_value_t *v = NULL;
	const char bad[] = { 'u', 'x', 'D', '\0', 'g' };
	for (size_t i = 0; i < sizeof(bad); i++) {
		expect_err(mp_value_new(bad[i], NULL, NULL, &v), -EINVAL);
	}
	struct mp_value_opts given = { .lock_mode = MP_LOCK_GIVEN };
	expect_err(mp_value_new('i', NULL, &given, &v), -EINVAL);
	struct mp_value_opts odd = { .lock_mode = 7 };
	expect_err(mp_value_new('i', NULL, &odd, &v), -EINVAL);
	expect_err(mp_value_new('i', NULL, NULL, NULL), -EINVAL);
	cr_assert_null(v);
	mp_value_free(NULL);
}

Test(value, repr_as_python_shows_value)
{
	struct {
		char code;
		const char *want;
	} cases[] = {
		{ 'd', "0.0" }, { 'f', "0.0" }, { 'i', "0" },
		{ 'c', "b'\\x00'" },
	};
	for (size_t k = 0; k < N_ELEMS(cases); k++) {
		mp_value_t *v;
		expect_ok(mp_value_new(cases[k].code, NULL, NULL, &v));
		mp_obj_t *o;
		char *text;
		expect_ok(mp_value_get_obj(v, &o));
		expect_ok(mp_obj_repr(o, &text));
		cr_assert_str_eq(text, cases[k].want);
		mp_free(text);
		mp_obj_unref(o);
		mp_value_free(v);
	}
	mp_value_t *q, *c;
	expect_ok(mp_value_new('Q', NULL, NULL, &q));
	expect_ok(mp_value_set_ulong(q, UINT64_MAX));
	char a = 'A';
	expect_ok(mp_value_new('c', &a, NULL, &c));
	mp_obj_t *o;
	char *text;
	expect_ok(mp_value_get_obj(q, &o));
	expect_ok(mp_obj_repr(o, &text));
	cr_assert_str_eq(text, "18446744073709551615");
	mp_free(text);
	mp_obj_unref(o);
	expect_ok(mp_value_get_obj(c, &o));
	expect_ok(mp_obj_repr(o, &text));
	cr_assert_str_eq(text, "b'A'");
	mp_free(text);
	mp_obj_unref(o);
	mp_value_free(q);
	mp_value_free(c);
}

Test(value, raw_values_have_no_lock)
{
	struct mp_value_opts raw = { .lock_mode = MP_LOCK_NONE };
	mp_value_t *v;
	expect_ok(mp_value_new('q', NULL, &raw, &v));
	cr_assert_null(mp_value_get_lock(v));
	expect_err(mp_value_lock(v, MP_FOREVER), -EINVAL);
	expect_err(mp_value_unlock(v), -EINVAL);
	expect_ok(mp_value_add_long(v, 41));
	*(long long *)mp_value_ptr(v) += 1;
	int64_t got;
	expect_ok(mp_value_get_long(v, &got));
	cr_assert_eq(got, 42);
	mp_value_free(v);
}

Test(value, own_lock_is_recursive_like_python_lock_true)
{
	mp_value_t *v;
	expect_ok(mp_value_new('d', NULL, NULL, &v));
	mp_lock_t *l = mp_value_get_lock(v);
	cr_assert_not_null(l);
	/* with n.get_lock(): n.value += 1.0 */
	expect_ok(mp_value_lock(v, MP_FOREVER));
	cr_assert(mp_lock_is_mine(l));
	expect_ok(mp_value_add_double(v, 1.0));
	double x;
	expect_ok(mp_value_get_double(v, &x));
	cr_assert_eq(mp_rlock_count(l), 1, "accessors leave the depth alone");
	expect_ok(mp_value_unlock(v));
	cr_assert(!mp_lock_is_mine(l));
	cr_assert_float_eq(x, 1.0, 0);
	expect_err(mp_value_unlock(v), -EPERM);
	mp_value_free(v);
}

Test(value, a_given_lock_is_shared_by_two_values)
{
	mp_lock_t *lock;
	expect_ok(mp_lock_new(&lock));
	struct mp_value_opts opts = {
		.lock_mode = MP_LOCK_GIVEN,
		.lock = lock,
	};
	mp_value_t *a, *b;
	expect_ok(mp_value_new('i', NULL, &opts, &a));
	expect_ok(mp_value_new('d', NULL, &opts, &b));
	cr_assert_eq(mp_value_get_lock(a), lock);
	cr_assert_eq(mp_value_get_lock(b), lock);

	/* A plain Lock the caller holds: accessors refuse, not hang. */
	expect_ok(mp_value_lock(a, MP_FOREVER));
	expect_err(mp_value_add_long(b, 1), -EDEADLK);
	*(int *)mp_value_ptr(a) = 5;
	expect_ok(mp_value_unlock(a));

	/* A child holding the lock through a blocks the parent's use of b. */
	int go[2], done[2];
	cr_assert_eq(pipe(go), 0);
	cr_assert_eq(pipe(done), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char c;
		int rv = mp_value_lock(a, MP_FOREVER);
		ssize_t w = write(go[1], "x", 1);
		ssize_t r = read(done[0], &c, 1);
		rv |= mp_value_unlock(a);
		_exit(rv == 0 && w == 1 && r == 1 ? 0 : 1);
	}
	char c;
	cr_assert_eq(read(go[0], &c, 1), 1);
	expect_err(mp_value_lock(b, MP_NOWAIT), -EAGAIN);
	cr_assert_eq(write(done[1], "x", 1), 1);
	reap_ok(pid);
	expect_ok(mp_value_lock(b, MP_NOWAIT));
	expect_ok(mp_value_unlock(b));
	int64_t got;
	expect_ok(mp_value_get_long(a, &got));
	cr_assert_eq(got, 5);
	close(go[0]);
	close(go[1]);
	close(done[0]);
	close(done[1]);
	mp_value_free(a);
	mp_value_free(b);
	mp_lock_free(lock);
}

Test(value, a_dead_holder_is_reported_once)
{
	mp_value_t *v;
	expect_ok(mp_value_new('i', NULL, NULL, &v));
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int rv = mp_value_lock(v, MP_FOREVER);
		*(int *)mp_value_ptr(v) = 3;
		_exit(rv == 0 ? 0 : 1);  /* dies holding the lock */
	}
	reap_ok(pid);
	expect_err(mp_value_add_long(v, 1), -EOWNERDEAD);
	int64_t got;
	expect_ok(mp_value_get_long(v, &got));
	cr_assert_eq(got, 3, "the reporting call did not act");
	expect_ok(mp_value_add_long(v, 1));
	expect_ok(mp_value_get_long(v, &got));
	cr_assert_eq(got, 4);
	mp_value_free(v);
}

#define N_PROCS 8
#define N_INCS 100000

Test(value, locked_increments_are_exact_under_contention)
{
	mp_value_t *v, *d;
	expect_ok(mp_value_new('q', NULL, NULL, &v));
	expect_ok(mp_value_new('d', NULL, NULL, &d));
	pid_t pids[N_PROCS];
	for (int k = 0; k < N_PROCS; k++) {
		pids[k] = fork();
		cr_assert_geq(pids[k], 0);
		if (pids[k] == 0) {
			int rv = 0;
			for (int i = 0; i < N_INCS && rv == 0; i++) {
				rv = mp_value_add_long(v, 1);
			}
			/* The lecture's form: hold the lock, update by hand. */
			for (int i = 0; i < N_INCS && rv == 0; i++) {
				rv = mp_value_lock(d, MP_FOREVER);
				*(double *)mp_value_ptr(d) += 1.0;
				rv |= mp_value_unlock(d);
			}
			_exit(rv == 0 ? 0 : 1);
		}
	}
	for (int k = 0; k < N_PROCS; k++) {
		reap_ok(pids[k]);
	}
	int64_t got;
	double x;
	expect_ok(mp_value_get_long(v, &got));
	expect_ok(mp_value_get_double(d, &x));
	cr_assert_eq(got, N_PROCS * N_INCS);
	cr_assert_float_eq(x, (double)(N_PROCS * N_INCS), 0);
	mp_value_free(v);
	mp_value_free(d);
}

Test(value, shared_alloc_blocks_are_zeroed_aligned_and_shared)
{
	uint64_t *p;
	expect_ok(mp_shared_alloc(3 * sizeof(*p), (void **)&p));
	cr_assert_eq((uintptr_t)p % 64, 0);
	cr_assert(p[0] == 0 && p[1] == 0 && p[2] == 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		p[1] = 42;
		_exit(0);
	}
	reap_ok(pid);
	cr_assert_eq(p[1], 42);
	void *q = NULL;
	expect_err(mp_shared_alloc(0, &q), -EINVAL);
	expect_err(mp_shared_alloc(8, NULL), -EINVAL);
	cr_assert_null(q);
	mp_shared_free(p);
	mp_shared_free(NULL);
}
