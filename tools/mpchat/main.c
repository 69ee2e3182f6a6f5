/* SPDX-License-Identifier: MIT */
/* main.c: mpchat's commands, options and the chat's manager server. */
#include "mpchat.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static mp_manager_server_t *server;

static void
usage(FILE *f)
{
	fputs("usage: mpchat serve [--listen ADDRESS] [--free] [options]\n"
	    "       mpchat join NAME [--connect ADDRESS] [--room ROOM] "
	    "[options]\n"
	    "\n"
	    "A chat through a manager server (the lecture's BaseManager\n"
	    "exercise): two people whose turns alternate, the first to join\n"
	    "writing first; or, with --room, any number who write whenever\n"
	    "they like. Type /quit (or end the input) to leave.\n"
	    "\n"
	    "  --listen ADDRESS       serve: HOST:PORT, :PORT or a Unix\n"
	    "                         socket path (default "
	    CHAT_DEFAULT_ADDRESS ")\n"
	    "  --free                 serve: no turns, both write whenever\n"
	    "                         they like\n"
	    "  --connect ADDRESS      join: the server's address (same forms,\n"
	    "                         default " CHAT_DEFAULT_ADDRESS ")\n"
	    "  --room ROOM            join: the room ROOM (made on the first\n"
	    "                         join), where everyone reads one order\n"
	    "  --authkey-file FILE    read the authkey from FILE (all bytes)\n"
	    "                         default: $MPROC_AUTHKEY\n"
	    "  -v, --verbose          serve: log connections on stderr\n"
	    "  -h, --help             this text\n"
	    "\n"
	    "serve prints the address it listens on when ready and stops on\n"
	    "SIGINT or SIGTERM. Exit status of join: 0 the conversation ended\n"
	    "or you left, 1 the server or the partner was lost, 2 usage, 3\n"
	    "the chat or room is full or the name taken.\n", f);
}

static int
read_key_file(const char *path, struct chat_opts *o)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		return -errno;
	}
	o->keylen = fread(o->key, 1, sizeof(o->key), f);
	int bad = ferror(f) || !feof(f);
	if (!bad) {
		/* A key of exactly the buffer's size leaves EOF unseen. */
		bad = fgetc(f) != EOF;
	}
	fclose(f);
	return bad ? -EFBIG : 0;
}

static int
key_from_env(struct chat_opts *o)
{
	const char *env = getenv("MPROC_AUTHKEY");
	if (env == NULL) {
		fputs("mpchat: no authkey: set MPROC_AUTHKEY or use "
		    "--authkey-file\n", stderr);
		return CHAT_EXIT_USAGE;
	}
	o->keylen = strlen(env);
	if (o->keylen > sizeof(o->key)) {
		fputs("mpchat: authkey too long\n", stderr);
		return CHAT_EXIT_USAGE;
	}
	memcpy(o->key, env, o->keylen);
	return 0;
}

static void
log_line(void *user, enum mp_manager_log_level level, const char *line)
{
	(void)user;
	(void)level;
	fprintf(stderr, "mpchat serve: %s\n", line);
}

static void
on_signal(int sig)
{
	(void)sig;
	mp_manager_server_shutdown(server);
}

/*
 * The seats dict's first content, as the arguments of its constructor:
 * the server's identity, new at each start, by which participants tell a
 * restarted server from theirs, and {"mode": "free"} for a free-order
 * chat: both participants read how the chat goes from there.
 */
static mp_obj_t *
initial_seats(bool free_order)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char id[64];
	snprintf(id, sizeof(id), "%ld-%lld.%09ld", (long)getpid(),
	    (long long)ts.tv_sec, (long)ts.tv_nsec);
	mp_obj_t *d = mp_dict_new();
	int rv = d == NULL ? -ENOMEM : mp_dict_set(d, mp_str("server"),
	    mp_str(id));
	if (rv == 0 && free_order) {
		rv = mp_dict_set(d, mp_str("mode"), mp_str("free"));
	}
	if (rv != 0) {
		mp_obj_unref(d);
		return NULL;
	}
	return mp_tuple_of(1, d);
}

/* The lecture's get_queue, three times, and the rooms' typeid. */
static int
register_all(const mp_obj_t *seats_args)
{
	static const char *const shared[][2] = {
		{ CHAT_INBOX1, "Queue" },
		{ CHAT_INBOX2, "Queue" },
		{ CHAT_SEATS, "dict" },
	};
	int rv = 0;
	const char *what = CHAT_ROOM;
	for (size_t i = 0; rv == 0 && i < 3; i++) {
		what = shared[i][0];
		rv = mp_manager_server_register_shared(server, what,
		    shared[i][1], i == 2 ? seats_args : NULL);
	}
	if (rv == 0) {
		what = CHAT_ROOM;
		rv = mp_manager_server_register(server, what, &chat_room_type);
	}
	if (rv != 0) {
		fprintf(stderr, "mpchat: cannot register %s: %s\n", what,
		    mp_strerror(rv));
	}
	return rv;
}

