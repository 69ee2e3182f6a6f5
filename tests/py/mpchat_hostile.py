# SPDX-License-Identifier: MIT
# mpchat_hostile.py: a peer in seat 2 that sends mpchat what no honest client does.
import os, sys
from multiprocessing.managers import BaseManager, DictProxy

class ChatManager(BaseManager):
    pass

ChatManager.register('get_inbox1')
ChatManager.register('get_inbox2')
ChatManager.register('get_seats', proxytype=DictProxy)
host, _, port = sys.argv[1].rpartition(':')
m = ChatManager(address=(host, int(port)), authkey=os.environb[b'MPROC_AUTHKEY'])
m.connect()
seats, name = m.get_seats(), 'mal\x1b[2Jlory'
assert seats.setdefault(2, (name, 'x')) == (name, 'x')
to_ana, mine = m.get_inbox1(), m.get_inbox2()
beats = iter(range(1, 1 << 30))
seats['hb2'] = next(beats)
to_ana.put(('join', name, seats[1][1]))  # ana's nonce: a join for her
print(mine.get(timeout=60)[2], flush=True)
for msg in (42, ('say', 1, 2), ('say', name, 'x' * 100000),
            ('say', name, '\x1b]0;pwned\x07\u202eevil\x9b\U0001F600'),
            ('bye', name, '')):
    seats['hb2'] = next(beats)
    to_ana.put(msg)
print('done', flush=True)
