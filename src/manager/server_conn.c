/* SPDX-License-Identifier: MIT */
/* manager/server_conn.c: the server's connections: buffers, frames and the handshake state machine. */
#include "manager/server_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CHALLENGE "#CHALLENGE#"
#define WELCOME "#WELCOME#"
#define FAILURE "#FAILURE#"
#define CHALLENGE_LEN (sizeof(CHALLENGE) - 1)
#define WELCOME_LEN (sizeof(WELCOME) - 1)

/* Bytes read from one connection per readiness event, so that one busy
 * peer cannot starve the others. */
#define READ_BUDGET ((size_t)256 << 10)

/*
 * A connection with this much output not yet taken by its peer is not
 * served further until the peer reads: a client that sends requests and
 * never reads the replies must not grow our memory without bound.
 */
#define WBUF_HIGH ((size_t)1 << 20)

static void listener_watch(struct mp_manager_server *s, bool on);

static int
set_events(struct mp_manager_server *s, struct mp__mgr_conn *c,
    uint32_t events)
{
	if (c->events == events) {
		return 0;
	}
	struct epoll_event ev = { .events = events, .data.ptr = c };
	if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
		return -errno;
	}
	c->events = events;
	return 0;
}

/* What c waits for: input unless a request is parked, output when
 * something is queued. A parked connection still hears a hang-up. */
static bool
congested(const struct mp__mgr_conn *c)
{
	return c->wbuf.len - c->wpos >= WBUF_HIGH;
}

static int
update_events(struct mp_manager_server *s, struct mp__mgr_conn *c)
{
	uint32_t ev = EPOLLRDHUP;
	if (c->parked == NULL && c->state != MP__ST_CLOSING &&
	    !congested(c)) {
		ev |= EPOLLIN;
	}
	if (c->wbuf.len > c->wpos) {
		ev |= EPOLLOUT;
	}
	return set_events(s, c, ev);
}

static void
hs_unlink(struct mp_manager_server *s, struct mp__mgr_conn *c)
{
	if (!c->in_hs) {
		return;
	}
	if (c->hprev != NULL) {
		c->hprev->hnext = c->hnext;
	} else {
		s->hs_head = c->hnext;
	}
	if (c->hnext != NULL) {
		c->hnext->hprev = c->hprev;
	} else {
		s->hs_tail = c->hprev;
	}
	c->in_hs = false;
}

void
mp__mgr_conn_close(struct mp_manager_server *s, struct mp__mgr_conn *c,
    const char *why)
{
	if (why != NULL) {
		mp__mgr_log(s, MP_MANAGER_LOG_ERROR, "connection %llu (%s): %s",
		    (unsigned long long)c->id,
		    c->client != NULL ? c->client->key : "?", why);
	} else {
		mp__mgr_log(s, MP_MANAGER_LOG_INFO, "connection %llu closed",
		    (unsigned long long)c->id);
	}
	(void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->parked != NULL) {
		mp__mgr_call_cancel(s, c->parked);
		c->parked = NULL;
	}
	/* What it held (an RLock it owns) goes back to the others. */
	for (size_t i = 0; i < c->nheld; i++) {
		struct mp__mgr_obj *o = mp__u64map_get(&s->objs, c->held[i]);
		if (o != NULL && o->cls->conn_gone != NULL) {
			o->cls->conn_gone(o->impl, c->id);
			mp__mgr_obj_changed(s, o);
		}
	}
	mp__free(c->held);
	hs_unlink(s, c);
	if (c->client != NULL) {
		mp__mgr_client_detach(s, c->client);
	}
	if (c->prev != NULL) {
		c->prev->next = c->next;
	} else {
		s->conns = c->next;
	}
	if (c->next != NULL) {
		c->next->prev = c->prev;
	}
	s->nconns--;
	if (s->accept_paused) {
		listener_watch(s, true);
	}
	mp__buf_fini(&c->rbuf);
	mp__buf_fini(&c->wbuf);
	/*
	 * An event for c may still wait later in the batch epoll_wait
	 * returned (a reply to another connection can close this one), so
	 * the memory goes only after the batch.
	 */
	c->dead = true;
	c->next = s->dead;
	s->dead = c;
}

