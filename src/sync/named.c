/* SPDX-License-Identifier: MIT */
/* sync/named.c: named sync objects and the table close uses. */
#include "sync/lock_internal.h"
#include "shared/arena.h"

#include <pthread.h>
#include <string.h>

/*
 * Handles of named objects point straight at the shared state, so the
 * fast paths of shared and named objects are the same code. What close
 * needs (the mapping) lives in this process-local list instead; a process
 * has few named objects open, so a list is enough.
 */
struct named_entry {
	struct named_entry *next;
	struct mp__named named;
};

static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static struct named_entry *table;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

/* Another thread may hold the mutex at fork; the child has only us. */
static void
table_atfork_child(void)
{
	pthread_mutex_init(&table_mu, NULL);
}

static void
table_register(void)
{
	pthread_atfork(NULL, NULL, table_atfork_child);
}

int
mp__sync_named_open(const char *kind, const char *name, size_t size,
    int flags, void (*init)(void *mem, void *arg), void *arg, void **mem)
{
	if (name == NULL || (flags & ~(MP_CREATE | MP_EXCL)) != 0 ||
	    flags == MP_EXCL) {
		return -EINVAL;
	}
	pthread_once(&table_once, table_register);
	struct named_entry *e = mp__calloc(1, sizeof(*e));
	if (e == NULL) {
		return -ENOMEM;
	}
	int rv = mp__named_open(kind, name, size, (flags & MP_CREATE) != 0,
	    (flags & MP_EXCL) != 0, init, arg, &e->named);
	if (rv != 0) {
		mp__free(e);
		return rv;
	}
	pthread_mutex_lock(&table_mu);
	e->next = table;
	table = e;
	pthread_mutex_unlock(&table_mu);
	*mem = e->named.mem;
	return 0;
}

bool
mp__sync_named_close(void *mem)
{
	if (mem == NULL) {
		return true;
	}
	pthread_mutex_lock(&table_mu);
	struct named_entry **p = &table;
	while (*p != NULL && (*p)->named.mem != mem) {
		p = &(*p)->next;
	}
	struct named_entry *e = *p;
	if (e != NULL) {
		*p = e->next;
	}
	pthread_mutex_unlock(&table_mu);
	if (e == NULL) {
		return false;
	}
	mp__named_close(&e->named);
	mp__free(e);
	return true;
}

int
mp__sync_named_unlink(const char *kind, const char *name)
{
	if (name == NULL || name[0] == '\0' || strlen(name) > 200 ||
	    strchr(name, '/') != NULL) {
		return -EINVAL;
	}
	struct mp__named n = { 0 };
	snprintf(n.path, sizeof(n.path), "/mproc.%s.%s", kind, name);
	return mp__named_unlink(&n);
}
