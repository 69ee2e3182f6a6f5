# SPDX-License-Identifier: MIT
# Drives every exposed method of SyncManager's proxies against a manager
# server at 127.0.0.1:PORT (or a Unix socket path) and prints a transcript: results and the
# exception classes raised. The test runs it against a real CPython
# SyncManager of the same version and against mpmanager and compares.
# Nothing printed may depend on object addresses or timing.
from multiprocessing.managers import SyncManager, RemoteError
from multiprocessing import AuthenticationError
import sys
import threading
import time

# A port on 127.0.0.1, or a Unix socket path.
if sys.argv[1].startswith('/'):
    address = sys.argv[1]
else:
    address = ('127.0.0.1', int(sys.argv[1]))
key = sys.argv[2].encode()


def show(label, fn):
    try:
        r = fn()
    except RemoteError:
        print(label, '-> RemoteError')
    except Exception as e:
        print(label, '->', type(e).__name__, e.args)
    else:
        print(label, '=', repr(r))


def show_type(label, fn):
    # For errors whose message changed between CPython versions.
    try:
        r = fn()
    except Exception as e:
        print(label, '->', type(e).__name__)
    else:
        print(label, '=', repr(r))


def later(fn, delay=0.1):
    t = threading.Thread(target=lambda: (time.sleep(delay), fn()))
    t.start()
    return t


bad = SyncManager(address=address, authkey=b'not the key')
show_type('wrong authkey', bad.connect)

m = SyncManager(address=address, authkey=key)
m.connect()

print('== list')
l = m.list([3, 1, 2])
show('str', lambda: str(l))
l.append(4)
l.extend([5, 6])
show('getitem 0', lambda: l[0])
show('getitem -1', lambda: l[-1])
show('slice 1:', lambda: l[1:])
show('slice ::2', lambda: l[::2])
show('slice ::-1', lambda: l[::-1])
show('getitem 10', lambda: l[10])
show('slice ::0', lambda: l[::0])
show('del slice ::0', lambda: l.__delitem__(slice(None, None, 0)))
show_type('getitem str', lambda: l['x'])
l[0] = 9
l[0:1] = [7, 8]
show('after setitem', lambda: l[:])
del l[0]
del l[1:3]
show('after delitem', lambda: l[:])
show('del 99', lambda: l.__delitem__(99))
show('len', lambda: len(l))
show('contains 5', lambda: 5 in l)
show('contains 99', lambda: 99 in l)
show('index 5', lambda: l.index(5))
show('index 99', lambda: l.index(99))
show('count 5', lambda: l.count(5))
l.insert(0, 'x')
l.insert(-1, 'y')
l.insert(100, 'z')
show('after insert', lambda: l[:])
show('pop', lambda: l.pop())
show('pop 0', lambda: l.pop(0))
show('pop 99', lambda: l.pop(99))
show('remove y', lambda: l.remove('y'))
show('remove 99', lambda: l.remove(99))
show('after remove', lambda: l[:])
l.reverse()
show('reversed', lambda: l[:])
l.sort()
show('sorted', lambda: l[:])
l.sort(reverse=True)
show('sorted desc', lambda: l[:])
show('add', lambda: l + [1])
show('mul', lambda: l * 2)
show('rmul', lambda: 2 * l)
l += [0]
show('iadd', lambda: l[:])
l *= 2
show('imul', lambda: l[:])
show('iter reversed', lambda: list(reversed(l)))
show('getvalue', lambda: l._getvalue())
show('str', lambda: str(l))
# A sort that fails half-way leaves CPython's list partly sorted and
# the C server's unchanged: only the exception is compared.
mixed = m.list([2, 'a', 1])
show_type('sort mixed', lambda: mixed.sort())
e = m.list()
show('empty pop', lambda: e.pop())
show('empty str', lambda: str(e))
show('not exposed', lambda: l._callmethod('clear'))

