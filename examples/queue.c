/* SPDX-License-Identifier: MIT */
/* queue.c: the lecture's Queue example: a child puts a list with its name, the parent prints what the queue holds. */
#include <mproc.h>
#include <mproc/queue.h>

#include <stdio.h>

/* def funcao(q): q.put([current_process().name, 42, None, 'hello']) */
static int
funcao(void *arg)
{
	mp_queue_t *q = arg;
	const char *nome_processo = mp_process_name(mp_current_process());
	mp_obj_t *msg = mp_list_of(4, mp_str(nome_processo), mp_int(42),
	    mp_none(), mp_str("hello"));
	int rv = mp_queue_put(q, msg, MP_FOREVER);
	mp_obj_unref(msg);
	/* No feeder thread: the message is in the queue once put returns. */
	return rv == 0 ? 0 : 1;
}

static int
fail(const char *what, int rv)
{
	fprintf(stderr, "queue: %s: %s\n", what, mp_strerror(rv));
	return 1;
}

int
main(void)
{
	mp_queue_t *q;
	int rv = mp_queue_new(0, NULL, &q);
	if (rv != 0) {
		return fail("Queue", rv);
	}
	mp_process_t *p;
	rv = mp_process_new(funcao, q, NULL, &p);
	if (rv == 0) {
		rv = mp_process_start(p);
	}
	if (rv != 0) {
		return fail("Process", rv);
	}
	mp_process_join(p, MP_FOREVER);

	/* while not q.empty(): print(q.get()) */
	while (!mp_queue_empty(q)) {
		mp_obj_t *item;
		char *text;
		rv = mp_queue_get(q, &item, MP_FOREVER);
		if (rv != 0) {
			return fail("get", rv);
		}
		rv = mp_obj_str(item, &text);
		mp_obj_unref(item);
		if (rv != 0) {
			return fail("str", rv);
		}
		puts(text);
		mp_free(text);
	}
	int code = 1;
	mp_process_exitcode(p, &code);
	mp_process_free(p);
	mp_queue_free(q);
	return code;
}
