/* SPDX-License-Identifier: MIT */
/* fuzz_pickle.c: libFuzzer target for the pickle decoder, plain and with the manager's whitelist. */
#include <mproc.h>
#include <string.h>

#include "fuzz_common.h"
#include "manager/protocol.h"
#include "obj/obj_impl.h"

/*
 * Every input is decoded twice: with the default options (no globals, as
 * mp_conn_recv decodes), and with the manager's whitelist, so the GLOBAL,
 * STACK_GLOBAL, REDUCE, NEWOBJ and BUILD paths and the reduce hooks
 * (builtins.list, slice, bytearray, ...) run too. What decodes must also
 * print (repr) and, when pickle can carry it, survive a round trip: the
 * re-encoded bytes decode again, to an equal value (unless a float is in
 * it: NaN is not equal to itself), and encode to the same bytes.
 *
 * repr is capped at REPR_CAP here, not mp_obj_repr's 16 MiB: a few bytes
 * of pickle make a value shared so many times over that its text is
 * endless (t = (t, t) nested 60 deep), and printing 16 MiB of it for each
 * such input made the target 40 times slower. Below the cap the text is
 * mp_obj_repr's; past it, the same -ENOMEM. A value that is not shared
 * prints whole: from 4 KiB of pickle (scripts/fuzz) the longest text is
 * some 28 KiB (a list of 4,000 False or set(), 7 characters a byte).
 */

#define REPR_CAP ((size_t)32 << 10)

static void
round_trip(const mp_obj_t *o, const struct mp_pickle_opts *opts)
{
	char *text = NULL;
	int rv = mp__obj_repr_max(o, REPR_CAP, &text);
	fuzz_check(rv == 0 || rv == -ENOMEM, "repr failed");
	mp_free(text);
	void *enc = NULL;
	size_t len = 0;
	if (mp_pickle_dumps(o, &enc, &len) != 0) {
		return; /* not every decoded value can be encoded (-EINVAL) */
	}
	mp_obj_t *again = NULL;
	rv = mp_pickle_loads(enc, len, opts, &again);
	fuzz_check(rv == 0, "our own encoding does not decode");
	/* BINFLOAT is the encoder's only float opcode; a G among other
	 * bytes only skips the check. */
	fuzz_check(memchr(enc, 'G', len) != NULL || mp_obj_equal(o, again),
	    "a round trip changed the value");
	void *enc2 = NULL;
	size_t len2 = 0;
	rv = mp_pickle_dumps(again, &enc2, &len2);
	fuzz_check(rv == 0, "a decoded encoding does not encode");
	fuzz_check(len == len2 && memcmp(enc, enc2, len) == 0,
	    "encoding is not stable across a round trip");
	mp_free(enc2);
	mp_obj_unref(again);
	mp_free(enc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[160];
	struct mp_pickle_opts plain = { .errbuf = why,
		.errbuf_len = sizeof(why) };
	mp_obj_t *o = NULL;
	if (mp_pickle_loads(data, size, &plain, &o) == 0) {
		round_trip(o, &plain);
		mp_obj_unref(o);
	}
	o = NULL;
	if (mp__mgr_decode(data, size, 0, &o, why, sizeof(why)) == 0) {
		struct mp_pickle_opts mgr = { .globals = mp__mgr_globals,
			.n_globals = mp__mgr_n_globals };
		round_trip(o, &mgr);
		mp_obj_unref(o);
	}
	return 0;
}
