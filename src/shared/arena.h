/* SPDX-License-Identifier: MIT */
/* shared/arena.h: the shared arena that fork children inherit (internal). */
#ifndef MP_SHARED_ARENA_H
#define MP_SHARED_ARENA_H

#include "core/internal.h"

/*
 * The arena is one MAP_SHARED anonymous mapping, reserved once per process
 * family (1 GiB of address space, pages committed when first touched) and
 * inherited by every child forked after it exists: memory allocated from it
 * before mp_process_start is shared with the child at the same address.
 * Small blocks share pages (64-byte granularity), so a Lock costs 64 bytes,
 * not a 4 KiB mapping.
 *
 * mp__arena_alloc: size bytes, zeroed, aligned to 64 bytes (a cache line,
 * so two objects never share one). Returns 0, -ENOMEM (arena full or the
 * reservation failed), -EINVAL for size 0.
 * mp__arena_free: return a block (NULL ignored). Any process of the family
 * may free a block; freeing one still in use elsewhere is the caller's bug.
 * mp__arena_contains: whether p points into the arena.
 *
 * Threads: safe (a process-shared robust mutex guards the allocator; a
 * holder that dies leaves it consistent). Fork: usable in children.
 */
int mp__arena_alloc(size_t size, void **out);
void mp__arena_free(void *p);
bool mp__arena_contains(const void *p);

/*
 * Named blocks for objects that unrelated processes open by name (a named
 * Lock, Event, ...). mp__named_open maps the POSIX shared memory object
 * "/mproc.<kind>.<name>" of size bytes. With create it is created (with excl,
 * -EEXIST if it already exists) and init(mem, arg) runs once, before any
 * other process can see the block as ready; openers wait (up to a bounded
 * time, then -ETIMEDOUT) for that. Returns 0, -EINVAL (bad name: empty, '/',
 * longer than 200 bytes), -ENOENT (absent and not create), -EEXIST,
 * -EPROTO (exists with another kind or size), -errno from shm_open/mmap.
 * mp__named_close unmaps; mp__named_unlink removes the name (only the
 * creator should).
 */
struct mp__named {
	void *mem;          /* the object's state, after the block header */
	size_t map_size;
	void *map;
	bool created;
	char path[224];     /* "/mproc.<kind>.<name>" */
};

int mp__named_open(const char *kind, const char *name, size_t size,
    bool create, bool excl, void (*init)(void *mem, void *arg), void *arg,
    struct mp__named *out);
void mp__named_close(struct mp__named *n);
int mp__named_unlink(struct mp__named *n);

/*
 * mp__named_read_creator: from the open block file fd, the pid and start
 * time (mp__proc_start_time) of the process that created the named block;
 * false when fd is not a ready named block. For mpshm's listing.
 */
bool mp__named_read_creator(int fd, pid_t *creator, uint64_t *start);

/*
 * mp__proc_start_time: pid's start time in clock ticks after boot (from
 * /proc), 0 when it does not run or is a zombie. A recorded (pid, start)
 * pair tells a live creator from a dead one whose pid was reused.
 */
uint64_t mp__proc_start_time(pid_t pid);

#endif
