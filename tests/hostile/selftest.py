#!/usr/bin/python3
"""selftest.py: proof that hostile.py's strict device has teeth.

A paramiko server on 127.0.0.1 grants the strict device its forward, opens
one forwarded-tcpip channel, closes it, and then (per case) sends nothing,
WINDOW_ADJUST, CHANNEL_DATA or CHANNEL_FAILURE on it, or WINDOW_ADJUST for
an id never opened.  The strict device must report "violation=none" for
the clean case and exit 3 with "protocol error" for every other one.
Run by hand (no namespaces, no root): python3 tests/hostile/selftest.py
"""
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import paramiko
from paramiko.message import Message

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = {"clean": None, "window_adjust": 93, "data": 94, "failure": 100,
         "unknown_id": 93}


class Server(paramiko.ServerInterface):
    def check_auth_publickey(self, user, key):
        return paramiko.AUTH_SUCCESSFUL

    def get_allowed_auths(self, user):
        return "publickey"

    def check_port_forward_request(self, addr, port):
        return port


def serve(ls, hostkey, case):
    c, _ = ls.accept()
    t = paramiko.Transport(c)
    t.add_server_key(hostkey)
    t.start_server(server=Server())
    time.sleep(0.5)
    ch = t.open_forwarded_tcpip_channel(("192.0.2.1", 1234), ("", 4650))
    time.sleep(0.2)
    rid = ch.remote_chanid
    ch.close()
    time.sleep(0.2)
    ptype = CASES[case]
    if ptype is not None:
        m = Message()
        m.add_byte(bytes([ptype]))
        m.add_int(4242 if case == "unknown_id" else rid)
        if ptype == 93:
            m.add_int(1000)
        elif ptype == 94:
            m.add_string(b"late")
        t._send_user_message(m)
    time.sleep(1.5)
    t.close()


def main():
    tmp = tempfile.mkdtemp()
    hostkey = paramiko.Ed25519Key.from_private_key_file(keygen(tmp, "host"))
    client = keygen(tmp, "client")
    bad = 0
    for case in CASES:
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        th = threading.Thread(target=serve, args=(ls, hostkey, case),
                              daemon=True)
        th.start()
        p = subprocess.run(
            [sys.executable, os.path.join(HERE, "hostile.py"),
             "--host", "127.0.0.1", "--port", str(ls.getsockname()[1]),
             "--key", client, "--duration", "3", "strict"],
            capture_output=True, text=True, timeout=20)
        th.join(5)
        ls.close()
        want_ok = case == "clean"
        got_ok = "violation=none" in p.stdout
        flagged = p.returncode == 3 and "protocol error" in p.stdout
        ok = got_ok if want_ok else flagged
        print("%-14s %s (exit %d) %s" % (
            case, "ok" if ok else "WRONG", p.returncode,
            [ln for ln in p.stdout.splitlines() if "violation" in ln]))
        bad += not ok
    print("selftest: %s" % ("passed" if not bad else "%d wrong" % bad))
    return 1 if bad else 0


def keygen(d, name):
    path = os.path.join(d, name)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                    path], check=True)
    return path


if __name__ == "__main__":
    sys.exit(main())
