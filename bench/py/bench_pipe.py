# SPDX-License-Identifier: MIT
# bench/py/bench_pipe.py: Pipe() round trip, small objects, 1 MiB bytes (twin of bench_pipe.c).
import multiprocessing as mp
import time

RTT_WARMUP = 200
RTT_N = 20000
SMALL_N = 200000
BIG_N = 500
BIG_SIZE = 1 << 20
SMALL = ['name', 42, None, 'hello']
PC = time.perf_counter


def echo(conn):
    while True:
        x = conn.recv()
        conn.send(x)
        if x is None:
            return


def bench_rtt(ctx):
    a, b = ctx.Pipe()
    p = ctx.Process(target=echo, args=(b,))
    p.start()
    for i in range(RTT_WARMUP):
        a.send(i)
        a.recv()
    t0 = PC()
    for i in range(RTT_N):
        a.send(i)
        a.recv()
    us = (PC() - t0) / RTT_N * 1e6
    a.send(None)
    a.recv()
    p.join()
    a.close()
    b.close()
    return us


def send_small(conn):
    conn.recv()
    for _ in range(SMALL_N):
        conn.send(SMALL)
    conn.send(None)


def bench_small(ctx):
    a, b = ctx.Pipe()
    p = ctx.Process(target=send_small, args=(b,))
    p.start()
    t0 = PC()
    a.send(True)
    count = 0
    recv = a.recv
    while recv() is not None:
        count += 1
    secs = PC() - t0
    assert count == SMALL_N
    p.join()
    a.close()
    b.close()
    return count / secs


def send_big(conn):
    conn.recv()
    buf = b'x' * BIG_SIZE
    for _ in range(BIG_N):
        conn.send_bytes(buf)
    conn.send_bytes(b'')


def bench_big(ctx):
    a, b = ctx.Pipe()
    p = ctx.Process(target=send_big, args=(b,))
    p.start()
    t0 = PC()
    a.send(True)
    total = 0
    while True:
        m = a.recv_bytes()
        if not m:
            break
        total += len(m)
    secs = PC() - t0
    assert total == BIG_N * BIG_SIZE
    p.join()
    a.close()
    b.close()
    return total / secs / 1e6


if __name__ == "__main__":
    ctx = mp.get_context("fork")
    print("RESULT pipe_rtt us %.2f" % bench_rtt(ctx))
    print("RESULT pipe_small_objects msg/s %.0f" % bench_small(ctx))
    print("RESULT pipe_bytes_1mib MB/s %.0f" % bench_big(ctx))
