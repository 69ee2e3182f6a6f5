/* SPDX-License-Identifier: MIT */
/* manager/client.c: mp_manager_t: server functions and method channels. */
#include "manager/client_int.h"

#include "conn/conn_internal.h"

#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * Every live manager is in one list, so that fork can take all their
 * locks (a child never inherits a lock some other thread held) and exit
 * can stop the servers this process started. Lock order: reg_lock, then
 * a manager's lock; nothing that holds a manager's lock takes reg_lock.
 */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static mp_manager_t *reg_head;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

static void
fork_prepare(void)
{
	pthread_mutex_lock(&reg_lock);
	for (mp_manager_t *m = reg_head; m != NULL; m = m->reg_next) {
		pthread_mutex_lock(&m->lock);
	}
}

static void
fork_release(void)
{
	for (mp_manager_t *m = reg_head; m != NULL; m = m->reg_next) {
		pthread_mutex_unlock(&m->lock);
	}
	pthread_mutex_unlock(&reg_lock);
}

static void
reg_init(void)
{
	(void)pthread_atfork(fork_prepare, fork_release, fork_release);
}

void
mp__mgr_ref(mp_manager_t *m)
{
	atomic_fetch_add(&m->refs, 1);
}

static void
chan_close(struct mp__mgr_chan *ch)
{
	mp_conn_close(ch->conn);
	mp__buf_fini(&ch->sbuf);
	mp__free(ch);
}

/*
 * A thread that ends takes its method channel with it, as CPython's
 * thread-local connections go with their thread. The value is only
 * compared, never followed, until it is found in a live manager's list
 * as this thread's own: a child may hold a value its parent set for a
 * channel the child has since closed.
 */
static void
thread_exit(void *v)
{
	struct mp__mgr_chan *found = NULL;
	pid_t self = getpid();
	pthread_t me = pthread_self();
	pthread_mutex_lock(&reg_lock);
	for (mp_manager_t *m = reg_head; m != NULL && found == NULL;
	    m = m->reg_next) {
		pthread_mutex_lock(&m->lock);
		for (struct mp__mgr_chan **pp = &m->chans; *pp != NULL;
		    pp = &(*pp)->next) {
			struct mp__mgr_chan *ch = *pp;
			if (ch == v && ch->pid == self && !ch->busy &&
			    pthread_equal(ch->thread, me)) {
				*pp = ch->next;
				found = ch;
				break;
			}
		}
		pthread_mutex_unlock(&m->lock);
	}
	pthread_mutex_unlock(&reg_lock);
	if (found != NULL) {
		chan_close(found);
	}
}

void
mp__mgr_unref(mp_manager_t *m)
{
	if (atomic_fetch_sub(&m->refs, 1) != 1) {
		return;
	}
	pthread_mutex_lock(&reg_lock);
	if (m->reg_prev != NULL) {
		m->reg_prev->reg_next = m->reg_next;
	} else {
		reg_head = m->reg_next;
	}
	if (m->reg_next != NULL) {
		m->reg_next->reg_prev = m->reg_prev;
	}
	pthread_mutex_unlock(&reg_lock);
	if (m->tkey_ok) {
		pthread_key_delete(m->tkey);
	}
	mp__mgr_close_chans(m);
	pthread_mutex_destroy(&m->lock);
	if (m->authkey != NULL) {
		/* The key of a started server is a secret: wipe it. */
		memset(m->authkey, 0, m->keylen);
	}
	mp__free(m->authkey);
	mp__free(m->address);
	mp__free(m->tmpdir);
	mp__free(m);
}

