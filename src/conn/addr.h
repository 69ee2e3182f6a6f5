/* SPDX-License-Identifier: MIT */
/* conn/addr.h: address strings for Listener and Client (internal). */
#ifndef MP_CONN_ADDR_H
#define MP_CONN_ADDR_H

#include "conn/conn_internal.h"

#include <netdb.h>
#include <sys/un.h>

/* A parsed address: a Unix path, or a host and a port for getaddrinfo. */
struct mp__addr {
	bool is_unix;
	int family;            /* AF_INET, or AF_INET6 for "[...]:port" */
	char host[256];
	char port[8];
	struct sockaddr_un sun;
	socklen_t sun_len;
};

/*
 * Parse "host:port", "[v6]:port", "/path" or "unix:path". Returns 0,
 * -EINVAL, -ENAMETOOLONG (a Unix path that does not fit sun_path).
 */
int mp__conn_parse_address(const char *s, struct mp__addr *a);

/* getaddrinfo for a TCP address: 0, -EHOSTUNREACH, -ENOMEM, -errno. */
int mp__conn_resolve(const struct mp__addr *a, bool passive,
    struct addrinfo **res);

#endif
