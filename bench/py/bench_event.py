# SPDX-License-Identifier: MIT
# event.py: CPython's figure for bench_event.c: the Event set-to-wake round trip between a parent and a child.
#
# A (the parent) sets e1; B (a child) wakes, clears e1 and sets e2; A wakes
# and clears e2. The figure is the mean round trip in microseconds over N
# round trips after a warm-up, the median of 5 runs, printed as
# "event_set_to_wake us <value>".
import multiprocessing as mp
import statistics
import sys
from time import perf_counter

ROUNDS = 5000
WARMUP = 100
REPEAT = 5


def pong(e1, e2, n):
    for _ in range(n):
        if not e1.wait(30):
            raise SystemExit(1)
        e1.clear()
        e2.set()


def ping(e1, e2, n):
    for _ in range(n):
        e1.set()
        if not e2.wait(30):
            raise SystemExit(1)
        e2.clear()


def run_once(ctx):
    e1, e2 = ctx.Event(), ctx.Event()
    p = ctx.Process(target=pong, args=(e1, e2, WARMUP + ROUNDS))
    p.start()
    ping(e1, e2, WARMUP)
    t0 = perf_counter()
    ping(e1, e2, ROUNDS)
    el = perf_counter() - t0
    p.join()
    assert p.exitcode == 0, p.exitcode
    return el / ROUNDS * 1e6


def main():
    ctx = mp.get_context('fork')
    v = [run_once(ctx) for _ in range(REPEAT)]
    print('RESULT event_set_to_wake us %.3f' % statistics.median(v))
    sys.stdout.flush()


if __name__ == '__main__':
    main()
