/* SPDX-License-Identifier: MIT */
/* test_examples_sync.c: the Value, Array and Barrier lecture twins print what their Python originals print. */
#include "harness/harness.h"

#include <ctype.h>

MP_TEST_SUITE(examples_sync);

/* Run examples/<name>.c's program; its stdout is returned (free()). */
static char *
run_c(const char *name)
{
	char rel[64];
	snprintf(rel, sizeof(rel), "bin/%s", name);
	const char *argv[] = { mp_test_bin(rel), NULL };
	char *out, *err;
	int rc = mp_test_run(argv, NULL, 0, &out, NULL, &err);
	cr_assert_eq(rc, 0, "%s exited with %d: %s", name, rc, err);
	cr_assert_str_empty(err, "%s wrote to stderr: %s", name, err);
	free(err);
	return out;
}

static char *
run_py(const struct mp_test_python *py, const char *script)
{
	char *out, *err;
	int rc = mp_test_run_py(py, script, NULL, NULL, 0, &out, NULL, &err);
	cr_assert_eq(rc, 0, "python %s %s exited with %d: %s", py->label,
	    script, rc, err);
	free(err);
	return out;
}

static void
same_output(const char *example, const char *script, const char *want)
{
	char *c_out = run_c(example);
	cr_assert_str_eq(c_out, want);
	const struct mp_test_python *pys;
	size_t n = mp_test_pythons(&pys);
	cr_assert_gt(n, 0, "no CPython to compare with");
	for (size_t i = 0; i < n; i++) {
		char *py_out = run_py(&pys[i], script);
		cr_assert_str_eq(c_out, py_out, "C and CPython %s differ",
		    pys[i].label);
		free(py_out);
	}
	free(c_out);
}

Test(examples_sync, value_prints_zero_after_join)
{
	same_output("value", "lecture_value.py", "0.0\n");
}

Test(examples_sync, array_prints_ten_zeros)
{
	same_output("array", "lecture_array.py",
	    "[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]\n");
}

/*
 * The barrier example's lines: the timestamp ("2026-01-02 03:04:05" and
 * ".123456" unless the microseconds are zero, as datetime prints it) is
 * checked for shape and replaced by "<ts>"; the lines are then sorted,
 * since two processes' output interleaves in no fixed order.
 */
#define MAX_LINES 16

static bool
is_timestamp(const char *s, size_t len)
{
	const char *shape = "dddd-dd-dd dd:dd:dd";
	size_t base = strlen(shape);
	if (len != base && len != base + 7) {
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		char want = i < base ? shape[i] : (i == base ? '.' : 'd');
		bool ok = want == 'd' ? isdigit((unsigned char)s[i]) != 0 :
		    s[i] == want;
		if (!ok) {
			return false;
		}
	}
	return true;
}

static int
compare_lines(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Split out into its lines (pointers into out); returns the count. */
static size_t
barrier_lines(char *out, char *lines[MAX_LINES], const char *who)
{
	size_t n = 0;
	char *line = out;
	while (*line != '\0') {
		char *nl = strchr(line, '\n');
		cr_assert_not_null(nl, "%s: unterminated last line", who);
		*nl = '\0';
		cr_assert_lt(n, MAX_LINES, "%s: too many lines", who);
		lines[n++] = line;
		line = nl + 1;
	}
	return n;
}

static void
normalise(char *line, const char *who)
{
	const char *tail = " continuando processamento!!!";
	char *dash = strstr(line, " - ");
	char *end = strstr(line, tail);
	if (dash == NULL || end == NULL) {
		return;
	}
	char *ts = dash + 3;
	cr_assert(is_timestamp(ts, (size_t)(end - ts)), "%s: timestamp in '%s'",
	    who, line);
	memmove(ts + 4, end, strlen(end) + 1);
	memcpy(ts, "<ts>", 4);
}

/* Per process: iniciando, then acordei, then continuando. */
static void
check_order(char *lines[], size_t n, const char *proc, const char *who)
{
	const char *steps[] = {
		" iniciando!!", " acordei!!", " - <ts> continuando",
	};
	size_t step = 0;
	for (size_t i = 0; i < n; i++) {
		if (strncmp(lines[i], proc, strlen(proc)) == 0 && step < 3 &&
		    strncmp(lines[i] + strlen(proc), steps[step],
		    strlen(steps[step])) == 0) {
			step++;
		}
	}
	cr_assert_eq(step, 3, "%s: %s's lines out of order", who, proc);
}

static size_t
split_barrier_output(char *out, char *lines[MAX_LINES], const char *who)
{
	size_t n = barrier_lines(out, lines, who);
	for (size_t i = 0; i < n; i++) {
		normalise(lines[i], who);
	}
	check_order(lines, n, "MeuProcesso-1", who);
	check_order(lines, n, "MeuProcesso-2", who);
	qsort(lines, n, sizeof(lines[0]), compare_lines);
	return n;
}

Test(examples_sync, barrier_prints_the_same_lines)
{
	/*
	 * Unbuffered, Python's print writes the text and the newline with two
	 * write calls, so two processes' lines can tear into one another
	 * ("...!!!MeuProcesso-2 ...!!!\n\n"). Buffered, each process writes
	 * its lines in one go when it exits, as the C twin does.
	 */
	unsetenv("PYTHONUNBUFFERED");
	char *c_out = run_c("barrier");
	char *c_lines[MAX_LINES];
	size_t c_n = split_barrier_output(c_out, c_lines, "C");
	const char *want[] = {
		"MeuProcesso-1 - <ts> continuando processamento!!!",
		"MeuProcesso-1 acordei!!",
		"MeuProcesso-1 iniciando!!",
		"MeuProcesso-2 - <ts> continuando processamento!!!",
		"MeuProcesso-2 acordei!!",
		"MeuProcesso-2 iniciando!!",
	};
	cr_assert_eq(c_n, 6);
	for (size_t i = 0; i < c_n; i++) {
		cr_assert_str_eq(c_lines[i], want[i]);
	}
	const struct mp_test_python *pys;
	size_t n = mp_test_pythons(&pys);
	for (size_t k = 0; k < n; k++) {
		char *py_out = run_py(&pys[k], "lecture_barrier.py");
		char *py_lines[MAX_LINES];
		size_t py_n = split_barrier_output(py_out, py_lines,
		    pys[k].label);
		cr_assert_eq(py_n, c_n, "CPython %s", pys[k].label);
		for (size_t i = 0; i < c_n; i++) {
			cr_assert_str_eq(c_lines[i], py_lines[i], "CPython %s",
			    pys[k].label);
		}
		free(py_out);
	}
	free(c_out);
}
