/* SPDX-License-Identifier: MIT */
/* process/process_int.h: the process handle and the per-process table. */
#ifndef MP_PROCESS_INT_H
#define MP_PROCESS_INT_H

#include <mproc/process.h>

#include "core/internal.h"

#include <pthread.h>

enum mp__proc_state {
	MP__PROC_NEW,     /* created, not started */
	MP__PROC_RUNNING, /* started, not yet reaped */
	MP__PROC_DONE,    /* reaped; exitcode is valid */
	MP__PROC_LOST,    /* its status was taken by someone else's wait */
};

struct mp_process {
	/* Links in mp__procs.head while listed (started, not freed). */
	struct mp_process *prev;
	struct mp_process *next;
	mp_target_fn fn;
	void *arg;
	/*
	 * The pid of the process that created the handle: only it may start,
	 * signal or reap the child (Python's _parent_pid). 0 for the main
	 * process's own handle, which nobody owns.
	 */
	pid_t creator;
	pid_t pid;
	/* Becomes readable when the child ends; -1 on the fallback. */
	int pidfd;
	enum mp__proc_state state;
	int exitcode;
	bool daemon;
	bool keep_stdin;
	bool listed;
	/*
	 * Python's _identity as text: "1", "1:2". Children of this process
	 * are numbered under it. Empty for the main process.
	 */
	const char *identity;
	const char *name;
	/* identity and name live here, after the struct: one allocation. */
	char strings[];
};

/*
 * The state of the library's process layer in this process. A child
 * started by mp_process_start resets it (mp__procs_reset_in_child), since
 * none of its parent's children are its own.
 */
struct mp__procs {
	/* Guards every field below and the state/pid/exitcode of handles. */
	pthread_mutex_t lock;
	/* Started handles not yet freed, in start order. */
	struct mp_process *head;
	struct mp_process *tail;
	/* The calling process's own handle. */
	struct mp_process *current;
	/* Python's _process_counter: the number of the next handle. */
	unsigned long counter;
	/* Set once the exit function has run, so it runs only once. */
	bool exiting;
};

extern struct mp__procs mp__procs;

void mp__procs_lock(void);
void mp__procs_unlock(void);
/* Append p to the table; the caller holds the lock. */
void mp__procs_add(struct mp_process *p);
/* Remove p from the table if it is there; the caller holds the lock. */
void mp__procs_remove(struct mp_process *p);

/*
 * Called in a new child with the lock still held by the parent's thread
 * that forked: makes p the current process, empties the table and closes
 * the inherited pidfds. Only async-signal-safe calls.
 */
void mp__procs_reset_in_child(struct mp_process *p);

/*
 * mp__proc_poll_locked: reap p if it has ended. Returns 0 once reaped
 * (now or before), -EAGAIN while it runs, or -ECHILD. The caller holds
 * the lock and has checked that p is its running or finished child.
 */
int mp__proc_poll_locked(struct mp_process *p);

/*
 * mp__proc_exit_function: Python's util._exit_function: send SIGTERM to
 * the caller's daemon children, then join every child. Runs at most once
 * per process (atexit in every process, and after the target in a child).
 */
void mp__proc_exit_function(void);

/*
 * mp__proc_inject_start_error: make the next children's set-up fail with
 * err (a negative errno) instead of running, so tests can follow a start
 * failure over the pipe; 0 turns it off. Returns the previous value.
 */
MP_API int mp__proc_inject_start_error(int err);

#endif
