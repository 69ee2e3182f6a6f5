/* SPDX-License-Identifier: MIT */
/* child.c: helpers for cases that fork children and talk to them over pipes. */
#include "harness/harness.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

void *
mp_test_shared_map(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert(p != MAP_FAILED);
	return p;
}

void
mp_test_pipe(int fds[2])
{
	cr_assert(pipe2(fds, O_CLOEXEC) == 0);
}

/* In a child, a failed write ends it (status 90): the parent sees that. */
void
mp_test_send_byte(int fd, char c)
{
	while (write(fd, &c, 1) != 1) {
		if (errno != EINTR) {
			_exit(90);
		}
	}
}

char
mp_test_recv_byte(int fd)
{
	char c;
	ssize_t n;
	do {
		n = read(fd, &c, 1);
	} while (n < 0 && errno == EINTR);
	return n == 1 ? c : '\0';
}

void
mp_test_send_int(int fd, int v)
{
	while (write(fd, &v, sizeof(v)) != sizeof(v)) {
		if (errno != EINTR) {
			_exit(90);
		}
	}
}

int
mp_test_recv_int(int fd)
{
	int v = 12345;
	ssize_t n;
	do {
		n = read(fd, &v, sizeof(v));
	} while (n < 0 && errno == EINTR);
	cr_assert_eq(n, (ssize_t)sizeof(v), "the child sent no result");
	return v;
}

int
mp_test_reap(pid_t pid)
{
	int status;
	pid_t r;
	do {
		r = waitpid(pid, &status, 0);
	} while (r < 0 && errno == EINTR);
	cr_assert_eq(r, pid);
	if (WIFSIGNALED(status)) {
		return -WTERMSIG(status);
	}
	return WEXITSTATUS(status);
}

/* ---- Random kill points -------------------------------------------------- */

uint64_t
mp_test_seed(const char *what)
{
	const char *env = getenv("MP_TEST_SEED");
	uint64_t seed;
	if (env != NULL && env[0] != '\0') {
		seed = strtoull(env, NULL, 0);
	} else {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec ^
		    (uint64_t)getpid() << 32;
	}
	/* On stderr, which CTest shows, not only in --verbose logs. */
	fprintf(stderr, "%s: seed %llu (replay: MP_TEST_SEED=%llu)\n", what,
	    (unsigned long long)seed, (unsigned long long)seed);
	return seed;
}

int
mp_test_repeats(int n)
{
	const char *env = getenv("MP_TEST_REPEAT_PERCENT");
	if (env == NULL || env[0] == '\0') {
		return n;
	}
	long pct = strtol(env, NULL, 10);
	if (pct <= 0 || pct > 100) {
		return n;
	}
	long k = (long)n * pct / 100;
	return k > 0 ? (int)k : 1;
}

uint64_t
mp_test_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t
mp_test_rand_below(uint64_t *state, uint64_t n)
{
	return mp_test_rand(state) % n;
}

void
mp_test_spin(uint64_t iterations)
{
	for (volatile uint64_t i = 0; i < iterations; i++) {
	}
}

pid_t
mp_test_fork(void)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert(pid >= 0, "fork failed (errno %d)", errno);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent) {
			_exit(127);
		}
	}
	return pid;
}

int
mp_test_kill(pid_t pid)
{
	kill(pid, SIGKILL);
	return mp_test_reap(pid);
}

int64_t
mp_test_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
mp_test_raise_nofile(unsigned long want)
{
	struct rlimit rl;
	cr_assert(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= want) {
		return;
	}
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
		/* Only root (CAP_SYS_RESOURCE) may raise the hard limit. */
		struct rlimit up = { want, want };
		cr_assert(setrlimit(RLIMIT_NOFILE, &up) == 0,
		    "this case needs %lu file descriptors, but the hard limit "
		    "is %llu and this process may not raise it (that takes "
		    "root with CAP_SYS_RESOURCE): run `ulimit -Hn %lu` as root "
		    "in the shell that starts the tests", want,
		    (unsigned long long)rl.rlim_max, want);
		return;
	}
	rl.rlim_cur = rl.rlim_max;
	cr_assert(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit failed "
	    "(errno %d)", errno);
}
