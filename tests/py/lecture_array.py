# SPDX-License-Identifier: MIT
# lecture_array.py: the lecture's Array example, fixed and printing the result (examples/array.c is its C twin).
from multiprocessing import Process, Array


def soma(vet):
    for a in range(len(vet)):
        for b in range(5000):
            with vet.get_lock():
                vet[a] += 1


# The lecture named the parameter n but used the global vet, which exists in
# a forked child only by accident (and not at all with spawn).
def subtracao(vet):
    for a in range(len(vet)):
        for b in range(5000):
            with vet.get_lock():
                vet[a] -= 1


if __name__ == '__main__':
    vet = Array('i', [0 for a in range(10)], lock=True)
    pSoma = Process(target=soma, args=(vet,))
    pSoma.start()
    pSubtracao = Process(target=subtracao, args=(vet,))
    pSubtracao.start()
    pSoma.join()
    pSubtracao.join()
    print(vet[:])
