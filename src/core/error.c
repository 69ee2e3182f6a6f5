/* SPDX-License-Identifier: MIT */
/* core/error.c: the error table behind mp_strerror and mp_err_name. */
#include "core/internal.h"

#include <string.h>
#include <unistd.h>

struct errno_entry {
	int code;
	const char *name;
	const char *msg;
};

/*
 * The errno values the library returns. strerror() is not used: its buffer
 * is not thread-safe and its text depends on the locale.
 */
#define MP__ERRNO_MAP(X) \
	X(EPERM, "operation not permitted") \
	X(ENOENT, "no such file or directory") \
	X(ESRCH, "no such process") \
	X(EINTR, "interrupted system call") \
	X(EIO, "input/output error") \
	X(EBADF, "bad file descriptor") \
	X(ECHILD, "no child processes") \
	X(EAGAIN, "resource temporarily unavailable") \
	X(ENOMEM, "out of memory") \
	X(EACCES, "permission denied") \
	X(EFAULT, "bad address") \
	X(EBUSY, "device or resource busy") \
	X(EEXIST, "file exists") \
	X(EINVAL, "invalid argument") \
	X(ENFILE, "too many open files in system") \
	X(EMFILE, "too many open files") \
	X(ENOSPC, "no space left on device") \
	X(EPIPE, "broken pipe") \
	X(ERANGE, "result out of range") \
	X(EDEADLK, "resource deadlock avoided") \
	X(ENAMETOOLONG, "file name too long") \
	X(ENOSYS, "function not implemented") \
	X(ENOTSUP, "operation not supported") \
	X(EPROTO, "protocol error") \
	X(EBADMSG, "bad message") \
	X(EOVERFLOW, "value too large for defined data type") \
	X(EMSGSIZE, "message too long") \
	X(ENOTSOCK, "socket operation on non-socket") \
	X(EAFNOSUPPORT, "address family not supported") \
	X(EADDRINUSE, "address already in use") \
	X(EADDRNOTAVAIL, "cannot assign requested address") \
	X(ENETUNREACH, "network is unreachable") \
	X(ECONNABORTED, "connection aborted") \
	X(ECONNRESET, "connection reset by peer") \
	X(ENOBUFS, "no buffer space available") \
	X(EISCONN, "socket is already connected") \
	X(ENOTCONN, "socket is not connected") \
	X(ETIMEDOUT, "timed out") \
	X(ECONNREFUSED, "connection refused") \
	X(EHOSTUNREACH, "no route to host") \
	X(EALREADY, "operation already in progress") \
	X(EINPROGRESS, "operation in progress") \
	X(ECANCELED, "operation canceled") \
	X(EOWNERDEAD, "previous owner died") \
	X(ENOTRECOVERABLE, "state not recoverable")

static const struct errno_entry errno_table[] = {
#define MP__ERRNO_ENTRY(e, msg) { e, #e, msg },
	MP__ERRNO_MAP(MP__ERRNO_ENTRY)
#undef MP__ERRNO_ENTRY
#define MP__OWN_ENTRY(name, value, msg) { -(value), #name, msg },
	MP_ERRORS(MP__OWN_ENTRY)
#undef MP__OWN_ENTRY
};

static const struct errno_entry *
lookup(int err)
{
	if (err >= 0) {
		return NULL;
	}
	for (size_t i = 0; i < MP__ARRAY_LEN(errno_table); i++) {
		if (errno_table[i].code == -err) {
			return &errno_table[i];
		}
	}
	return NULL;
}

const char *
mp_strerror(int err)
{
	if (err == 0) {
		return "success";
	}
	const struct errno_entry *e = lookup(err);
	return e != NULL ? e->msg : "unknown error";
}

const char *
mp_err_name(int err)
{
	if (err == 0) {
		return "OK";
	}
	const struct errno_entry *e = lookup(err);
	return e != NULL ? e->name : "UNKNOWN";
}

void
mp__panic(const char *file, int line, const char *what)
{
	/* Unbuffered and allocation-free: the process may be in a bad state. */
	char buf[512];
	int n = snprintf(buf, sizeof(buf), "mproc: %s:%d: assertion failed: %s\n",
	    file, line, what);
	if (n > 0) {
		size_t len = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
		ssize_t w = write(2, buf, len);
		(void)w;
	}
	abort();
}
