# SPDX-License-Identifier: MIT
# The lecture's BaseManager client, unchanged except that the port comes
# from argv[2] (the test's server listens on a free port).
from multiprocessing.managers import BaseManager
import sys


class QueueManager(BaseManager):
    pass


QueueManager.register('get_queue')
m = QueueManager(address=('127.0.0.1', int(sys.argv[2])), authkey=b'abc')
m.connect()
queue = m.get_queue()
if sys.argv[1] == '1':
    queue.put('hello')
elif sys.argv[1] == '2':
    print(queue.get())
