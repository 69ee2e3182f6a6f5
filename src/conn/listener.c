/* SPDX-License-Identifier: MIT */
/* conn/listener.c: Listener and Client on TCP (v4, v6) and Unix stream sockets. */
#include "conn/addr.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define BACKLOG 128
/* "[" + IPv6 text + "]:" + port, or a Unix path with "unix:". */
#define ADDR_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) + 8)

struct mp_listener {
	int fd;
	int family;
	pid_t owner;          /* only the opening process unlinks the path */
	uint8_t *key;         /* NULL: no handshake */
	size_t keylen;
	char address[ADDR_MAX];
};


static int
parse_unix(const char *path, struct mp__addr *a)
{
	size_t n = strlen(path);
	a->is_unix = true;
	if (n == 0) {
		return -EINVAL;
	}
	if (n >= sizeof(a->sun.sun_path)) {
		return -ENAMETOOLONG;
	}
	memset(&a->sun, 0, sizeof(a->sun));
	a->sun.sun_family = AF_UNIX;
	memcpy(a->sun.sun_path, path, n);
	a->sun_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    n + 1);
	return 0;
}

int
mp__conn_parse_address(const char *s, struct mp__addr *a)
{
	if (s == NULL) {
		return -EINVAL;
	}
	if (strncmp(s, "unix:", 5) == 0) {
		return parse_unix(s + 5, a);
	}
	if (s[0] == '/') {
		return parse_unix(s, a);
	}
	a->is_unix = false;
	a->family = AF_INET;
	const char *host = s;
	const char *colon;
	size_t hlen;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':') {
			return -EINVAL;
		}
		host = s + 1;
		hlen = (size_t)(close - host);
		a->family = AF_INET6;
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		/* A second colon: a bare IPv6 address, which needs brackets. */
		if (colon == NULL ||
		    memchr(s, ':', (size_t)(colon - s)) != NULL) {
			return -EINVAL;
		}
		hlen = (size_t)(colon - s);
	}
	const char *port = colon + 1;
	size_t plen = strlen(port);
	if (hlen >= sizeof(a->host) || plen == 0 || plen > 5 ||
	    strspn(port, "0123456789") != plen || atoi(port) > 65535) {
		return -EINVAL;
	}
	memcpy(a->host, host, hlen);
	a->host[hlen] = '\0';
	memcpy(a->port, port, plen + 1);
	return 0;
}

int
mp__conn_resolve(const struct mp__addr *a, bool passive,
    struct addrinfo **res)
{
	/*
	 * "host:port" is IPv4, as CPython's ('host', port) is AF_INET: a
	 * name such as localhost must not turn into ::1, where a Python
	 * client would not find it. IPv6 is asked for with brackets.
	 */
	struct addrinfo hints = {
		.ai_family = a->family,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0),
	};
	const char *host = a->host;
	if (host[0] == '\0') {
		host = passive ? NULL : "127.0.0.1"; /* CPython's ('', port) */
	}
	int rv = getaddrinfo(host, a->port, &hints, res);
	if (rv == EAI_MEMORY) {
		return -ENOMEM;
	}
	if (rv == EAI_SYSTEM) {
		return -errno;
	}
	return rv == 0 ? 0 : -EHOSTUNREACH;
}

void
mp__conn_tune_socket(int fd)
{
	int one = 1;
	/* Fails with EOPNOTSUPP on Unix sockets, which have no Nagle. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Format the bound address the way mp__conn_parse_address reads it. */
static void
format_address(mp_listener_t *l, const struct mp__addr *a)
{
	if (l->family == AF_UNIX) {
		snprintf(l->address, sizeof(l->address), "%s%s",
		    a->sun.sun_path[0] == '/' ? "" : "unix:", a->sun.sun_path);
		return;
	}
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char text[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (getsockname(l->fd, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &s6->sin6_addr, text, sizeof(text));
			port = ntohs(s6->sin6_port);
		} else {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &s4->sin_addr, text, sizeof(text));
			port = ntohs(s4->sin_port);
		}
	}
	snprintf(l->address, sizeof(l->address),
	    l->family == AF_INET6 ? "[%s]:%u" : "%s:%u", text, port);
}

