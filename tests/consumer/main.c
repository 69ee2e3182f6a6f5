/* SPDX-License-Identifier: MIT */
/* main.c: a program outside the mproc tree that uses the installed library. */
#include <mproc.h>

#include <errno.h>
#include <stdio.h>

int
main(void)
{
	/* Something from the library proper, not just the headers. */
	printf("%s %s\n", mp_err_name(-ETIMEDOUT), mp_strerror(MP_EOF));
	void *p = mp_malloc(16);
	mp_free(p);
	return p == NULL;
}
