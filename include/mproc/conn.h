/* SPDX-License-Identifier: MIT */
/* mproc/conn.h: framed connections, pipes, listeners and clients (multiprocessing.connection). */
#ifndef MPROC_CONN_H
#define MPROC_CONN_H

#include <mproc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * mp_conn_t is one end of a byte stream (a socket or a pipe) that carries
 * messages framed exactly as CPython's multiprocessing.connection frames
 * them: a 4-byte signed big-endian length, or -1 followed by an unsigned
 * 64-bit big-endian length for messages above 0x7FFFFFFF bytes, then the
 * payload. A C process and a CPython process can therefore share one.
 *
 * Messages are raw bytes (mp_conn_send_bytes) or pickled objects
 * (mp_conn_send, needs mproc/obj.h). Received data is buffered per
 * connection, so mp_conn_poll and mp_conn_wait also count messages already
 * read from the fd and not yet returned.
 *
 * Threads: one thread sending and one thread receiving at the same time is
 * safe; two senders or two receivers on one connection need a lock of the
 * caller's (not on a duplex mp_pipe's ends before mp_conn_fileno: they
 * lock for themselves). Closing races with everything.
 * Fork: usable in the child. Data buffered before the fork is in both
 * copies, so only one process should read from a given connection.
 */
typedef struct mp_conn mp_conn_t;

/*
 * mp_listener_t is a bound, listening socket (TCP or Unix) that hands out
 * authenticated mp_conn_t, like multiprocessing.connection.Listener.
 * Threads: safe; concurrent accepts get different connections; close must
 * not race with accept.
 * Fork: usable in the child; only the opening process unlinks a Unix path.
 */
typedef struct mp_listener mp_listener_t;

/* Default cap on one message received with mp_conn_recv: 256 MiB. */
#define MP_CONN_MAX_MESSAGE_DEFAULT ((size_t)256 << 20)

/*
 * Every handshake read is capped at this many bytes, as CPython's is.
 */
#define MP_CONN_HANDSHAKE_MAX 256

/*
 * A handshake given MP_FOREVER is bounded by this instead, so that a silent
 * or hostile peer cannot hold a listener forever (CPython has no bound).
 */
#define MP_CONN_HANDSHAKE_TIMEOUT_MS ((int64_t)10000)

/* ---- Connections --------------------------------------------------------- */

/*
 * mp_conn_open_fd: wrap an open fd (a stream socket or one end of a pipe)
 * as a connection. The fd is not modified: it stays blocking and keeps its
 * close-on-exec flag. Whether it can be read and written follows its open
 * mode (a pipe's read end only receives).
 * On success the fd belongs to the connection; on failure it is still yours.
 * Returns 0, -EBADF (fd is not open), -EINVAL (a datagram socket: frames
 * need a byte stream), -ENOMEM.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_conn_open_fd(int fd, mp_conn_t **out);

/*
 * mp_conn_close: close the fd and release the connection and its buffers.
 * A peer blocked in a receive then gets MP_EOF (once every process holding
 * a copy of the fd has closed it). NULL does nothing, so the idiom
 * "mp_conn_close(c); c = NULL;" makes repeated closes harmless; closing the
 * same non-NULL pointer twice is a use after free. This function cannot
 * fail.
 * Threads: must not race with any other call on c. Fork: a child's close
 * closes only the child's copy of the fd.
 */
MP_API void mp_conn_close(mp_conn_t *c);

/*
 * mp_conn_fileno: the connection's fd, for the caller's own poll loop. It
 * stays owned by the connection. Note that data may already be buffered in
 * the connection, so use mp_conn_poll (or mp_conn_wait) before blocking on
 * the fd. On an end of a duplex mp_pipe it also moves both directions of
 * the pipe from shared memory to the socket for good; messages sent before
 * stay in memory (received as usual, not seen on the fd). This function
 * cannot fail.
 */
MP_API int mp_conn_fileno(const mp_conn_t *c);

/* mp_conn_readable, mp_conn_writable: the directions c supports. */
MP_API bool mp_conn_readable(const mp_conn_t *c);
MP_API bool mp_conn_writable(const mp_conn_t *c);

/*
 * mp_conn_send_bytes: send len bytes of buf as one message (len 0 is a
 * legal empty message). The header and payload leave in one write (a
 * single buffer for small messages, two iovecs for large ones), so TCP's
 * Nagle algorithm never splits them. The buffer is only borrowed during the
 * call. Blocks until the whole message is written; there is no timeout, as
 * in CPython. Returns 0, or:
 *   -EPIPE       the peer has closed (no SIGPIPE is raised, also on pipes);
 *   -EBADF       c is a read-only end;
 *   -ECONNRESET  and other -errno from the write.
 * If an error strikes after part of a message was written, the stream is
 * no longer framed and the connection should be closed.
 * Threads: one sender at a time. Fork: usable.
 */