/*
 * Unlink dead connections from the resume list. The serve loop empties
 * that list before it reaps, but closing every connection (a server
 * reset or close) can wake a parked call of a connection closed next,
 * which leaves it queued there, dead.
 */
static void
drop_dead_resumes(struct mp_manager_server *s)
{
	struct mp__mgr_conn **link = &s->resume_head;
	s->resume_tail = NULL;
	while (*link != NULL) {
		struct mp__mgr_conn *c = *link;
		if (c->dead) {
			*link = c->rnext;
			c->rnext = NULL;
			c->in_resume = false;
		} else {
			s->resume_tail = c;
			link = &c->rnext;
		}
	}
}

void
mp__mgr_reap(struct mp_manager_server *s)
{
	if (s->dead != NULL && s->resume_head != NULL) {
		drop_dead_resumes(s);
	}
	while (s->dead != NULL) {
		struct mp__mgr_conn *c = s->dead;
		s->dead = c->next;
		mp__free(c);
	}
}

int
mp__mgr_conn_hold(struct mp__mgr_conn *c, uint64_t obj_id)
{
	for (size_t i = 0; i < c->nheld; i++) {
		if (c->held[i] == obj_id) {
			return 0;
		}
	}
	uint64_t *n = mp__realloc(c->held, (c->nheld + 1) * sizeof(*n));
	if (n == NULL) {
		return -ENOMEM;
	}
	n[c->nheld++] = obj_id;
	c->held = n;
	return 0;
}

/* Write what is queued; 0 (maybe with some left), or -errno. */
int
mp__mgr_conn_flush(struct mp__mgr_conn *c)
{
	while (c->wpos < c->wbuf.len) {
		ssize_t n = send(c->fd, c->wbuf.data + c->wpos,
		    c->wbuf.len - c->wpos, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno == EAGAIN) {
				return 0;
			}
			return -errno;
		}
		c->wpos += (size_t)n;
	}
	/* All sent: an idle connection keeps no buffer. */
	mp__buf_fini(&c->wbuf);
	c->wpos = 0;
	return 0;
}

/* Queue a raw handshake message with its frame header. */
static int
queue_raw(struct mp__mgr_conn *c, const void *p, size_t n)
{
	uint8_t h[4] = { (uint8_t)(n >> 24), (uint8_t)(n >> 16),
		(uint8_t)(n >> 8), (uint8_t)n };
	int rv = mp__buf_append(&c->wbuf, h, 4);
	if (rv == 0) {
		rv = mp__buf_append(&c->wbuf, p, n);
	}
	return rv;
}

int
mp__mgr_conn_reply(struct mp_manager_server *s, struct mp__mgr_conn *c,
    enum mp__mgr_kind kind, mp_obj_t *result)
{
	(void)s;
	mp_obj_t *msg = mp__mgr_reply(kind, result);
	if (msg == NULL) {
		return -ENOMEM;
	}
	int rv = mp__mgr_encode(&c->wbuf, msg);
	mp_obj_unref(msg);
	if (rv == -EINVAL) {
		/* A value pickle cannot carry: CPython's '#UNSERIALIZABLE'. */
		msg = mp__mgr_reply(MP__MGR_UNSERIALIZABLE,
		    mp_str("the result cannot be pickled"));
		rv = msg == NULL ? -ENOMEM : mp__mgr_encode(&c->wbuf, msg);
		mp_obj_unref(msg);
	}
	if (rv != 0) {
		return rv;
	}
	return mp__mgr_conn_flush(c);
}

