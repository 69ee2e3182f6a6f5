/* SPDX-License-Identifier: MIT */
/* examples/basemanager_server.c: the lecture's server: get_queue, "abc". */
#include <mproc.h>
#include <mproc/manager_server.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
check(int rv, const char *what)
{
	if (rv != 0) {
		fprintf(stderr, "%s: %s (%s)\n", what, mp_strerror(rv),
		    mp_err_name(rv));
		exit(1);
	}
}

/*
 * Usage: basemanager_server [port]. The lecture listens on every
 * interface at port 50000; with port 0 a free port is chosen and printed
 * once the server listens (what the tests use).
 */
int
main(int argc, char **argv)
{
	const char *port = argc > 1 ? argv[1] : "50000";
	char address[64];
	snprintf(address, sizeof(address), ":%s", port);

	/* QueueManager(address=('', 50000), authkey=b'abc') */
	mp_manager_server_t *s = NULL;
	check(mp_manager_server_open(address, "abc", 3, NULL, &s), "server");
	/* QueueManager.register('get_queue', callable=lambda: queue) */
	check(mp_manager_server_register_shared(s, "get_queue", "Queue",
	    NULL), "register");
	if (strcmp(port, "0") == 0) {
		const char *bound = mp_manager_server_address(s);
		printf("%s\n", strrchr(bound, ':') + 1);
		fflush(stdout);
	}
	/* m.get_server().serve_forever() */
	check(mp_manager_server_serve(s), "serve_forever");
	mp_manager_server_close(s);
	return 0;
}
