# SPDX-License-Identifier: MIT
# A real CPython SyncManager server on 127.0.0.1 (free port), the reference
# the C server's transcript is compared with. Prints the port when ready,
# serves until its stdin closes.
from multiprocessing.managers import SyncManager
import sys
import threading

m = SyncManager(address=('127.0.0.1', 0), authkey=sys.argv[1].encode())
server = m.get_server()
threading.Thread(target=server.serve_forever, daemon=True).start()
print(server.address[1], flush=True)
sys.stdin.read()
