/* SPDX-License-Identifier: MIT */
/* test_examples_queue.c: the Queue lecture twin prints what its Python original prints. */
#include "harness/harness.h"

MP_TEST_SUITE(examples_queue);

Test(examples_queue, queue_prints_the_child_list)
{
	const char *argv[] = { mp_test_bin("bin/queue"), NULL };
	char *c_out, *err;
	int rc = mp_test_run(argv, NULL, 0, &c_out, NULL, &err);
	cr_assert_eq(rc, 0, "queue exited with %d: %s", rc, err);
	cr_assert_str_empty(err, "queue wrote to stderr: %s", err);
	free(err);
	cr_assert_str_eq(c_out, "['Process-1', 42, None, 'hello']\n");

	const struct mp_test_python *pys;
	size_t n = mp_test_pythons(&pys);
	cr_assert_gt(n, 0, "no CPython to compare with");
	for (size_t i = 0; i < n; i++) {
		char *py_out;
		rc = mp_test_run_py(&pys[i], "lecture_queue.py", NULL, NULL, 0,
		    &py_out, NULL, &err);
		cr_assert_eq(rc, 0, "python %s exited with %d: %s",
		    pys[i].label, rc, err);
		free(err);
		cr_assert_str_eq(c_out, py_out, "C and CPython %s differ",
		    pys[i].label);
		free(py_out);
	}
	free(c_out);
}
