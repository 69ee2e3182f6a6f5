/* SPDX-License-Identifier: MIT */
/* manager/server.c: the manager server's life cycle and its event loop. */
#include "manager/server_int.h"

#include <stdarg.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MAX_EVENTS 128
/* The first object id: looks like CPython's id(). */
#define FIRST_ID 0x7f0000001000ull

/* Distinct addresses tag the listener and the wake fd in epoll. */
char mp__mgr_tag_listener;
char mp__mgr_tag_wake;

void
mp__mgr_log(struct mp_manager_server *s, enum mp_manager_log_level lvl,
    const char *fmt, ...)
{
	if (s->opts.log == NULL || lvl > s->opts.log_level) {
		return;
	}
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	s->opts.log(s->opts.log_user, lvl, line);
}

static int64_t
min_wait(int64_t a, int64_t b)
{
	if (a < 0) {
		return b;
	}
	if (b < 0) {
		return a;
	}
	return a < b ? a : b;
}

int
mp_manager_server_serve(mp_manager_server_t *s)
{
	MP_ASSERT(s != NULL && s->owner == getpid());
	struct epoll_event evs[MAX_EVENTS];
	int rv = 0;
	s->serving = true;
	while (!s->stopping) {
		int64_t wait;
		for (;;) {
			int64_t now = mp__now_ns();
			wait = mp__mgr_timers_run(s, now);
			wait = min_wait(wait,
			    mp__mgr_handshakes_expire(s, now));
			wait = min_wait(wait, mp__mgr_clients_expire(s, now));
			/* Resumed connections may park calls with earlier
			 * deadlines: look again until nothing moved. */
			if (s->resume_head == NULL) {
				break;
			}
			mp__mgr_resume_all(s);
		}
		mp__mgr_reap(s);
		if (s->stopping) {
			break;
		}
		/* Round up: waking before the deadline would spin. */
		int ms = -1;
		if (wait >= (int64_t)INT32_MAX * 1000000) {
			ms = INT32_MAX;
		} else if (wait >= 0) {
			ms = (int)((wait + 999999) / 1000000);
		}
		int n = epoll_wait(s->epfd, evs, MAX_EVENTS, ms);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			rv = -errno;
			break;
		}
		for (int i = 0; i < n; i++) {
			void *tag = evs[i].data.ptr;
			if (tag == &mp__mgr_tag_listener) {
				mp__mgr_accept_all(s);
			} else if (tag == &mp__mgr_tag_wake) {
				uint64_t v;
				(void)!read(s->wakefd, &v, sizeof(v));
				s->stopping = true;
			} else {
				mp__mgr_conn_event(s, tag, evs[i].events);
			}
			mp__mgr_resume_all(s);
		}
		mp__mgr_reap(s);
	}
	/* Shutdown: CPython replies to "shutdown" before stopping, and so
	 * do we: one last try at what is queued. */
	for (struct mp__mgr_conn *c = s->conns; c != NULL; c = c->next) {
		(void)mp__mgr_conn_flush(c);
	}
	s->stopping = false;
	s->serving = false;
	return rv;
}

void
mp_manager_server_shutdown(mp_manager_server_t *s)
{
	uint64_t one = 1;
	(void)!write(s->wakefd, &one, sizeof(one));
}

void
mp__mgr_server_stop(struct mp_manager_server *s)
{
	s->stopping = true;
}

static void
log_none(void *user, enum mp_manager_log_level level, const char *line)
{
	(void)user;
	(void)level;
	(void)line;
}

int
mp_manager_server_open(const char *address, const void *authkey,
    size_t keylen, const struct mp_manager_server_opts *opts,
    mp_manager_server_t **out)
{
	MP_ASSERT(out != NULL && (authkey != NULL || keylen == 0));
	struct mp_manager_server *s = mp__calloc(1, sizeof(*s));
	if (s == NULL) {
		return -ENOMEM;
	}
	s->epfd = s->wakefd = -1;
	s->next_id = FIRST_ID;
	if (opts != NULL) {
		s->opts = *opts;
	}
	if (s->opts.max_message == 0) {
		s->opts.max_message = (size_t)64 << 20;
	}
	if (s->opts.handshake_timeout_ms <= 0) {
		s->opts.handshake_timeout_ms = 10000;
	}
	if (s->opts.orphan_grace_ms == 0) {
		s->opts.orphan_grace_ms = 60000;
	}
	if (s->opts.max_connections == 0) {
		s->opts.max_connections = 65536;
	}
	if (s->opts.log == NULL) {
		s->opts.log = log_none;
	}
	int rv = -ENOMEM;
	s->key = mp__malloc(keylen > 0 ? keylen : 1);
	if (s->key == NULL) {
		goto out_free;
	}
	if (keylen > 0) {
		memcpy(s->key, authkey, keylen);
	}
	s->keylen = keylen;
	/* Our own handshake runs in the loop, so the listener has no key. */
	rv = mp_listener_open(address, NULL, 0, &s->listener);
	if (rv != 0) {
		goto out_free;
	}
	s->address_obj = mp__mgr_address(mp_listener_address(s->listener));
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->address_obj == NULL || s->epfd < 0 || s->wakefd < 0) {
		rv = s->address_obj == NULL ? -ENOMEM : -errno;
		goto out_close;
	}
	struct epoll_event ev = { .events = EPOLLIN,
		.data.ptr = &mp__mgr_tag_listener };
	struct epoll_event wev = { .events = EPOLLIN,
		.data.ptr = &mp__mgr_tag_wake };
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, mp_listener_fileno(s->listener),
	    &ev) != 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->wakefd,
	    &wev) != 0) {
		rv = -errno;
		goto out_close;
	}
	rv = mp__mgr_register_builtins(s);
	if (rv != 0) {
		goto out_close;
	}
	s->owner = getpid();
	*out = s;
	return 0;
