# SPDX-License-Identifier: MIT
# lecture_value.py: the lecture's Value example, with print after join (examples/value.c is its C twin).
from multiprocessing import Process, Value


def soma(n):
    for a in range(100000):
        with n.get_lock():
            n.value += 1.0


def subtracao(n):
    for a in range(100000):
        with n.get_lock():
            n.value -= 1


if __name__ == '__main__':
    # a classe Value aceita como parametro o tipo de dado (i=inteiro, d=double)
    # e tambem se um objeto lock sera inicializado para auxiliar no controle de
    # acesso do dado compartilhado
    num = Value('d', 0.0, lock=True)
    pSoma = Process(target=soma, args=(num,))
    pSoma.start()
    pSubtracao = Process(target=subtracao, args=(num,))
    pSubtracao.start()
    # The lecture printed before joining (and with Python 2's print statement),
    # so it showed a value caught mid-run.
    pSoma.join()
    pSubtracao.join()
    print(num.value)
