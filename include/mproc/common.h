/* SPDX-License-Identifier: MIT */
/* mproc/common.h: export macro, timeouts and the allocator shared by every layer. */
#ifndef MPROC_COMMON_H
#define MPROC_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MP_API __attribute__((visibility("default")))

/*
 * Timeouts are int64_t milliseconds. MP_NOWAIT fails at once with -EAGAIN
 * when the call would block; MP_FOREVER blocks until the call completes; any
 * other value is a relative timeout after which the call returns -ETIMEDOUT.
 */
#define MP_NOWAIT  ((int64_t)0)
#define MP_FOREVER ((int64_t)-1)

/*
 * Flags of the _open functions of named objects (a named Lock, Event,
 * SharedMemory block, Queue ...) that unrelated processes share by name.
 * MP_CREATE creates the object when the name is free; with MP_EXCL the call
 * fails with -EEXIST when it is taken. Without MP_CREATE the object must
 * exist (-ENOENT otherwise).
 */
#define MP_CREATE 0x1
#define MP_EXCL   0x2

/*
 * mp_malloc, mp_realloc, mp_free: the library's allocator. Every buffer the
 * library hands to the caller (a received message, an encoded pickle, a repr
 * string) is released with mp_free(). mp_free(NULL) does nothing.
 * Threads: safe. Fork: usable.
 */
MP_API void *mp_malloc(size_t size);
MP_API void *mp_realloc(void *ptr, size_t size);
MP_API void mp_free(void *ptr);

/*
 * mp_set_allocator: replace the allocator used by the whole library. Call it
 * before any other mproc call; memory allocated with the previous functions
 * must not be released with the new ones. Passing NULLs restores malloc,
 * realloc and free.
 * Threads: not safe (call it once, first). Fork: usable.
 */
MP_API void mp_set_allocator(void *(*malloc_fn)(size_t),
    void *(*realloc_fn)(void *, size_t), void (*free_fn)(void *));

#ifdef __cplusplus
}
#endif
#endif
