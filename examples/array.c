/* SPDX-License-Identifier: MIT */
/* array.c: the lecture's Array example: ten ints, += 1 and -= 1 under the lock. */
#include <mproc.h>
#include <mproc/shared.h>

#include <stdio.h>

#define ROUNDS 5000

/* def soma(vet): with vet.get_lock(): vet[a] += 1, spelled out. */
static int
soma(void *arg)
{
	mp_array_t *vet = arg;
	int *elems = mp_array_ptr(vet);
	for (size_t a = 0; a < mp_array_len(vet); a++) {
		for (int b = 0; b < ROUNDS; b++) {
			if (mp_array_lock(vet, MP_FOREVER) != 0) {
				return 1;
			}
			elems[a] += 1;
			mp_array_unlock(vet);
		}
	}
	return 0;
}

/*
 * def subtracao(vet): through the accessor, which takes the lock. The
 * lecture's version took n and used the global vet; here the array is the
 * argument.
 */
static int
subtracao(void *arg)
{
	mp_array_t *vet = arg;
	for (size_t a = 0; a < mp_array_len(vet); a++) {
		for (int b = 0; b < ROUNDS; b++) {
			if (mp_array_add_long(vet, a, -1) != 0) {
				return 1;
			}
		}
	}
	return 0;
}

static int
fail(const char *what, int rv)
{
	fprintf(stderr, "array: %s: %s\n", what, mp_strerror(rv));
	return 1;
}

int
main(void)
{
	/* Array('i', [0 for a in range(10)], lock=True) */
	mp_array_t *vet;
	int rv = mp_array_new('i', 10, NULL, NULL, &vet);
	if (rv != 0) {
		return fail("Array", rv);
	}
	mp_process_t *p_soma, *p_subtracao;
	rv = mp_process_new(soma, vet, NULL, &p_soma);
	if (rv == 0) {
		rv = mp_process_new(subtracao, vet, NULL, &p_subtracao);
	}
	if (rv != 0) {
		return fail("Process", rv);
	}
	rv = mp_process_start(p_soma);
	if (rv == 0) {
		rv = mp_process_start(p_subtracao);
	}
	if (rv != 0) {
		return fail("start", rv);
	}
	mp_process_join(p_soma, MP_FOREVER);
	mp_process_join(p_subtracao, MP_FOREVER);

	/* print(vet[:]) */
	mp_obj_t *list;
	char *text;
	rv = mp_array_get_obj(vet, &list);
	if (rv == 0) {
		rv = mp_obj_str(list, &text);
		mp_obj_unref(list);
	}
	if (rv != 0) {
		return fail("vet[:]", rv);
	}
	puts(text);
	mp_free(text);
	int code_soma = 1, code_subtracao = 1;
	mp_process_exitcode(p_soma, &code_soma);
	mp_process_exitcode(p_subtracao, &code_subtracao);
	mp_process_free(p_soma);
	mp_process_free(p_subtracao);
	mp_array_free(vet);
	return code_soma == 0 && code_subtracao == 0 ? 0 : 1;
}
