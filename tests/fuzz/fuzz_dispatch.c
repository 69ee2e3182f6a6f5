/* SPDX-License-Identifier: MIT */
/* fuzz_dispatch.c: libFuzzer target for the manager server's connections: frames, handshake, request dispatch. */
#include <mproc.h>
#include <mproc/manager_server.h>
#include <string.h>
#include <sys/epoll.h>

#include "fuzz_common.h"
#include "manager/server_int.h"

/*
 * One server, reset after each input, its connections fed in-process: each is a
 * socket pair whose server end is adopted (mp__mgr_conn_adopt) and driven
 * with mp__mgr_conn_event as the event loop would, so the frame parser,
 * the handshake state machine, the request decoder and every handler of
 * every built-in type see the fuzzer's bytes, with up to four
 * connections at once (calls parked on one are woken by another).
 *
 * Input: records, each an op byte, then for a data record a big-endian
 * u16 length and that many bytes.
 *   op & 3           the connection (slot) it is for;
 *   (op >> 2) & 7    1: the peer hangs up; 2: every timed wait expires
 *                    (timers run at the end of time); 3: handshakes and
 *                    orphaned clients expire likewise; else data: the
 *                    bytes are what the peer sends;
 *   op & 0x20        a slot opened by this record starts in the handshake
 *                    (challenge FUZZ_NONCE, key FUZZ_KEY), else past it.
 * Time never decides anything, so each input runs the same way.
 *
 * Checked: every frame the server sends after the handshake is a pickle
 * of a (kind, result) reply that our own decoder reads back.
 */

#define SLOTS 4

struct slot {
	struct mp__mgr_conn *c;  /* NULL: closed by the server, or none */
	int peer;                /* the client's end, or -1 */
	uint8_t in[1 << 16];     /* what the server sent, not yet parsed */
	size_t inlen;
	int raw;                 /* handshake frames still to come */
	bool overflow;           /* a reply larger than in[]: not checked */
	bool eof;                /* the server closed its end: read all */
};

static struct slot slots[SLOTS];
static char sock_dir[64];
static mp_manager_server_t *srv;

static void
log_none(void *user, enum mp_manager_log_level level, const char *line)
{
	(void)user;
	(void)level;
	(void)line;
}

static void
at_exit(void)
{
	mp_manager_server_close(srv);
	rmdir(sock_dir);
}

/* One server for the run (its socket unused): each input gets it reset. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char dir[] = "/tmp/mproc-fuzz-dispatch.XXXXXX";
	fuzz_check(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(sock_dir, sizeof(sock_dir), "%s", dir);
	char addr[128];
	snprintf(addr, sizeof(addr), "%s/s", sock_dir);
	/* max_message as large as an input (scripts/fuzz): every frame one
	 * holds is served, and a list repeat makes at most that many items,
	 * as many as one input could have sent (64 MiB would let a few
	 * bytes keep ASan busy for minutes). */
	struct mp_manager_server_opts opts = { .log = log_none,
		.log_level = MP_MANAGER_LOG_DEBUG, .max_message = 16384 };
	fuzz_check(mp_manager_server_open(addr, FUZZ_KEY, FUZZ_KEYLEN, &opts,
	    &srv) == 0, "server open");
	atexit(at_exit);
	return 0;
}

/* The frames in sl->in: handshake ones skipped, replies checked. */
FUZZ_ORACLE static void
check_replies(struct slot *sl)
{
	size_t off = 0;
	while (sl->inlen - off >= 4) {
		const uint8_t *d = sl->in + off;
		uint32_t n = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 |
		    (uint32_t)d[2] << 8 | d[3];
		/* Replies here are small: the 8-byte form is not expected. */
		fuzz_check(n <= 0x7FFFFFFF, "reply frame header");
		if (n > sizeof(sl->in) - 4) {
			sl->overflow = true;
			sl->inlen = 0;
			return;
		}
		if (sl->inlen - off - 4 < n) {
			break;
		}
		if (sl->raw > 0) {
			sl->raw--;
		} else {
			mp_obj_t *r = NULL;
			int rv = mp__mgr_decode(d + 4, n, 0, &r, NULL, 0);
			fuzz_check(rv == 0, "a reply does not decode");
			fuzz_check(mp_obj_type(r) == MP_TYPE_TUPLE &&
			    mp_obj_len(r) == 2 && mp_obj_type(mp_tuple_get(r,
			    0)) == MP_TYPE_STR, "a reply is not (kind, result)");
			mp_obj_unref(r);
		}
		off += 4 + n;
	}
	memmove(sl->in, sl->in + off, sl->inlen - off);
	sl->inlen -= off;
}

