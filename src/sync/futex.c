/* SPDX-License-Identifier: MIT */
/* sync/futex.c: shared futex wait/wake, cached thread id, liveness. */
#include "sync/futex.h"

#include <fcntl.h>
#include <linux/membarrier.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int
mp__futex_wait(void *addr, uint32_t val, int64_t deadline_ns)
{
	struct timespec ts;
	struct timespec *tsp = NULL;
	if (deadline_ns >= 0) {
		ts.tv_sec = deadline_ns / 1000000000;
		ts.tv_nsec = deadline_ns % 1000000000;
		tsp = &ts;
	}
	/*
	 * FUTEX_WAIT_BITSET takes an absolute deadline, unlike FUTEX_WAIT,
	 * so a retry after a spurious wake-up does not stretch the timeout.
	 * Without FUTEX_CLOCK_REALTIME the clock is CLOCK_MONOTONIC.
	 */
	long rv = syscall(SYS_futex, addr, FUTEX_WAIT_BITSET, val, tsp, NULL,
	    FUTEX_BITSET_MATCH_ANY);
	if (rv == 0) {
		return 0;
	}
	if (errno == ETIMEDOUT) {
		return -ETIMEDOUT;
	}
	/* EAGAIN: the word changed before we slept; EINTR: a signal. */
	return 0;
}

int
mp__futex_wake(void *addr, int n)
{
	long rv = syscall(SYS_futex, addr, FUTEX_WAKE, n, NULL, NULL, 0);
	return rv < 0 ? 0 : (int)rv;
}

_Thread_local pid_t mp__tid_cache __attribute__((tls_model("initial-exec")));

static pthread_once_t tid_once = PTHREAD_ONCE_INIT;

/*
 * Only the forking thread exists in the child, and the handler runs in it,
 * so clearing this thread's cache is enough for the whole child.
 */
static void
tid_atfork_child(void)
{
	mp__tid_cache = 0;
	/* The child is a new process: unregistered until it registers. */
	__atomic_store_n(&mp__fence_light_registered, false, __ATOMIC_RELAXED);
}

static void
tid_register(void)
{
	pthread_atfork(NULL, NULL, tid_atfork_child);
}

bool mp__fence_light_registered;
bool mp__fence_light_allowed = true;

/*
 * Registration is per process and idempotent; the slow path of
 * mp__self_tid runs once per thread, so a process registers a few times
 * at most. The flag is set only after the kernel said yes.
 */
static void
fence_register(void)
{
	if (mp__fence_light_ok() || !mp__fence_light_allowed) {
		return;
	}
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0,
	    0) == 0) {
		__atomic_store_n(&mp__fence_light_registered, true,
		    __ATOMIC_RELEASE);
	}
}

void
mp__fence_heavy(void)
{
	atomic_thread_fence(memory_order_seq_cst);
	/* ENOSYS or EPERM: nobody can have registered; the fence suffices. */
	(void)syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0);
}

pid_t
mp__self_tid_slow(void)
{
	pthread_once(&tid_once, tid_register);
	fence_register();
	pid_t tid = (pid_t)syscall(SYS_gettid);
	mp__tid_cache = tid;
	return tid;
}

/* The state letter of /proc/<pid>/stat, after the parenthesised name. */
static int
proc_state(pid_t pid)
{
	char path[64];
	char buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return errno == ENOENT ? 'X' : -1;
	}
	ssize_t n;
	do {
		n = read(fd, buf, sizeof(buf) - 1);
	} while (n < 0 && errno == EINTR);
	close(fd);
	if (n <= 0) {
		return 'X';
	}
	buf[n] = '\0';
	/* The name may hold spaces and parentheses: the last ')' ends it. */
	char *p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ' || p[2] == '\0') {
		return -1;
	}
	return (unsigned char)p[2];
}

static bool
alive_by_proc(pid_t pid)
{
	int st = proc_state(pid);
	if (st == 'Z' || st == 'X' || st == 'x') {
		return false;
	}
	if (st > 0) {
		return true;
	}
	/* No /proc: kill(0) cannot tell a zombie, but errs on the safe side. */
	return kill(pid, 0) == 0 || errno == EPERM;
}

bool
mp__pid_alive(pid_t pid)
{
	if (pid <= 0) {
		return false;
	}
#ifdef SYS_pidfd_open
	long fd = syscall(SYS_pidfd_open, pid, 0);
	if (fd >= 0) {
		/* A pidfd polls readable once the process has ended. */
		struct pollfd p = { .fd = (int)fd, .events = POLLIN };
		int rv;
		do {
			rv = poll(&p, 1, 0);
		} while (rv < 0 && errno == EINTR);
		close((int)fd);
		if (rv >= 0) {
			return rv == 0;
		}
		return alive_by_proc(pid);
	}
	if (errno == ESRCH) {
		return false;
	}
	if (errno == EINVAL) {
		/*
		 * pid exists but is not a thread-group leader: a thread of a
		 * running process. Threads other than the leader are released
		 * as they exit and never linger as zombies.
		 */
		return true;
	}
#endif
	return alive_by_proc(pid);
}
