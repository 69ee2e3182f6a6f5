# SPDX-License-Identifier: MIT
# bench_queue.py: CPython's figures for bench_queue.c: Queue 1P1C and 2P2C, Pipe send_bytes 1 MiB, Queue ping latency.
#
# As research/bench/mpbench.py: the children wait on an Event; t0 is taken
# when the parent sets it; each consumer counts messages until it gets None
# (one per producer) and reports its own finish time. The figure is
# messages / (max(finish) - t0): process start and join are excluded. The
# object is ['name', 42, None, 'hello']. queue_bytes_1mib measures
# Pipe().send_bytes / recv_bytes of 1 MiB (the issue compares the C
# queue's bytes messages with it). queue_latency is half the round trip of
# the object sent to a peer on one Queue and back on another. The median
# of 3 runs is printed as "RESULT <name> <unit> <value>" (bench/run
# takes the median over its fresh runs of this script).
import multiprocessing as mp
import statistics
import sys
from time import perf_counter, sleep

SMALL = ['name', 42, None, 'hello']
N_SMALL = 200000
N_BIG = 500
BIG_SIZE = 1 << 20
N_PING = 20000
REPEAT = 3


def producer(q, go, n):
    go.wait()
    for _ in range(n):
        q.put(SMALL)
    q.put(None)


def consumer(q, go, res):
    go.wait()
    cnt = 0
    get = q.get
    while get() is not None:
        cnt += 1
    res.put((perf_counter(), cnt))


def run_queue(ctx, nprod, ncons):
    q = ctx.Queue()
    go = ctx.Event()
    res = ctx.SimpleQueue()
    per = N_SMALL // nprod
    procs = [ctx.Process(target=producer, args=(q, go, per))
             for _ in range(nprod)]
    procs += [ctx.Process(target=consumer, args=(q, go, res))
              for _ in range(ncons)]
    for p in procs:
        p.start()
    sleep(0.1)  # let the children reach go.wait()
    t0 = perf_counter()
    go.set()
    outs = [res.get() for _ in range(ncons)]
    for p in procs:
        p.join()
    got = sum(c for _, c in outs)
    assert got == per * nprod, (got, per * nprod)
    return got / (max(t for t, _ in outs) - t0)


def big_sender(conn, go, n):
    buf = b'x' * BIG_SIZE
    go.wait()
    for _ in range(n):
        conn.send_bytes(buf)
    conn.send_bytes(b'')


def run_bytes(ctx):
    r, w = ctx.Pipe()
    go = ctx.Event()
    p = ctx.Process(target=big_sender, args=(w, go, N_BIG))
    p.start()
    sleep(0.05)
    t0 = perf_counter()
    go.set()
    tot = 0
    while True:
        b = r.recv_bytes()
        if not b:
            break
        tot += len(b)
    el = perf_counter() - t0
    p.join()
    r.close()
    w.close()
    assert tot == N_BIG * BIG_SIZE
    return tot / el / 1e6


def echo(q, back, n):
    for _ in range(n):
        back.put(q.get())


def run_latency(ctx):
    q, back = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=echo, args=(q, back, N_PING))
    p.start()
    q.put(SMALL)  # warm up both feeder threads
    back.get()
    t0 = perf_counter()
    for _ in range(N_PING - 1):
        q.put(SMALL)
        back.get()
    el = perf_counter() - t0
    p.join()
    return el / (N_PING - 1) / 2 * 1e6


def main():
    ctx = mp.get_context('fork')
    figures = [
        ('queue_1p1c', 'msg/s', lambda: run_queue(ctx, 1, 1)),
        ('queue_2p2c', 'msg/s', lambda: run_queue(ctx, 2, 2)),
        ('queue_bytes_1mib', 'MB/s', lambda: run_bytes(ctx)),
        ('queue_latency', 'us', lambda: run_latency(ctx)),
    ]
    only = sys.argv[1] if len(sys.argv) > 1 else None
    for name, unit, fn in figures:
        if only is not None and name != only:
            continue
        v = [fn() for _ in range(REPEAT)]
        print('RESULT %s %s %.2f' % (name, unit, statistics.median(v)))
        sys.stdout.flush()


if __name__ == '__main__':
    main()
