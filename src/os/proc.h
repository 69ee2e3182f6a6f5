/* SPDX-License-Identifier: MIT */
/* os/proc.h: watch, signal and reap a child (pidfd, waitpid). */
#ifndef MP_OS_PROC_H
#define MP_OS_PROC_H

#include "core/internal.h"

#include <sys/types.h>

/*
 * mp__pidfd_open: a descriptor that becomes readable when the child pid
 * ends (Linux 5.3+). It is close-on-exec by nature. Returns 0 and stores
 * it in *fd, or -errno; -ENOSYS (remembered after the first time) when the
 * kernel or the C library lacks pidfd_open, and whatever a seccomp filter
 * answers. Every failure leaves the caller on the waitpid fallback.
 */
int mp__pidfd_open(pid_t pid, int *fd);

/*
 * mp__pidfd_set_disabled: make mp__pidfd_open answer -ENOSYS (true) or
 * behave normally (false), so tests can run the waitpid fallback on a
 * kernel that has pidfds. Returns the previous setting.
 */
MP_API bool mp__pidfd_set_disabled(bool disabled);

/*
 * mp__proc_signal: send sig to a child not yet reaped, through its pidfd
 * when fd >= 0, else kill(). A child that already ended is success.
 * Returns 0 or -errno.
 */
int mp__proc_signal(pid_t pid, int fd, int sig);

/*
 * mp__waitpid_nohang: reap pid if it has ended. Returns 1 and the wait
 * status in *status, 0 when it still runs, or -errno (-ECHILD when pid is
 * not a child or its status was taken elsewhere). EINTR is retried.
 */
int mp__waitpid_nohang(pid_t pid, int *status);

/*
 * mp__waitpid_exited: block until pid has ended, without reaping it
 * (waitid WNOWAIT), so the reaping stays in one place under a lock.
 * Returns 0 or -errno. EINTR is retried.
 */
int mp__waitpid_exited(pid_t pid);

/*
 * mp__waitpid_backoff: sleep for *step_ns or until the deadline, whichever
 * comes first, then double *step_ns up to a ceiling. The wait of a join
 * with a timeout where no pidfd exists: there is no other way to bound
 * waitpid in time without a signal handler, which the library never
 * installs.
 */
void mp__waitpid_backoff(int64_t deadline_ns, int64_t *step_ns);

#endif
