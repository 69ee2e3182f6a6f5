# SPDX-License-Identifier: MIT
# mpchat_room.py: be a member of a room of `mpchat serve` from CPython with BaseManager.
# Usage: MPROC_AUTHKEY=key python3 mpchat_room.py NAME ROOM HOST:PORT|/socket/path
import functools, os, sys, threading, time
from multiprocessing.managers import BaseManager

class ChatManager(BaseManager):
    pass

ChatManager.register('get_room')  # get_room(ROOM): a proxy of the server's room
out = functools.partial(print, flush=True)
SHOW = {'say': '{}: {}', 'join': '{} joined the room', 'leave': '{} left the room',
        'gone': '{} is gone (no sign of life for 4 s)', 'gap': '({1} messages were missed)'}

def safe(s):  # what others wrote must not drive the terminal
    return ''.join(c if c.isprintable() else '\\u%04x' % ord(c) for c in s)

def show(kind, who, text):
    if kind in SHOW:
        out(SHOW[kind].format(safe(who), safe(text)))

def main(name, room_name, addr):
    host, _, port = addr.rpartition(':')
    m = ChatManager(address=addr if addr.startswith('/') else (host, int(port)),
                    authkey=os.environb[b'MPROC_AUTHKEY'])
    m.connect()
    room = m.get_room(room_name)
    try:
        token, seq, history, members = room.join(name)
    except ValueError as e:  # the name is taken, the room full
        sys.exit('mpchat_room.py: %s' % e)
    for _, kind, who, text in history:
        show(kind, who, text)
    out('in the room: ' + ', '.join(map(safe, members)))
    typed = threading.Event()

    def typing():  # each line typed is posted; /quit or the end of input leaves
        for line in sys.stdin:
            if line.rstrip('\r\n') == '/quit':
                break
            room.post(token, line.rstrip('\r\n'))
        typed.set()
    threading.Thread(target=typing, daemon=True).start()
    while not typed.is_set():  # fetch is also the heartbeat the server watches
        for seq, kind, who, text in room.fetch(token, seq):
            show(kind, who, text)
        time.sleep(0.1)
    room.leave(token)
    out('you left the room')

if __name__ == '__main__':
    main(*sys.argv[1:4])
