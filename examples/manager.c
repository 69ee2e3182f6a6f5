/* SPDX-License-Identifier: MIT */
/* examples/manager.c: the lecture's Manager(): 10 workers append to a list. */
#include <mproc.h>
#include <mproc/manager.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* Examples stop at the first error, as the Python original would raise. */
static void
check(int rv, const char *what)
{
	if (rv != 0) {
		fprintf(stderr, "%s: %s (%s)\n", what, mp_strerror(rv),
		    mp_err_name(rv));
		exit(1);
	}
}

struct job {
	mp_proxy_t *list;
	int item;
};

/* def worker(list, item): busy a little, append, print item and list. */
static int
worker(void *arg)
{
	struct job *j = arg;
	volatile int x = 0;
	for (int a = 0; a < 10000; a++) {
		x += 1;
	}
	(void)x;
	mp_obj_t *item = mp_int(j->item);
	check(mp_proxy_list_append(j->list, item), "append");
	mp_obj_unref(item);
	/* "{}".format(list) is str(proxy): the server's repr of the list. */
	char *text = NULL;
	check(mp_proxy_repr(j->list, &text), "str");
	printf("%d %s\n", j->item, text);
	mp_free(text);
	return 0;
}

int
main(void)
{
	mp_manager_t *mgr = NULL;
	check(mp_manager_start(&mgr), "Manager");
	mp_proxy_t *list = NULL;
	check(mp_manager_create(mgr, "list", NULL, NULL, &list), "list");

	struct job jobs[10];
	mp_process_t *procs[10];
	for (int i = 0; i < 10; i++) {
		jobs[i] = (struct job){ list, i };
		check(mp_process_new(worker, &jobs[i], NULL, &procs[i]),
		    "Process");
	}
	for (int i = 0; i < 10; i++) {
		check(mp_process_start(procs[i]), "start");
	}
	for (int i = 0; i < 10; i++) {
		check(mp_process_join(procs[i], MP_FOREVER), "join");
		check(mp_process_free(procs[i]), "close");
	}
	char *text = NULL;
	check(mp_proxy_repr(list, &text), "str");
	printf("Results: %s\n", text);
	mp_free(text);

	mp_proxy_free(list);
	mp_manager_free(mgr);
	return 0;
}
