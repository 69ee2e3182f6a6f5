# SPDX-License-Identifier: MIT
# lock.py: CPython's figures for bench_lock.c: Lock / RLock / Semaphore acquire()+release(), uncontended.
#
# As research/bench/mpbench.py: N acquire()+release() pairs on a
# multiprocessing object in one process; the figure is elapsed / N in ns,
# the median of 7 runs, printed as "<figure> ns <value>".
import multiprocessing as mp
import statistics
import sys
from time import perf_counter

N = 1000000
REPEAT = 7


def per_pair(obj):
    acquire, release = obj.acquire, obj.release
    t0 = perf_counter()
    for _ in range(N):
        acquire()
        release()
    return (perf_counter() - t0) / N * 1e9


def main():
    ctx = mp.get_context('fork')
    figures = [('lock_uncontended', ctx.Lock()),
               ('rlock_uncontended', ctx.RLock()),
               ('sem_uncontended', ctx.Semaphore(1))]
    for name, obj in figures:
        per_pair(obj)  # warm-up
        v = [per_pair(obj) for _ in range(REPEAT)]
        print('%s ns %.2f' % (name, statistics.median(v)))
    sys.stdout.flush()


if __name__ == '__main__':
    main()
