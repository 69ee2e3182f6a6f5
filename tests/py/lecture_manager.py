# SPDX-License-Identifier: MIT
# lecture_manager.py: the lecture's Manager example (10 workers append to a shared list).
# Twin of examples/manager.c; tests/test_examples_manager.c compares their output.
# Unchanged from the lecture.
import multiprocessing

def worker(list, item):
    x=0
    for a in range(10000):
        x+=1
    list.append(item)
    print("{} {}".format(item,list))

if __name__ == '__main__':
    mgr = multiprocessing.Manager()
    list = mgr.list()
    jobs = [ multiprocessing.Process(target=worker, args=(list, i))
             for i in range(10)
           ]
    for j in jobs:
        j.start()
    for j in jobs:
        j.join()
    print ('Results:', list)