print('== dict')
d = m.dict()
d['a'] = 1
d['b'] = [1, 2]
d2 = m.dict({'x': 1}, y=2)
show('d2', lambda: d2.copy())
show('getitem', lambda: d['a'])
show('getitem zz', lambda: d['zz'])
show_type('unhashable', lambda: d[[1]])
show('contains', lambda: 'a' in d)
show('len', lambda: len(d))
show('get', lambda: d.get('q', 5))
show('get none', lambda: d.get('q'))
d.update(c=3)
d.update([('e', 5)])
d.update({'f': 6})
show('setdefault', lambda: d.setdefault('g', []))
show('setdefault old', lambda: d.setdefault('a', 0))
show('pop', lambda: d.pop('a'))
show('pop default', lambda: d.pop('nope', 'dflt'))
show('pop missing', lambda: d.pop('nope'))
show('popitem', lambda: d.popitem())
show('keys', lambda: d.keys())
show('values', lambda: d.values())
show('items', lambda: d.items())
show('copy', lambda: d.copy())
show('iter', lambda: [k for k in d])
it = iter(d)
show('next', lambda: next(it))
show('str', lambda: str(d))
del d['b']
show('del missing', lambda: d.__delitem__('nope'))
show('getvalue', lambda: d._getvalue())
d.clear()
show('cleared', lambda: d.copy())
show('popitem empty', lambda: d.popitem())

print('== Queue')
q = m.Queue()
q.put(1)
q.put_nowait('x')
q.put([1, 2], True, 1)
show('qsize', lambda: q.qsize())
show('empty', lambda: q.empty())
show('full', lambda: q.full())
show('get', lambda: q.get())
show('get_nowait', lambda: q.get_nowait())
show('get block', lambda: q.get(True, 1))
show('get_nowait empty', lambda: q.get_nowait())
show('get timeout', lambda: q.get(timeout=0.01))
show('get nonblock', lambda: q.get(False))
show('get neg', lambda: q.get(timeout=-1))
t = later(lambda: q.put('late'))
show('get waits', lambda: q.get())
t.join()
q1 = m.Queue(1)
q1.put(1)
show('full', lambda: q1.full())
show('put timeout', lambda: q1.put(2, timeout=0.01))
show('put_nowait full', lambda: q1.put_nowait(3))
t = later(lambda: q1.get())
show('put waits', lambda: q1.put(4))
t.join()
show('get after', lambda: q1.get())
show('task_done', lambda: q1.task_done())
show('task_done', lambda: q1.task_done())
show('task_done', lambda: q1.task_done())
show('task_done extra', lambda: q1.task_done())
show('join', lambda: q1.join())
jq = m.JoinableQueue()
jq.put('job')
t = later(lambda: (jq.get(), jq.task_done()))
show('join waits', lambda: jq.join())
t.join()
if sys.version_info >= (3, 13):
    sq = m.Queue()
    sq.put(1)
    t = later(lambda: sq.shutdown())
    show('get', lambda: sq.get())
    show('get shut down', lambda: sq.get())
    show('put shut down', lambda: sq.put(2))
    t.join()
    sq2 = m.Queue()
    sq2.put(1)
    sq2.shutdown(immediate=True)
    show('immediate', lambda: sq2.get_nowait())
    show('join after immediate', lambda: sq2.join())

print('== Lock')
k = m.Lock()
show('acquire', lambda: k.acquire())
show('acquire nonblock', lambda: k.acquire(False))
show('acquire timeout', lambda: k.acquire(timeout=0.01))
show('release', lambda: k.release())
show('release again', lambda: k.release())
with k:
    show('in with', lambda: k.acquire(False))
t = later(lambda: k.release())
k.acquire()
show('acquire waits', lambda: k.acquire())
k.release()
show('acquire bad', lambda: k.acquire(False, 1))

print('== RLock')
r = m.RLock()
show('acquire', lambda: r.acquire())
show('acquire again', lambda: r.acquire())
res = []
t = threading.Thread(target=lambda: res.append(r.acquire(False)))
t.start()
t.join()
show('other thread', lambda: res)
show('release', lambda: r.release())
show('release', lambda: r.release())
show('release extra', lambda: r.release())

