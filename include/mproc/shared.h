/* SPDX-License-Identifier: MIT */
/* mproc/shared.h: shared Value, Array, raw blocks and named SharedMemory blocks. */
#ifndef MPROC_SHARED_H
#define MPROC_SHARED_H

#include <mproc/common.h>
#include <mproc/sync.h>

#ifdef __cplusplus
extern "C" {
#endif

struct mp_obj;

/* ---- Raw shared blocks --------------------------------------------------- */

/*
 * mp_shared_alloc: size bytes of memory shared with every child forked
 * after the call (at the same address), zeroed and aligned to 64 bytes (a
 * cache line, so two blocks never share one). This is the memory Value and
 * Array live in; use it for your own structs (fixed-width fields and
 * pshared objects, no pointers to private memory). Returns 0 and stores
 * the block in *out, -EINVAL for size 0, or -ENOMEM (the family's 1 GiB
 * arena is full). On failure *out is untouched.
 * mp_shared_free: return a block; NULL does nothing. Any process of the
 * family may free a block, once, when no process uses it any more.
 * Threads: safe. Fork: usable in children; a block is shared only with
 * children forked after it was allocated.
 */
MP_API int mp_shared_alloc(size_t size, void **out);
MP_API void mp_shared_free(void *p);

/* ---- Value and Array ----------------------------------------------------- */

/*
 * Typecodes, as Python's array module and sharedctypes: 'c' char (stored
 * as an unsigned byte 0..255, Python's c_char), 'b' signed char, 'B'
 * unsigned char, 'h' short, 'H' unsigned short, 'i' int, 'I' unsigned int,
 * 'l' long, 'L' unsigned long, 'q' long long, 'Q' unsigned long long, 'f'
 * float, 'd' double. Any other code (Python's 'u' included) is -EINVAL.
 */

/* How a Value or Array is guarded. */
enum mp_lock_mode {
	MP_LOCK_OWN = 0,  /* a new RLock of its own: Python's lock=True */
	MP_LOCK_NONE = 1, /* no lock: Python's RawValue, RawArray, lock=False */
	MP_LOCK_GIVEN = 2 /* the caller's lock (opts.lock): Python's lock=l */
};

/*
 * Options of mp_value_new and mp_array_new; NULL means MP_LOCK_OWN. With
 * MP_LOCK_GIVEN, lock is borrowed: it must outlive the object and is not
 * freed with it. Several objects may share one lock.
 */
struct mp_value_opts {
	int lock_mode;    /* enum mp_lock_mode */
	mp_lock_t *lock;  /* MP_LOCK_GIVEN only */
};

/*
 * mp_value_t is one number in shared memory, Python's
 * multiprocessing.Value: the handle itself lives in the shared arena, so a
 * child forked after mp_value_new uses the same pointer and sees the same
 * number. The typed accessors take the object's lock around each access
 * (Python's .value property), so with the default recursive lock they
 * also work while the caller holds the lock (the lecture's
 * `with n.get_lock(): n.value += 1`). With a given non-recursive Lock that
 * the caller already holds they return -EDEADLK (Python deadlocks): use
 * mp_value_ptr under the lock instead.
 *
 * Integer accessors are stricter than ctypes, which wraps silently: a
 * value that does not fit the typecode is refused with -ERANGE and the
 * stored value is left unchanged.
 *
 * When the lock reports that its previous holder died holding it
 * (-EOWNERDEAD), an accessor marks the lock consistent, releases it and
 * returns -EOWNERDEAD without doing the access: the caller learns of the
 * death once, and the next call works. mp_value_lock hands -EOWNERDEAD on
 * to the caller with the lock held, as mp_lock_acquire does.
 *
 * Threads: safe (the lock is process-shared and works between threads as
 * well). Fork: usable in children forked after the value was created.
 */
typedef struct mp_value mp_value_t;

/*
 * mp_value_new: a shared number of the given typecode, set to *init (a
 * value of the typecode's C type: double for 'd', int for 'i', ...), or to
 * zero when init is NULL. opts may be NULL (an RLock of its own).
 * Returns 0 and stores the handle in *out, or:
 *   -EINVAL  unknown typecode, out NULL, bad lock_mode, or MP_LOCK_GIVEN
 *            without a lock;
 *   -ENOMEM  the arena is full (or the lock could not be made).
 * On failure *out is untouched. Released with mp_value_free.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_value_new(char typecode, const void *init,
    const struct mp_value_opts *opts, mp_value_t **out);

/*
 * mp_value_free: release the value and the lock it owns (a given lock is
 * left alone). NULL does nothing. Call it once in the whole family, when no
 * process uses the value any more (typically the creator, after joining
 * its children); children need not free what they inherited.
 * Threads: not with concurrent users of the value. Fork: see above.
 */
MP_API void mp_value_free(mp_value_t *v);

/*
 * mp_value_get_lock: the value's lock (Python's get_lock()), NULL for a
 * value made with MP_LOCK_NONE. The lock is borrowed from the value.
 * This function cannot fail.
 * mp_value_lock, mp_value_unlock: acquire and release that lock (see
 * mp_lock_acquire for timeout_ms and the errors: -EAGAIN, -ETIMEDOUT,
 * -EOWNERDEAD with the lock held). Both return -EINVAL for a value without
 * a lock.
 * Threads: safe. Fork: usable.
 */
MP_API mp_lock_t *mp_value_get_lock(const mp_value_t *v);
MP_API int mp_value_lock(mp_value_t *v, int64_t timeout_ms);
MP_API int mp_value_unlock(mp_value_t *v);

/*
 * mp_value_get_long, mp_value_set_long: read or write an integer typecode
 * as int64_t. get fails with -EINVAL for 'f' and 'd', and with -ERANGE for
 * a 'Q' (or 'L') value above INT64_MAX; set accepts 'f' and 'd' too
 * (Python's v.value = 1 on a double) and fails with -ERANGE when x does not
 * fit the typecode ('B' takes 0..255, 'h' -32768..32767, ...).
 * mp_value_get_ulong, mp_value_set_ulong: the same as uint64_t (-ERANGE
 * for a negative stored value, or an x too large).
 * mp_value_get_double: any typecode, converted to double.
 * mp_value_set_double: 'f' and 'd' only (-EINVAL otherwise, as Python's
 * TypeError); -ERANGE when a finite x is beyond float's range for 'f'.
 * mp_value_add_long: v += x under the lock, the lecture's loop body; for
 * 'f'/'d' x is converted to double. -ERANGE when the sum does not fit
 * (the value is unchanged).
 * mp_value_add_double: v += x for 'f' and 'd' (-EINVAL otherwise).
 * All return 0, or the errors above, -EOWNERDEAD (see mp_value_t), or an
 * error of mp_lock_acquire (-EDEADLK: a given Lock the caller holds).
 * On failure out-parameters are untouched.
 * Blocking: while another process holds the lock.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_value_get_long(mp_value_t *v, int64_t *out);
MP_API int mp_value_set_long(mp_value_t *v, int64_t x);
MP_API int mp_value_get_ulong(mp_value_t *v, uint64_t *out);
MP_API int mp_value_set_ulong(mp_value_t *v, uint64_t x);
MP_API int mp_value_get_double(mp_value_t *v, double *out);
MP_API int mp_value_set_double(mp_value_t *v, double x);
MP_API int mp_value_add_long(mp_value_t *v, int64_t x);
MP_API int mp_value_add_double(mp_value_t *v, double x);

/*
 * mp_value_get_obj: the value as Python's v.value gives it: an int for
 * integer typecodes, a float for 'f' and 'd', a one-byte bytes for 'c'
 * (read under the lock). Returns 0 and a new reference in *out,
 * -EOWNERDEAD, -ENOMEM.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_value_get_obj(mp_value_t *v, struct mp_obj **out);

/*
 * mp_value_ptr: the number itself, for code that already holds the lock
 * (or a value without one): cast to the typecode's C type. Never NULL.
 * mp_value_typecode: the typecode. mp_value_size: the size of the C type
 * in bytes (8 for 'd'). These functions cannot fail.
 * Threads: the pointer is unguarded. Fork: the same address in children.
 */
MP_API void *mp_value_ptr(mp_value_t *v);
MP_API char mp_value_typecode(const mp_value_t *v);
MP_API size_t mp_value_size(const mp_value_t *v);

/*
 * mp_array_t is a fixed-length array of numbers in shared memory, Python's
 * multiprocessing.Array: same typecodes, locking, range checks, fork rules
 * and -EOWNERDEAD handling as mp_value_t. An index at or beyond the length
 * is a bad argument: -EINVAL (Python's IndexError); negative indexes do
 * not exist (size_t).
 * Threads: safe. Fork: usable in children forked after the array was
 * created.
 */
typedef struct mp_array mp_array_t;

/*
 * mp_array_new: len numbers of the typecode, copied from init (len values
 * of the C type) or zero when init is NULL. len may be 0. opts as for
 * mp_value_new. Returns 0 and stores the handle in *out, -EINVAL (as
 * mp_value_new), -ENOMEM. On failure *out is untouched. Released with
 * mp_array_free, under the same rules as mp_value_free.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_array_new(char typecode, size_t len, const void *init,
    const struct mp_value_opts *opts, mp_array_t **out);
MP_API void mp_array_free(mp_array_t *a);

/* As the mp_value_ functions of the same names. */
MP_API mp_lock_t *mp_array_get_lock(const mp_array_t *a);
MP_API int mp_array_lock(mp_array_t *a, int64_t timeout_ms);
MP_API int mp_array_unlock(mp_array_t *a);

/*
 * Element i, as mp_value_get_long ... mp_value_add_double; -EINVAL for
 * i >= len.
 */
MP_API int mp_array_get_long(mp_array_t *a, size_t i, int64_t *out);
MP_API int mp_array_set_long(mp_array_t *a, size_t i, int64_t x);
MP_API int mp_array_get_ulong(mp_array_t *a, size_t i, uint64_t *out);
MP_API int mp_array_set_ulong(mp_array_t *a, size_t i, uint64_t x);
MP_API int mp_array_get_double(mp_array_t *a, size_t i, double *out);
MP_API int mp_array_set_double(mp_array_t *a, size_t i, double x);
MP_API int mp_array_add_long(mp_array_t *a, size_t i, int64_t x);
MP_API int mp_array_add_double(mp_array_t *a, size_t i, double x);

/*
 * mp_array_read, mp_array_write: copy count elements starting at start
 * out of, or into, the array, under the lock in one go (Python's a[s:e]
 * and a[s:e] = ...). dst/src hold count values of the C type. Returns 0,
 * -EINVAL when start + count exceeds the length, -EOWNERDEAD, or an error
 * of mp_lock_acquire.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_array_read(mp_array_t *a, size_t start, size_t count,
    void *dst);
MP_API int mp_array_write(mp_array_t *a, size_t start, size_t count,
    const void *src);

/*
 * mp_array_get_obj: the whole array as Python's a[:] gives it: a list of
 * ints or floats, or bytes for 'c'. Returns 0 and a new reference in *out,
 * -EOWNERDEAD, -ENOMEM.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_array_get_obj(mp_array_t *a, struct mp_obj **out);

/*
 * mp_array_ptr: the first element, for code that holds the lock; never
 * NULL (a zero-length array still has an address). mp_array_len: the
 * number of elements. mp_array_typecode, mp_array_itemsize: as for Value.
 * These functions cannot fail.
 */
MP_API void *mp_array_ptr(mp_array_t *a);
MP_API size_t mp_array_len(const mp_array_t *a);
MP_API char mp_array_typecode(const mp_array_t *a);
MP_API size_t mp_array_itemsize(const mp_array_t *a);

/* ---- SharedMemory -------------------------------------------------------- */

/*
 * mp_shm_t is a named block of shared memory, Python's
 * multiprocessing.shared_memory.SharedMemory: unrelated processes open it
 * by name. The name NAME lives in /dev/shm as "mproc.shm.NAME". Unlike
 * Python's blocks, ours begin with a 64-byte header (hidden from the
 * buffer) that records the size and the creator's pid and start time, so
 * that mpshm(1) can tell the blocks of a dead creator from live ones; the
 * buffer is 64-byte aligned and exactly the size asked for.
 *
 * The creator alone unlinks (removes the name): an attacher's unlink is
 * refused with -EPERM, so an attacher that exits cannot destroy a block
 * others still use (Python's resource_tracker got this wrong for years).
 * A block whose creator died without unlinking stays until `mpshm clean`.
 *
 * Threads: a handle may be used by several threads; close it once. The
 * buffer is plain memory: synchronise its users yourself.
 * Fork: the mapping and the handle are inherited; a child is not the
 * creator (its unlink is -EPERM), and it may close its copy of the handle.
 */
typedef struct mp_shm mp_shm_t;

/*
 * mp_shm_open: open or create the block NAME. flags: MP_CREATE creates it
 * when the name is free (size bytes, zeroed, size > 0); with MP_EXCL an
 * existing name fails with -EEXIST (Python's create=True is
 * MP_CREATE | MP_EXCL). Without MP_CREATE the block must exist, and size
 * is 0 (any size) or at most the block's size; the same holds when
 * MP_CREATE finds the block existing. A NULL name with MP_CREATE
 * picks a fresh random name, as Python does ("psm_" and 8 hex digits).
 * Returns 0 and stores the handle in *out, or:
 *   -EINVAL   bad name (empty, containing '/', longer than 200 bytes), NULL
 *             name without MP_CREATE, size 0 on creation, size larger than
 *             the existing block, unknown flags;
 *   -ENOENT   no such block (without MP_CREATE);
 *   -EEXIST   the name is taken (MP_CREATE | MP_EXCL);
 *   -EPROTO   the name exists but is not a SharedMemory block;
 *   -ETIMEDOUT  the block is still not set up after 2 s (its creator is
 *             slow, or died while creating it);
 *   -ENOMEM, -EACCES, -EMFILE, -ENFILE, -ENOSPC and other -errno from
 *             shm_open, ftruncate and mmap.
 * On failure *out is untouched and nothing is left in /dev/shm.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_shm_open(const char *name, int flags, size_t size,
    mp_shm_t **out);

/*
 * mp_shm_buf: the block's memory (64-byte aligned). mp_shm_size: its size
 * in bytes. mp_shm_name: its name, without the "mproc.shm." prefix
 * (borrowed, valid until close). mp_shm_is_creator: whether this handle
 * created the block in the calling process. These functions cannot fail.
 * Threads: safe. Fork: usable.
 */
MP_API void *mp_shm_buf(const mp_shm_t *shm);
MP_API size_t mp_shm_size(const mp_shm_t *shm);
MP_API const char *mp_shm_name(const mp_shm_t *shm);
MP_API bool mp_shm_is_creator(const mp_shm_t *shm);

/*
 * mp_shm_unlink: remove the name, so that no one can open the block any
 * more; the memory lives on until the last process unmaps it (the caller's
 * mapping stays usable until mp_shm_close). Returns 0, -EPERM when the
 * handle did not create the block in the calling process (an attacher, or
 * a forked child of the creator), -ENOENT when the name is already gone.
 * Threads: safe. Fork: see mp_shm_t.
 */
MP_API int mp_shm_unlink(mp_shm_t *shm);

/*
 * mp_shm_close: unmap the block and release the handle (Python's close());
 * it does not unlink. NULL does nothing. This function cannot fail.
 * Threads: not with other users of the handle. Fork: usable.
 */
MP_API void mp_shm_close(mp_shm_t *shm);

/*
 * What mp_shm_list reports of one /dev/shm/mproc.* entry: named blocks of
 * every kind (SharedMemory "shm", and the named Lock, Event, ... blocks).
 */
struct mp_shm_info {
	char kind[16];      /* "shm", "lock", ...: the part after "mproc." */
	char name[208];     /* the part after "mproc.<kind>." */
	uint64_t size;      /* user bytes for "shm", file size otherwise */
	pid_t creator;      /* 0 when the file is not an mproc block */
	bool creator_alive; /* false also when the pid was reused since */
};

/*
 * mp_shm_list: every /dev/shm/mproc.* entry, in name order. Stores an
 * array the caller releases with mp_free in *out (NULL when empty) and its
 * length in *count. Returns 0, -ENOMEM, or -errno from reading /dev/shm.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_shm_list(struct mp_shm_info **out, size_t *count);

/*
 * mp_shm_remove: remove /dev/shm/mproc.<kind>.<name> whoever created it:
 * the administrator's way to reclaim blocks left behind (mpshm rm, clean).
 * Processes that have it mapped keep their memory. Returns 0, -EINVAL (bad
 * kind or name), -ENOENT, -EACCES.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_shm_remove(const char *kind, const char *name);

#ifdef __cplusplus
}
#endif
#endif
