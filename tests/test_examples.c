/* SPDX-License-Identifier: MIT */
/* test_examples.c: each lecture example's C twin prints what Python prints. */
#include "harness/harness.h"

MP_TEST_SUITE(examples);

/*
 * Run bin/<example> and tests/py/<script> with every CPython found, and
 * assert the same stdout and exit code 0; want is the expected text.
 */
static void
expect_same_output(const char *example, const char *script, const char *want)
{
	char rel[256];
	snprintf(rel, sizeof(rel), "bin/%s", example);
	const char *argv[] = { mp_test_bin(rel), NULL };
	char *c_out = NULL;
	int rv = mp_test_run(argv, NULL, 0, &c_out, NULL, NULL);
	cr_assert_eq(rv, 0, "%s exited with %d", argv[0], rv);
	cr_assert_str_eq(c_out, want, "the C example's output");

	const struct mp_test_python *pys = NULL;
	size_t n = mp_test_pythons(&pys);
	cr_assert_gt(n, 0, "no CPython to compare with");
	for (size_t i = 0; i < n; i++) {
		char *py_out = NULL;
		rv = mp_test_run_py(&pys[i], script, NULL, NULL, 0, &py_out,
		    NULL, NULL);
		cr_assert_eq(rv, 0, "python %s: %s exited with %d",
		    pys[i].label, script, rv);
		cr_assert_str_eq(c_out, py_out, "C and python %s differ",
		    pys[i].label);
		free(py_out);
	}
	free(c_out);
}

Test(examples, pipe)
{
	expect_same_output("pipe", "lecture_pipe.py",
	    "Recebido...[1, 2, 3, 4, 5]\n[1, 4, 9, 16, 25]\n");
}
