# SPDX-License-Identifier: MIT
# mgrc_server.py: a CPython manager server for the C client's interop tests.
# Usage: mgrc_server.py base|sync|mpqueue AUTHKEY
#   base     BaseManager with get_queue (one queue.Queue), as the classic docs
#   sync     SyncManager (every typeid) plus the same get_queue
#   mpqueue  BaseManager whose get_queue is a multiprocessing.Queue (the lecture)
# Prints "127.0.0.1:PORT" when ready; serves until stdin closes or a client
# calls the server function shutdown.
from multiprocessing.managers import BaseManager, SyncManager
import multiprocessing
import queue
import sys
import threading

kind, key = sys.argv[1], sys.argv[2].encode()
q = multiprocessing.Queue() if kind == 'mpqueue' else queue.Queue()


class Base(BaseManager):
    pass


class Sync(SyncManager):
    pass


cls = Sync if kind == 'sync' else Base
cls.register('get_queue', callable=lambda: q)
m = cls(address=('127.0.0.1', 0), authkey=key)
server = m.get_server()
t = threading.Thread(target=server.serve_forever, daemon=True)
t.start()
print('%s:%d' % server.address, flush=True)
sys.stdin.read()