MP_API int mp_conn_send_bytes(mp_conn_t *c, const void *buf, size_t len);

/*
 * mp_conn_recv_bytes: receive one message into a new buffer (released with
 * mp_free; a zero-length message gives a non-NULL buffer and *len 0).
 * Waits at most timeout_ms (MP_NOWAIT, MP_FOREVER or milliseconds) for the
 * whole message. Returns 0, or:
 *   -EAGAIN        MP_NOWAIT and no complete message is available;
 *   -ETIMEDOUT     the timeout expired. Bytes of a message that arrived in
 *                  part stay in the connection, and the next receive
 *                  continues where this one stopped;
 *   -EMSGSIZE      the next message is longer than maxlen. Nothing is
 *                  consumed: the header stays in the stream, so a later
 *                  call with a larger maxlen can receive it, or the caller
 *                  closes the connection (CPython closes it);
 *   -EPROTO        a header with a negative length other than -1 (the
 *                  stream cannot be re-synchronised: close it), or a
 *                  message lost to -ENOMEM half-way through;
 *   MP_EOF         the peer closed at a message boundary (orderly end);
 *   MP_ETRUNCATED  the peer closed in the middle of a header or payload;
 *   -EBADF         c is a write-only end;
 *   -ENOMEM, -ECONNRESET and other -errno.
 * On failure *out and *len are untouched.
 * Threads: one receiver at a time. Fork: usable (see mp_conn_t).
 */
MP_API int mp_conn_recv_bytes(mp_conn_t *c, size_t maxlen, int64_t timeout_ms,
    void **out, size_t *len);

/*
 * mp_conn_recv_bytes_into: receive one message into the caller's buffer
 * buf of cap bytes; *len gets its length. Large payloads are read straight
 * into buf. A message longer than cap fails with -EMSGSIZE and stays in the
 * stream (unlike CPython's BufferTooShort, which consumes it). Other
 * returns as mp_conn_recv_bytes. When -ETIMEDOUT interrupts a large
 * message, the part already in buf is kept inside the connection and the
 * next receive of any kind continues it.
 */
MP_API int mp_conn_recv_bytes_into(mp_conn_t *c, void *buf, size_t cap,
    int64_t timeout_ms, size_t *len);

/*
 * mp_conn_set_max_message: the largest message mp_conn_recv accepts
 * (default MP_CONN_MAX_MESSAGE_DEFAULT); 0 restores the default. Also used
 * as the pickle decoder's limit for one str or bytes body. This function
 * cannot fail.
 */
MP_API void mp_conn_set_max_message(mp_conn_t *c, size_t max);
MP_API size_t mp_conn_max_message(const mp_conn_t *c);

/*
 * mp_conn_poll: whether a receive would return without blocking: 1 when a
 * complete message is buffered, the fd is readable, or the peer has
 * closed; 0 when nothing arrived within timeout_ms (MP_NOWAIT checks
 * without waiting). A readable fd may still hold only part of a message,
 * as in CPython. Returns 1, 0, -EBADF (write-only end), or -errno from
 * poll(2). Threads: one receiver at a time. Fork: usable.
 */
MP_API int mp_conn_poll(mp_conn_t *c, int64_t timeout_ms);

/*
 * mp_conn_wait: multiprocessing.connection.wait for n connections: waits
 * at most timeout_ms until at least one is ready in mp_conn_poll's sense,
 * then sets ready[i] for every ready conns[i] (and clears the others).
 * A connection with a complete message already buffered counts as ready at
 * once. Returns the number of ready connections (0 when the timeout
 * expired), -EINVAL (n == 0 with MP_FOREVER), -ENOMEM, -errno from poll(2).
 * Threads: one receiver per connection at a time. Fork: usable.
 */
MP_API int mp_conn_wait(mp_conn_t *const *conns, size_t n, int64_t timeout_ms,
    bool *ready);

/* ---- Pipes --------------------------------------------------------------- */

/*
 * mp_pipe: multiprocessing.Pipe(duplex). With duplex, a and b are the two
 * ends of an AF_UNIX stream socketpair and both send and receive; messages
 * up to 16 KiB travel in a ring in memory the two ends share (inherited
 * over fork), larger ones through the socket in order, and several
 * senders or receivers on one end are safe (see mp_conn_fileno for the
 * switch to the socket). Without,
 * a is the read end and b the write end of a pipe, in the order CPython's
 * Pipe(duplex=False) returns (r, w); the pipe buffer is raised to 1 MiB
 * where the system allows it. Both fds are close-on-exec: hand an end to a
 * child through mp_process_start, or fork. Returns 0, -EMFILE, -ENFILE,
 * -ENOMEM. On failure *a and *b are untouched.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_pipe(mp_conn_t **a, mp_conn_t **b, bool duplex);

/* ---- Object messages (pickles) ------------------------------------------- */

