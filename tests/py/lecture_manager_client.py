# SPDX-License-Identifier: MIT
# lecture_manager_client.py: the lecture's BaseManager client: 1 puts 'hello', 2 gets and prints it.
# Twin of examples/basemanager_client.c. Fixed per DESIGN: register without
# a callable (the lecture's lambda names an undefined global). Changed for
# the tests: the port comes from argv[2] (default 50000).
from multiprocessing.managers import BaseManager
import sys

class QueueManager(BaseManager):
    pass

QueueManager.register('get_queue')
port = int(sys.argv[2]) if len(sys.argv) > 2 else 50000
m = QueueManager(address=('localhost',port),authkey=b'abc')
m.connect()

if(sys.argv[1]=='1'):
    queue = m.get_queue()
    queue.put('hello')
elif(sys.argv[1]=='2'):
    queue = m.get_queue()
    msg = queue.get()
    print(msg)

print("Fim...")
