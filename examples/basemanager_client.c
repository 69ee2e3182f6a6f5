/* SPDX-License-Identifier: MIT */
/* examples/basemanager_client.c: the lecture's client: 1 puts, 2 gets. */
#include <mproc.h>
#include <mproc/manager.h>

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

/* Usage: basemanager_client 1|2 [port]   (port 50000 as in the lecture). */
int
main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s 1|2 [port]\n", argv[0]);
		return 2;
	}
	char address[64];
	snprintf(address, sizeof(address), "localhost:%s",
	    argc > 2 ? argv[2] : "50000");
	/* QueueManager(address=('localhost', 50000), authkey=b'abc')
	 * .connect() */
	mp_manager_t *m = NULL;
	check(mp_manager_connect(address, "abc", 3, 10000, &m), "connect");

	if (strcmp(argv[1], "1") == 0) {
		mp_proxy_t *queue = NULL;
		check(mp_manager_create(m, "get_queue", NULL, NULL, &queue),
		    "get_queue");
		mp_obj_t *msg = mp_str("hello");
		check(mp_proxy_queue_put(queue, msg, MP_FOREVER), "put");
		mp_obj_unref(msg);
		mp_proxy_free(queue);
	} else if (strcmp(argv[1], "2") == 0) {
		mp_proxy_t *queue = NULL;
		check(mp_manager_create(m, "get_queue", NULL, NULL, &queue),
		    "get_queue");
		mp_obj_t *msg = NULL;
		check(mp_proxy_queue_get(queue, MP_FOREVER, &msg), "get");
		char *text = NULL;
		check(mp_obj_str(msg, &text), "str");
		printf("%s\n", text);
		mp_free(text);
		mp_obj_unref(msg);
		mp_proxy_free(queue);
	}
	printf("Fim...\n");
	mp_manager_free(m);
	return 0;
}
