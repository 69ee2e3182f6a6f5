/* SPDX-License-Identifier: MIT */
/* conn/pipe.c: mp_pipe, multiprocessing.Pipe over a socketpair or a pipe. */
#include "conn/conn_internal.h"
#include "conn/pipe_ring.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * Kernel buffer sizes asked for. A 1 MiB message then passes in a few
 * large copies instead of many 200 KiB ones; the kernel caps the request
 * at net.core.wmem_max / rmem_max and fs.pipe-max-size, and smaller is
 * still correct, so failures are ignored.
 */
#define SOCK_BUF_SIZE (4 << 20)
#define PIPE_BUF_SIZE (1 << 20)

static void
grow_socket(int fd)
{
	int sz = SOCK_BUF_SIZE;
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
}

int
mp_pipe(mp_conn_t **a, mp_conn_t **b, bool duplex)
{
	MP_ASSERT(a != NULL && b != NULL);
	int fds[2];
	if (duplex) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
		    fds) != 0) {
			return -errno;
		}
		grow_socket(fds[0]);
		grow_socket(fds[1]);
	} else {
		if (pipe2(fds, O_CLOEXEC) != 0) {
			return -errno;
		}
		(void)fcntl(fds[1], F_SETPIPE_SZ, PIPE_BUF_SIZE);
	}
	mp_conn_t *ca;
	mp_conn_t *cb;
	struct mp__pring *ring = NULL;
	_Atomic uint32_t *refs = NULL;
	int rv = 0;
	if (duplex) {
		/* Messages travel in shared memory (pipe_ring.c). */
		rv = mp__pring_new(&ring, &refs);
		if (rv != 0) {
			goto out_close;
		}
	}
	rv = mp__conn_new(fds[0], true, duplex, duplex, &ca);
	if (rv != 0) {
		goto out_unmap;
	}
	rv = mp__conn_new(fds[1], duplex, true, duplex, &cb);
	if (rv != 0) {
		goto out_free_a;
	}
	ca->ring = ring;
	ca->ring_refs = refs;
	cb->ring = ring;
	cb->ring_refs = refs;
	cb->ring_end = 1;
	/*
	 * Both ends of a pipe belong to one process family, usually on
	 * separate CPUs: their receivers spin before sleeping (conn.c,
	 * recv_spin). Connections to a Listener do not: a server's many
	 * clients would spin against each other and against the server.
	 */
	ca->spin = duplex;
	cb->spin = duplex;
	*a = ca;
	*b = cb;
	return 0;
out_free_a:
	mp_conn_close(ca); /* closes fds[0] */
	fds[0] = -1;
out_unmap:
	if (ring != NULL) {
		mp__pring_free(ring, refs);
	}
out_close:
	if (fds[0] >= 0) {
		close(fds[0]);
	}
	close(fds[1]);
	return rv;
}
