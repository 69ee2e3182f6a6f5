/* SPDX-License-Identifier: MIT */
/* tsan.c: lets Criterion start under ThreadSanitizer (the tsan build only). */
#include "harness/harness.h"

/*
 * Criterion's sandbox (BoxFort) maps its shared arena at a random
 * address between 0x2000'0000'0000 and 0x6000'0000'0000 chosen with
 * rand_r, then passes it to each worker at the same address. Almost all
 * of that span is ThreadSanitizer's shadow and metadata, where TSan
 * refuses fixed mappings, so Criterion does not start ("Could not
 * initialize inheritable arena"). This rand_r, which the test programs
 * of the tsan build define in place of libc's, keeps BoxFort's draws in
 * 0x5500'0000'0000-0x5680'0000'0000, the span TSan leaves to
 * applications (BoxFort still probes that the pages are free). Nothing
 * in mproc calls rand_r; the tests that do only need varied numbers,
 * which this one still gives.
 */
int
rand_r(unsigned *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return 0x350000 + (int)((*seed >> 8) % 0x18000);
}
