# SPDX-License-Identifier: MIT
# bench/py/bench_manager.py: CPython's managers, the twin of bench/bench_manager.c (same figure names).
#
# Prints "RESULT <figure> <unit> <value>" lines. The TCP server is a
# BaseManager serving one queue.Queue as get_queue (the classic docs and
# research/bench/mgr_tcp_server.py), run as a child interpreter of the same
# version. manager_rss_10000 is printed only when CPython's server manages
# to hold 10,000 connections (one thread each).
import multiprocessing as mp
import os
import queue
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from multiprocessing import connection
from multiprocessing.managers import BaseManager, dispatch

KEY = b'bench'
APPEND_N = 5000
PAIRS_N = 3000
CLIENTS = 50
PAIRS_PER_CLIENT = 300
CONNECT_N = 20
BIG_N = 10
BIG_SIZE = 17000
WATCHDOG_S = 300
PC = time.perf_counter


class QueueManager(BaseManager):
    pass


def serve():
    import queue
    q = queue.Queue()
    QueueManager.register('get_queue', callable=lambda: q)
    m = QueueManager(address=('127.0.0.1', 0), authkey=KEY)
    s = m.get_server()
    print(s.address[1], flush=True)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    sys.stdin.read()


QueueManager.register('get_queue')


def connect(port):
    m = QueueManager(address=('127.0.0.1', port), authkey=KEY)
    m.connect()
    return m


def rss_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return -1


def bench_list_append():
    mgr = mp.Manager()
    lst = mgr.list()
    for _ in range(200):
        lst.append(1)
    t0 = PC()
    for _ in range(APPEND_N):
        lst.append(1)
    secs = PC() - t0
    print('RESULT manager_list_append_1c ops/s %.0f' % (APPEND_N / secs), flush=True)
    mgr.shutdown()


def bench_putget_1c(port):
    m = connect(port)
    q = m.get_queue()
    for _ in range(200):
        q.put(1)
        q.get()
    t0 = PC()
    for _ in range(PAIRS_N):
        q.put(1)
        q.get()
    secs = PC() - t0
    print('RESULT manager_queue_putget_1c pairs/s %.0f' % (PAIRS_N / secs), flush=True)
    big = bytes(BIG_SIZE)
    ts = []
    for _ in range(BIG_N):
        t0 = PC()
        q.put(big)
        q.get()
        ts.append((PC() - t0) * 1e3)
    print('RESULT manager_putget_17000 ms %.3f' % statistics.median(ts), flush=True)


def bench_connect(port):
    ts = []
    for _ in range(CONNECT_N):
        t0 = PC()
        connect(port)
        ts.append((PC() - t0) * 1e3)
    print('RESULT manager_connect ms %.3f' % statistics.median(ts), flush=True)


def client(port, ready, go, done):
    q = connect(port).get_queue()
    q.put(1)
    q.get()
    ready.put(1)
    go.wait()
    for _ in range(PAIRS_PER_CLIENT):
        q.put(1)
        q.get()
    done.put(1)


def reports(q, ps, what):
    """One report per client, or give up: a client that died (or a stalled
    manager) must end the run with a message, not hang it (seen once)."""
    for _ in ps:
        try:
            q.get(timeout=WATCHDOG_S)
        except queue.Empty:
            for p in ps:
                p.kill()
            sys.exit('bench_manager.py: 50c: no %s report within %d s '
                     '(exit codes: %s)' % (what, WATCHDOG_S,
                                           [p.exitcode for p in ps]))


def bench_putget_50c(port):
    ctx = mp.get_context('fork')
    ready, done, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    ps = [ctx.Process(target=client, args=(port, ready, go, done))
          for _ in range(CLIENTS)]
    for p in ps:
        p.start()
    reports(ready, ps, 'ready')
    t0 = PC()
    go.set()
    reports(done, ps, 'done')
    secs = PC() - t0
    for p in ps:
        p.join()
    print('RESULT manager_queue_putget_50c pairs/s %.0f'
          % (CLIENTS * PAIRS_PER_CLIENT / secs), flush=True)


def bench_rss(port, pid, n):
    # Opening is slow with CPython's client (Nagle, 44 ms each): set
    # TCP_NODELAY on the client side; the server's memory is unaffected.
    orig = socket.socket.connect

    def connect_nodelay(self, addr):
        self.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return orig(self, addr)

    socket.socket.connect = connect_nodelay
    held = []
    before = rss_kib(pid)
    try:
        for i in range(n):
            c = connection.Client(('127.0.0.1', port), authkey=KEY)
            dispatch(c, None, 'accept_connection', ('bench-%d' % i,))
            held.append(c)
        after = rss_kib(pid)
        print('RESULT manager_rss_%d KiB/conn %.2f' % (n, (after - before) / n), flush=True)
    except Exception as e:  # thread or fd limits: no figure
        print('# manager_rss_%d: %d connections, then %r' % (n, len(held), e), flush=True)
    finally:
        socket.socket.connect = orig
        for c in held:
            c.close()


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    srv = subprocess.Popen([sys.executable, os.path.abspath(__file__), '--server'],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = int(srv.stdout.readline())
        bench_list_append()
        bench_putget_1c(port)
        bench_connect(port)
        bench_putget_50c(port)
        bench_rss(port, srv.pid, 1000)
        if os.environ.get('MP_BENCH_PY_10000', '1') == '1':
            bench_rss(port, srv.pid, 10000)
    finally:
        srv.stdin.close()
        try:
            srv.wait(30)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()


if __name__ == '__main__':
    if sys.argv[1:] == ['--server']:
        serve()
    else:
        main()
