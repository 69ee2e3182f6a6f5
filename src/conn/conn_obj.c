/* SPDX-License-Identifier: MIT */
/* conn/conn_obj.c: mp_conn_send and mp_conn_recv, objects as pickles in frames. */
#include "conn/conn_internal.h"

#if __has_include("obj/pickle_internal.h")
#include "obj/pickle_internal.h"
#define HAVE_PICKLE 1
#else
#define HAVE_PICKLE 0
#endif

int
mp_conn_send(mp_conn_t *c, const mp_obj_t *o)
{
	MP_ASSERT(c != NULL);
	if (!c->writable) {
		return -EBADF;
	}
#if HAVE_PICKLE
	/*
	 * The pickle is encoded right behind 4 reserved header bytes in a
	 * buffer the connection keeps, so a message is one write and, once
	 * the buffer has grown, no allocation.
	 */
	c->sbuf.len = 0;
	int rv = mp__buf_reserve(&c->sbuf, 4);
	if (rv != 0) {
		return rv;
	}
	c->sbuf.len = 4;
	rv = mp__pickle_encode(&c->sbuf, o);
	if (rv != 0) {
		return rv;
	}
	return mp__conn_send_sbuf(c);
#else
	(void)o;
	return -ENOSYS;
#endif
}

int
mp_conn_recv(mp_conn_t *c, int64_t timeout_ms, mp_obj_t **out)
{
	return mp_conn_recv_opts(c, timeout_ms, NULL, out);
}

int
mp_conn_recv_opts(mp_conn_t *c, int64_t timeout_ms,
    const struct mp_pickle_opts *opts, mp_obj_t **out)
{
	MP_ASSERT(c != NULL && out != NULL);
#if HAVE_PICKLE
	/* Decode in place from the receive buffer: small messages not copied. */
	const uint8_t *data;
	size_t len;
	bool owned;
	int rv = mp__conn_recv_view(c, c->max_message,
	    mp__deadline_from_timeout(timeout_ms), timeout_ms == 0, &data, &len,
	    &owned);
	if (rv != 0) {
		return rv;
	}
	struct mp_pickle_opts o = { 0 };
	if (opts != NULL) {
		o = *opts;
	}
	if (o.max_len == 0) {
		o.max_len = c->max_message;
	}
	rv = mp_pickle_loads(data, len, &o, out);
	if (rv == -ENOMEM) {
		/* Out of memory is no fault of the message: keep it for the
		 * next receive, as mp_conn_recv_bytes keeps its message. */
		mp__conn_unrecv(c, data, len, owned);
		return rv;
	}
	if (owned) {
		mp__free((void *)data);
	}
	return rv;
#else
	(void)timeout_ms;
	(void)opts;
	(void)out;
	return -ENOSYS;
#endif
}
