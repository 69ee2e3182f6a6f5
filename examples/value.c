/* SPDX-License-Identifier: MIT */
/* value.c: the lecture's Value example: += 1.0 and -= 1 under the lock, 100,000 times each. */
#include <mproc.h>
#include <mproc/shared.h>

#include <stdio.h>

#define ROUNDS 100000

/* def soma(n): with n.get_lock(): n.value += 1.0, spelled out. */
static int
soma(void *arg)
{
	mp_value_t *n = arg;
	mp_lock_t *lock = mp_value_get_lock(n);
	double *value = mp_value_ptr(n);
	for (int a = 0; a < ROUNDS; a++) {
		if (mp_lock_acquire(lock, MP_FOREVER) != 0) {
			return 1;
		}
		*value += 1.0;
		mp_lock_release(lock);
	}
	return 0;
}

/* def subtracao(n): the same through the accessor, which takes the lock. */
static int
subtracao(void *arg)
{
	mp_value_t *n = arg;
	for (int a = 0; a < ROUNDS; a++) {
		if (mp_value_add_long(n, -1) != 0) {
			return 1;
		}
	}
	return 0;
}

static int
fail(const char *what, int rv)
{
	fprintf(stderr, "value: %s: %s\n", what, mp_strerror(rv));
	return 1;
}

int
main(void)
{
	/* Value('d', 0.0, lock=True): NULL options mean a lock of its own. */
	mp_value_t *num;
	double zero = 0.0;
	int rv = mp_value_new('d', &zero, NULL, &num);
	if (rv != 0) {
		return fail("Value", rv);
	}
	mp_process_t *p_soma, *p_subtracao;
	rv = mp_process_new(soma, num, NULL, &p_soma);
	if (rv == 0) {
		rv = mp_process_new(subtracao, num, NULL, &p_subtracao);
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
	/* The lecture printed before joining, catching the value mid-run. */
	mp_process_join(p_soma, MP_FOREVER);
	mp_process_join(p_subtracao, MP_FOREVER);

	/* print(num.value): Python's float repr, "0.0". */
	mp_obj_t *value;
	char *text;
	rv = mp_value_get_obj(num, &value);
	if (rv == 0) {
		rv = mp_obj_str(value, &text);
		mp_obj_unref(value);
	}
	if (rv != 0) {
		return fail("value", rv);
	}
	puts(text);
	mp_free(text);
	int code_soma = 1, code_subtracao = 1;
	mp_process_exitcode(p_soma, &code_soma);
	mp_process_exitcode(p_subtracao, &code_subtracao);
	mp_process_free(p_soma);
	mp_process_free(p_subtracao);
	mp_value_free(num);
	return code_soma == 0 && code_subtracao == 0 ? 0 : 1;
}
