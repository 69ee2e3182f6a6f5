/* SPDX-License-Identifier: MIT */
/* mproc/error.h: error codes and their names and messages. */
#ifndef MPROC_ERROR_H
#define MPROC_ERROR_H

#include <mproc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Every fallible mproc function returns 0 on success or a negative error:
 * either -errno (-EAGAIN, -ETIMEDOUT, -EPIPE, -EOWNERDEAD, -EMSGSIZE,
 * -EPROTO, -EINVAL, -ENOMEM, ...) or one of the library's own codes below,
 * which sit outside the errno range so the two never collide.
 *
 * MP_ERRORS is an X-macro: X(name, value, message).
 */
#define MP_ERRORS(X) \
	X(MP_EOF, -4095, "end of file") \
	X(MP_ECLOSED, -4094, "handle is closed") \
	X(MP_EREMOTEERR, -4093, "the remote side reported an error") \
	X(MP_EAUTH, -4092, "authentication failed") \
	X(MP_ETRUNCATED, -4091, "end of file in the middle of a message") \
	X(MP_EPICKLE, -4090, "malformed or unsupported pickle data") \
	X(MP_EFORBIDDEN, -4089, "pickle refused: global or opcode not allowed") \
	X(MP_ELIMIT, -4088, "pickle refused: depth, size or memo limit exceeded") \
	X(MP_ETYPE, -4087, "object has the wrong type") \
	X(MP_EBROKEN, -4086, "barrier is broken")

enum mp_error {
#define MP__ERROR_ENUM(name, value, msg) name = (value),
	MP_ERRORS(MP__ERROR_ENUM)
#undef MP__ERROR_ENUM
};

/*
 * mp_strerror: a message for an error returned by any mproc function
 * (negative), including -errno values. Returns a static string, never NULL;
 * unknown codes give "unknown error". This function cannot fail.
 * Threads: safe. Fork: usable.
 */
MP_API const char *mp_strerror(int err);

/*
 * mp_err_name: the symbolic name of an error, such as "MP_EOF" or
 * "ETIMEDOUT" (for -ETIMEDOUT); 0 gives "OK". Returns a static string, never
 * NULL; unknown codes give "UNKNOWN". This function cannot fail.
 * Threads: safe. Fork: usable.
 */
MP_API const char *mp_err_name(int err);

#ifdef __cplusplus
}
#endif
#endif