/* Read what the server sent to every slot; true if anything came. */
static bool
drain(void)
{
	bool any = false;
	for (int i = 0; i < SLOTS; i++) {
		struct slot *sl = &slots[i];
		while (sl->peer >= 0 && !sl->eof) {
			uint8_t tmp[4096];
			ssize_t n = read(sl->peer, tmp, sizeof(tmp));
			/* Past its end a socket stays at its end: asking
			 * again in every later round would only cost. */
			sl->eof = n == 0;
			if (n <= 0) {
				break;
			}
			any = true;
			if (sl->overflow) {
				continue;
			}
			size_t k = (size_t)n;
			if (k > sizeof(sl->in) - sl->inlen) {
				sl->overflow = true;
				continue;
			}
			memcpy(sl->in + sl->inlen, tmp, k);
			sl->inlen += k;
			check_replies(sl);
		}
	}
	return any;
}

/* Forget connections the server closed, then free them. */
static void
reap(struct mp_manager_server *s)
{
	for (int i = 0; i < SLOTS; i++) {
		if (slots[i].c != NULL && slots[i].c->dead) {
			slots[i].c = NULL;
		}
	}
	mp__mgr_reap(s);
}

/* Let queued output flow until no connection has any left. */
static void
settle(struct mp_manager_server *s)
{
	for (int round = 0; round < 64; round++) {
		mp__mgr_resume_all(s);
		reap(s);
		bool moved = drain();
		bool pending = false;
		for (int i = 0; i < SLOTS; i++) {
			struct mp__mgr_conn *c = slots[i].c;
			if (c != NULL && c->wbuf.len > c->wpos) {
				pending = true;
				mp__mgr_conn_event(s, c, EPOLLOUT);
			}
		}
		if (!pending && !moved) {
			break;
		}
	}
	reap(s);
}

static void
slot_open(struct mp_manager_server *s, struct slot *sl, bool handshake)
{
	int sv[2];
	fuzz_socketpair(sv);
	if (mp__mgr_conn_adopt(s, sv[0], !handshake, &sl->c) != 0) {
		close(sv[0]);
		close(sv[1]);
		sl->c = NULL;
		return;
	}
	fuzz_nonce(sl->c->nonce);
	sl->peer = sv[1];
	sl->inlen = 0;
	sl->overflow = false;
	sl->eof = false;
	/* The challenge, then WELCOME (or FAILURE) and the answer. */
	sl->raw = handshake ? 3 : 1;
}

static void
slot_hangup(struct mp_manager_server *s, struct slot *sl)
{
	if (sl->peer < 0) {
		return;
	}
	close(sl->peer);
	sl->peer = -1;
	if (sl->c != NULL) {
		mp__mgr_conn_event(s, sl->c, EPOLLIN | EPOLLRDHUP | EPOLLHUP);
	}
	settle(s);
}

static void
slot_send(struct mp_manager_server *s, struct slot *sl, const uint8_t *p,
    size_t n, bool handshake)
{
	if (sl->peer >= 0 && sl->c == NULL) {
		/* The server closed it: what it said last is read, the
		 * client's end goes, and this record opens a new one. */
		drain();
		close(sl->peer);
		sl->peer = -1;
	}
	if (sl->peer < 0) {
		slot_open(s, sl, handshake);
		if (sl->c == NULL) {
			return;
		}
	}
	size_t done = 0;
	for (int round = 0; round < 64 && sl->c != NULL; round++) {
		done += fuzz_write_some(sl->peer, p + done, n - done);
		mp__mgr_conn_event(s, sl->c, EPOLLIN);
		settle(s);
		if (done == n) {
			break;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	mp_manager_server_t *s = srv;
	for (int i = 0; i < SLOTS; i++) {
		slots[i].c = NULL;
		slots[i].peer = -1;
	}
	size_t i = 0;
	while (i < size) {
		uint8_t op = data[i++];
		struct slot *sl = &slots[op & 3];
		switch ((op >> 2) & 7) {
		case 1:
			slot_hangup(s, sl);
			break;
		case 2:
			(void)mp__mgr_timers_run(s, INT64_MAX);
			settle(s);
			break;
		case 3:
			(void)mp__mgr_handshakes_expire(s, INT64_MAX);
			(void)mp__mgr_clients_expire(s, INT64_MAX);
			settle(s);
			break;
		default: {
			size_t n = 0;
			if (size - i >= 2) {
				n = (size_t)data[i] << 8 | data[i + 1];
				i += 2;
			} else {
				i = size;
			}
			if (n > size - i) {
				n = size - i;
			}
			slot_send(s, sl, data + i, n, (op & 0x20) != 0);
			i += n;
			break;
		}
		}
	}
	for (int k = 0; k < SLOTS; k++) {
		if (slots[k].peer >= 0) {
			close(slots[k].peer);
			slots[k].peer = -1;
		}
		slots[k].c = NULL;
	}
	mp__mgr_server_reset(s);
	/*
	 * The next input starts from this state: nothing of these
	 * connections may stay queued anywhere (a dead one left on the
	 * resume list was read after its free by the next input).
	 */
	if (s->conns != NULL || s->dead != NULL || s->resume_head != NULL ||
	    s->resume_tail != NULL) {
		__builtin_trap();
	}
	return 0;
}
