/* SPDX-License-Identifier: MIT */
/* mproc/process.h: processes that run a function (multiprocessing.Process). */
#ifndef MPROC_PROCESS_H
#define MPROC_PROCESS_H

#include <mproc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * mp_process_t is a child process that runs one function, the C form of
 * Python's multiprocessing.Process with the fork start method: the child is
 * a copy of the caller, so the target reaches everything the caller had
 * (objects created before the start are shared, descriptors the library
 * opened are inherited across the fork but closed at exec).
 *
 * The life of a handle: mp_process_new, mp_process_start, then
 * mp_process_join (or mp_process_terminate / mp_process_kill and a join),
 * then mp_process_free. A handle belongs to the process that created it:
 * only that process may start, join, signal or reap it.
 *
 * Threads: distinct handles may be used from different threads at once; one
 * handle is used by one thread at a time. The library's list of children
 * is locked internally.
 * Fork: a child started by mp_process_start sees its own handle as
 * mp_current_process() and starts with no children. Handles it inherited
 * from its parent are not its children: join, terminate, kill and
 * exitcode on them return -ECHILD, mp_process_is_alive returns false, and
 * mp_process_free releases their memory only. The same holds in a child
 * made by a plain fork().
 */
typedef struct mp_process mp_process_t;

/*
 * The target a child runs. Its return value becomes the exit code, masked
 * to 0..255 as by exit() (return 3 gives 3, return -1 gives 255).
 */
typedef int (*mp_target_fn)(void *arg);

/*
 * Options for mp_process_new. Zero-initialise the struct and set what you
 * need; passing NULL gives all defaults.
 */
struct mp_process_opts {
	/*
	 * The name mp_process_name reports, copied. NULL gives Python's
	 * default: "Process-N", where N counts the handles the calling
	 * process has created (1, 2, ...), prefixed by the caller's own
	 * numbers in a child ("Process-1:2" is the 2nd handle created by
	 * Process-1). A handle with a name still takes its number.
	 */
	const char *name;
	/*
	 * A daemon child is sent SIGTERM when its parent exits normally
	 * (return from main or exit()), then reaped; it may not start
	 * children of its own. Non-daemon children are joined at exit.
	 */
	bool daemon;
	/*
	 * Leave the child's fd 0 as inherited. By default, as in Python, the
	 * child's standard input is replaced by /dev/null so that children
	 * do not compete with the parent for the terminal.
	 */
	bool keep_stdin;
};

/*
 * mp_process_new: create a handle that will run fn(arg) in a child. Nothing
 * is started; arg is not touched by the library and must stay valid until
 * mp_process_start returns (the child gets its own copy of the memory).
 * opts may be NULL; the name in it is copied.
 * Returns 0 and stores the handle in *out, -EINVAL when fn or out is NULL,
 * or -ENOMEM. On failure *out is untouched. The handle is released with
 * mp_process_free.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_process_new(mp_target_fn fn, void *arg,
    const struct mp_process_opts *opts, mp_process_t **out);

/*
 * mp_process_start: fork a child that runs the target, then flushes every
 * stdio output stream and ends with _exit(return value & 0xff). Before it
 * forks, the caller's stdio output streams are flushed (as Python does),
 * so text printed without a newline is not printed again by the child.
 * The call returns once the child has finished its set-up, so a failure
 * there is reported here and leaves no child behind. A target should
 * return rather than call exit(): exit() would also run the atexit
 * handlers the child inherited from its parent (Python's child never
 * does); _exit() is fine.
 * Returns 0, or:
 *   -EALREADY  the handle was already started (Python: "cannot start a
 *              process twice");
 *   -ECHILD    the handle was created by another process;
 *   -EPERM     the caller is a daemon child (Python: "daemonic processes
 *              are not allowed to have children");
 *   -EAGAIN, -ENOMEM, -EMFILE, -ENFILE  from fork() or pipe2();
 *   -errno     the child could not replace its stdin with /dev/null.
 * Blocking: until the child is set up (one pipe round trip).
 * Threads: safe; the fork runs under the library's lock. Fork: usable
 * (a child may start children unless it is a daemon).
 */
MP_API int mp_process_start(mp_process_t *p);

/*
 * mp_process_join: wait until the child ends and reap it (no zombie is
 * left), at most timeout_ms (MP_FOREVER waits without limit). After a
 * return of 0, mp_process_exitcode gives the exit code; joining again
 * returns 0 at once.
 * Returns 0, or:
 *   -ETIMEDOUT  the child still runs after timeout_ms (> 0);
 *   -EAGAIN     the child still runs and timeout_ms is MP_NOWAIT;
 *   -ESRCH      the handle was never started (Python: "can only join a
 *               started process");
 *   -ECHILD     the handle is not a child of the caller, or its exit
 *               status was taken by someone else's waitpid (SIGCHLD set
 *               to SIG_IGN, a waitpid(-1) elsewhere).
 * Blocking: up to timeout_ms; EINTR is retried.
 * Threads: one handle is joined by one thread at a time. Fork: see above.
 */
