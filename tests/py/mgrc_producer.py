# SPDX-License-Identifier: MIT
# mgrc_producer.py: a CPython client that puts N items on a server's get_queue.
# Usage: mgrc_producer.py HOST:PORT AUTHKEY N   (then prints "done")
from multiprocessing.managers import BaseManager
import sys


class M(BaseManager):
    pass


M.register('get_queue')
host, port = sys.argv[1].rsplit(':', 1)
m = M(address=(host, int(port)), authkey=sys.argv[2].encode())
m.connect()
q = m.get_queue()
for i in range(int(sys.argv[3])):
    q.put(['item', i, None, b'\x00' * (i % 3)])
q.put(None)
print('done', flush=True)
