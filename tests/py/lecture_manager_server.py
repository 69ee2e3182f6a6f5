# SPDX-License-Identifier: MIT
# lecture_manager_server.py: the lecture's BaseManager server (get_queue, authkey b'abc').
# Twin of examples/basemanager_server.c. Changed for the tests only: the
# port comes from argv[1] (default 50000, the lecture's), and with port 0
# the chosen port is printed once the server listens.
from multiprocessing.managers import BaseManager
from multiprocessing import Queue
import sys

queue = Queue()

class QueueManager(BaseManager):pass

QueueManager.register('get_queue', callable=lambda:queue)

port = int(sys.argv[1]) if len(sys.argv) > 1 else 50000
m = QueueManager(address=('', port), authkey=b'abc')
s = m.get_server()
if port == 0:
    print(s.address[1], flush=True)
s.serve_forever()