out_close:
	mp__mgr_reg_fini(s);
	if (s->epfd >= 0) {
		close(s->epfd);
	}
	if (s->wakefd >= 0) {
		close(s->wakefd);
	}
	mp_obj_unref(s->address_obj);
	mp_listener_close(s->listener);
out_free:
	mp__free(s->key);
	mp__free(s);
	return rv;
}

const char *
mp_manager_server_address(const mp_manager_server_t *s)
{
	MP_ASSERT(s != NULL);
	return mp_listener_address(s->listener);
}

size_t
mp_manager_server_number_of_objects(const mp_manager_server_t *s)
{
	MP_ASSERT(s != NULL);
	return s->nlive;
}

/*
 * close in a forked child: the epoll instance and the sockets are shared
 * with the owner, so touching them (EPOLL_CTL_DEL, a reply to a waiting
 * call) would act on the owner's server. Only memory and our fd copies go.
 */
static void
close_inherited(struct mp_manager_server *s)
{
	while (s->conns != NULL) {
		struct mp__mgr_conn *c = s->conns;
		s->conns = c->next;
		close(c->fd);
		if (c->parked != NULL) {
			mp_obj_unref(c->parked->req);
			mp_obj_unref(c->parked->result);
			mp__free(c->parked);
		}
		mp__free(c->held);
		mp__buf_fini(&c->rbuf);
		mp__buf_fini(&c->wbuf);
		mp__free(c);
	}
	mp__mgr_reap(s);
	for (size_t i = 0; i < s->nreg; i++) {
		s->reg[i].shared = NULL;
	}
	size_t pos = 0;
	uint64_t id;
	void *val;
	while (mp__u64map_next(&s->objs, &pos, &id, &val)) {
		struct mp__mgr_obj *o = val;
		if (o->cls->destroy != NULL) {
			o->cls->destroy(o->impl);
		}
		mp__free(o);
	}
	mp__u64map_fini(&s->objs);
	mp__mgr_reg_fini(s);
	mp__mgr_clients_fini(s);
}

void
mp__mgr_server_reset(struct mp_manager_server *s)
{
	while (s->conns != NULL) {
		mp__mgr_conn_close(s, s->conns, NULL);
	}
	mp__mgr_reap(s);
	/*
	 * Objects first (a registered C type's class, which they use, is
	 * freed with the registry), shared ones included: forget the
	 * registrations' hold on them so that the registry does not free
	 * them twice.
	 */
	for (size_t i = 0; i < s->nreg; i++) {
		s->reg[i].shared = NULL;
	}
	size_t pos = 0;
	uint64_t id;
	void *val;
	while (mp__u64map_next(&s->objs, &pos, &id, &val)) {
		struct mp__mgr_obj *o = val;
		mp__mgr_obj_fail_waiters(s, o);
		if (o->cls->destroy != NULL) {
			o->cls->destroy(o->impl);
		}
		mp__free(o);
	}
	mp__u64map_fini(&s->objs);
	mp__mgr_clients_fini(s);
	s->nlive = 0;
	s->next_id = FIRST_ID;
	s->next_conn = 0;
	s->stopping = false;
}

void
mp_manager_server_close(mp_manager_server_t *s)
{
	if (s == NULL) {
		return;
	}
	if (s->owner != getpid()) {
		close_inherited(s);
		goto out_fds;
	}
	mp__mgr_server_reset(s);
	mp__mgr_reg_fini(s);
out_fds:
	mp__free(s->heap);
	mp__free(s->spare);
	close(s->epfd);
	close(s->wakefd);
	mp_obj_unref(s->address_obj);
	/* A child that inherited the server must not unlink the parent's
	 * socket: mp_listener_close unlinks only in the opening process. */
	mp_listener_close(s->listener);
	mp__free(s->key);
	mp__free(s);
}
