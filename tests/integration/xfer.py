#!/usr/bin/env python3
"""Concurrent byte-exact transfers for integration tests.

xfer.py serve PORT
    On 127.0.0.1:PORT, per connection: a request line "D SEED SIZE" gets
    SIZE pseudo-random bytes from SEED, then the server closes; "U" makes
    the server read to EOF and answer the sha256 of what came after the
    line.
xfer.py rounds HOST PORT ROUNDS CONNS SIZE DIR MAXSECS
    ROUNDS times: CONNS transfers of SIZE bytes at once, DIR = down
    (server -> client) or up (client -> server), each checked by sha256.
    Prints one line per round with its time; exit 1 on a checksum
    mismatch, an error, or a round slower than MAXSECS.
"""
import hashlib
import random
import socket
import sys
import threading
import time


def blob(seed, size):
    return random.Random(seed).randbytes(size)


def readline(conn):
    buf = b""
    while not buf.endswith(b"\n"):
        c = conn.recv(1)
        if not c:
            break
        buf += c
    return buf.decode().split()


def serve_one(conn):
    try:
        req = readline(conn)
        if req and req[0] == "D":
            conn.sendall(blob(int(req[1]), int(req[2])))
        elif req and req[0] == "U":
            h = hashlib.sha256()
            while True:
                d = conn.recv(65536)
                if not d:
                    break
                h.update(d)
            conn.sendall(h.hexdigest().encode() + b"\n")
    except OSError:
        pass
    finally:
        conn.close()


def serve(port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(128)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=serve_one, args=(conn,), daemon=True).start()


def xfer(host, port, seed, size, direction, errs):
    try:
        s = socket.create_connection((host, port), timeout=10)
        s.settimeout(10)
        data = blob(seed, size)
        if direction == "down":
            s.sendall(b"D %d %d\n" % (seed, size))
            s.shutdown(socket.SHUT_WR)
            h = hashlib.sha256()
            n = 0
            while True:
                d = s.recv(65536)
                if not d:
                    break
                h.update(d)
                n += len(d)
            if h.digest() != hashlib.sha256(data).digest():
                errs.append("seed %d: %d bytes, checksum differs" % (seed, n))
        else:
            s.sendall(b"U\n" + data)
            s.shutdown(socket.SHUT_WR)
            got = b""
            while True:
                d = s.recv(256)
                if not d:
                    break
                got += d
            if got.strip().decode() != hashlib.sha256(data).hexdigest():
                errs.append("seed %d: upload checksum differs (%r)" %
                            (seed, got[:70]))
        s.close()
    except OSError as e:
        errs.append("seed %d: %s" % (seed, e))


def rounds(host, port, nrounds, conns, size, direction, maxsecs):
    worst = 0.0
    bad = 0
    for r in range(nrounds):
        errs = []
        t0 = time.monotonic()
        ths = [threading.Thread(target=xfer, args=(host, port,
               r * 1000 + i, size, direction, errs)) for i in range(conns)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        dt = time.monotonic() - t0
        worst = max(worst, dt)
        slow = dt > maxsecs
        print("round %2d %s: %d x %d bytes in %.3f s%s%s" % (r + 1, direction,
              conns, size, dt, " SLOW" if slow else "",
              "; " + "; ".join(errs) if errs else ""), flush=True)
        if errs or slow:
            bad += 1
    print("%s: %d rounds, worst %.3f s, %d bad" % (direction, nrounds, worst,
          bad), flush=True)
    return 1 if bad else 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    elif len(sys.argv) == 9 and sys.argv[1] == "rounds":
        a = sys.argv
        sys.exit(rounds(a[2], int(a[3]), int(a[4]), int(a[5]), int(a[6]),
                        a[7], float(a[8])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