/* Socket, bind and listen on the first address that works. */
static int
bind_listen(mp_listener_t *l, const struct mp__addr *a)
{
	if (a->is_unix) {
		l->fd = socket(AF_UNIX,
		    SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (l->fd < 0) {
			return -errno;
		}
		l->family = AF_UNIX;
		const struct sockaddr *sa = (const struct sockaddr *)&a->sun;
		if (bind(l->fd, sa, a->sun_len) != 0 ||
		    listen(l->fd, BACKLOG) != 0) {
			int rv = -errno;
			close(l->fd);
			return rv;
		}
		return 0;
	}
	struct addrinfo *res;
	int rv = mp__conn_resolve(a, true, &res);
	if (rv != 0) {
		return rv;
	}
	rv = -EADDRNOTAVAIL;
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		l->fd = socket(ai->ai_family,
		    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    ai->ai_protocol);
		if (l->fd < 0) {
			rv = -errno;
			continue;
		}
		int one = 1;
		(void)setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof(one));
		if (bind(l->fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(l->fd, BACKLOG) == 0) {
			l->family = ai->ai_family;
			rv = 0;
			break;
		}
		rv = -errno;
		close(l->fd);
	}
	freeaddrinfo(res);
	return rv;
}

int
mp_listener_open(const char *address, const void *authkey, size_t keylen,
    mp_listener_t **out)
{
	MP_ASSERT(out != NULL);
	struct mp__addr a;
	int rv = mp__conn_parse_address(address, &a);
	if (rv != 0) {
		return rv;
	}
	mp_listener_t *l = mp__calloc(1, sizeof(*l));
	if (l == NULL) {
		return -ENOMEM;
	}
	if (authkey != NULL) {
		l->key = mp__malloc(keylen > 0 ? keylen : 1);
		if (l->key == NULL) {
			rv = -ENOMEM;
			goto out_free;
		}
		memcpy(l->key, authkey, keylen);
		l->keylen = keylen;
	}
	rv = bind_listen(l, &a);
	if (rv != 0) {
		goto out_free;
	}
	l->owner = getpid();
	format_address(l, &a);
	*out = l;
	return 0;
out_free:
	mp__free(l->key);
	mp__free(l);
	return rv;
}

int
mp_listener_accept(mp_listener_t *l, int64_t timeout_ms, mp_conn_t **out)
{
	MP_ASSERT(l != NULL && out != NULL);
	int64_t deadline = mp__deadline_from_timeout(timeout_ms);
	int fd;
	for (;;) {
		/*
		 * The listening socket is non-blocking: after poll says
		 * readable, another process sharing it may still take the
		 * connection first, and accept must not then block.
		 */
		fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			break;
		}
		if (errno == EINTR || errno == ECONNABORTED) {
			continue;
		}
		if (errno != EAGAIN) {
			return -errno;
		}
		int w = mp__fd_wait(l->fd, POLLIN, deadline);
		if (w < 0) {
			return w;
		}
		if (w == 0) {
			return timeout_ms == 0 ? -EAGAIN : -ETIMEDOUT;
		}
	}
	if (l->family != AF_UNIX) {
		mp__conn_tune_socket(fd);
	}
	mp_conn_t *c;
	int rv = mp__conn_new(fd, true, true, true, &c);
	if (rv != 0) {
		close(fd);
		return rv;
	}
	if (l->key != NULL) {
		/* Listener.accept: deliver first, then answer. */
		rv = mp__conn_handshake(c, l->key, l->keylen, true,
		    mp__conn_handshake_deadline(MP_FOREVER));
		if (rv != 0) {
			mp_conn_close(c);
			return rv;
		}
	}
	*out = c;
	return 0;
}

const char *
mp_listener_address(const mp_listener_t *l)
{
	MP_ASSERT(l != NULL);
	return l->address;
}

int
mp_listener_fileno(const mp_listener_t *l)
{
	MP_ASSERT(l != NULL);
	return l->fd;
}

void
mp_listener_close(mp_listener_t *l)
{
	if (l == NULL) {
		return;
	}
	if (l->family == AF_UNIX && l->owner == getpid()) {
		struct mp__addr a;
		if (mp__conn_parse_address(l->address, &a) == 0) {
			(void)unlink(a.sun.sun_path);
		}
	}
	close(l->fd);
	if (l->key != NULL) {
		OPENSSL_cleanse(l->key, l->keylen);
	}
	mp__free(l->key);
	mp__free(l);
}