static int
conn_new(struct mp_manager_server *s, int fd)
{
	struct mp__mgr_conn *c = mp__calloc(1, sizeof(*c));
	if (c == NULL) {
		return -ENOMEM;
	}
	c->fd = fd;
	c->id = ++s->next_conn;
	c->state = MP__HS_SEND_CHALLENGE;
	char key[64] = "?";
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_UNIX) {
			struct ucred cred;
			socklen_t cl = sizeof(cred);
			if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred,
			    &cl) == 0) {
				snprintf(key, sizeof(key), "pid %d",
				    (int)cred.pid);
			}
		} else {
			char text[INET6_ADDRSTRLEN] = "?";
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			const void *a = ss.ss_family == AF_INET6 ?
			    (const void *)&s6->sin6_addr :
			    (const void *)&s4->sin_addr;
			inet_ntop(ss.ss_family, a, text, sizeof(text));
			snprintf(key, sizeof(key), "host %s", text);
			int one = 1;
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
			    sizeof(one));
			(void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one,
			    sizeof(one));
			c->tcp = true;
		}
	}
	int rv = mp__auth_nonce(c->nonce);
	if (rv == 0) {
		uint8_t msg[CHALLENGE_LEN + sizeof(c->nonce)];
		memcpy(msg, CHALLENGE, CHALLENGE_LEN);
		memcpy(msg + CHALLENGE_LEN, c->nonce, sizeof(c->nonce));
		rv = queue_raw(c, msg, sizeof(msg));
	}
	c->client = rv == 0 ? mp__mgr_client_get(s, key) : NULL;
	if (c->client == NULL) {
		mp__buf_fini(&c->wbuf);
		mp__free(c);
		return rv != 0 ? rv : -ENOMEM;
	}
	c->events = EPOLLIN | EPOLLRDHUP | EPOLLOUT;
	struct epoll_event ev = { .events = c->events, .data.ptr = c };
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		rv = -errno;
		mp__buf_fini(&c->wbuf);
		if (c->client->nconns == 0 && c->client->refs.len == 0) {
			/* Attach and detach to drop a fresh, empty client. */
			mp__mgr_client_attach(s, c->client);
			mp__mgr_client_detach(s, c->client);
		}
		mp__free(c);
		return rv;
	}
	mp__mgr_client_attach(s, c->client);
	c->next = s->conns;
	if (s->conns != NULL) {
		s->conns->prev = c;
	}
	s->conns = c;
	s->nconns++;
	c->hs_start = mp__now_ns();
	c->in_hs = true;
	c->hprev = s->hs_tail;
	if (s->hs_tail != NULL) {
		s->hs_tail->hnext = c;
	} else {
		s->hs_head = c;
	}
	s->hs_tail = c;
	mp__mgr_log(s, MP_MANAGER_LOG_INFO, "connection %llu from %s",
	    (unsigned long long)c->id, key);
	(void)mp__mgr_conn_flush(c);
	return update_events(s, c);
}

int
mp__mgr_conn_adopt(struct mp_manager_server *s, int fd, bool authenticated,
    struct mp__mgr_conn **out)
{
	int rv = conn_new(s, fd);
	if (rv != 0) {
		return rv;
	}
	struct mp__mgr_conn *c = s->conns; /* conn_new puts it first */
	if (authenticated) {
		hs_unlink(s, c);
		c->state = MP__ST_ONESHOT;
	}
	*out = c;
	return 0;
}

static void
listener_watch(struct mp_manager_server *s, bool on)
{
	struct epoll_event ev = { .events = on ? EPOLLIN : 0,
		.data.ptr = &mp__mgr_tag_listener };
	if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, mp_listener_fileno(s->listener),
	    &ev) == 0) {
		s->accept_paused = !on;
	}
}

