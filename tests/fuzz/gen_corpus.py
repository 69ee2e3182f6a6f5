# SPDX-License-Identifier: MIT
# gen_corpus.py: write the seed corpora of tests/fuzz/corpus/<target>/ with
# CPython itself, so every seed is what a real peer sends.
#
#   python3 tests/fuzz/gen_corpus.py [OUTDIR]
#
# OUTDIR defaults to tests/fuzz/corpus. The handshake seeds come from
# multiprocessing.connection of every CPython found (pyenv 3.8-3.13 and the
# system python3): 3.8-3.11 answer with raw HMAC-MD5, 3.12+ with
# "{sha256}"; each interpreter is run on this file with the argument
# "auth". The input formats are described at the top of each fuzz_*.c.
import glob
import hashlib
import hmac
import os
import pickle
import re
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "py"))

# The challenge the targets send (fuzz_common.h FUZZ_NONCE): what
# mp__auth_nonce makes, with fixed "random" bytes so answers can be seeds.
NONCE = b"{sha256}" + bytes(range(40))
KEY = b"secret"
# Object ids of a fresh mproc manager server: 0x7f0000001000 and up.
FIRST_ID = 0x7F0000001000


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


def frame8(payload):
    return b"\xff\xff\xff\xff" + struct.pack(">Q", len(payload)) + payload


