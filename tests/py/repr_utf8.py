# SPDX-License-Identifier: MIT
# repr_utf8.py: print, for the pseudo-random byte strings that
# tests/test_interop_repr.c also generates, whether CPython's strict UTF-8
# decoder accepts each one: a line of 0/1 per 100 strings.
import sys

MASK64 = (1 << 64) - 1
# Bytes around every boundary of the UTF-8 tables: ASCII, continuation
# ranges, overlong leads, the surrogate lead 0xed, the last lead 0xf4.
PICK = [0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1,
        0xc2, 0xdf, 0xe0, 0xe1, 0xed, 0xee, 0xef, 0xf0, 0xf3, 0xf4, 0xf5,
        0xf8, 0xff]


def main():
    state = 7
    out = []
    line = []
    for _ in range(20000):
        state = (state * 6364136223846793005 + 1442695040888963407) & MASK64
        n = 1 + (state >> 60) % 6
        bs = bytes(PICK[(state >> (8 * k)) % len(PICK)] for k in range(n))
        try:
            bs.decode("utf-8")
            line.append("1")
        except UnicodeDecodeError:
            line.append("0")
        if len(line) == 100:
            out.append("".join(line))
            line = []
    sys.stdout.write("\n".join(out) + "\n")


main()
