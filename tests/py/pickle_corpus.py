# SPDX-License-Identifier: MIT
# pickle_corpus.py: CPython's side of test_interop_pickle.c.
#
#   check  stdin holds one record per corpus item (u32 big-endian length,
#          then a pickle made by mproc): each must load to the item and be
#          byte-identical to pickle.dumps(item, 4). Prints "ok" or "FAIL"
#          lines; exits 1 when anything failed.
#   emit   writes pickle.dumps(item, p) for every item and p = 2, 3, 4, 5,
#          item by item, as records of the same form.
#
# The corpus must be built exactly as test_interop_pickle.c builds it,
# sharing objects the same way: CPython memoizes by identity, so one object
# met twice is a BINGET, two equal objects are two copies. Names starting
# with "~" hold sets of strings, whose order CPython chooses by hash: they
# are compared by value only.
import math
import pickle
import struct
import sys
from multiprocessing.managers import Token


def corpus():
    items = []

    def add(name, value):
        items.append((name, value))

    add("none", None)
    add("true", True)
    add("false", False)
    for i, v in enumerate([0, 1, 255, 256, 65535, 65536, -1, -256,
                           2**31 - 1, -2**31, 2**31, 2**63 - 1, -2**63,
                           2**64, -2**64, 2**1000, -2**1000, 2**2100,
                           -2**2100]):
        add("int%d" % i, v)
    for i, v in enumerate([0.0, -0.0, 1.5, 1e300, -2.5e-300,
                           float("inf"), float("-inf"), float("nan")]):
        add("float%d" % i, v)
    add("str_empty", "")
    add("str_ascii", "hello")
    add("str_unicode", "h\u00e9llo w\u00f6rld \u20ac \U0001f40d")
    add("str_300", "a" * 300)
    add("str_70k", "0123456789" * 7168)
    add("bytes_empty", b"")
    add("bytes_small", b"\x00\xff")
    add("bytes_300", b"b" * 300)
    add("bytes_1m", bytes(range(256)) * 4096)
    add("tuple0", ())
    add("tuple1", (1,))
    add("tuple2", (1, 2))
    add("tuple3", (1, 2, 3))
    add("tuple4", (1, 2, 3, 4))
    add("tuple_nested", ("a", ("b", ("c", ()))))
    add("list0", [])
    add("list1", [1])
    add("list2500", list(range(2500)))
    add("list_nested", [[1, [2, [3, []]]]])
    add("list_frames", [list(range(100000 + i, 100100 + i))
                        for i in range(0, 40000, 100)])
    add("dict0", {})
    add("dict1", {"a": 1})
    add("dict1000", {"k%d" % i: i for i in range(1000)})
    add("dict2000", {"k%d" % i: i for i in range(2000)})
    add("dict_nested", {"x": {"y": [1, {"z": None}]}, "w": (True, 2.5)})
    add("set0", set())
    add("set2500", set(range(2500)))
    add("frozenset0", frozenset())
    add("frozenset5", frozenset(range(5)))
    add("~set_frozen", {frozenset(range(3)), 7})
    add("~set_str", {"apple", "pear", "plum"})
    shared = "shared"
    add("shared_str", [shared, shared, (shared,)])
    inner = []
    add("shared_list", [inner, inner])
    pair = (1, 2)
    add("shared_tuple", {"a": pair, "b": pair})
    strs = ["s%d" % i for i in range(300)]
    add("shared_300", strs + strs)
    add("keyerror", KeyError("zz"))
    noted = KeyError("x")
    noted.note = 1
    add("error_state", noted)
    add("error_reply", ("#ERROR", KeyError("k")))
    add("token", Token("Iterator", ("127.0.0.1", 50000), "7f0a1b2c3d40"))
    add("proxy_reply", ("#PROXY", (("__next__", "send", "throw", "close"),
                                   Token("Iterator", ("127.0.0.1", 50000),
                                         "7f0a1b2c3d40"))))
    add("return_list", ("#RETURN", ["name", 42, None, "hello"]))
    return items


def same(a, b):
    """==, strict on types, NaN equal to NaN, -0.0 apart from 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return (list(a) == list(b) and
                all(same(a[k], b[k]) for k in a))
    if isinstance(a, BaseException):
        return same(a.args, b.args) and same(a.__dict__, b.__dict__)
    if isinstance(a, Token):
        return same(a.__getstate__(), b.__getstate__())
    return a == b


def first_difference(x, y):
    for i in range(min(len(x), len(y))):
        if x[i] != y[i]:
            return i
    return min(len(x), len(y))


def check():
    data = sys.stdin.buffer.read()
    pos = 0
    failed = 0
    for i, (name, value) in enumerate(corpus()):
        (n,) = struct.unpack_from(">I", data, pos)
        got = data[pos + 4:pos + 4 + n]
        pos += 4 + n
        # Before same(): reading an exception's __dict__ creates it, and
        # an exception with a __dict__ pickles with a BUILD.
        want = pickle.dumps(value, 4)
        try:
            loaded = pickle.loads(got)
        except Exception as e:
            print("FAIL %d %s: loads raised %r" % (i, name, e))
            failed += 1
            continue
        if not same(loaded, value):
            print("FAIL %d %s: loaded %.200r" % (i, name, loaded))
            failed += 1
            continue
        if got != want and not name.startswith("~"):
            at = first_difference(got, want)
            print("FAIL %d %s: bytes differ at offset %d of %d/%d: "
                  "mproc %s, CPython %s" % (i, name, at, len(got),
                                            len(want),
                                            got[at:at + 16].hex(),
                                            want[at:at + 16].hex()))
            failed += 1
            continue
        print("ok %d %s" % (i, name))
    if pos != len(data):
        print("FAIL: %d bytes of input left over" % (len(data) - pos))
        failed += 1
    return 1 if failed else 0


def emit():
    out = sys.stdout.buffer
    for name, value in corpus():
        for proto in (2, 3, 4, 5):
            p = pickle.dumps(value, proto)
            out.write(struct.pack(">I", len(p)))
            out.write(p)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(check() if sys.argv[1] == "check" else emit())
