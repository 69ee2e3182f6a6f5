# SPDX-License-Identifier: MIT
# lecture_barrier.py: the lecture's Barrier example with 0.05 s / 0.1 s naps instead of 5 s / 10 s (examples/barrier.c is its C twin).
from multiprocessing import Process, Barrier
from time import time, sleep
from datetime import datetime


class MeuProcesso(Process):
    def __init__(self, barreira, tempo):
        Process.__init__(self)
        self.barreira = barreira
        self.tempo = tempo

    def run(self):
        print("{} iniciando!!".format(self.name))
        soneca = sleep(self.tempo)
        print("{} acordei!!".format(self.name))
        agora = time()
        self.barreira.wait()
        print("{} - {} continuando processamento!!!".format(
            self.name, datetime.fromtimestamp(agora)))


if __name__ == "__main__":
    barreira = Barrier(2)

    p1 = MeuProcesso(barreira, 0.05)
    p1.start()
    p2 = MeuProcesso(barreira, 0.1)
    p2.start()

    p1.join()
    p2.join()
