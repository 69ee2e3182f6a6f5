# SPDX-License-Identifier: MIT
# lecture_pipe.py: the lecture's Pipe example (a child squares a list sent over a duplex Pipe).
# Twin of examples/pipe.c; tests/test_examples.c checks that both print the same.
# Fixed per DESIGN: the dead `lista=[]` before recv() is gone; nothing else changed.
from multiprocessing import Process, Pipe
def funcao(con):
    lista=con.recv()
    print("Recebido...{}".format(lista))
    res=[]
    for n in lista:
        res.append(n*n)
    con.send(res)
    con.close()
if __name__ == "__main__":
    con_pai, con_filho = Pipe()
    p = Process(target=funcao, args=(con_filho,))
    p.start()
    con_pai.send([1,2,3,4,5])
    print(con_pai.recv())
    p.join()