int
mp__mgr_new(const char *address, const void *key, size_t keylen,
    int64_t timeout_ms, mp_manager_t **out)
{
	pthread_once(&reg_once, reg_init);
	mp_manager_t *m = mp__calloc(1, sizeof(*m));
	if (m == NULL) {
		return -ENOMEM;
	}
	atomic_init(&m->refs, 1);
	atomic_init(&m->closed, false);
	atomic_init(&m->timeout_ms, timeout_ms);
	m->owner = getpid();
	m->chans_pid = m->owner;
	pthread_mutex_init(&m->lock, NULL);
	/* Without a key (PTHREAD_KEYS_MAX reached) channels live until free. */
	m->tkey_ok = pthread_key_create(&m->tkey, thread_exit) == 0;
	if (address != NULL) {
		m->address = mp__strdup(address);
		m->authkey = mp__malloc(keylen > 0 ? keylen : 1);
		if (m->address == NULL || m->authkey == NULL) {
			mp__free(m->address);
			mp__free(m->authkey);
			if (m->tkey_ok) {
				pthread_key_delete(m->tkey);
			}
			pthread_mutex_destroy(&m->lock);
			mp__free(m);
			return -ENOMEM;
		}
		memcpy(m->authkey, key, keylen);
		m->keylen = keylen;
	}
	pthread_mutex_lock(&reg_lock);
	m->reg_next = reg_head;
	if (reg_head != NULL) {
		reg_head->reg_prev = m;
	}
	reg_head = m;
	pthread_mutex_unlock(&reg_lock);
	*out = m;
	return 0;
}

/*
 * Take the idle channels away, under the lock, to close outside it. A
 * channel busy with a call in another thread stays listed, marked
 * doomed: that thread closes it when its call returns (chan_put). In a
 * child every listed channel is a copy of the parent's, busy or not.
 */
static struct mp__mgr_chan *
take_chans(mp_manager_t *m)
{
	struct mp__mgr_chan *taken = NULL;
	pid_t self = getpid();
	pthread_mutex_lock(&m->lock);
	bool inherited = m->chans_pid != self;
	struct mp__mgr_chan **pp = &m->chans;
	while (*pp != NULL) {
		struct mp__mgr_chan *ch = *pp;
		if (ch->busy && !inherited) {
			ch->doomed = true;
			pp = &ch->next;
			continue;
		}
		*pp = ch->next;
		ch->next = taken;
		taken = ch;
	}
	m->chans_pid = self;
	pthread_mutex_unlock(&m->lock);
	return taken;
}

void
mp__mgr_close_chans(mp_manager_t *m)
{
	struct mp__mgr_chan *ch = take_chans(m);
	while (ch != NULL) {
		struct mp__mgr_chan *next = ch->next;
		chan_close(ch);
		ch = next;
	}
}

void
mp__mgr_drop_inherited(void)
{
	pid_t self = getpid();
	pthread_mutex_lock(&reg_lock);
	for (mp_manager_t *m = reg_head; m != NULL; m = m->reg_next) {
		if (m->chans_pid != self) {
			/* Copies of the parent's connections: close ours. */
			mp__mgr_close_chans(m);
		}
	}
	pthread_mutex_unlock(&reg_lock);
}

/* ---- Framed messages with a deadline ------------------------------------- */

/*
 * mp_conn_send_bytes has no timeout, and a server that stopped reading
 * must not hold a caller forever, so requests are written here with
 * MSG_DONTWAIT and a poll bounded by the deadline. Only sending goes
 * around the connection; receiving, and its buffer, stay in mp_conn.
 */
