# SPDX-License-Identifier: MIT
# conn_peer.py: a multiprocessing.connection peer for test_interop_conn.c.
#
#   conn_peer.py listen KEY MODE            prints "PORT <n>", accepts one client
#   conn_peer.py connect HOST PORT KEY MODE  connects as Client()
#   conn_peer.py connect unix PATH KEY MODE  connects to a Unix socket
#
# KEY is the authkey as text, or "-" for none. Every outcome is one line on
# stdout, flushed, so the C side reads it over the pipe instead of sleeping:
#   bytes  receive one message, print "GOT <hex>", send b"py:" + it back,
#          then wait for the peer to close and print "EOF"
#   objs   receive one object, print "OBJ <repr>", send it back, then send
#          the fixed object below, wait for EOF and print "EOF"
#   big    receive one message, print "LEN <n>", send it back, wait for EOF
#   half   send a header for 16 bytes and 3 of them, then close: "HALF"
# A failed handshake prints "AUTHERR <message>".
import sys
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Listener

FIXED = ["name", 42, None, "hello", 3.5, b"\x00\xff", (1, 2), {"k": [True]},
         2 ** 70, -1, ""]


def say(*words):
    print(*words, flush=True)


def run(conn, mode):
    if mode == "bytes":
        msg = conn.recv_bytes()
        say("GOT", msg.hex())
        conn.send_bytes(b"py:" + msg)
    elif mode == "big":
        msg = conn.recv_bytes()
        say("LEN", len(msg))
        conn.send_bytes(msg)
    elif mode == "objs":
        obj = conn.recv()
        say("OBJ", repr(obj))
        conn.send(obj)
        conn.send(FIXED)
    elif mode == "half":
        conn._send(b"\x00\x00\x00\x10abc")
        conn.close()
        say("HALF")
        return
    try:
        conn.recv_bytes()
        say("UNEXPECTED")
    except EOFError:
        say("EOF")
    conn.close()


def main():
    args = sys.argv[1:]
    role = args[0]
    try:
        if role == "listen":
            key = None if args[1] == "-" else args[1].encode()
            with Listener(("127.0.0.1", 0), authkey=key) as listener:
                say("PORT", listener.address[1])
                conn = listener.accept()
                run(conn, args[2])
        else:
            key = None if args[3] == "-" else args[3].encode()
            if args[1] == "unix":
                address = args[2]
            else:
                address = (args[1], int(args[2]))
            conn = Client(address, authkey=key)
            run(conn, args[4])
    except AuthenticationError as e:
        say("AUTHERR", e)


main()