void
mp__mgr_accept_all(struct mp_manager_server *s)
{
	for (;;) {
		int fd = accept4(mp_listener_fileno(s->listener), NULL, NULL,
		    SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED) {
				continue;
			}
			if (errno == EMFILE || errno == ENFILE) {
				/*
				 * The listener stays readable: stop watching it
				 * until a connection closes, or the loop
				 * spins.
				 */
				mp__mgr_log(s, MP_MANAGER_LOG_ERROR,
				    "accept: %s; waiting for a connection "
				    "to close", mp_strerror(-errno));
				listener_watch(s, false);
			} else if (errno != EAGAIN) {
				mp__mgr_log(s, MP_MANAGER_LOG_ERROR,
				    "accept: %s", mp_strerror(-errno));
			}
			return;
		}
		if (s->nconns >= s->opts.max_connections) {
			mp__mgr_log(s, MP_MANAGER_LOG_ERROR,
			    "connection refused: %zu connections open",
			    s->nconns);
			close(fd);
			continue;
		}
		int rv = conn_new(s, fd);
		if (rv != 0) {
			mp__mgr_log(s, MP_MANAGER_LOG_ERROR,
			    "connection dropped: %s", mp_strerror(rv));
			close(fd);
		}
	}
}

/* The next complete frame in c->rbuf: 1 with *p, *n; 0 need more; <0. */
static int
next_frame(const uint8_t *d, size_t have, size_t cap, const uint8_t **p,
    size_t *n, size_t *used)
{
	if (have < 4) {
		return 0;
	}
	int32_t len32 = (int32_t)((uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 |
	    (uint32_t)d[2] << 8 | d[3]);
	size_t hdr = 4;
	uint64_t len;
	if (len32 == -1) {
		if (have < 12) {
			return 0;
		}
		len = 0;
		for (int i = 4; i < 12; i++) {
			len = len << 8 | d[i];
		}
		hdr = 12;
	} else if (len32 < 0) {
		return -EPROTO;
	} else {
		len = (uint64_t)len32;
	}
	if (len > cap) {
		return -EMSGSIZE;
	}
	if (have - hdr < len) {
		/* Not all here yet. The buffer grows with what arrives, not
		 * with what the header claims: a header alone must not make
		 * us allocate up to the frame cap. */
		return 0;
	}
	*p = d + hdr;
	*n = (size_t)len;
	*used = hdr + (size_t)len;
	return 1;
}

/* One handshake message; 0 to go on, or a reason to close (static). */
static const char *
handshake_step(struct mp_manager_server *s, struct mp__mgr_conn *c,
    const uint8_t *p, size_t n)
{
	switch (c->state) {
	case MP__HS_SEND_CHALLENGE:
		if (!mp__auth_verify(s->key, s->keylen, c->nonce,
		    sizeof(c->nonce), p, n)) {
			/* No traceback after FAILURE: it would leak paths. */
			(void)queue_raw(c, FAILURE, WELCOME_LEN);
			c->state = MP__ST_CLOSING;
			mp__mgr_log(s, MP_MANAGER_LOG_ERROR,
			    "connection %llu (%s): authentication failed",
			    (unsigned long long)c->id, c->client->key);
			return NULL;
		}
		c->state = MP__HS_READ_CHALLENGE;
		return queue_raw(c, WELCOME, WELCOME_LEN) == 0 ? NULL :
		    "out of memory";
	case MP__HS_READ_CHALLENGE: {
		if (n < CHALLENGE_LEN || memcmp(p, CHALLENGE,
		    CHALLENGE_LEN) != 0) {
			return "the client sent no challenge";
		}
		uint8_t resp[MP__AUTH_RESPONSE_MAX];
		size_t rlen = mp__auth_answer(s->key, s->keylen,
		    p + CHALLENGE_LEN, n - CHALLENGE_LEN, resp);
		if (rlen == 0) {
			return "the client's challenge is malformed";
		}
		c->state = MP__HS_READ_WELCOME;
		return queue_raw(c, resp, rlen) == 0 ? NULL : "out of memory";
	}
	case MP__HS_READ_WELCOME:
		if (n != WELCOME_LEN || memcmp(p, WELCOME, WELCOME_LEN) != 0) {
			return "the client refused our answer (wrong authkey?)";
		}
		c->state = MP__ST_ONESHOT;
		hs_unlink(s, c);
		return NULL;
	default:
		return "unexpected state";
	}
}

/* One request frame: decode and dispatch. A reason to close, or NULL. */
static const char *
request_step(struct mp_manager_server *s, struct mp__mgr_conn *c,
    const uint8_t *p, size_t n)
{
	char why[160] = "";
	mp_obj_t *req = NULL;
	int rv = mp__mgr_decode(p, n, s->opts.max_message, &req, why,
	    sizeof(why));
	if (rv != 0) {
		mp__mgr_log(s, MP_MANAGER_LOG_ERROR,
		    "connection %llu (%s): bad request: %s: %s",
		    (unsigned long long)c->id, c->client->key,
		    mp_err_name(rv), why);
		/* A clean refusal (a global we do not rebuild, a limit, no
		 * memory to decode it) keeps the stream framed, as CPython
		 * keeps the channel; a malformed pickle means the peer is
		 * not a manager client. */
		char text[256];
		snprintf(text, sizeof(text),
		    "Traceback (most recent call last):\n"
		    "mproc.manager: request refused: %s (%s)\n",
		    mp_strerror(rv), why);
		if (mp__mgr_conn_reply(s, c, MP__MGR_TRACEBACK,
		    mp_str(text)) != 0) {
			return "cannot reply";
		}
		if (rv == MP_EFORBIDDEN || rv == MP_ELIMIT || rv == -ENOMEM) {
			if (c->state == MP__ST_ONESHOT) {
				c->state = MP__ST_CLOSING;
			}
			return NULL;
		}
		c->state = MP__ST_CLOSING;
		return NULL;
	}
	rv = mp__mgr_dispatch(s, c, req);
	return rv == 0 ? NULL : "cannot reply (out of memory?)";
}

/* Handle the frames buffered in c; a reason to close, or NULL. */
static const char *
conn_process(struct mp_manager_server *s, struct mp__mgr_conn *c)
{
	size_t off = 0;
	const char *why = NULL;
	while (c->parked == NULL && c->state != MP__ST_CLOSING &&
	    !congested(c) && why == NULL) {
		bool hs = c->state < MP__ST_ONESHOT;
		size_t cap = hs ? MP_CONN_HANDSHAKE_MAX : s->opts.max_message;
		if (c->rbuf.len - off < 4) {
			break;
		}
		const uint8_t *p = NULL;
		size_t n = 0;
		size_t used = 0;
		/* Frames are parsed in place; consumed bytes are dropped
		 * once at the end. */
		int rv = next_frame(c->rbuf.data + off, c->rbuf.len - off, cap,
		    &p, &n, &used);
		if (rv == 0) {
			break;
		}
		if (rv < 0) {
			if (rv == -EMSGSIZE) {
				return hs ? "handshake message too long" :
				    "request larger than the frame cap";
			}
			return "bad frame header";
		}
		off += used;
		why = hs ? handshake_step(s, c, p, n) :
		    request_step(s, c, p, n);
	}
	if (off == c->rbuf.len) {
		mp__buf_fini(&c->rbuf);
	} else if (off > 0) {
		memmove(c->rbuf.data, c->rbuf.data + off, c->rbuf.len - off);
		c->rbuf.len -= off;
	}
	return why;
}

/* Readable: read a budget of bytes, then handle whole frames. */
static const char *
conn_read(struct mp_manager_server *s, struct mp__mgr_conn *c, bool *eof)
{
	size_t got = 0;
	while (got < READ_BUDGET) {
		ssize_t n = recv(c->fd, s->scratch, sizeof(s->scratch), 0);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno == EAGAIN) {
				break;
			}
			return errno == ECONNRESET ? "reset by peer" :
			    "read failed";
		}
		if (n == 0) {
			*eof = true;
			break;
		}
		if (c->tcp && c->state < MP__ST_ONESHOT) {
			/*
			 * CPython clients send their WELCOME and first request
			 * back to back; with Nagle on their side, the second
			 * waits for our ACK, which delayed ACK holds ~40 ms
			 * (research baselines: 44 ms per connection). Acking
			 * at once removes the stall; the flag does not stick,
			 * so it is set again after each read. After the
			 * handshake every request waits for its reply, which
			 * carries the ACK: a separate one would only cost.
			 */
			int one = 1;
			(void)setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one,
			    sizeof(one));
		}
		if (mp__buf_append(&c->rbuf, s->scratch, (size_t)n) != 0) {
			return "out of memory";
		}
		got += (size_t)n;
	}
	return conn_process(s, c);
}

