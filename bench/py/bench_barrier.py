# SPDX-License-Identifier: MIT
# barrier.py: CPython's figure for bench_barrier.c: Barrier(2) rounds per second between a parent and a child.
#
# As research/bench/mpbench.py: a child waits on a 2-party Barrier in a
# loop; the parent meets it once (both alive), then times N waits of its
# own. The figure is N / elapsed, the median of 5 runs, printed as
# "barrier2_rounds rounds/s <value>".
import multiprocessing as mp
import statistics
import sys
from time import perf_counter

ROUNDS = 5000
REPEAT = 5


def waits(b, n):
    for _ in range(n):
        b.wait(30)  # bounded: BrokenBarrierError instead of a hang


def run_once(ctx):
    b = ctx.Barrier(2)
    p = ctx.Process(target=waits, args=(b, ROUNDS + 1))
    p.start()
    b.wait(30)
    t0 = perf_counter()
    waits(b, ROUNDS)
    el = perf_counter() - t0
    p.join()
    assert p.exitcode == 0, p.exitcode
    return ROUNDS / el


def main():
    ctx = mp.get_context('fork')
    v = [run_once(ctx) for _ in range(REPEAT)]
    print('RESULT barrier2_rounds rounds/s %.0f' % statistics.median(v))
    sys.stdout.flush()


if __name__ == '__main__':
    main()