print('== Semaphore')
s = m.Semaphore(2)
show('acquire', lambda: s.acquire())
show('acquire', lambda: s.acquire())
show('acquire nonblock', lambda: s.acquire(False))
show('acquire timeout', lambda: s.acquire(timeout=0.01))
show('release', lambda: s.release())
show('release', lambda: s.release())
bs = m.BoundedSemaphore(1)
show('bounded release', lambda: bs.release())
show('bounded acquire', lambda: bs.acquire())
show('bounded release', lambda: bs.release())

print('== Event')
ev = m.Event()
show('is_set', lambda: ev.is_set())
show('wait timeout', lambda: ev.wait(0.01))
show('wait neg', lambda: ev.wait(-1))
t = later(lambda: ev.set())
show('wait waits', lambda: ev.wait(10))
t.join()
show('is_set', lambda: ev.is_set())
show('wait set', lambda: ev.wait())
ev.clear()
show('cleared', lambda: ev.is_set())

print('== Condition')
c = m.Condition()
show('notify unheld', lambda: c.notify())
show('wait unheld', lambda: c.wait(0.01))
with c:
    show('wait timeout', lambda: c.wait(0.01))


def notifier():
    with c:
        c.notify()


with c:
    t = later(notifier)
    show('wait notified', lambda: c.wait(10))
t.join()
with c:
    t = later(lambda: (c.acquire(), c.notify_all(), c.release()))
    show('wait_for', lambda: c.wait_for(lambda: True, 1))
    show('wait notify_all', lambda: c.wait(10))
t.join()
show('release extra', lambda: c.release())

print('== Barrier')
b = m.Barrier(2)
show('parties', lambda: b.parties)
show('n_waiting', lambda: b.n_waiting)
show('broken', lambda: b.broken)
out = []
t = threading.Thread(target=lambda: out.append(b.wait()))
t.start()
while b.n_waiting == 0:
    time.sleep(0.01)
out.append(b.wait())
t.join()
show('indexes', lambda: sorted(out))
show('wait timeout', lambda: b.wait(0.01))
show('broken', lambda: b.broken)
show('wait broken', lambda: b.wait())
b.reset()
show('broken after reset', lambda: b.broken)
b.abort()
show('wait aborted', lambda: b.wait())
show('attribute', lambda: b._callmethod('__getattribute__', ('nope',)))

print('== Value')
v = m.Value('i', 7)
show('value', lambda: v.value)
v.value = 8
show('get', lambda: v.get())
v.set(9)
show('str', lambda: str(v))
show('getvalue', lambda: v._getvalue())
vd = m.Value('d', 1.5)
show('double', lambda: vd.value)

print('== Array')
a = m.Array('i', [1, 2, 3])
show('array slice ::0', lambda: a[::0])
show('len', lambda: len(a))
show('getitem', lambda: a[0])
show('getitem -1', lambda: a[-1])
show('slice', lambda: a[1:3])
show('getitem 5', lambda: a[5])
a[0] = 10
show('after set', lambda: a[0])
show_type('set str', lambda: a.__setitem__(0, 'x'))
show('set 9', lambda: a.__setitem__(9, 1))
show('str', lambda: str(a))
show('getvalue', lambda: a._getvalue())
ad = m.Array('d', [0.5, 1.5])
show('double slice', lambda: ad[:])

print('== Namespace')
ns = m.Namespace(a=1)
show('a', lambda: ns.a)
ns.b = 'x'
show('b', lambda: ns.b)
show('str', lambda: str(ns))
show('missing', lambda: ns.zz)
del ns.b
show_type('del missing', lambda: ns.__delattr__('b'))
show('getvalue', lambda: ns._getvalue())

print('== server')
show('unknown method', lambda: q._callmethod('nonexistent'))
show('repr fallback', lambda: l._callmethod('__repr__'))
show_type('wrong authkey again', bad.connect)
show('still serving', lambda: str(m.list([1])))
print('done')