MP_API int mp_process_join(mp_process_t *p, int64_t timeout_ms);

/*
 * mp_process_is_alive: whether the child has been started and has not
 * ended. A child found ended is reaped. The current process is alive; a
 * handle never started, or not a child of the caller, is not.
 * This function cannot fail.
 * Threads: as mp_process_join. Fork: see above.
 */
MP_API bool mp_process_is_alive(mp_process_t *p);

/*
 * mp_process_exitcode: the child's exit code, Python's Process.exitcode:
 * the target's return value (0..255), or -N when signal N ended it (-9
 * after mp_process_kill, -15 after mp_process_terminate). A child found
 * ended is reaped; the call never blocks.
 * Returns 0 and stores the code in *code, or (Python's None):
 *   -ESRCH   the handle was never started;
 *   -EAGAIN  the child is still running (also for mp_current_process());
 *   -ECHILD  as mp_process_join.
 * On failure *code is untouched.
 * Threads: as mp_process_join. Fork: see above.
 */
MP_API int mp_process_exitcode(mp_process_t *p, int *code);

/*
 * mp_process_terminate, mp_process_kill: send SIGTERM, or SIGKILL, to the
 * child. Nothing is sent once the child has been reaped, and a child that
 * has ended but is not yet reaped is not affected; both are success.
 * Neither call waits: join afterwards.
 * Returns 0, -ESRCH when the handle was never started, or -ECHILD when it
 * is not a child of the caller.
 * Threads: safe. Fork: see above.
 */
MP_API int mp_process_terminate(mp_process_t *p);
MP_API int mp_process_kill(mp_process_t *p);

/*
 * mp_process_pid: the child's process id, 0 before the start. For
 * mp_current_process() it is getpid(). This function cannot fail.
 * Threads: safe. Fork: usable.
 */
MP_API pid_t mp_process_pid(const mp_process_t *p);

/*
 * mp_process_name: the handle's name ("MainProcess", "Process-1", or the
 * name given in the options). The string belongs to the handle and lives
 * until mp_process_free. This function cannot fail.
 * Threads: safe. Fork: usable.
 */
MP_API const char *mp_process_name(const mp_process_t *p);

/*
 * mp_process_is_daemon: whether the handle was created with opts.daemon.
 * This function cannot fail.
 * Threads: safe. Fork: usable.
 */
MP_API bool mp_process_is_daemon(const mp_process_t *p);

/*
 * mp_process_free: release the handle, as Python's Process.close(). A
 * child that has ended is reaped first, so nothing is left in the process
 * table; the descriptor that watches the child is closed. NULL does
 * nothing and returns 0.
 * Returns 0, or -EBUSY while the child is still running (join, terminate
 * or kill it first), and for mp_current_process(): then the handle stays
 * valid and nothing changes. This is the one destroyer that can fail,
 * because freeing a running child would either leave a zombie or kill it
 * behind the caller's back.
 * Threads: as mp_process_join. Fork: a handle inherited from the parent is
 * released without touching the parent's child.
 */
MP_API int mp_process_free(mp_process_t *p);

/*
 * mp_current_process: the handle of the calling process: a static
 * "MainProcess" handle in a program's first process, and in a child the
 * child's own copy of the handle its parent started. Never NULL; it must
 * not be freed (mp_process_free returns -EBUSY). This function cannot
 * fail.
 * Threads: safe. Fork: a child started by mp_process_start sees itself.
 */
MP_API mp_process_t *mp_current_process(void);

/*
 * mp_parent_pid: the pid of the process that started the calling process
 * with mp_process_start, or 0 in the main process (Python's
 * parent_process() is None there). This function cannot fail.
 * Threads: safe. Fork: usable.
 */
MP_API pid_t mp_parent_pid(void);

/*
 * mp_active_children: Python's active_children(). Reaps the caller's
 * children that have ended, then stores up to cap handles of the children
 * still running in out (out may be NULL when cap is 0), in start order.
 * Returns how many children are running, which may exceed cap. The handles
 * are borrowed. This function cannot fail.
 * Threads: safe; a handle stored in out may be freed by another thread
 * once the child ends. Fork: a new child has no children.
 */
MP_API size_t mp_active_children(mp_process_t **out, size_t cap);

/*
 * mp_cpu_count: the number of CPUs online, as Python's cpu_count()
 * (sysconf(_SC_NPROCESSORS_ONLN); the affinity mask is not consulted).
 * Returns a count >= 1, or -ENOSYS when the system does not say.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_cpu_count(void);

#ifdef __cplusplus
}
#endif
#endif
