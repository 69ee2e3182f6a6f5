/* SPDX-License-Identifier: MIT */
/* examples/pipe.c: the lecture's Pipe example: a child squares a list. */
#include <mproc.h>

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

/* def funcao(con): the child's end receives the list, answers squares. */
static int
funcao(void *arg)
{
	mp_conn_t *con = arg;
	mp_obj_t *lista = NULL;
	check(mp_conn_recv(con, MP_FOREVER, &lista), "recv");
	char *text = NULL;
	check(mp_obj_str(lista, &text), "str");
	printf("Recebido...%s\n", text);
	mp_free(text);

	mp_obj_t *res = mp_list_new();
	for (size_t i = 0; res != NULL && i < mp_obj_len(lista); i++) {
		int64_t n = 0;
		check(mp_int_value(mp_list_get(lista, (ssize_t)i), &n), "int");
		check(mp_list_append(res, mp_int(n * n)), "append");
	}
	check(res != NULL ? 0 : -ENOMEM, "list");
	check(mp_conn_send(con, res), "send");
	mp_obj_unref(res);
	mp_obj_unref(lista);
	mp_conn_close(con);
	return 0;
}

int
main(void)
{
	mp_conn_t *con_pai = NULL, *con_filho = NULL;
	check(mp_pipe(&con_pai, &con_filho, true), "Pipe");
	mp_process_t *p = NULL;
	check(mp_process_new(funcao, con_filho, NULL, &p), "Process");
	check(mp_process_start(p), "start");

	mp_obj_t *lista = mp_list_of(5, mp_int(1), mp_int(2), mp_int(3),
	    mp_int(4), mp_int(5));
	check(lista != NULL ? 0 : -ENOMEM, "list");
	check(mp_conn_send(con_pai, lista), "send");
	mp_obj_unref(lista);
	mp_obj_t *res = NULL;
	check(mp_conn_recv(con_pai, MP_FOREVER, &res), "recv");
	char *text = NULL;
	check(mp_obj_str(res, &text), "str");
	printf("%s\n", text);
	mp_free(text);
	mp_obj_unref(res);

	check(mp_process_join(p, MP_FOREVER), "join");
	check(mp_process_free(p), "close");
	mp_conn_close(con_pai);
	mp_conn_close(con_filho);
	return 0;
}
