/* SPDX-License-Identifier: MIT */
/* manager/client_start.c: mp_manager_start, a private forked server. */
#include "manager/client_int.h"

#include <mproc/manager_server.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define KEY_LEN 32
#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 5000

void mp__mgr_exit_function(void);

static pthread_mutex_t exit_lock = PTHREAD_MUTEX_INITIALIZER;
static bool exit_registered;

/* What the server child needs; it lives in the parent's stack until the
 * start returns, and the child has its own copy. */
struct server_args {
	const char *path;
	const uint8_t *key;
	int ready_fd;
	int other_fd;
};

/*
 * The server child. It reports the result of binding over the pipe (a
 * negative error, or 0 once it listens), so the parent connects only to
 * a server that is there. SIGINT is ignored as in CPython's manager
 * process: Ctrl-C goes to the whole foreground group, and the parent
 * still needs its server to shut down in order.
 */
static int
server_main(void *arg)
{
	struct server_args *a = arg;
	signal(SIGINT, SIG_IGN);
	close(a->other_fd);
	/* The parent's client connections are not the server's to hold. */
	mp__mgr_drop_inherited();
	mp_manager_server_t *s = NULL;
	int rv = mp_manager_server_open(a->path, a->key, KEY_LEN, NULL, &s);
	ssize_t n = write(a->ready_fd, &rv, sizeof(rv));
	close(a->ready_fd);
	if (rv != 0 || n != (ssize_t)sizeof(rv)) {
		mp_manager_server_close(s);
		return 1;
	}
	rv = mp_manager_server_serve(s);
	mp_manager_server_close(s);
	return rv == 0 ? 0 : 1;
}

/* Read the child's report: 0 listening, else its error. */
static int
wait_ready(int fd)
{
	int64_t deadline = mp__deadline_from_timeout(START_TIMEOUT_MS);
	int w = mp__fd_wait(fd, POLLIN, deadline);
	if (w <= 0) {
		return w == 0 ? -ETIMEDOUT : w;
	}
	int status = 0;
	ssize_t n;
	do {
		n = read(fd, &status, sizeof(status));
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(status)) {
		/* The child died before it could say. */
		return -ECHILD;
	}
	return status;
}

static int
make_tmpdir(char **dir, char **path)
{
	const char *base = getenv("TMPDIR");
	if (base == NULL || base[0] == '\0') {
		base = "/tmp";
	}
	size_t n = strlen(base) + 32;
	*dir = mp__malloc(n);
	*path = mp__malloc(n + 16);
	if (*dir == NULL || *path == NULL) {
		mp__free(*dir);
		mp__free(*path);
		return -ENOMEM;
	}
	snprintf(*dir, n, "%s/mproc-XXXXXX", base);
	if (mkdtemp(*dir) == NULL) {
		int rv = -errno;
		mp__free(*dir);
		mp__free(*path);
		return rv;
	}
	snprintf(*path, n + 16, "%s/manager.sock", *dir);
	return 0;
}

static void
remove_tmpdir(const char *dir, const char *path)
{
	/* The server unlinks its socket; a killed one cannot. */
	(void)unlink(path);
	(void)rmdir(dir);
}

static void
register_exit(void)
{
	/*
	 * Registered after the first server child started, so after the
	 * process layer's own exit function: atexit runs in reverse, and
	 * the servers must be asked to stop before the layer signals and
	 * joins its daemon children.
	 */
	pthread_mutex_lock(&exit_lock);
	if (!exit_registered) {
		exit_registered = atexit(mp__mgr_exit_function) == 0;
	}
	pthread_mutex_unlock(&exit_lock);
}

static int
spawn_server(struct server_args *a, mp_process_t **out)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0) {
		return -errno;
	}
	a->ready_fd = fds[1];
	a->other_fd = fds[0];
	struct mp_process_opts opts = { .name = "SyncManager", .daemon = true };
	mp_process_t *p = NULL;
	int rv = mp_process_new(server_main, a, &opts, &p);
	if (rv == 0) {
		rv = mp_process_start(p);
	}
	close(fds[1]);
	if (rv == 0) {
		rv = wait_ready(fds[0]);
		if (rv != 0) {
			(void)mp_process_kill(p);
			(void)mp_process_join(p, MP_FOREVER);
		}
	}
	close(fds[0]);
	if (rv != 0) {
		(void)mp_process_free(p);
		return rv;
	}
	*out = p;
	return 0;
}

int
mp__mgr_start_server(mp_manager_t *m)
{
	uint8_t key[KEY_LEN];
	if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key)) {
		return -EIO;
	}
	char *dir;
	char *path;
	int rv = make_tmpdir(&dir, &path);
	if (rv != 0) {
		return rv;
	}
	m->authkey = mp__malloc(KEY_LEN);
	if (m->authkey == NULL) {
		rv = -ENOMEM;
		goto out_dir;
	}
	memcpy(m->authkey, key, KEY_LEN);
	m->keylen = KEY_LEN;
	struct server_args a = { .path = path, .key = key };
	rv = spawn_server(&a, &m->server);
	if (rv != 0) {
		goto out_dir;
	}
	register_exit();
	m->address = path;
	m->tmpdir = dir;
	memset(key, 0, sizeof(key));
	return 0;
out_dir:
	memset(key, 0, sizeof(key));
	remove_tmpdir(dir, path);
	mp__free(dir);
	mp__free(path);
	return rv;
}

void
mp__mgr_stop_server(mp_manager_t *m)
{
	mp_process_t *p = m->server;
	if (p == NULL) {
		return;
	}
	/* Ask in order first: the server then unlinks its own socket. */
	int64_t old = atomic_exchange(&m->timeout_ms, STOP_TIMEOUT_MS);
	(void)mp__mgr_server_call(m, "shutdown", NULL, NULL, NULL);
	atomic_store(&m->timeout_ms, old);
	if (mp_process_join(p, STOP_TIMEOUT_MS) != 0) {
		(void)mp_process_kill(p);
		(void)mp_process_join(p, MP_FOREVER);
	}
	(void)mp_process_free(p);
	m->server = NULL;
	remove_tmpdir(m->tmpdir, m->address);
}

int
mp_manager_start(mp_manager_t **out)
{
	MP_ASSERT(out != NULL);
	mp_manager_t *m;
	int rv = mp__mgr_new(NULL, NULL, 0, MP_MANAGER_TIMEOUT_DEFAULT_MS, &m);
	if (rv != 0) {
		return rv;
	}
	rv = mp__mgr_start_server(m);
	if (rv != 0) {
		mp__mgr_unref(m);
		return rv;
	}
	*out = m;
	return 0;
}
