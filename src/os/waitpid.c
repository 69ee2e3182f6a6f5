/* SPDX-License-Identifier: MIT */
/* os/waitpid.c: reap a child; the timed wait where there are no pidfds. */
#include "os/proc.h"

#include <sys/wait.h>

/* The fallback's polling interval grows from 1 ms to 20 ms. */
#define BACKOFF_FIRST_NS 1000000
#define BACKOFF_MAX_NS 20000000

int
mp__waitpid_nohang(pid_t pid, int *status)
{
	for (;;) {
		pid_t rv = waitpid(pid, status, WNOHANG);
		if (rv == pid) {
			return 1;
		}
		if (rv == 0) {
			return 0;
		}
		if (errno != EINTR) {
			return -errno;
		}
	}
}

int
mp__waitpid_exited(pid_t pid)
{
	siginfo_t info;
	while (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) != 0) {
		if (errno != EINTR) {
			return -errno;
		}
	}
	return 0;
}

void
mp__waitpid_backoff(int64_t deadline_ns, int64_t *step_ns)
{
	if (*step_ns <= 0) {
		*step_ns = BACKOFF_FIRST_NS;
	}
	int64_t nap = *step_ns;
	if (deadline_ns >= 0) {
		int64_t left = deadline_ns - mp__now_ns();
		if (left < nap) {
			nap = left > 0 ? left : 0;
		}
	}
	struct timespec ts = {
		.tv_sec = (time_t)(nap / 1000000000),
		.tv_nsec = (long)(nap % 1000000000),
	};
	/* An interrupted nap only makes the next poll come sooner. */
	nanosleep(&ts, NULL);
	*step_ns *= 2;
	if (*step_ns > BACKOFF_MAX_NS) {
		*step_ns = BACKOFF_MAX_NS;
	}
}
