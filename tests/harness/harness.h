/* SPDX-License-Identifier: MIT */
/* harness.h: the shared Criterion fixture and helpers of mproc's test suite. */
#ifndef MP_TEST_HARNESS_H
#define MP_TEST_HARNESS_H

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <mproc.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * Every suite uses this fixture: before each case it records the open fds;
 * after it, it fails the case if a child process is left (zombie or
 * running) or an fd opened by the case is still open.
 */
void mp_test_setup(void);
void mp_test_teardown(void);

#define MP_TEST_SUITE(name) \
	TestSuite(name, .init = mp_test_setup, .fini = mp_test_teardown, \
	    .timeout = 120)

/* Assert an mproc call returned 0, naming the error otherwise. */
#define expect_ok(expr) \
	do { \
		int mp__rv = (expr); \
		cr_assert(mp__rv == 0, "%s returned %d (%s: %s)", #expr, mp__rv, \
		    mp_err_name(mp__rv), mp_strerror(mp__rv)); \
	} while (0)

/* Assert an mproc call returned the given (negative) error. */
#define expect_err(expr, want) \
	do { \
		int mp__rv = (expr); \
		cr_assert(mp__rv == (want), "%s returned %d (%s), expected %s", \
		    #expr, mp__rv, mp_err_name(mp__rv), mp_err_name(want)); \
	} while (0)

/*
 * mp_test_run: run argv[0] (searched in PATH when it has no slash) with
 * input on stdin, collect stdout (and stderr when err is not NULL). Returns
 * the exit status as Python's Popen.returncode does (-N for signal N), or
 * -1000 when the program could not be started. Output buffers are
 * NUL-terminated and released with free().
 */
int mp_test_run(const char *const argv[], const char *input, size_t input_len,
    char **out, size_t *out_len, char **err);

/*
 * mp_test_spawn: start argv (PATH search) with pipes on its stdin and
 * stdout (stderr is inherited, so what it logs shows in the test output).
 * The caller reads readiness lines from *out_fd (for example the port a
 * server listens on), writes to *in_fd, closes both, and reaps the child
 * with mp_test_wait. Both fds are close-on-exec.
 */
struct mp_test_child {
	pid_t pid;
	int in_fd;
	int out_fd;
};

void mp_test_spawn(const char *const argv[], struct mp_test_child *child);
/* Same for `python -S tests/py/<script> args...`. */
void mp_test_spawn_py(const char *python, const char *script,
    const char *const args[], struct mp_test_child *child);
/*
 * Read one line (without its newline) from fd into buf, waiting at most
 * timeout_ms; returns its length, or -1 on end of file or timeout.
 */
ssize_t mp_test_read_line(int fd, char *buf, size_t size, int timeout_ms);
/*
 * Close the child's pipes and wait for it, at most timeout_ms, then kill
 * it with SIGKILL. Returns the status as mp_test_run does.
 */
int mp_test_wait(struct mp_test_child *child, int timeout_ms);

/*
 * Helpers for cases that fork children (child.c). Children and parent
 * synchronise only over pipes: one byte for "ready"/"go", one int for a
 * result. mp_test_shared_map is anonymous MAP_SHARED memory for counters;
 * mp_test_reap waits for pid and returns its status as mp_test_run does.
 */
void *mp_test_shared_map(size_t size);
void mp_test_pipe(int fds[2]);
void mp_test_send_byte(int fd, char c);
char mp_test_recv_byte(int fd);
void mp_test_send_int(int fd, int v);
int mp_test_recv_int(int fd);
int mp_test_reap(pid_t pid);

/*
 * Random kill points (child.c). mp_test_seed returns the seed of a case's
 * PRNG: $MP_TEST_SEED when set (to replay a failure), else one made from
 * the clock and the pid; it prints "seed N" on stderr so that a failure
 * can be replayed.
 * mp_test_rand is splitmix64 over *state; mp_test_rand_below gives
 * 0 .. n-1 (n > 0). mp_test_spin burns a number of loop iterations: kill
 * points are chosen as counts of operations plus such a delay, never by
 * sleeping. The replay repeats the choices, not the scheduling.
 */
uint64_t mp_test_seed(const char *what);
/*
 * mp_test_repeats: n, or MP_TEST_REPEAT_PERCENT percent of n (at least 1):
 * scripts/valgrind lowers the repeat counts of the long random sweeps,
 * which would otherwise outlast their timeouts at valgrind's speed.
 */
int mp_test_repeats(int n);
uint64_t mp_test_rand(uint64_t *state);
uint64_t mp_test_rand_below(uint64_t *state, uint64_t n);
void mp_test_spin(uint64_t iterations);
/*
 * mp_test_fork: fork; in the child (0 returned) SIGKILL comes with the
 * parent's death, so a failed case leaves nothing behind.
 * mp_test_kill: SIGKILL pid and reap it; returns its status as
 * mp_test_reap (-SIGKILL, or its exit code when it ended first).
 */
pid_t mp_test_fork(void);
int mp_test_kill(pid_t pid);
/* CLOCK_MONOTONIC in milliseconds (for "no progress after N s" guards). */
int64_t mp_test_now_ms(void);
/*
 * mp_test_raise_nofile: make at least want fds available: raise the soft
 * RLIMIT_NOFILE up to the hard limit, and the hard limit too when the
 * process may (root). Fails the case with a message naming the limit
 * otherwise.
 */
void mp_test_raise_nofile(unsigned long want);

/*
 * A counting allocator (alloc.c): mp_test_count_start installs it (call it
 * first in the case, before the library allocates), mp_test_count_live
 * tells how many blocks the library holds, mp_test_count_end restores
 * malloc and fails the case unless every block was released.
 */
void mp_test_count_start(void);
long mp_test_count_live(void);
void mp_test_count_end(void);

/*
 * Allocation-failure sweeps: run an operation with its 1st allocation
 * failing, then its 2nd, ... until a run does not reach the failing one:
 *
 *	struct mp_test_sweep s;
 *	for (mp_test_sweep_start(&s, "what"); mp_test_sweep_next(&s);) {
 *		... set up ...
 *		mp_test_sweep_arm(&s);
 *		int rv = operation();
 *		mp_test_sweep_done(&s, rv, 0, 0);
 *		... check the state, release what the run made ...
 *	}
 *
 * mp_test_sweep_next moves to the next allocation, mp_test_sweep_arm
 * makes it fail from now on; mp_test_sweep_done disarms the failure right
 * after the operation (so set-up and checks allocate freely) and asserts
 * that a run which reached the failure returned want, -ENOMEM or also (a
 * documented error; 0 for none) with a message, and that a run which did
 * not returned want. s.hit tells which. The number of allocations swept
 * is printed on stderr when the sweep ends (unless what is NULL).
 */
#define MP_TEST_SWEEP_MAX 100000

struct mp_test_sweep {
	const char *what;
	unsigned long n;   /* the allocation failing in this run */
	bool hit;          /* the run reached it */
};

void mp_test_sweep_start(struct mp_test_sweep *s, const char *what);
bool mp_test_sweep_next(struct mp_test_sweep *s);
void mp_test_sweep_arm(struct mp_test_sweep *s);
int mp_test_sweep_done(struct mp_test_sweep *s, int rv, int want, int also);

/* An int of any size from its decimal text (asserts it parses). */
mp_obj_t *mp_test_int(const char *decimal);
/* 2**1000 in decimal: an int far beyond 64 bits. */
extern const char mp_test_two_1000[];

/* Path of a file in the source tree or the build tree (static buffer). */
const char *mp_test_src(const char *rel);
const char *mp_test_bin(const char *rel);

/*
 * The CPython interpreters to test against: every 3.8 to 3.13 under
 * $(pyenv root)/versions/, and the system python3. Absent versions are
 * reported on stderr as skipped ("SKIP python 3.9: not installed").
 */
struct mp_test_python {
	char label[32];   /* "3.11.7", or "system 3.11.2" */
	char path[512];
};

size_t mp_test_pythons(const struct mp_test_python **list);

/*
 * Run `python script args...` where script is relative to tests/py/.
 * Same conventions as mp_test_run.
 */
int mp_test_run_py(const struct mp_test_python *py, const char *script,
    const char *const args[], const char *input, size_t input_len,
    char **out, size_t *out_len, char **err);

#endif
