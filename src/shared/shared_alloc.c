/* SPDX-License-Identifier: MIT */
/* shared/shared_alloc.c: mp_shared_alloc and mp_shared_free, the arena as public API. */
#include "shared/arena.h"

#include <mproc/shared.h>

int
mp_shared_alloc(size_t size, void **out)
{
	if (out == NULL) {
		return -EINVAL;
	}
	return mp__arena_alloc(size, out);
}

void
mp_shared_free(void *p)
{
	mp__arena_free(p);
}
