/* SPDX-License-Identifier: MIT */
/* test_error.c: error names and messages. */
#include "harness/harness.h"
#include "core/internal.h"

MP_TEST_SUITE(error);

Test(error, own_codes_have_names_and_messages)
{
	cr_assert_str_eq(mp_err_name(MP_EOF), "MP_EOF");
	cr_assert_str_eq(mp_strerror(MP_EOF), "end of file");
	cr_assert_str_eq(mp_err_name(MP_EAUTH), "MP_EAUTH");
	cr_assert_str_eq(mp_strerror(MP_ETRUNCATED),
	    "end of file in the middle of a message");
}

Test(error, errno_codes_have_names)
{
	cr_assert_str_eq(mp_err_name(-ETIMEDOUT), "ETIMEDOUT");
	cr_assert_str_eq(mp_strerror(-ETIMEDOUT), "timed out");
	cr_assert_str_eq(mp_err_name(-EOWNERDEAD), "EOWNERDEAD");
	cr_assert_str_eq(mp_err_name(0), "OK");
}

Test(error, unknown_codes_are_never_null)
{
	cr_assert_str_eq(mp_err_name(-123456), "UNKNOWN");
	cr_assert_str_eq(mp_strerror(-123456), "unknown error");
	cr_assert_str_eq(mp_strerror(5), "unknown error");
}

Test(error, alloc_fault_injection_fails_the_nth_allocation)
{
	mp__alloc_fail_after(0);
	mp__alloc_fail_after(2);
	void *a = mp_malloc(8);
	void *b = mp_malloc(8);
	void *c = mp_malloc(8);
	cr_assert_not_null(a);
	cr_assert_null(b);
	cr_assert_not_null(c);
	mp_free(a);
	mp_free(c);
	cr_assert_eq(mp__alloc_fail_after(0), 3, "three allocations were counted");
}
