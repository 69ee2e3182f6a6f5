# SPDX-License-Identifier: MIT
# mpchat_client.py: take a seat of `mpchat serve` from CPython with BaseManager.
# Usage: MPROC_AUTHKEY=key python3 mpchat_client.py NAME HOST:PORT|/socket/path
import functools, os, queue, sys, threading, time
from multiprocessing.managers import BaseManager, DictProxy

class ChatManager(BaseManager):
    pass

ChatManager.register('get_inbox1')    # lines for seat 1 (the first to join)
ChatManager.register('get_inbox2')    # lines for seat 2
ChatManager.register('get_seats', proxytype=DictProxy)  # who sits, heartbeats
out = functools.partial(print, flush=True)

def beat(seats, seat):  # mpchat gives up on a partner silent for 4 s
    for n in range(1, 1 << 62):
        seats['hb%d' % seat] = n
        time.sleep(0.5)

def receive(inbox, seats, seat):  # the next message, or 'gone'
    last, seen = None, time.monotonic()
    while True:
        try:
            return inbox.get(timeout=0.5)
        except queue.Empty:
            hb = seats.get('hb%d' % (3 - seat))
            if hb != last:
                last, seen = hb, time.monotonic()
            elif time.monotonic() - seen > 4:
                return ('gone', 'your partner', '')

def give_back(seats, seat, me):  # the next conversation may have the seat
    if seats.get(seat) == me:
        seats.pop(seat, None)

def main(name, addr):
    host, _, port = addr.rpartition(':')
    m = ChatManager(address=addr if addr.startswith('/') else (host, int(port)),
                    authkey=os.environb[b'MPROC_AUTHKEY'])
    m.connect()
    seats, me = m.get_seats(), (name, '%d-py-%d' % (os.getpid(), time.time_ns()))
    if seats.get('mode') == 'free':
        sys.exit('mpchat_client.py: this server is free-order; I only alternate')
    seat = next((s for s in (1, 2) if seats.setdefault(s, me) == me), 0)
    if not seat:
        sys.exit('mpchat: the chat is full')
    boxes = [m.get_inbox1(), m.get_inbox2()]
    inbox, outbox = boxes if seat == 1 else boxes[::-1]
    threading.Thread(target=beat, args=(seats, seat), daemon=True).start()
    if seat == 2:  # drop what an earlier conversation left, then say hello
        while not inbox.empty():
            inbox.get()
        outbox.put(('join', name, seats.get(1, ('', ''))[1]))
    else:  # only a join carrying my nonce is for me
        out('waiting for a partner...')
        while (msg := inbox.get())[0] != 'join' or msg[2] != me[1]:
            pass
        out('%s joined the chat; you write first' % msg[1])
    for turn in range(seat - 1, 1 << 62):
        if turn % 2 == 0:
            line = sys.stdin.readline()
            if line in ('', '/quit\n'):
                give_back(seats, seat, me)
                outbox.put(('bye', name, ''))
                return out('you left the chat')
            outbox.put(('say', name, line.rstrip('\r\n')))
        else:
            kind, who, text = receive(inbox, seats, seat)
            if kind != 'say':
                give_back(seats, seat, me)
                if kind == 'gone':
                    seats.pop(3 - seat, None)
                return out(who, 'left the chat' if kind == 'bye' else 'is gone')
            out('%s: %s' % (who, text))

if __name__ == '__main__':
    main(*sys.argv[1:3])
