#!/usr/bin/env python3
# notify_listen.py SOCKET OUT: stand in for systemd's NOTIFY_SOCKET; append
# every datagram a daemon sends (READY=1, STATUS=..., WATCHDOG=1) to OUT,
# one line per assignment, until killed.
import os, socket, sys
path, out = sys.argv[1], sys.argv[2]
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(out, "a", buffering=1) as f:
    while True:
        msg = s.recv(65536).decode("utf-8", "replace")
        for line in msg.split("\n"):
            if line:
                f.write(line + "\n")