int
chat_serve(const struct chat_opts *o, bool verbose, bool free_order)
{
	struct mp_manager_server_opts so = { 0 };
	/* Chat lines are short: a client sending more is cut off before
	 * the server holds its megabytes. */
	so.max_message = 1 << 20;
	so.log = log_line;
	so.log_level = verbose ? MP_MANAGER_LOG_INFO : MP_MANAGER_LOG_ERROR;
	int rv = mp_manager_server_open(o->address, o->key, o->keylen, &so,
	    &server);
	if (rv != 0) {
		fprintf(stderr, "mpchat: cannot listen on %s: %s\n",
		    o->address, mp_strerror(rv));
		return CHAT_EXIT_LOST;
	}
	mp_obj_t *seats_args = initial_seats(free_order);
	if (seats_args == NULL) {
		fputs("mpchat: out of memory\n", stderr);
		mp_manager_server_close(server);
		return CHAT_EXIT_LOST;
	}
	rv = register_all(seats_args);
	mp_obj_unref(seats_args);
	if (rv != 0) {
		mp_manager_server_close(server);
		return CHAT_EXIT_LOST;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* The address alone on a line: scripts and tests wait for it. */
	printf("%s\n", mp_manager_server_address(server));
	fflush(stdout);
	rv = mp_manager_server_serve(server);
	mp_manager_server_close(server);
	chat_rooms_free();
	if (rv != 0) {
		fprintf(stderr, "mpchat: %s\n", mp_strerror(rv));
		return CHAT_EXIT_LOST;
	}
	return CHAT_EXIT_OK;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return CHAT_EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
		usage(stdout);
		return CHAT_EXIT_OK;
	}
	bool serve = strcmp(cmd, "serve") == 0;
	if (!serve && strcmp(cmd, "join") != 0) {
		fprintf(stderr, "mpchat: unknown command %s\n", cmd);
		usage(stderr);
		return CHAT_EXIT_USAGE;
	}
	static struct chat_opts o = { .address = CHAT_DEFAULT_ADDRESS };
	const char *name = NULL;
	const char *room = NULL;
	bool have_key = false;
	bool verbose = false;
	bool free_order = false;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return CHAT_EXIT_OK;
		} else if (serve && (strcmp(a, "-v") == 0 ||
		    strcmp(a, "--verbose") == 0)) {
			verbose = true;
			continue;
		} else if (serve && strcmp(a, "--free") == 0) {
			free_order = true;
			continue;
		} else if (a[0] != '-' && !serve && name == NULL) {
			name = a;
			continue;
		}
		bool takes = strcmp(a, "--authkey-file") == 0 ||
		    strcmp(a, serve ? "--listen" : "--connect") == 0 ||
		    (!serve && strcmp(a, "--room") == 0);
		if (!takes) {
			fprintf(stderr, "mpchat: unexpected argument %s\n", a);
			usage(stderr);
			return CHAT_EXIT_USAGE;
		}
		if (v == NULL) {
			fprintf(stderr, "mpchat: %s needs a value\n", a);
			return CHAT_EXIT_USAGE;
		}
		i++;
		if (strcmp(a, "--authkey-file") == 0) {
			int rv = read_key_file(v, &o);
			if (rv != 0) {
				fprintf(stderr, "mpchat: %s: %s\n", v,
				    rv == -EFBIG ? "authkey too long" :
				    mp_strerror(rv));
				return CHAT_EXIT_USAGE;
			}
			have_key = true;
		} else if (strcmp(a, "--room") == 0) {
			room = v;
		} else {
			o.address = v;
		}
	}
	if (!serve && name == NULL) {
		fputs("mpchat: join needs a NAME\n", stderr);
		usage(stderr);
		return CHAT_EXIT_USAGE;
	}
	if (!serve && (!chat_name_ok(name) ||
	    (room != NULL && !chat_name_ok(room)))) {
		fprintf(stderr, "mpchat: a %s is 1 to %d bytes of UTF-8 "
		    "without spaces, colons or control characters\n",
		    chat_name_ok(name) ? "room name" : "name", CHAT_MAX_NAME);
		return CHAT_EXIT_USAGE;
	}
	if (!have_key) {
		int rv = key_from_env(&o);
		if (rv != 0) {
			return rv;
		}
	}
	if (serve) {
		return chat_serve(&o, verbose, free_order);
	}
	return room != NULL ? chat_room_join(&o, name, room) :
	    chat_join(&o, name);
}
