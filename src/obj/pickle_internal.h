/* SPDX-License-Identifier: MIT */
/* obj/pickle_internal.h: pickle opcodes and the in-place encoder (internal). */
#ifndef MP_OBJ_PICKLE_INTERNAL_H
#define MP_OBJ_PICKLE_INTERNAL_H

#include <mproc/obj.h>

#include "core/buf.h"

/* The opcodes of pickle protocols 0 to 5 (CPython's Lib/pickle.py names). */
enum mp__pickle_op {
	MP__OP_MARK = '(',
	MP__OP_STOP = '.',
	MP__OP_POP = '0',
	MP__OP_POP_MARK = '1',
	MP__OP_DUP = '2',
	MP__OP_FLOAT = 'F',
	MP__OP_INT = 'I',
	MP__OP_BININT = 'J',
	MP__OP_BININT1 = 'K',
	MP__OP_LONG = 'L',
	MP__OP_BININT2 = 'M',
	MP__OP_NONE = 'N',
	MP__OP_PERSID = 'P',
	MP__OP_BINPERSID = 'Q',
	MP__OP_REDUCE = 'R',
	MP__OP_STRING = 'S',
	MP__OP_BINSTRING = 'T',
	MP__OP_SHORT_BINSTRING = 'U',
	MP__OP_UNICODE = 'V',
	MP__OP_BINUNICODE = 'X',
	MP__OP_APPEND = 'a',
	MP__OP_BUILD = 'b',
	MP__OP_GLOBAL = 'c',
	MP__OP_DICT = 'd',
	MP__OP_EMPTY_DICT = '}',
	MP__OP_APPENDS = 'e',
	MP__OP_GET = 'g',
	MP__OP_BINGET = 'h',
	MP__OP_INST = 'i',
	MP__OP_LONG_BINGET = 'j',
	MP__OP_LIST = 'l',
	MP__OP_EMPTY_LIST = ']',
	MP__OP_OBJ = 'o',
	MP__OP_PUT = 'p',
	MP__OP_BINPUT = 'q',
	MP__OP_LONG_BINPUT = 'r',
	MP__OP_SETITEM = 's',
	MP__OP_TUPLE = 't',
	MP__OP_EMPTY_TUPLE = ')',
	MP__OP_SETITEMS = 'u',
	MP__OP_BINFLOAT = 'G',
	/* Protocol 2. */
	MP__OP_PROTO = 0x80,
	MP__OP_NEWOBJ = 0x81,
	MP__OP_EXT1 = 0x82,
	MP__OP_EXT2 = 0x83,
	MP__OP_EXT4 = 0x84,
	MP__OP_TUPLE1 = 0x85,
	MP__OP_TUPLE2 = 0x86,
	MP__OP_TUPLE3 = 0x87,
	MP__OP_NEWTRUE = 0x88,
	MP__OP_NEWFALSE = 0x89,
	MP__OP_LONG1 = 0x8a,
	MP__OP_LONG4 = 0x8b,
	/* Protocol 3. */
	MP__OP_BINBYTES = 'B',
	MP__OP_SHORT_BINBYTES = 'C',
	/* Protocol 4. */
	MP__OP_SHORT_BINUNICODE = 0x8c,
	MP__OP_BINUNICODE8 = 0x8d,
	MP__OP_BINBYTES8 = 0x8e,
	MP__OP_EMPTY_SET = 0x8f,
	MP__OP_ADDITEMS = 0x90,
	MP__OP_FROZENSET = 0x91,
	MP__OP_NEWOBJ_EX = 0x92,
	MP__OP_STACK_GLOBAL = 0x93,
	MP__OP_MEMOIZE = 0x94,
	MP__OP_FRAME = 0x95,
	/* Protocol 5. */
	MP__OP_BYTEARRAY8 = 0x96,
	MP__OP_NEXT_BUFFER = 0x97,
	MP__OP_READONLY_BUFFER = 0x98,
};

/*
 * CPython's framing constants (pickle.py _Framer): a frame is committed
 * once it holds _FRAME_SIZE_TARGET bytes, a frame smaller than
 * _FRAME_SIZE_MIN loses its header, and a str or bytes body of
 * _FRAME_SIZE_TARGET bytes or more is written outside any frame.
 */
#define MP__PICKLE_FRAME_TARGET ((size_t)64 * 1024)
#define MP__PICKLE_FRAME_MIN 4
#define MP__PICKLE_FRAME_HDR 9
/* Items per APPENDS, SETITEMS or ADDITEMS, as CPython's BATCHSIZE. */
#define MP__PICKLE_BATCH 1000
/* Deepest nesting either side accepts by default (mp_pickle_opts). */
#define MP__PICKLE_MAX_DEPTH 1000

/*
 * mp__pickle_encode: append the protocol-4 pickle of o to b, exactly the
 * bytes mp_pickle_dumps returns, so a caller can reserve a frame header
 * first and encode after it with no copy. On failure b keeps its old
 * length. Returns 0, -ENOMEM, -EINVAL (a value pickle cannot encode, or
 * nesting deeper than MP__PICKLE_MAX_DEPTH).
 */
int mp__pickle_encode(struct mp__buf *b, const mp_obj_t *o);

#endif