void
mp__mgr_conn_event(struct mp_manager_server *s, struct mp__mgr_conn *c,
    uint32_t ev)
{
	const char *why = NULL;
	bool eof = false;
	if (c->dead) {
		return;
	}
	if (ev & EPOLLOUT) {
		int rv = mp__mgr_conn_flush(c);
		if (rv != 0) {
			bool gone = rv == -EPIPE || rv == -ECONNRESET;
			mp__mgr_conn_close(s, c, gone ? NULL : "write failed");
			return;
		}
		/* Frames held back while the output was congested. */
		if (c->rbuf.len > 0) {
			why = conn_process(s, c);
		}
	}
	if (why == NULL && (ev & EPOLLIN) && (c->events & EPOLLIN)) {
		why = conn_read(s, c, &eof);
	} else if (why == NULL && (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
		/* Parked or closing: the peer left (CPython clients never
		 * half-close), so drop what it waits for. */
		eof = true;
	}
	if (why != NULL) {
		mp__mgr_conn_close(s, c, why);
		return;
	}
	if (eof) {
		if (c->rbuf.len > 0 && c->parked == NULL &&
		    c->state != MP__ST_CLOSING) {
			mp__mgr_conn_close(s, c,
			    "end of file inside a message");
		} else if (c->state < MP__ST_ONESHOT) {
			mp__mgr_conn_close(s, c,
			    "end of file during the handshake");
		} else {
			mp__mgr_conn_close(s, c, NULL);
		}
		return;
	}
	if (c->state == MP__ST_CLOSING && c->wbuf.len == 0) {
		mp__mgr_conn_close(s, c, NULL);
		return;
	}
	if (update_events(s, c) != 0) {
		mp__mgr_conn_close(s, c, "epoll failed");
	}
}

void
mp__mgr_conn_resume(struct mp_manager_server *s, struct mp__mgr_conn *c)
{
	const char *why = conn_process(s, c);
	if (why == NULL && c->state == MP__ST_CLOSING && c->wbuf.len == 0) {
		why = "";
	}
	if (why != NULL) {
		mp__mgr_conn_close(s, c, why[0] != '\0' ? why : NULL);
		return;
	}
	if (update_events(s, c) != 0) {
		mp__mgr_conn_close(s, c, "epoll failed");
	}
}

void
mp__mgr_resume_all(struct mp_manager_server *s)
{
	while (s->resume_head != NULL) {
		struct mp__mgr_conn *c = s->resume_head;
		s->resume_head = c->rnext;
		if (s->resume_head == NULL) {
			s->resume_tail = NULL;
		}
		c->in_resume = false;
		c->rnext = NULL;
		if (!c->dead) {
			mp__mgr_conn_resume(s, c);
		}
	}
}

int64_t
mp__mgr_handshakes_expire(struct mp_manager_server *s, int64_t now)
{
	int64_t limit = s->opts.handshake_timeout_ms * 1000000;
	while (s->hs_head != NULL) {
		int64_t due = s->hs_head->hs_start + limit;
		if (due > now) {
			return due - now;
		}
		mp__mgr_conn_close(s, s->hs_head, "handshake timed out");
	}
	return -1;
}
