/* SPDX-License-Identifier: MIT */
/* test_examples_manager.c: the manager examples against their Python twins. */
#include "harness/harness.h"

#include <signal.h>

MP_TEST_SUITE(examples_manager);

/* ---- Manager: 10 workers append to a shared list ------------------------- */

/*
 * The order in which the workers append, and what each sees when it
 * prints, depend on scheduling, so the outputs of two runs (C or Python)
 * differ as text. What does not depend on it, and is checked for both:
 *  - 10 records "<item> <list>" and a last line "Results: <list>";
 *  - the items of the 10 records are 0..9, each once;
 *  - the final list holds 0..9, each once;
 *  - every printed list is a prefix of the final list (appends only add
 *    at the end, and a worker prints after its own append), contains the
 *    worker's own item, and one of them is the whole list.
 * The canonical form "items 0..9; Results sorted [0, ..., 9]" is then
 * the same for C and for every CPython.
 */

/*
 * Parse "[1, 0, 3]" at *s into v, advancing *s past the ']'; returns the
 * count or -1.
 */
static int
parse_list(const char **s, int *v, int cap)
{
	const char *p = *s;
	if (*p++ != '[') {
		return -1;
	}
	int n = 0;
	while (*p != ']') {
		char *end;
		long x = strtol(p, &end, 10);
		if (end == p || n == cap) {
			return -1;
		}
		v[n++] = (int)x;
		p = end;
		if (*p == ',') {
			p++;
			if (*p++ != ' ') {
				return -1;
			}
		} else if (*p != ']') {
			return -1;
		}
	}
	*s = p + 1;
	return n;
}

/*
 * CPython's print() writes the text and its newline in two writes, so the
 * lines of two workers may interleave at that boundary ("3 [0, 3]4 [0, 3,
 * 4]" then two newlines); that is part of the original's behaviour. The
 * records are therefore read from the worker part of the output with its
 * newlines removed: "<item> <list>" ten times, then "Results: <list>".
 */
static void
check_manager_output(const char *out, const char *who)
{
	const char *res = strstr(out, "Results: ");
	cr_assert_not_null(res, "%s: no Results line", who);
	cr_assert(res == out || res[-1] == '\n', "%s: Results mid-line", who);
	char flat[4096];
	size_t k = 0;
	for (const char *p = out; p < res && k + 1 < sizeof(flat); p++) {
		if (*p != '\n') {
			flat[k++] = *p;
		}
	}
	flat[k] = '\0';
	int items[10];
	int lists[10][16];
	int lens[10];
	int lines = 0;
	const char *p = flat;
	while (*p != '\0') {
		cr_assert_lt(lines, 10, "%s: too many records", who);
		char *end;
		items[lines] = (int)strtol(p, &end, 10);
		cr_assert(end != p && *end == ' ', "%s: record '%s'", who, p);
		p = end + 1;
		lens[lines] = parse_list(&p, lists[lines], 16);
		cr_assert_gt(lens[lines], 0, "%s: list at '%s'", who, p);
		lines++;
	}
	cr_assert_eq(lines, 10, "%s: %d records", who, lines);
	int final[16];
	const char *q = res + 9;
	int nfinal = parse_list(&q, final, 16);
	cr_assert_eq(nfinal, 10, "%s: the final list has %d items", who,
	    nfinal);
	cr_assert_str_eq(q, "\n", "%s: text after Results", who);
	bool seen_item[10] = { false };
	bool seen_final[10] = { false };
	bool whole = false;
	for (int i = 0; i < 10; i++) {
		cr_assert(items[i] >= 0 && items[i] < 10 &&
		    !seen_item[items[i]],
		    "%s: item %d", who, items[i]);
		seen_item[items[i]] = true;
		cr_assert(final[i] >= 0 && final[i] < 10 &&
		    !seen_final[final[i]], "%s: final item %d", who, final[i]);
		seen_final[final[i]] = true;
		bool own = false;
		for (int j = 0; j < lens[i]; j++) {
			cr_assert_eq(lists[i][j], final[j],
			    "%s: record %d is not a prefix of Results", who, i);
			own = own || lists[i][j] == items[i];
		}
		cr_assert(own, "%s: record %d lacks its own item", who, i);
		whole = whole || lens[i] == 10;
	}
	cr_assert(whole, "%s: no worker saw the whole list", who);
}