#if __has_include(<mproc/obj.h>)
#include <mproc/obj.h>

/*
 * mp_conn_send: pickle o (protocol 4, as CPython's ForkingPickler) and send
 * it as one message; the object is only borrowed. The pickle is encoded
 * into a buffer the connection reuses, so a send allocates nothing once
 * the buffer has grown. Returns 0, -EINVAL (o cannot be pickled), -ENOMEM,
 * -ENOSYS (library built without the pickle codec), or an error of
 * mp_conn_send_bytes.
 * Threads: one sender at a time. Fork: usable.
 */
MP_API int mp_conn_send(mp_conn_t *c, const mp_obj_t *o);

/*
 * mp_conn_recv: receive one message and unpickle it; *out gets a new
 * reference. Messages above mp_conn_max_message fail with -EMSGSIZE and
 * stay in the stream. The decoder allows no globals (data only). Returns 0,
 * the errors of mp_conn_recv_bytes, or MP_EPICKLE, MP_EFORBIDDEN, MP_ELIMIT
 * from mp_pickle_loads (the bad message is consumed, the stream stays
 * framed), -ENOMEM (also when decoding ran out of memory: the message
 * stays in the stream and the next receive gets it), -ENOSYS (no pickle
 * codec).
 * Threads: one receiver at a time. Fork: usable.
 */
MP_API int mp_conn_recv(mp_conn_t *c, int64_t timeout_ms, mp_obj_t **out);

/*
 * mp_conn_recv_opts: mp_conn_recv with the decoder's limits and whitelist
 * of globals taken from opts (see mp_pickle_loads), for peers that send
 * exceptions or manager Tokens. opts->max_len 0 means the connection's
 * max message size. Returns as mp_conn_recv.
 */
MP_API int mp_conn_recv_opts(mp_conn_t *c, int64_t timeout_ms,
    const struct mp_pickle_opts *opts, mp_obj_t **out);
#endif

/* ---- Authentication (CPython's HMAC challenge) --------------------------- */

/*
 * mp_conn_deliver_challenge: the challenging half of CPython's handshake
 * (connection.deliver_challenge). Sends "#CHALLENGE#{sha256}" + 40 random
 * bytes, reads the response (at most MP_CONN_HANDSHAKE_MAX bytes) and
 * accepts a raw 16-byte HMAC-MD5 (CPython 3.8 to 3.11) or "{name}" + HMAC
 * for name in md5, sha256, sha384, sha3_256, sha3_384 (3.12+), both over
 * the whole nonce, compared in constant time. Then sends "#WELCOME#", or
 * "#FAILURE#" and fails. key may be empty (keylen 0) but not NULL.
 * timeout_ms bounds the whole exchange; MP_FOREVER means
 * MP_CONN_HANDSHAKE_TIMEOUT_MS. Returns 0, or:
 *   MP_EAUTH     the response is wrong, malformed or oversized;
 *   -ETIMEDOUT   the peer did not answer in time;
 *   -EIO         no random bytes for the nonce (RAND_bytes failed);
 *   MP_EOF, MP_ETRUNCATED, -EPIPE, -ECONNRESET, -ENOMEM from the transport.
 * Threads: no other call on c meanwhile. Fork: usable.
 */
MP_API int mp_conn_deliver_challenge(mp_conn_t *c, const void *key,
    size_t keylen, int64_t timeout_ms);

/*
 * mp_conn_answer_challenge: the answering half (connection.
 * answer_challenge). Reads "#CHALLENGE#" + payload p (at most
 * MP_CONN_HANDSHAKE_MAX bytes). p of exactly 20 bytes is answered with raw
 * HMAC-MD5 (what 3.8 to 3.11 send and what every version accepts); a p
 * starting "{name}" with an allowed name is answered "{name}" + HMAC-name
 * over all of p (3.12+). Anything else (shorter than 20, or longer without
 * a valid prefix) is refused as 3.12+ refuses it: no version sends it, and
 * answering MD5 would let a rogue server downgrade the digest. Then
 * requires "#WELCOME#". Timeout as mp_conn_deliver_challenge. Returns 0,
 * or:
 *   MP_EAUTH     the peer sent "#FAILURE#" (wrong key) or anything but
 *                "#WELCOME#", or a malformed or oversized challenge;
 *   -ETIMEDOUT, MP_EOF, MP_ETRUNCATED, -EPIPE, -ECONNRESET, -ENOMEM.
 * Threads: no other call on c meanwhile. Fork: usable.
 */
