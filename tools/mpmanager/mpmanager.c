/* SPDX-License-Identifier: MIT */
/* mpmanager: a standalone manager server for CPython's BaseManager and SyncManager clients. */
#include <mproc.h>
#if __has_include(<mproc/manager_server.h>)
/* Until mproc.h includes it (the lead adds it there). */
#include <mproc/manager_server.h>
#endif

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_REGISTER 64
#define MAX_KEY 4096

static mp_manager_server_t *server;

static void
usage(FILE *f)
{
	fputs("usage: mpmanager --listen ADDRESS [options]\n"
	    "\n"
	    "Serve shared objects to CPython's multiprocessing managers\n"
	    "(BaseManager.connect(), SyncManager.connect()) and to mproc.\n"
	    "\n"
	    "  --listen ADDRESS       HOST:PORT, [V6]:PORT, :PORT (every IPv4\n"
	    "                         interface) or a Unix socket path\n"
	    "  --authkey-file FILE    read the authkey from FILE (all bytes)\n"
	    "  --authkey KEY          the authkey itself (visible in ps!)\n"
	    "                         default: $MPROC_AUTHKEY\n"
	    "  --register NAME=TYPEID NAME stands for one shared object of\n"
	    "                         TYPEID (Queue, dict, list, Event, ...),\n"
	    "                         as register(NAME, callable=lambda: obj)\n"
	    "  --max-message BYTES    largest request, and most items a list\n"
	    "                         repeat may make (default 64 MiB)\n"
	    "  --orphan-grace MS      release a vanished client's references\n"
	    "                         after MS ms (default 60000; -1: never)\n"
	    "  -v, --verbose          also log every request\n"
	    "  -q, --quiet            log errors only, not connections\n"
	    "  -h, --help             this text\n"
	    "\n"
	    "Prints the bound address on stdout when ready; stops on SIGINT\n"
	    "and SIGTERM, or when a client calls shutdown.\n", f);
}

static void
log_line(void *user, enum mp_manager_log_level level, const char *line)
{
	(void)user;
	static const char *const names[] = { "error", "info", "debug" };
	time_t now = time(NULL);
	struct tm tm;
	char when[32];
	localtime_r(&now, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	fprintf(stderr, "mpmanager %s %s: %s\n", when, names[level], line);
}

static void
on_signal(int sig)
{
	(void)sig;
	mp_manager_server_shutdown(server);
}

static int
read_key_file(const char *path, char *buf, size_t cap, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		return -errno;
	}
	*len = fread(buf, 1, cap, f);
	int bad = ferror(f) || !feof(f);
	fclose(f);
	return bad ? -EFBIG : 0;
}

int
main(int argc, char **argv)
{
	const char *listen = NULL;
	const char *regs[MAX_REGISTER];
	size_t nregs = 0;
	char key[MAX_KEY];
	size_t keylen = 0;
	bool have_key = false;
	struct mp_manager_server_opts opts = { 0 };
	opts.log = log_line;
	opts.log_level = MP_MANAGER_LOG_INFO;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "-v") == 0 ||
		    strcmp(a, "--verbose") == 0) {
			opts.log_level = MP_MANAGER_LOG_DEBUG;
			continue;
		} else if (strcmp(a, "-q") == 0 ||
		    strcmp(a, "--quiet") == 0) {
			opts.log_level = MP_MANAGER_LOG_ERROR;
			continue;
		}
		if (v == NULL) {
			fprintf(stderr, "mpmanager: %s needs a value\n", a);
			usage(stderr);
			return 2;
		}
		i++;
		if (strcmp(a, "--listen") == 0) {
			listen = v;
		} else if (strcmp(a, "--authkey") == 0) {
			fprintf(stderr, "mpmanager: warning: --authkey "
			    "shows the key to every user (ps); prefer "
			    "MPROC_AUTHKEY or --authkey-file\n");
			keylen = strlen(v);
			if (keylen > sizeof(key)) {
				fputs("mpmanager: authkey too long\n", stderr);
				return 2;
			}
			memcpy(key, v, keylen);
			have_key = true;
		} else if (strcmp(a, "--authkey-file") == 0) {
			int rv = read_key_file(v, key, sizeof(key), &keylen);
			if (rv != 0) {
				fprintf(stderr, "mpmanager: %s: %s\n", v,
				    mp_strerror(rv));
				return 2;
			}
			have_key = true;
		} else if (strcmp(a, "--register") == 0) {
			if (nregs == MAX_REGISTER || strchr(v, '=') == NULL) {
				fprintf(stderr, "mpmanager: --register wants "
				    "NAME=TYPEID\n");
				return 2;
			}
			regs[nregs++] = v;
		} else if (strcmp(a, "--max-message") == 0) {
			opts.max_message = (size_t)strtoull(v, NULL, 10);
		} else if (strcmp(a, "--orphan-grace") == 0) {
			opts.orphan_grace_ms = strtoll(v, NULL, 10);
		} else {
			fprintf(stderr, "mpmanager: unknown option %s\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (listen == NULL) {
		fprintf(stderr, "mpmanager: --listen is required\n");
		usage(stderr);
		return 2;
	}
	if (!have_key) {
		const char *env = getenv("MPROC_AUTHKEY");
		if (env == NULL) {
			fprintf(stderr, "mpmanager: no authkey: set "
			    "MPROC_AUTHKEY or use --authkey-file\n");
			return 2;
		}
		keylen = strlen(env);
		if (keylen > sizeof(key)) {
			fprintf(stderr, "mpmanager: authkey too long\n");
			return 2;
		}
		memcpy(key, env, keylen);
	}
	int rv = mp_manager_server_open(listen, key, keylen, &opts, &server);
	if (rv != 0) {
		fprintf(stderr, "mpmanager: cannot listen on %s: %s\n", listen,
		    mp_strerror(rv));
		return 1;
	}
	for (size_t i = 0; i < nregs; i++) {
		char name[256];
		const char *eq = strchr(regs[i], '=');
		snprintf(name, sizeof(name), "%.*s", (int)(eq - regs[i]),
		    regs[i]);
		rv = mp_manager_server_register_shared(server, name, eq + 1,
		    NULL);
		if (rv != 0) {
			fprintf(stderr, "mpmanager: --register %s: %s\n",
			    regs[i], rv == -ENOENT ? "unknown typeid" :
			    mp_strerror(rv));
			mp_manager_server_close(server);
			return 2;
		}
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	printf("%s\n", mp_manager_server_address(server));
	fflush(stdout);
	rv = mp_manager_server_serve(server);
	mp_manager_server_close(server);
	if (rv != 0) {
		fprintf(stderr, "mpmanager: %s\n", mp_strerror(rv));
		return 1;
	}
	return 0;
}