Test(examples_manager, manager)
{
	const char *argv[] = { mp_test_bin("bin/manager"), NULL };
	char *out = NULL;
	int rv = mp_test_run(argv, NULL, 0, &out, NULL, NULL);
	cr_assert_eq(rv, 0, "the C example exited with %d", rv);
	check_manager_output(out, "C");
	free(out);

	const struct mp_test_python *pys = NULL;
	size_t n = mp_test_pythons(&pys);
	cr_assert_gt(n, 0, "no CPython to compare with");
	for (size_t i = 0; i < n; i++) {
		rv = mp_test_run_py(&pys[i], "lecture_manager.py", NULL, NULL,
		    0, &out, NULL, NULL);
		cr_assert_eq(rv, 0, "python %s exited with %d", pys[i].label,
		    rv);
		check_manager_output(out, pys[i].label);
		free(out);
	}
}

/* ---- BaseManager: server and clients 1 (put) and 2 (get) ----------------- */

/* Start a server twin on a free port; port gets the number it prints. */
static void
start_c_server(struct mp_test_child *child, char *port, size_t size)
{
	const char *argv[] = { mp_test_bin("bin/basemanager_server"), "0",
		NULL };
	mp_test_spawn(argv, child);
	cr_assert_gt(mp_test_read_line(child->out_fd, port, size, 30000), 0,
	    "the C server did not start");
}

static void
start_py_server(const struct mp_test_python *py, struct mp_test_child *child,
    char *port, size_t size)
{
	const char *args[] = { "0", NULL };
	mp_test_spawn_py(py->path, "lecture_manager_server.py", args, child);
	cr_assert_gt(mp_test_read_line(child->out_fd, port, size, 30000), 0,
	    "python %s: the server did not start", py->label);
}

static void
stop_server(struct mp_test_child *child)
{
	/* Both servers serve forever, as the lecture's: end them. */
	kill(child->pid, SIGTERM);
	int rv = mp_test_wait(child, 30000);
	cr_assert(rv == -SIGTERM || rv == 0, "server status %d", rv);
}

static void
run_c_client(const char *which, const char *port, const char *want)
{
	const char *argv[] = { mp_test_bin("bin/basemanager_client"), which,
		port, NULL };
	char *out = NULL;
	int rv = mp_test_run(argv, NULL, 0, &out, NULL, NULL);
	cr_assert_eq(rv, 0, "C client %s exited with %d", which, rv);
	cr_assert_str_eq(out, want, "C client %s", which);
	free(out);
}

static void
run_py_client(const struct mp_test_python *py, const char *which,
    const char *port, const char *want)
{
	const char *args[] = { which, port, NULL };
	char *out = NULL;
	int rv = mp_test_run_py(py, "lecture_manager_client.py", args, NULL, 0,
	    &out, NULL, NULL);
	cr_assert_eq(rv, 0, "python %s client %s exited with %d", py->label,
	    which, rv);
	cr_assert_str_eq(out, want, "python %s client %s", py->label, which);
	free(out);
}

#define OUT1 "Fim...\n"
#define OUT2 "hello\nFim...\n"

Test(examples_manager, basemanager_c_server_c_client)
{
	struct mp_test_child srv;
	char port[16];
	start_c_server(&srv, port, sizeof(port));
	run_c_client("1", port, OUT1);
	run_c_client("2", port, OUT2);
	stop_server(&srv);
}

Test(examples_manager, basemanager_c_server_python_client)
{
	const struct mp_test_python *pys = NULL;
	size_t n = mp_test_pythons(&pys);
	cr_assert_gt(n, 0, "no CPython to compare with");
	struct mp_test_child srv;
	char port[16];
	start_c_server(&srv, port, sizeof(port));
	for (size_t i = 0; i < n; i++) {
		run_py_client(&pys[i], "1", port, OUT1);
		run_py_client(&pys[i], "2", port, OUT2);
		/* Mixed: a C producer and a Python consumer, and back. */
		run_c_client("1", port, OUT1);
		run_py_client(&pys[i], "2", port, OUT2);
		run_py_client(&pys[i], "1", port, OUT1);
		run_c_client("2", port, OUT2);
	}
	stop_server(&srv);
}

Test(examples_manager, basemanager_python_server_c_client)
{
	const struct mp_test_python *pys = NULL;
	size_t n = mp_test_pythons(&pys);
	cr_assert_gt(n, 0, "no CPython to compare with");
	for (size_t i = 0; i < n; i++) {
		struct mp_test_child srv;
		char port[16];
		start_py_server(&pys[i], &srv, port, sizeof(port));
		run_c_client("1", port, OUT1);
		run_c_client("2", port, OUT2);
		/* The Python pair gives the same, for reference. */
		run_py_client(&pys[i], "1", port, OUT1);
		run_py_client(&pys[i], "2", port, OUT2);
		stop_server(&srv);
	}
}
