# SPDX-License-Identifier: MIT
# repr_corpus.py: print repr() (and a few str()) of the corpus that
# tests/test_interop_repr.c builds in C, one value per line, in the same order.
#
# Keep the two lists in step: an item added here is added there at the same
# place. Code points whose printability changed between Unicode 12.1
# (Python 3.8) and 15.1 (Python 3.13) stay out of the corpus.
import math
import struct
import sys
from multiprocessing.managers import Token

inf = float("inf")
nan = float("nan")

MASK64 = (1 << 64) - 1


def lcg(state):
    # Knuth's MMIX LCG; the C side runs the same recurrence.
    return (state * 6364136223846793005 + 1442695040888963407) & MASK64


def bits_to_float(bits):
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def fixed_values():
    return [
        ["Process-1", 42, None, "hello"],
        {"a": (1,)},
        b"\x00",
        1.0, -0.0, 0.0, inf, -inf, nan,
        "it's", 'a"b\'c', 'say "hi"', "both ' and \"", "back\\slash",
        "tab\tnl\nret\r", "\x00\x01\x1f\x7f",
        "é", "中文", "\U0001f600", "e\u0301", "\u200b", "\x7f", "\u0085",
        "\xa0", "\xad", "\u2028", "\u3000", "\ufeff", "\ue000",
        "\U0010ffff", "\U000e0001", "z\u0308\u0323", "Ωμέγα",
        "naïve café – “quotes” ‘single’",
        "",
        True, False, None, 0, 1, -1, 255, 256, -129,
        2**31, 2**63 - 1, -2**63, 2**63, -2**63 - 1, 2**64,
        2**100, -2**100, 10**50, -(10**50) + 1, 2**1000,
        1e16, 1e-5, 1e-4, 0.1, 0.3, 5e-324, 1.7976931348623157e308,
        2.2250738585072014e-308, 1e22, 1e23, 123.456, 1e15, 9999999999999998.0,
        12345678901234567890.0, 1 / 3, 2 / 3, math.pi, -1.5e-10, 100.0,
        1.2345678901234568e17, 0.5, 1e-7, 9007199254740993.0,
        (), (1,), (1, 2), [], {}, set(), frozenset(), b"",
        [[[]]], ((),), [(), [], {}],
        {"k": [1, (2, 3.5), {"x": None}], "b": b"it's", 3: "three"},
        {1: 1.0, 2.5: "x", None: True, (1, "t"): [b"a"]},
        {1}, frozenset({"a"}), [frozenset({(1, 2)})], {"s": {None}},
        bytes(range(256)),
        b"it's", b'a"b\'c', b'"', b"\\", b"\t\n\r\x0b\x0c",
        KeyError("zz"), ValueError(), ValueError("x", 2), RuntimeError([1]),
        Token("Q", ("127.0.0.1", 5000), "7f3a"),
        Token("dict", "/tmp/pymp-x/listener-y", "1a"),
    ]


def str_values():
    return [
        "hello", "it's", KeyError("zz"), ValueError("bad input"),
        ValueError(), ValueError(1, "two"), ValueError(3), 1.5, None,
        [1, "a"], b"x",
    ]


def char_blocks():
    # (first, last) inclusive blocks, printed 16 code points per line.
    return [
        (0x0000, 0x024f), (0x0370, 0x03ff), (0x0590, 0x05ff),
        (0x2000, 0x206f), (0x3000, 0x303f), (0xfe00, 0xfe0f),
        (0xff00, 0xff5f), (0x1f600, 0x1f64f),
    ]


def main():
    out = []
    for v in fixed_values():
        out.append(repr(v))
    for v in str_values():
        out.append(str(v))
    for first, last in char_blocks():
        for cp in range(first, last + 1, 16):
            out.append(repr("".join(chr(c) for c in
                                    range(cp, min(cp + 16, last + 1)))))
    # Powers of two are where the shortest-repr search is hardest: the
    # gap below is half the gap above.
    for e in range(-1074, 1024):
        out.append(repr(2.0 ** e))
    state = 1
    for _ in range(3000):
        state = lcg(state)
        f = bits_to_float(state)
        out.append(repr(f))
        out.append(repr(state >> (state & 63)))
    for k in range(1, 60):
        out.append(repr(3 ** (k * 7) * (-1) ** k))
    sys.stdout.buffer.write(("\n".join(out) + "\n").encode("utf-8"))


main()