def write(outdir, target, name, data):
    d = os.path.join(outdir, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def dumps(obj):
    """As multiprocessing.connection.Connection.send pickles."""
    from multiprocessing.reduction import ForkingPickler
    return bytes(ForkingPickler.dumps(obj))


# ---- Pickles ------------------------------------------------------------

def small_values():
    import pickle_corpus
    for name, value in pickle_corpus.corpus():
        if len(pickle.dumps(value, 4)) <= 2048:
            yield name.lstrip("~"), value


def gen_pickle(outdir):
    for name, value in small_values():
        for proto in (2, 3, 4, 5):
            write(outdir, "pickle", "%s-p%d" % (name, proto),
                  pickle.dumps(value, proto))
    # Found by fuzzing: t = (t, t) nested 60 deep, as a dict key (hashed
    # 2^60 times before tuples kept their hash) and alone (repr).
    nest = b")" + b"2\x86" * 60
    write(outdir, "pickle", "nest-key", b"\x80\x04}" + nest + b"K\x01s.")
    write(outdir, "pickle", "nest", b"\x80\x04" + nest + b".")
    # Two such nests built apart, as keys of one dict: equal hashes, so
    # compared, pair by pair 2^60 times before equality kept equal pairs.
    write(outdir, "pickle", "nest-equal-keys",
          b"\x80\x04}" + nest + b"K\x01s" + nest + b"K\x02s.")
    for i, req in enumerate(requests()):
        write(outdir, "pickle", "request%02d" % i, dumps(req))
    for i, rep in enumerate(replies()):
        write(outdir, "pickle", "reply%02d" % i, dumps(rep))


def requests():
    """Requests as CPython's managers send them (BaseProxy._callmethod,
    BaseManager._create, dispatch)."""
    from multiprocessing.managers import Token
    q = "%x" % FIRST_ID
    tok = Token("Queue", "/tmp/mgr", q)
    return [
        (None, "dummy", (), {}),
        (None, "create", ("Queue",), {}),
        (None, "create", ("Value", "i", 5), {}),
        (None, "create", ("Array", "d", [1.5, 2.5]), {}),
        (None, "create", ("Namespace",), {"x": 1, "y": "two"}),
        (None, "create", ("list", [1, "a", None]), {}),
        (None, "create", ("dict", {"k": (1, 2)}), {}),
        (None, "incref", (q,), {}),
        (None, "decref", (q,), {}),
        (None, "accept_connection", ("MainProcess",), {}),
        (None, "get_methods", (tok,), {}),
        (None, "number_of_objects", (), {}),
        (None, "debug_info", (), {}),
        (q, "put", ((1, "x", b"y", 2.5),), {}),
        (q, "get", (True, 0.25), {}),
        (q, "__getitem__", (slice(1, None, -1),), {}),
        (q, "__setitem__", (slice(0, 2), [bytearray(b"ab"), complex(1, 2)]),
         {}),
        (q, "acquire", (), {"blocking": False}),
        (q, "#GETVALUE", (), {}),
        (q, "update", ([("a", 1)],), {}),
    ]


def replies():
    from multiprocessing.managers import Token
    q = "%x" % FIRST_ID
    return [
        ("#RETURN", None),
        ("#RETURN", (q, ("empty", "full", "get", "put", "qsize"))),
        ("#ERROR", KeyError("k")),
        ("#ERROR", ValueError("bad", 3)),
        ("#TRACEBACK", "Traceback (most recent call last):\n"),
        ("#PROXY", (("__next__",), Token("Iterator", ("127.0.0.1", 5000),
                                        q))),
        ("#RETURN", list(range(5))),
    ]


# ---- Frames -------------------------------------------------------------

def gen_frame(outdir):
    # Byte 0: mode (fuzz_frame.c); byte 1: chunk size; then the stream.
    vals = [v for _, v in small_values()]
    conv = b"".join(frame(dumps(v)) for v in vals[:12])
    reqs = b"".join(frame(dumps(r)) for r in requests())
    # Larger than the fuzz build's 8 KiB a large message starts at, twice.
    big = frame(dumps(bytes(20000)))
    for mode in range(8):
        write(outdir, "frame", "conversation-m%d" % mode,
              bytes([mode << 1, 0]) + conv)
    write(outdir, "frame", "requests", bytes([0x04, 0]) + reqs)
    write(outdir, "frame", "requests-chunked", bytes([0x24, 7]) + reqs)
    write(outdir, "frame", "pipe-chunked", bytes([0x25, 100]) + reqs)
    write(outdir, "frame", "long8", bytes([0x00, 0]) +
          frame8(dumps("eight-byte header")) + frame(b"tail"))
    write(outdir, "frame", "large", bytes([0x02, 0]) + big)
    write(outdir, "frame", "large-chunked", bytes([0x21, 255]) + big)
    write(outdir, "frame", "oversized", bytes([0x18, 0]) +
          struct.pack(">i", 200000) + b"x" * 16)
    write(outdir, "frame", "oversized8", bytes([0x00, 0]) +
          b"\xff" * 4 + struct.pack(">Q", 1 << 62))
    write(outdir, "frame", "negative", bytes([0x00, 0]) +
          struct.pack(">i", -2) + b"x")
    write(outdir, "frame", "truncated", bytes([0x02, 0]) +
          frame(b"whole") + struct.pack(">i", 100) + b"part")


# ---- Handshake ----------------------------------------------------------

class FakeConn:
    """Enough of a Connection for deliver_challenge/answer_challenge."""

    def __init__(self, incoming):
        self.incoming = list(incoming)
        self.sent = []

    def send_bytes(self, b):
        self.sent.append(bytes(b))

    def recv_bytes(self, maxlength=None):
        return self.incoming.pop(0)


def our_answer(payload):
    """mproc's answer to a challenge payload (mp__auth_answer)."""
    if len(payload) == 20:
        return hmac.new(KEY, payload, "md5").digest()
    name = payload[1:payload.index(b"}")].decode()
    return (b"{" + name.encode() + b"}" +
            hmac.new(KEY, payload, name).digest())


def auth_here(outdir):
    """Run under one CPython: what it sends in either role, against an
    mproc peer that challenges with NONCE."""
    from multiprocessing import connection
    tag = "py%d%d" % sys.version_info[:2]
    # mproc is the server (deliver, then answer): the peer is a client,
    # which answers our challenge, then challenges us and hears WELCOME.
    c = FakeConn([b"#CHALLENGE#" + NONCE, b"#WELCOME#"])
    connection.answer_challenge(c, KEY)
    answer = c.sent[0]
    c = FakeConn([None, b"#WELCOME#"])
    orig = c.recv_bytes

    def recv(maxlength=None):
        v = orig(maxlength)
        if v is None:  # our answer to the challenge it just sent
            v = our_answer(c.sent[0][len(b"#CHALLENGE#"):])
        return v
    c.recv_bytes = recv
    connection.deliver_challenge(c, KEY)
    challenge = c.sent[0]
    server = frame(answer) + frame(challenge) + frame(b"#WELCOME#")
    write(outdir, "auth", "server-%s" % tag, b"\x00" + server)
    # mproc is the client (answer, then deliver): the peer is a server.
    client = frame(challenge) + frame(b"#WELCOME#") + frame(answer)
    write(outdir, "auth", "client-%s" % tag, b"\x01" + client)
    # The manager server's own handshake: a request follows.
    write(outdir, "dispatch", "handshake-%s" % tag,
          record(0, server + frame(dumps((None, "dummy", (), {}))),
                 handshake=True))


def gen_auth(outdir):
    pythons = sorted(glob.glob(os.path.expanduser(
        "~/.pyenv/versions/3.*/bin/python3")))
    root = os.environ.get("PYENV_ROOT")
    if root:
        pythons = sorted(glob.glob(os.path.join(root,
                                                "versions/3.*/bin/python3")))
    pythons = [p for p in pythons if re.search(r"/3\.(8|9|1[0-3])\.", p)]
    pythons.append(sys.executable)
    for py in pythons:
        subprocess.run([py, os.path.abspath(__file__), "auth", outdir],
                       check=True)
    write(outdir, "auth", "wrong-prefix", b"\x01" +
          frame(b"#CHALLENGE#{sha1}" + bytes(40)))
    write(outdir, "auth", "failure", b"\x01" +
          frame(b"#CHALLENGE#" + bytes(20)) + frame(b"#FAILURE#"))
    write(outdir, "auth", "empty-key", b"\x02" +
          frame(hmac.new(b"", NONCE, "sha256").digest()))


# ---- Manager requests ---------------------------------------------------

def record(slot, data, handshake=False):
    """One fuzz_dispatch.c record: op byte, u16 length, bytes."""
    op = slot | (0x20 if handshake else 0)
    return bytes([op]) + struct.pack(">H", len(data)) + data


def hangup(slot):
    return bytes([slot | 0x04])


TICK = bytes([0x08])


def session(creates, calls):
    """Create objects on one-shot connections, then call methods on a
    channel, as a CPython client's proxies do."""
    out = b""
    for args, kwds in creates:
        out += record(0, frame(dumps((None, "create", args, kwds))))
    chan = frame(dumps((None, "accept_connection", ("MainProcess",), {})))
    for i, (method, args, kwds) in enumerate(calls):
        ident = "%x" % FIRST_ID
        if isinstance(method, tuple):
            ident = "%x" % (FIRST_ID + method[0])
            method = method[1]
        chan += frame(dumps((ident, method, args, kwds)))
    return out + record(1, chan)


def gen_dispatch(outdir):
    from multiprocessing.managers import Token
    seeds = {
        "queue": session([(("Queue",), {})], [
            ("put", ("a",), {}), ("qsize", (), {}), ("get", (), {}),
            ("get_nowait", (), {}), ("empty", (), {}), ("full", (), {}),
            ("put", (1, True, 0.5), {}), ("#GETVALUE", (), {}),
            ("__repr__", (), {}), ("nosuch", (), {})]),
        "joinable": session([(("JoinableQueue", 2), {})], [
            ("put", (b"x",), {}), ("get", (), {}), ("task_done", (), {}),
            ("join", (), {})]),
        "value": session([(("Value", "i", 5), {})], [
            ("get", (), {}), ("set", (7,), {}), ("__str__", (), {})]),
        "array": session([(("Array", "d", [1.0, 2.0, 3.0]), {})], [
            ("__len__", (), {}), ("__getitem__", (slice(0, 2, None),), {}),
            ("__setitem__", (1, 9.5), {}), ("#GETVALUE", (), {})]),
        "list": session([(("list", [3, 1, 2]), {})], [
            ("append", (4,), {}), ("extend", ([5, 6],), {}),
            ("__getitem__", (slice(None, None, -1),), {}),
            ("__setitem__", (0, "z"), {}), ("index", (1,), {}),
            ("count", (2,), {}), ("insert", (0, None), {}),
            ("remove", (None,), {}), ("reverse", (), {}),
            ("__delitem__", (slice(0, 1),), {}), ("__len__", (), {}),
            ("__contains__", (4,), {}), ("__imul__", (2,), {}),
            ("__iadd__", ([7],), {}), ("pop", (), {}),
            ("__reversed__", (), {}), ("sort", (), {"reverse": True}),
            ("#GETVALUE", (), {})]),
        "dict": session([(("dict", {"a": 1}), {"b": 2})], [
            ("__setitem__", ("c", [1]), {}), ("__getitem__", ("a",), {}),
            ("get", ("zz", 0), {}), ("keys", (), {}), ("values", (), {}),
            ("items", (), {}), ("__len__", (), {}),
            ("__contains__", ("b",), {}), ("setdefault", ("d", 4), {}),
            ("pop", ("a",), {}), ("popitem", (), {}),
            ("update", ({"e": 5},), {}), ("copy", (), {}),
            ("__iter__", (), {}), ((1, "__next__"), (), {}),
            ("__delitem__", ("b",), {}), ("clear", (), {})]),
        "namespace": session([(("Namespace",), {"x": 1})], [
            ("__getattribute__", ("x",), {}),
            ("__setattr__", ("y", 2), {}),
            ("__delattr__", ("x",), {}), ("#GETVALUE", (), {})]),
        "lock": session([(("Lock",), {}), (("RLock",), {})], [
            ("acquire", (), {}), ("acquire", (), {"blocking": False}),
            ("release", (), {}), ((1, "acquire"), (), {}),
            ((1, "acquire"), (True, 1.0), {}), ((1, "release"), (), {}),
            ((1, "__enter__"), (), {}), ((1, "__exit__"), (None,) * 3, {})]),
        "semaphore": session([(("Semaphore", 1), {}),
                              (("BoundedSemaphore", 1), {})], [
            ("acquire", (), {}), ("acquire", (), {"timeout": 0.01}),
            ("release", (), {}), ((1, "release"), (), {}),
            ("get_value", (), {})]),
        "event": session([(("Event",), {})], [
            ("is_set", (), {}), ("set", (), {}), ("wait", (0.5,), {}),
            ("clear", (), {}), ("wait", (), {"timeout": 0})]),
        "condition": session([(("Condition",), {})], [
            ("acquire", (), {}), ("notify", (), {}), ("notify_all", (), {}),
            ("wait", (0.01,), {}), ("wait_for", ("True", 0), {}),
            ("release", (), {})]),
        "barrier": session([(("Barrier", 1), {})], [
            ("wait", (), {}), ("__getattribute__", ("parties",), {}),
            ("reset", (), {}), ("abort", (), {}), ("wait", (0.1,), {})]),
        "functions": b"".join(record(0, frame(dumps(r))) for r in [
            (None, "create", ("Queue",), {}),
            (None, "incref", ("%x" % FIRST_ID,), {}),
            (None, "number_of_objects", (), {}),
            (None, "debug_info", (), {}),
            (None, "get_methods", (Token("Queue", "/tmp/m",
                                         "%x" % FIRST_ID),), {}),
            (None, "decref", ("%x" % FIRST_ID,), {}),
            (None, "decref", ("%x" % FIRST_ID,), {}),
            (None, "nosuch", (), {}),
            (None, "shutdown", (), {})]),
    }
    # Blocking calls parked on one channel, woken from another, or timed
    # out (TICK), or dropped with the connection.
    q = "%x" % FIRST_ID
    park = session([(("Queue",), {})], [("get", (), {})])
    park += record(2, frame(dumps((None, "accept_connection", ("T",), {}))) +
                   frame(dumps((q, "put", (1,), {}))))
    seeds["park-wake"] = park
    seeds["park-timeout"] = session([(("Queue",), {})],
                                    [("get", (True, 5.0), {})]) + TICK
    seeds["park-hangup"] = session([(("Lock",), {})],
                                   [("acquire", (), {})]) + \
        record(2, frame(dumps((None, "accept_connection", ("T",), {}))) +
               frame(dumps((q, "acquire", (), {})))) + hangup(1)
    seeds["bad-request"] = record(0, frame(b"\x80\x04N.")) + \
        record(1, frame(dumps((None, "accept_connection", ("x",), {}))) +
               frame(dumps(["not", "a", "tuple"])) +
               frame(b"\x80\x04\x95garbage"))
    seeds["big-frame8"] = record(0, frame8(dumps((None, "dummy", (), {}))))
    # Found by fuzzing: l *= 53, again and again, made 20 million items
    # before a repeat was bounded by max_message.
    seeds["list-repeat"] = session([(("list", [3, 1, 2]), {})],
                                   [("__imul__", (53,), {})] * 4 +
                                   [("__rmul__", (2,), {})])
    for name, data in seeds.items():
        write(outdir, "dispatch", name, data)


# ---- mpchat -------------------------------------------------------------

def gen_mpchat(outdir):
    # Byte 0: mode (fuzz_mpchat.c): 0 input lines, 1 a peer's message
    # (a pickle, as the inbox queue delivers it), 2 chat_escape alone.
    lines = ("hello\r\nsecond line\n\x1b[2Jclear\n\u202eevil\u202c\n"
             "caf\u00e9 \U0001f40d\n\xc2\x85\n").encode("utf-8", "replace")
    write(outdir, "mpchat", "lines", b"\x00" + lines + b"last")
    write(outdir, "mpchat", "long-line", b"\x00" + b"a" * 4100 + b"\nok\n")
    write(outdir, "mpchat", "invalid-utf8", b"\x00\xff\xfe\xed\xa0\x80\n")
    msgs = [("say", "ann", "hi \x1b]0;title\x07 there"),
            ("join", "bob", ""), ("bye", "bob", ""),
            ("say", "e\u0301ve\u2066", "x" * 5000),
            ("say", 1, "not a str"), ["say", "ann", "list"], "bare"]
    for i, m in enumerate(msgs):
        for partner in (0, 1):
            write(outdir, "mpchat", "message%d-%d" % (i, partner),
                  bytes([1 | partner << 2]) + dumps(m))
    write(outdir, "mpchat", "escape", b"\x02\x01" +
          "a\u0085b\u2028c\U0010ffff\x7f".encode() + b"\xf4\x90\x80\x80")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "auth":
        auth_here(sys.argv[2])
        return
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE,
                                                                "corpus")
    gen_pickle(outdir)
    gen_frame(outdir)
    gen_auth(outdir)
    gen_dispatch(outdir)
    gen_mpchat(outdir)


if __name__ == "__main__":
    main()
