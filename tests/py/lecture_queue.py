# SPDX-License-Identifier: MIT
# lecture_queue.py: the lecture's Queue example, printing after join (examples/queue.c is its C twin).
from multiprocessing import Process, Queue, current_process
def funcao(q):
    nomeProcesso=current_process().name
    q.put([nomeProcesso,42, None, 'hello'])
if __name__ == '__main__':
    q = Queue()
    p = Process(target=funcao,args=(q,))
    p.start()
    p.join()
    while(not q.empty()):
        print(q.get())
