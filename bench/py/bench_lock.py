# SPDX-License-Identifier: MIT
# lock.py: CPython's figures for bench_lock.c: Lock / RLock / Semaphore acquire()+release(), uncontended.
#
# As research/bench/mpbench.py: N acquire()+release() pairs on a
# multiprocessing object in one process; the figure is elapsed / N in ns,
# the median of 7 runs, printed as "<figure> ns <value>". Elapsed is the
# thread's CPU time, as in bench_lock.c: time preempted on a busy machine
# does not count, and on an idle one it equals the wall time.
import multiprocessing as mp
import statistics
import sys
from time import thread_time_ns

N = 1000000
REPEAT = 7


def per_pair(obj):
    acquire, release = obj.acquire, obj.release
    t0 = thread_time_ns()
    for _ in range(N):
        acquire()
        release()
    return (thread_time_ns() - t0) / N


def main():
    ctx = mp.get_context('fork')
    figures = [('lock_uncontended', ctx.Lock()),
               ('rlock_uncontended', ctx.RLock()),
               ('sem_uncontended', ctx.Semaphore(1))]
    for name, obj in figures:
        per_pair(obj)  # warm-up
        v = [per_pair(obj) for _ in range(REPEAT)]
        print('RESULT %s ns %.2f' % (name, statistics.median(v)))
    sys.stdout.flush()


if __name__ == '__main__':
    main()
