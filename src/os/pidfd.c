/* SPDX-License-Identifier: MIT */
/* os/pidfd.c: watch and signal a child through a pidfd, where there is one. */
#include "os/proc.h"

#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * The build does not detect pidfd_open, so the syscall number decides at
 * compile time and ENOSYS at run time. Once the kernel has said ENOSYS,
 * asking again on every start would only cost a syscall.
 */
static atomic_bool no_pidfd;
static atomic_bool disabled_by_test;

bool
mp__pidfd_set_disabled(bool disabled)
{
	return atomic_exchange(&disabled_by_test, disabled);
}

int
mp__pidfd_open(pid_t pid, int *fd)
{
#ifdef SYS_pidfd_open
	if (atomic_load_explicit(&no_pidfd, memory_order_relaxed) ||
	    atomic_load_explicit(&disabled_by_test, memory_order_relaxed)) {
		return -ENOSYS;
	}
	long rv = syscall(SYS_pidfd_open, pid, 0);
	if (rv < 0) {
		int err = errno;
		if (err == ENOSYS) {
			atomic_store_explicit(&no_pidfd, true,
			    memory_order_relaxed);
		}
		return -err;
	}
	*fd = (int)rv;
	return 0;
#else
	(void)pid;
	(void)fd;
	(void)disabled_by_test;
	return -ENOSYS;
#endif
}

int
mp__proc_signal(pid_t pid, int fd, int sig)
{
#ifdef SYS_pidfd_send_signal
	if (fd >= 0) {
		if (syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0) == 0) {
			return 0;
		}
		if (errno == ESRCH) {
			return 0;
		}
		if (errno != ENOSYS) {
			return -errno;
		}
	}
#else
	(void)fd;
#endif
	/*
	 * kill() by pid is safe here: the caller holds the lock under which
	 * the child is reaped, so the pid cannot have been recycled.
	 */
	if (kill(pid, sig) != 0 && errno != ESRCH) {
		return -errno;
	}
	return 0;
}
