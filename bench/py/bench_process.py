# SPDX-License-Identifier: MIT
# bench/py/bench_process.py: Process start+join, fork, trivial target (twin of bench_process.c).
import multiprocessing as mp
import time

WARMUP = 20
N = 200


def noop():
    pass


def start_join(ctx):
    p = ctx.Process(target=noop)
    p.start()
    p.join()
    p.close()


if __name__ == "__main__":
    ctx = mp.get_context("fork")
    for _ in range(WARMUP):
        start_join(ctx)
    t0 = time.perf_counter()
    for _ in range(N):
        start_join(ctx)
    print("RESULT process_start_join us %.2f" % ((time.perf_counter() - t0) / N * 1e6))
