#!/usr/bin/env python3
"""A misbehaving relay for agent tests (python3-paramiko).

fake_relay.py disconnect ADDR PORT
    Raw: send an SSH banner, then (before any key exchange, so before the
    agent can check the host key) a DISCONNECT whose text carries a
    newline, a forged log line and terminal escapes. Every connection.
fake_relay.py channels ADDR PORT HOSTKEY FWDPORT
    paramiko server with HOSTKEY (OpenSSH ed25519): accepts any key and
    any tcpip-forward; once FWDPORT is granted, opens channels the agent
    never asked for (session, x11, direct-tcpip, auth-agent,
    forwarded-tcpip to another port), then a forwarded-tcpip to FWDPORT.
    Prints one line per open: "TYPE refused|accepted|noanswer SECONDS",
    then "done", and exits.
"""
import socket
import struct
import sys
import threading
import time

EVIL = ("bye\nsimtun-agent: connected to 6.6.6.6 via evil, forwarding 4649"
        "\x1b[2J\x1b]0;pwned\x07\r")


def disconnect(addr, port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(16)
    while True:
        c, _ = ls.accept()
        try:
            c.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
            c.settimeout(5)
            c.recv(256)
            text = EVIL.encode()
            payload = (bytes([1]) + struct.pack(">I", 2) +
                       struct.pack(">I", len(text)) + text +
                       struct.pack(">I", 0))
            pad = 8 - (len(payload) + 5) % 8
            if pad < 4:
                pad += 8
            pkt = (struct.pack(">IB", len(payload) + pad + 1, pad) +
                   payload + b"\0" * pad)
            c.sendall(pkt)
            time.sleep(0.2)
        except OSError:
            pass
        c.close()


def channels(addr, port, hostkey, fwdport):
    import paramiko

    key = paramiko.Ed25519Key.from_private_key_file(hostkey)
    granted = threading.Event()

    class Server(paramiko.ServerInterface):
        def get_allowed_auths(self, username):
            return "publickey"

        def check_auth_publickey(self, username, k):
            return paramiko.AUTH_SUCCESSFUL

        def check_port_forward_request(self, address, p):
            if p == fwdport:
                granted.set()
            return p

        def check_global_request(self, kind, msg):
            return False

    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(4)
    c, _ = ls.accept()
    t = paramiko.Transport(c)
    t.add_server_key(key)
    t.start_server(server=Server())
    if not granted.wait(15):
        print("no tcpip-forward for %d" % fwdport, flush=True)
        sys.exit(1)
    opens = [
        ("session", None, None),
        ("x11", None, ("127.0.0.1", 6010)),
        ("direct-tcpip", ("127.0.0.1", 22), ("127.0.0.1", 5000)),
        ("auth-agent@openssh.com", None, None),
        ("forwarded-tcpip", ("", fwdport + 1), ("203.0.113.9", 5001)),
        ("forwarded-tcpip", ("", fwdport), ("203.0.113.9", 5002)),
    ]
    for kind, dest, src in opens:
        t0 = time.monotonic()
        try:
            ch = t.open_channel(kind, dest_addr=dest, src_addr=src,
                                timeout=5)
            res = "accepted"
            ch.close()
        except paramiko.ChannelException:
            res = "refused"
        except paramiko.SSHException:
            res = "noanswer"
        print("%s:%d %s %.3f" % (kind, dest[1] if dest else 0, res,
              time.monotonic() - t0), flush=True)
    print("done", flush=True)
    t.close()


def main():
    a = sys.argv
    if len(a) == 4 and a[1] == "disconnect":
        disconnect(a[2], int(a[3]))
    elif len(a) == 6 and a[1] == "channels":
        channels(a[2], int(a[3]), a[4], int(a[5]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
