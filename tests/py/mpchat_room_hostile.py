# SPDX-License-Identifier: MIT
# mpchat_room_hostile.py: call a room of mpchat with what no honest member sends.
import os, sys
from multiprocessing.managers import BaseManager

class ChatManager(BaseManager):
    pass

ChatManager.register('get_room')
host, _, port = sys.argv[1].rpartition(':')
m = ChatManager(address=(host, int(port)), authkey=os.environb[b'MPROC_AUTHKEY'])
m.connect()

def attempt(what, call, *args, **kwds):  # prints what the server made of it
    try:
        call(*args, **kwds)
        print(what, 'accepted', flush=True)
    except Exception as e:
        print(what, type(e).__name__, flush=True)

attempt('room name with a space', m.get_room, 'bad room')
room = m.get_room('lobby')
attempt('name with an escape', room.join, 'mal\x1b[2Jlory')
attempt('empty name', room.join, '')
attempt('name not a str', room.join, 42)
attempt('keyword', room.join, name='x')
token, seq, history, members = room.join('mal')
attempt('name taken', room.join, 'ana')
attempt('post with a wrong token', room.post, token + 1, 'x')
attempt('post not a str', room.post, token, 42)
attempt('post too long', room.post, token, 'x' * 5000)
attempt('fetch before 0', room.fetch, token, -1)
attempt('fetch after a str', room.fetch, token, 'a')
attempt('post escapes', room.post, token, '\x1b]0;pwned\x07\u202eevil\x9b\U0001F600')
room.leave(token)
attempt('post after leaving', room.post, token, 'x')
print('done', flush=True)