MP_API int mp_conn_answer_challenge(mp_conn_t *c, const void *key,
    size_t keylen, int64_t timeout_ms);

/* ---- Listener and Client ------------------------------------------------- */

/*
 * Addresses are strings:
 *   "host:port"     IPv4 address or host name ("127.0.0.1:0",
 *                   "localhost:5000"); names resolve to IPv4 only, as
 *                   CPython's ('host', port) does;
 *                   an empty host (":5000") listens on every IPv4 interface;
 *   "[v6addr]:port" IPv6 ("[::1]:0");
 *   "/path", "unix:path"  a Unix stream socket.
 * Port 0 asks for an ephemeral port; mp_listener_address tells which.
 */

/*
 * mp_listener_open: multiprocessing.connection.Listener(address, authkey).
 * Binds (SO_REUSEADDR on TCP) and listens with a backlog of 128. With a
 * non-NULL authkey (keylen may be 0), every accepted connection runs the
 * handshake; authkey NULL accepts without one. (CPython 3.13 also
 * authenticates with an empty key; 3.8 to 3.12 skip the handshake for
 * authkey=b'', so talk to those with NULL.) The key is copied. A Unix
 * socket path must not exist yet. Returns 0, or:
 *   -EINVAL        an address that does not parse (also a port > 65535);
 *   -EADDRINUSE, -EACCES, -ENAMETOOLONG (Unix path too long) and other
 *                  -errno from socket/bind/listen;
 *   -EHOSTUNREACH  a host name that does not resolve;
 *   -ENOMEM.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_listener_open(const char *address, const void *authkey,
    size_t keylen, mp_listener_t **out);

/*
 * mp_listener_accept: wait at most timeout_ms for a connection, accept it
 * (close-on-exec, TCP_NODELAY on TCP) and, when the listener has a key,
 * authenticate it as CPython's Listener.accept does: deliver the challenge,
 * then answer the client's. The handshake has its own bound of
 * MP_CONN_HANDSHAKE_TIMEOUT_MS, so a client that connects and stays silent
 * costs the caller at most that. Returns 0 and a connection in *out, or:
 *   -EAGAIN (MP_NOWAIT) / -ETIMEDOUT  no connection arrived;
 *   MP_EAUTH and the other errors of the handshake halves; the failed
 *            connection is closed and the listener stays usable;
 *   -EMFILE, -ENOMEM and other -errno from accept4.
 * Threads: safe (concurrent accepts each get a different connection).
 * Fork: usable.
 */
MP_API int mp_listener_accept(mp_listener_t *l, int64_t timeout_ms,
    mp_conn_t **out);

/*
 * mp_listener_address: the bound address in the form mp_client_connect
 * takes ("127.0.0.1:41234", "[::1]:41234", "/tmp/x.sock"), with the real
 * port when 0 was asked. The string belongs to the listener. This function
 * cannot fail.
 */
MP_API const char *mp_listener_address(const mp_listener_t *l);

/*
 * mp_listener_fileno: the listening fd, non-blocking and close-on-exec;
 * it is readable when a connection waits to be accepted.
 */
MP_API int mp_listener_fileno(const mp_listener_t *l);

/*
 * mp_listener_close: close the socket and, for a Unix socket, unlink its
 * path (only in the process that opened it, so a forked child's close
 * leaves the parent's socket alone). NULL does nothing; the pointer is
 * invalid afterwards. This function cannot fail.
 * Threads: must not race with accept. Fork: see above.
 */
MP_API void mp_listener_close(mp_listener_t *l);

/*
 * mp_client_connect: multiprocessing.connection.Client(address, authkey).
 * Connects (TCP_NODELAY on TCP, close-on-exec) and, with a non-NULL
 * authkey, authenticates as CPython's Client does: answer the server's
 * challenge, then deliver one. timeout_ms bounds the whole call; with
 * MP_FOREVER the connect waits as long as the system does and the
 * handshake is bounded by MP_CONN_HANDSHAKE_TIMEOUT_MS. Returns 0 and a
 * connection in *out, or:
 *   -EINVAL, -EHOSTUNREACH  bad or unresolvable address;
 *   -ECONNREFUSED, -ENOENT (no such Unix socket), -ETIMEDOUT and other
 *                  -errno from connect;
 *   MP_EAUTH and the other errors of the handshake halves;
 *   -ENOMEM.
 * Threads: safe. Fork: usable.
 */
MP_API int mp_client_connect(const char *address, const void *authkey,
    size_t keylen, int64_t timeout_ms, mp_conn_t **out);

#ifdef __cplusplus
}
#endif
#endif