static int
send_deadline(mp_conn_t *c, const uint8_t *p, size_t n, int64_t deadline)
{
	int fd = mp_conn_fileno(c);
	while (n > 0) {
		ssize_t r = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno != EAGAIN) {
				return -errno;
			}
			int w = mp__fd_wait(fd, POLLOUT, deadline);
			if (w <= 0) {
				return w == 0 ? -ETIMEDOUT : w;
			}
			continue;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int
send_msg(mp_conn_t *c, struct mp__buf *b, const mp_obj_t *msg,
    int64_t deadline)
{
	b->len = 0;
	int rv = mp__mgr_encode(b, msg);
	if (rv != 0) {
		return rv;
	}
	rv = send_deadline(c, b->data, b->len, deadline);
	if (b->cap > ((size_t)64 << 10)) {
		/* Keep a big payload's buffer only while it is used. */
		mp__buf_fini(b);
	}
	return rv;
}

/*
 * Waiting for a reply by sleeping costs two wake-ups per call on this
 * kind of VM (about 30 us each, research baselines §1): the client's, and
 * the server's. Polling the socket for up to MP__MGR_SPIN_NS first saves
 * the client's when the server answers at once, which doubles the calls
 * per second of one client. (100 us: a call over TCP loopback comes back
 * in 40 to 90 us; 20 us was enough for Unix sockets only.) When many clients queue at the server
 * the answer comes late and spinning only burns the CPU the server needs,
 * so a channel whose spin failed stops spinning for a while, longer after
 * each failure. Each empty poll yields the CPU, so that a server sharing
 * it with the client (a loaded machine) runs at once instead of waiting
 * for the spin to end. One CPU: never spin, the server cannot run
 * meanwhile.
 */
static bool
spin_wanted(struct mp__mgr_spin *s)
{
	static atomic_int cpus;
	if (atomic_load(&cpus) == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		atomic_store(&cpus, n > 0 ? (int)n : 1);
	}
	if (atomic_load(&cpus) < 2) {
		return false;
	}
	if (s->skip > 0) {
		s->skip--;
		return false;
	}
	return true;
}

static void
spin_learn(struct mp__mgr_spin *s, bool answered)
{
	if (answered) {
		s->backoff = 0;
		return;
	}
	s->backoff = s->backoff == 0 ? 1 :
	    s->backoff >= MP__MGR_SPIN_BACKOFF_MAX ? MP__MGR_SPIN_BACKOFF_MAX :
	    s->backoff * 2;
	s->skip = s->backoff;
}

/* Receive one reply; *kind and *reply (the tuple, new reference). */
static int
recv_reply(mp_conn_t *c, struct mp__mgr_spin *spin, int64_t deadline,
    enum mp__mgr_kind *kind, mp_obj_t **reply)
{
	const uint8_t *data;
	size_t len;
	bool owned;
	int rv = -EAGAIN;
	if (spin != NULL && spin_wanted(spin)) {
		int64_t end = mp__now_ns() + MP__MGR_SPIN_NS;
		while (rv == -EAGAIN && mp__now_ns() < end) {
			rv = mp__conn_recv_view(c, mp_conn_max_message(c), 0,
			    true, &data, &len, &owned);
			if (rv == -EAGAIN) {
				sched_yield();
			}
		}
		spin_learn(spin, rv != -EAGAIN);
	}
	if (rv == -EAGAIN) {
		rv = mp__conn_recv_view(c, mp_conn_max_message(c), deadline,
		    false, &data, &len, &owned);
	}
	if (rv != 0) {
		return rv;
	}
	mp_obj_t *msg = NULL;
	rv = mp__mgr_decode(data, len, mp_conn_max_message(c), &msg, NULL, 0);
	if (owned) {
		mp__free((void *)data);
	}
	if (rv != 0) {
		return rv;
	}
	mp_obj_t *result;
	rv = mp__mgr_reply_parse(msg, kind, &result);
	if (rv != 0) {
		mp_obj_unref(msg);
		return rv;
	}
	*reply = msg;
	return 0;
}

mp_obj_t *
mp__mgr_remote_error(const mp_obj_t *text)
{
	mp_obj_t *t = mp_obj_ref((mp_obj_t *)text);
	if (t == NULL || mp_obj_type(t) != MP_TYPE_STR) {
		mp_obj_unref(t);
		t = mp_str("unexpected reply");
	}
	return mp_instance_new("multiprocessing.managers", "RemoteError",
	    mp_tuple_of(1, t), NULL, false);
}

/* ---- Server functions ---------------------------------------------------- */

static int64_t
deadline_of(int64_t timeout_ms)
{
	return timeout_ms < 0 ? -1 : mp__deadline_from_timeout(timeout_ms);
}

/* Milliseconds left of a deadline, as a timeout (MP_FOREVER for none). */
static int64_t
left_ms(int64_t deadline)
{
	if (deadline < 0) {
		return MP_FOREVER;
	}
	int ms = mp__deadline_remaining_ms(deadline);
	return ms > 0 ? ms : 1;
}

/* One request on a connection, one reply: the shape both kinds share. */
static int
exchange(mp_conn_t *c, struct mp__buf *b, struct mp__mgr_spin *spin,
    const mp_obj_t *req, int64_t deadline, enum mp__mgr_kind *kind,
    mp_obj_t **reply)
{
	int rv = send_msg(c, b, req, deadline);
	if (rv != 0) {
		return rv;
	}
	return recv_reply(c, spin, deadline, kind, reply);
}

/* '#RETURN' gives 0 and the value; anything else MP_EREMOTEERR. */
static int
take_return(enum mp__mgr_kind kind, mp_obj_t *reply, mp_obj_t **result)
{
	int rv = kind == MP__MGR_RETURN ? 0 : MP_EREMOTEERR;
	if (rv == 0 && result != NULL) {
		*result = mp_obj_ref(mp_tuple_get(reply, 1));
	}
	mp_obj_unref(reply);
	return rv;
}

int
mp__mgr_server_call(mp_manager_t *m, const char *fn, mp_obj_t *args,
    mp_obj_t *kwds, mp_obj_t **result)
{
	mp_obj_t *req = mp__mgr_request(NULL, fn, args, kwds);
	if (req == NULL) {
		return -ENOMEM;
	}
	int64_t deadline = deadline_of(atomic_load(&m->timeout_ms));
	mp_conn_t *c = NULL;
	int rv = mp_client_connect(m->address, m->authkey, m->keylen,
	    left_ms(deadline), &c);
	if (rv == 0) {
		struct mp__buf b = { 0 };
		enum mp__mgr_kind kind;
		mp_obj_t *reply = NULL;
		rv = exchange(c, &b, NULL, req, deadline, &kind, &reply);
		if (rv == 0) {
			rv = take_return(kind, reply, result);
		}
		mp__buf_fini(&b);
		mp_conn_close(c);
	}
	mp_obj_unref(req);
	return rv;
}

/* ---- Method channels ----------------------------------------------------- */

/*
 * CPython names a channel after the process, and the thread when it is
 * not the main one ('MainProcess|Thread-2'); the server only logs it.
 */
static mp_obj_t *
chan_name(void)
{
	char name[160];
	const char *proc = mp_process_name(mp_current_process());
	long tid = (long)syscall(SYS_gettid);
	if (tid == (long)getpid()) {
		snprintf(name, sizeof(name), "%s", proc);
	} else {
		snprintf(name, sizeof(name), "%s|Thread-%ld", proc, tid);
	}
	return mp_str(name);
}

static int
chan_open(mp_manager_t *m, int64_t deadline, struct mp__mgr_chan **out)
{
	struct mp__mgr_chan *ch = mp__calloc(1, sizeof(*ch));
	if (ch == NULL) {
		return -ENOMEM;
	}
	int rv = mp_client_connect(m->address, m->authkey, m->keylen,
	    left_ms(deadline), &ch->conn);
	if (rv != 0) {
		mp__free(ch);
		return rv;
	}
	mp_obj_t *req = mp__mgr_request(NULL, "accept_connection",
	    mp_tuple_of(1, chan_name()), NULL);
	enum mp__mgr_kind kind;
	mp_obj_t *reply = NULL;
	rv = req == NULL ? -ENOMEM :
	    exchange(ch->conn, &ch->sbuf, NULL, req, deadline, &kind,
	    &reply);
	mp_obj_unref(req);
	if (rv == 0) {
		rv = take_return(kind, reply, NULL);
	}
	if (rv != 0) {
		chan_close(ch);
		return rv;
	}
	ch->thread = pthread_self();
	ch->pid = getpid();
	*out = ch;
	return 0;
}

/*
 * The calling thread's channel, marked busy, or a new one. A child's
 * first call finds its parent's channels in the list and closes its
 * copies of them: sharing one socket between two processes would mix
 * their replies.
 */
static int
chan_get(mp_manager_t *m, int64_t deadline, struct mp__mgr_chan **out)
{
	pid_t self = getpid();
	pthread_t me = pthread_self();
	struct mp__mgr_chan *stale = NULL;
	struct mp__mgr_chan *found = NULL;
	pthread_mutex_lock(&m->lock);
	if (m->chans_pid != self) {
		stale = m->chans;
		m->chans = NULL;
		m->chans_pid = self;
	}
	for (struct mp__mgr_chan *ch = m->chans; ch != NULL; ch = ch->next) {
		if (!ch->busy && pthread_equal(ch->thread, me)) {
			ch->busy = true;
			found = ch;
			break;
		}
	}
	pthread_mutex_unlock(&m->lock);
	while (stale != NULL) {
		struct mp__mgr_chan *next = stale->next;
		chan_close(stale);
		stale = next;
	}
	if (found != NULL) {
		*out = found;
		return 0;
	}
	struct mp__mgr_chan *ch;
	int rv = chan_open(m, deadline, &ch);
	if (rv != 0) {
		return rv;
	}
	ch->busy = true;
	pthread_mutex_lock(&m->lock);
	ch->next = m->chans;
	m->chans = ch;
	pthread_mutex_unlock(&m->lock);
	if (m->tkey_ok) {
		(void)pthread_setspecific(m->tkey, ch);
	}
	*out = ch;
	return 0;
}

/* Give the channel back, or drop it when it is no longer in step. */
static void
chan_put(mp_manager_t *m, struct mp__mgr_chan *ch, bool drop)
{
	pthread_mutex_lock(&m->lock);
	drop = drop || ch->doomed;
	bool listed = false;
	for (struct mp__mgr_chan **pp = &m->chans; *pp != NULL;
	    pp = &(*pp)->next) {
		if (*pp == ch) {
			listed = true;
			if (drop) {
				*pp = ch->next;
			}
			break;
		}
	}
	ch->busy = false;
	pthread_mutex_unlock(&m->lock);
	/* Unlisted: a child's first call took the list; ours to close. */
	if (drop || !listed) {
		chan_close(ch);
	}
}

int
mp__mgr_method_call(mp_manager_t *m, const char *ident, const char *method,
    const mp_obj_t *args, const mp_obj_t *kwds, int64_t timeout_ms,
    enum mp__mgr_kind *kind, mp_obj_t **reply)
{
	if (atomic_load(&m->closed)) {
		return MP_ECLOSED;
	}
	mp_obj_t *req = mp__mgr_request(ident, method,
	    mp_obj_ref((mp_obj_t *)args), mp_obj_ref((mp_obj_t *)kwds));
	if (req == NULL) {
		return -ENOMEM;
	}
	int64_t deadline = deadline_of(timeout_ms);
	struct mp__mgr_chan *ch = NULL;
	int rv = chan_get(m, deadline, &ch);
	if (rv == 0) {
		rv = exchange(ch->conn, &ch->sbuf, &ch->spin, req, deadline,
		    kind, reply);
		/*
		 * After any failure the stream may hold a late reply or half
		 * a message: only a fresh channel is known to be in step.
		 */
		chan_put(m, ch, rv != 0);
	}
	mp_obj_unref(req);
	/* Shut down meanwhile: whatever the server said, the manager is
	 * closed (a call blocked in the server sees it die first). */
	if (atomic_load(&m->closed)) {
		if (rv == 0) {
			mp_obj_unref(*reply);
		}
		rv = MP_ECLOSED;
	}
	return rv;
}

/* ---- Public functions ---------------------------------------------------- */

int
mp_manager_connect(const char *address, const void *authkey, size_t keylen,
    int64_t timeout_ms, mp_manager_t **out)
{
	MP_ASSERT(address != NULL && authkey != NULL && out != NULL);
	mp_manager_t *m;
	int rv = mp__mgr_new(address, authkey, keylen, timeout_ms, &m);
	if (rv != 0) {
		return rv;
	}
	rv = mp__mgr_server_call(m, "dummy", NULL, NULL, NULL);
	if (rv != 0) {
		mp__mgr_unref(m);
		return rv;
	}
	*out = m;
	return 0;
}

const char *
mp_manager_address(const mp_manager_t *m)
{
	MP_ASSERT(m != NULL);
	return m->address;
}

const void *
mp_manager_authkey(const mp_manager_t *m, size_t *keylen)
{
	MP_ASSERT(m != NULL);
	if (keylen != NULL) {
		*keylen = m->keylen;
	}
	return m->authkey;
}

pid_t
mp_manager_server_pid(const mp_manager_t *m)
{
	MP_ASSERT(m != NULL);
	return m->server != NULL ? mp_process_pid(m->server) : 0;
}

void
mp_manager_set_timeout(mp_manager_t *m, int64_t timeout_ms)
{
	MP_ASSERT(m != NULL);
	atomic_store(&m->timeout_ms, timeout_ms < 0 ? MP_FOREVER : timeout_ms);
}

int
mp_manager_number_of_objects(mp_manager_t *m, size_t *out)
{
	MP_ASSERT(m != NULL && out != NULL);
	if (atomic_load(&m->closed)) {
		return MP_ECLOSED;
	}
	mp_obj_t *n = NULL;
	int rv = mp__mgr_server_call(m, "number_of_objects", NULL, NULL, &n);
	if (rv != 0) {
		return rv;
	}
	int64_t v = 0;
	rv = mp_int_value(n, &v);
	mp_obj_unref(n);
	if (rv != 0 || v < 0) {
		return -EPROTO;
	}
	*out = (size_t)v;
	return 0;
}

int
mp_manager_shutdown(mp_manager_t *m)
{
	MP_ASSERT(m != NULL);
	if (m->server != NULL && m->owner != getpid()) {
		return -ECHILD;
	}
	if (atomic_exchange(&m->closed, true)) {
		return MP_ECLOSED;
	}
	mp__mgr_close_chans(m);
	if (m->server != NULL) {
		mp__mgr_stop_server(m);
		return 0;
	}
	return mp__mgr_server_call(m, "shutdown", NULL, NULL, NULL);
}

void
mp_manager_free(mp_manager_t *m)
{
	if (m == NULL) {
		return;
	}
	atomic_store(&m->closed, true);
	if (m->server != NULL) {
		if (m->owner == getpid()) {
			mp__mgr_stop_server(m);
		} else {
			/* A child's copy of the handle: memory only. */
			(void)mp_process_free(m->server);
			m->server = NULL;
		}
	}
	mp__mgr_close_chans(m);
	mp__mgr_unref(m);
}

/*
 * At exit, stop the servers this process started and did not stop. The
 * managers are collected under the registry lock and stopped outside it:
 * stopping joins a process, and a fork elsewhere takes the locks in the
 * other order.
 */
void mp__mgr_exit_function(void);

void
mp__mgr_exit_function(void)
{
	pid_t self = getpid();
	for (;;) {
		mp_manager_t *m = NULL;
		pthread_mutex_lock(&reg_lock);
		for (mp_manager_t *i = reg_head; i != NULL; i = i->reg_next) {
			if (i->server != NULL && i->owner == self) {
				m = i;
				mp__mgr_ref(m);
				break;
			}
		}
		pthread_mutex_unlock(&reg_lock);
		if (m == NULL) {
			return;
		}
		atomic_store(&m->closed, true);
		mp__mgr_stop_server(m);
		mp__mgr_unref(m);
	}
}
