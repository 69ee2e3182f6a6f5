# SPDX-License-Identifier: MIT
# value.py: CPython's figures for bench_value.c: 2 processes x 100,000 locked increments of a Value and of an Array.
#
# As research/bench/mpbench.py: two children wait on an Event; t0 is taken
# when the parent sets it; each child reports its own finish time. The
# figure is max(finish) - t0 in seconds (process start and join excluded),
# the median of 5 runs, printed as "<name> s <seconds>".
import multiprocessing as mp
import statistics
import sys
from time import perf_counter, sleep

N_INCS = 100000
N_PROCS = 2
REPEAT = 5


def inc_value(v, go, n, res):
    go.wait()
    for _ in range(n):
        with v.get_lock():
            v.value += 1
    res.put(perf_counter())


def inc_array(a, go, n, res):
    go.wait()
    for _ in range(n):
        with a.get_lock():
            a[0] += 1
    res.put(perf_counter())


def run_once(ctx, kind):
    obj = ctx.Value('i', 0) if kind == 'value' else ctx.Array('i', 10)
    fn = inc_value if kind == 'value' else inc_array
    go = ctx.Event()
    res = ctx.SimpleQueue()
    ps = [ctx.Process(target=fn, args=(obj, go, N_INCS, res))
          for _ in range(N_PROCS)]
    for p in ps:
        p.start()
    sleep(0.05)  # let the children reach go.wait()
    t0 = perf_counter()
    go.set()
    ends = [res.get() for _ in ps]
    for p in ps:
        p.join()
    final = obj.value if kind == 'value' else obj[0]
    assert final == N_PROCS * N_INCS, final
    return max(ends) - t0


def main():
    ctx = mp.get_context('fork')
    for kind in ('value', 'array'):
        t = [run_once(ctx, kind) for _ in range(REPEAT)]
        print('RESULT %s_example s %.6f' % (kind, statistics.median(t)))
        sys.stdout.flush()


if __name__ == '__main__':
    main()
