#!/usr/bin/python3
"""hostile.py: an SSH peer (paramiko) that misbehaves on purpose, and the
raw-TCP laptops that go with it, for the relay's data-path tests.

Device modes (SSH to the relay, publickey auth, tcpip-forward):
  noanswer     never answers forwarded-tcpip channel opens
  unconfirmed  sends CHANNEL_DATA / EOF / CLOSE on channels it never confirmed
  late         confirms opens after the relay gave up on them, then floods
  overrun      confirms opens, then sends far more than the granted window
  tardy        confirms opens after the relay gave up on them (as OpenSSH
               may, minutes late), fills the first --fill channels' windows,
               withholds its CLOSE replies for --hoard s; reports any message
               for a channel after the relay's CLOSE for it
  opgraves     an operator (permitopen key) opening direct-tcpip channels
               to --target:--fport that never answers the relay's CLOSE;
               reports how many it opened before the relay ended the session
  strict       echo service; exits 3 ("protocol error") on ANY message for a
               channel after the relay's CHANNEL_CLOSE for it, or for a
               channel it does not know (as Go x/crypto/ssh, asyncssh, PuTTY)
  sessions     opens N authenticated sessions with one key; reports which live
  inject       login name, banner, DISCONNECT text, tcpip-forward bind address
               carrying newlines, CR, ESC and bytes >= 0x80
  authspam     keyboard-interactive / password attempts until disconnected
  banner       print the relay's banner line, or "closed" if it refuses us
Laptop modes (plain TCP to a device port):
  laptops      open N connections, hold them, report when each one ended
  hold         open N connections that never read, until told to stop
  resets       R rounds of C connections that upload or download (from the
               strict device) and reset mid-transfer (SO_LINGER 0)
  echo         send random bytes, expect them back byte-exact (strict device)

Every mode prints "key=value" result lines on stdout; exit 0 = ran as
intended, 3 = protocol violation seen (strict), 2 = usage/setup error.
"""
import argparse
import os
import select
import signal
import socket
import struct
import sys
import threading
import time

try:
    import paramiko
    from paramiko.common import (
        MSG_CHANNEL_OPEN, MSG_CHANNEL_OPEN_SUCCESS, MSG_CHANNEL_OPEN_FAILURE,
        MSG_CHANNEL_WINDOW_ADJUST, MSG_CHANNEL_DATA,
        MSG_CHANNEL_EOF, MSG_CHANNEL_CLOSE,
        MSG_CHANNEL_REQUEST, MSG_CHANNEL_SUCCESS, MSG_CHANNEL_FAILURE,
        MSG_IGNORE, MSG_DISCONNECT)
    from paramiko.message import Message
except ImportError:  # laptop modes work without paramiko
    paramiko = None

NAMES = {90: "CHANNEL_OPEN", 91: "OPEN_CONFIRMATION", 92: "OPEN_FAILURE",
         93: "WINDOW_ADJUST", 94: "CHANNEL_DATA", 95: "EXTENDED_DATA",
         96: "CHANNEL_EOF", 97: "CHANNEL_CLOSE", 98: "CHANNEL_REQUEST",
         99: "CHANNEL_SUCCESS", 100: "CHANNEL_FAILURE"}


OUT_LOCK = threading.Lock()


def out(**kv):
    """One result line, whole and flushed at once (the shell reads it while
    we run; threads print too)."""
    line = " ".join("%s=%s" % (k, v) for k, v in kv.items()) + "\n"
    with OUT_LOCK:
        sys.stdout.write(line)
        sys.stdout.flush()


def note(msg):
    with OUT_LOCK:
        sys.stdout.write(msg + "\n")
        sys.stdout.flush()


# ---------------------------------------------------------------- SSH side

def tcp_connect(a):
    """TCP socket to the relay, optionally from a given source address."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if a.src:
        s.bind((a.src, 0))
    s.settimeout(10)
    s.connect((a.host, a.port))
    s.settimeout(None)
    return s


class HTransport(paramiko.Transport if paramiko else object):
    """A Transport whose packet handlers can be replaced per instance."""

    def __init__(self, sock, banner=None):
        super().__init__(sock)
        self._handler_table = dict(paramiko.Transport._handler_table)
        if banner is not None:
            self.local_version = banner


def ssh_connect(a, banner=None):
    """Key exchange (no host key check: we are the attacker) and return."""
    t = HTransport(tcp_connect(a), banner)
    t.start_client(timeout=15)
    return t


def ssh_login(a, user=None, banner=None):
    """Connected and authenticated with --key as --user."""
    t = ssh_connect(a, banner)
    key = paramiko.Ed25519Key.from_private_key_file(a.key)
    t.auth_publickey(user if user is not None else a.user, key)
    return t


def hidden():
    """What a read_message hook returns for a message paramiko must not
    see (it belongs to our raw channels): an SSH_MSG_IGNORE."""
    im = Message()
    im.add_string(b"")
    im.rewind()
    return MSG_IGNORE, im


def raw(t, *items):
    """Send a message built from (kind, value) items, waiting out kex."""
    m = Message()
    for kind, v in items:
        getattr(m, "add_" + kind)(v)
    t._send_user_message(m)


def forward(t, addr, port):
    """tcpip-forward; True if granted."""
    r = t.global_request("tcpip-forward", (addr, port), wait=True)
    return r is not None


def parse_open(m):
    """The fields of a CHANNEL_OPEN message (after the type byte)."""
    kind = m.get_text()
    sender = m.get_int()
    window = m.get_int()
    maxpkt = m.get_int()
    return kind, sender, window, maxpkt


def hold(t, seconds, stop):
    """Wait until the session dies, the time is up or we are told to stop."""
    end = time.time() + seconds
    while time.time() < end and t.is_active() and not stop.is_set():
        time.sleep(0.1)


def stopper():
    """An Event set by SIGTERM/SIGINT, for a clean summary at the end."""
    ev = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: ev.set())
    return ev


def cmd_noanswer(a):
    """Take the port, then swallow every channel open without a reply.
    A keepalive every second keeps packets arriving, as a live device's
    would."""
    t = ssh_login(a)
    t.set_keepalive(1)
    opens = []

    def on_open(tr, m):
        opens.append(parse_open(m)[1])
        out(open=len(opens))
    t._handler_table[MSG_CHANNEL_OPEN] = on_open
    if not forward(t, a.bind, a.fport):
        out(forward="refused")
        return 2
    out(forward="granted", port=a.fport)
    stop = stopper()
    hold(t, a.duration, stop)
    out(opens=len(opens), session="alive" if t.is_active() else "closed")
    t.close()
    return 0


def cmd_unconfirmed(a):
    """Answer opens with DATA/EOF/CLOSE on the relay's id, never confirming.

    The kind of misbehaviour rotates per open: data+eof+close at once,
    data only, close only, eof then data then window-adjust, and the same
    again after a delay (when the laptop has already reset); data for an
    id never opened follows each. A relay may close the session for it:
    then we log in again and take the port back, until told to stop."""
    n = [0]
    sessions = 0
    lock = threading.Lock()
    stop = stopper()
    end = time.time() + a.duration

    def misbehave(t, rid, k):
        try:
            if k % 2:
                time.sleep(0.3)
            step = (k // 2) % 4
            data = ("x" * 200).encode()
            if step == 0:
                raw(t, ("byte", bytes([MSG_CHANNEL_DATA])), ("int", rid),
                    ("string", data))
                raw(t, ("byte", bytes([MSG_CHANNEL_EOF])), ("int", rid))
                raw(t, ("byte", bytes([MSG_CHANNEL_CLOSE])), ("int", rid))
            elif step == 1:
                for _ in range(4):
                    raw(t, ("byte", bytes([MSG_CHANNEL_DATA])), ("int", rid),
                        ("string", data))
            elif step == 2:
                raw(t, ("byte", bytes([MSG_CHANNEL_CLOSE])), ("int", rid))
            else:
                raw(t, ("byte", bytes([MSG_CHANNEL_EOF])), ("int", rid))
                raw(t, ("byte", bytes([MSG_CHANNEL_DATA])), ("int", rid),
                    ("string", data))
                raw(t, ("byte", bytes([MSG_CHANNEL_WINDOW_ADJUST])),
                    ("int", rid), ("int", 1 << 20))
            # and a channel id the relay never opened
            raw(t, ("byte", bytes([MSG_CHANNEL_DATA])), ("int", rid + 1000),
                ("string", data))
        except Exception as e:  # session gone: the main loop logs in again
            note("send failed: %s" % e)

    while time.time() < end and not stop.is_set():
        try:
            t = ssh_login(a)
        except Exception as e:
            note("login failed: %s" % e)
            time.sleep(0.2)
            continue
        t.set_keepalive(1)

        def on_open(tr, m, t=t):
            rid = parse_open(m)[1]
            with lock:
                k = n[0]
                n[0] += 1
            out(open=k + 1, relay_channel=rid)
            threading.Thread(target=misbehave, args=(t, rid, k),
                             daemon=True).start()
        t._handler_table[MSG_CHANNEL_OPEN] = on_open
        if not forward(t, a.bind, a.fport):
            out(forward="refused")
            t.close()
            time.sleep(0.2)
            continue
        sessions += 1
        out(forward="granted", port=a.fport, session=sessions)
        hold(t, end - time.time(), stop)
        t.close()
    out(opens=n[0], sessions=sessions)
    return 0


def cmd_overrun(a):
    """Confirm opens, then send --mb MiB on each ignoring the window."""
    t = ssh_login(a)
    chans = []
    lock = threading.Lock()
    sent = {}

    def blast(rid, mine, window, maxpkt):
        size = min(maxpkt, 32768) - 64
        chunk = os.urandom(size)
        total = a.mb * 1024 * 1024
        done = 0
        try:
            while done < total and t.is_active():
                raw(t, ("byte", bytes([MSG_CHANNEL_DATA])), ("int", rid),
                    ("string", chunk))
                done += size
                sent[mine] = done
        except Exception as e:
            note("channel %d: send failed: %s" % (mine, e))
        out(channel=mine, sent=done, granted=window)

    def on_open(tr, m):
        kind, rid, window, maxpkt = parse_open(m)
        with lock:
            mine = 5000 + len(chans)
            chans.append(mine)
            if len(chans) > a.channels:
                raw(t, ("byte", bytes([MSG_CHANNEL_OPEN_FAILURE])),
                    ("int", rid), ("int", 2), ("string", b"full"),
                    ("string", b""))
                return
        tr.channels_seen[mine] = True   # paramiko ignores its traffic
        raw(t, ("byte", bytes([MSG_CHANNEL_OPEN_SUCCESS])), ("int", rid),
            ("int", mine), ("int", 1 << 21), ("int", 32768))
        out(open=len(chans), granted=window, maxpkt=maxpkt)
        threading.Thread(target=blast, args=(rid, mine, window, maxpkt),
                         daemon=True).start()
    t._handler_table[MSG_CHANNEL_OPEN] = on_open
    if not forward(t, a.bind, a.fport):
        out(forward="refused")
        return 2
    out(forward="granted", port=a.fport)
    stop = stopper()
    hold(t, a.duration, stop)
    out(total_sent=sum(sent.values()),
        session="alive" if t.is_active() else "closed")
    t.close()
    return 0


def cmd_late(a):
    """Confirm each open only after --delay seconds (past the relay's
    channel_open_timeout), then send --mb MiB on it ignoring the window.
    Reports whether the relay closed each late channel (CHANNEL_CLOSE for
    our id) or the whole session."""
    t = ssh_login(a)
    t.set_keepalive(1)
    lock = threading.Lock()
    mine_ids = []
    closed = set()
    orig = t.packetizer.read_message

    def read_message():
        ptype, m = orig()
        if ptype == MSG_CHANNEL_CLOSE:
            cid = struct.unpack(">I", m.asbytes()[:4])[0]
            if cid in mine_ids:
                closed.add(cid)
                out(relay_closed=cid)
        return ptype, m
    t.packetizer.read_message = read_message

    def late(rid, mine, window, maxpkt):
        time.sleep(a.delay)
        try:
            raw(t, ("byte", bytes([MSG_CHANNEL_OPEN_SUCCESS])), ("int", rid),
                ("int", mine), ("int", 1 << 21), ("int", 32768))
            out(confirmed=mine, after=a.delay)
            size = min(maxpkt, 32768) - 64
            chunk = os.urandom(size)
            done = 0
            while done < a.mb * 1024 * 1024 and t.is_active() and \
                    mine not in closed:
                raw(t, ("byte", bytes([MSG_CHANNEL_DATA])), ("int", rid),
                    ("string", chunk))
                done += size
            out(channel=mine, sent=done)
        except Exception as e:
            note("channel %d: %s" % (mine, e))

    def on_open(tr, m):
        kind, rid, window, maxpkt = parse_open(m)
        with lock:
            mine = 7000 + len(mine_ids)
            mine_ids.append(mine)
        tr.channels_seen[mine] = True
        out(open=len(mine_ids))
        threading.Thread(target=late, args=(rid, mine, window, maxpkt),
                         daemon=True).start()
    t._handler_table[MSG_CHANNEL_OPEN] = on_open
    if not forward(t, a.bind, a.fport):
        out(forward="refused")
        return 2
    out(forward="granted", port=a.fport)
    stop = stopper()
    hold(t, a.duration, stop)
    out(opens=len(mine_ids), relay_closed=len(closed),
        session="alive" if t.is_active() else "closed")
    t.close()
    return 0


def cmd_tardy(a):
    """Confirm every open --delay s late (the relay gave up on it and must
    close it, never touch it after its CLOSE), send the first --fill
    channels as much as their window allows, and answer the relay's CLOSEs
    only --hoard s after the first one (meanwhile every closed channel
    stays on the relay's books). Result lines: open=N as opens arrive,
    confirmed=N, relay_closed=N, and at the end a summary with
    after_close (the first message seen for a channel after its CLOSE)."""
    t = ssh_login(a)
    t.set_keepalive(1)
    lock = threading.Lock()
    st = {"opens": 0, "confirmed": 0, "closed": 0, "after": None,
          "filled": 0, "first_close": None}
    window = {}         # our id -> bytes the relay lets us send
    rids = {}           # our id -> the relay's id
    closed = set()
    unanswered = []     # relay CLOSEs we have not answered yet
    orig = t.packetizer.read_message

    def read_message():
        ptype, m = orig()
        if 91 <= ptype <= 100:
            cid = struct.unpack(">I", m.asbytes()[:4])[0]
            with lock:
                if cid in closed and st["after"] is None:
                    st["after"] = NAMES.get(ptype, ptype)
                    note("protocol error: %s for channel %d after its "
                         "CHANNEL_CLOSE" % (st["after"], cid))
                if ptype == MSG_CHANNEL_WINDOW_ADJUST and cid in window:
                    window[cid] += struct.unpack(">I", m.asbytes()[4:8])[0]
                if ptype == MSG_CHANNEL_CLOSE and cid in rids:
                    closed.add(cid)
                    st["closed"] += 1
                    if st["first_close"] is None:
                        st["first_close"] = time.time()
                    unanswered.append(cid)
                    out(relay_closed=st["closed"])
            if cid in rids:     # ours, not paramiko's: hide it
                return hidden()
        return ptype, m
    t.packetizer.read_message = read_message

    def tardy(rid, mine, win, maxpkt, fill):
        time.sleep(a.delay)
        try:
            raw(t, ("byte", bytes([MSG_CHANNEL_OPEN_SUCCESS])), ("int", rid),
                ("int", mine), ("int", 1 << 21), ("int", 32768))
            with lock:
                st["confirmed"] += 1
                n = st["confirmed"]
            out(confirmed=n)
            chunk = b"z" * min(maxpkt, 32768)
            end = time.time() + 2
            while fill and t.is_active() and time.time() < end:
                with lock:
                    k = min(len(chunk), window[mine])
                    window[mine] -= k
                if k == 0:
                    time.sleep(0.05)
                    continue
                raw(t, ("byte", bytes([MSG_CHANNEL_DATA])), ("int", rid),
                    ("string", chunk[:k]))
                with lock:
                    st["filled"] += k
        except Exception as e:
            note("channel %d: %s" % (mine, e))

    def on_open(tr, m):
        kind, rid, win, maxpkt = parse_open(m)
        with lock:
            mine = 9000 + st["opens"]
            st["opens"] += 1
            n = st["opens"]
            window[mine] = win
            rids[mine] = rid
        out(open=n)
        threading.Thread(target=tardy, daemon=True,
                         args=(rid, mine, win, maxpkt, n <= a.fill)).start()
    t._handler_table[MSG_CHANNEL_OPEN] = on_open
    for port in str(a.fports or a.fport).split(","):
        if not forward(t, a.bind, int(port)):
            out(forward="refused", port=port)
            return 2
    out(forward="granted", port=a.fports or a.fport)
    stop = stopper()
    end = time.time() + a.duration
    import faulthandler
    while time.time() < end and t.is_active() and not stop.is_set():
        # a pass that hangs 10 s: every thread's stack goes to the log
        faulthandler.dump_traceback_later(10, exit=False)
        with lock:
            due = st["first_close"] is not None and \
                time.time() - st["first_close"] >= a.hoard
            todo = unanswered[:] if due else []
            del unanswered[:len(todo)]
        for cid in todo:
            raw(t, ("byte", bytes([MSG_CHANNEL_CLOSE])), ("int", rids[cid]))
        if todo:
            out(answered=len(todo))
        time.sleep(0.1)
    faulthandler.cancel_dump_traceback_later()
    out(opens=st["opens"], confirmed=st["confirmed"],
        relay_closed=st["closed"], filled=st["filled"],
        after_close=st["after"] or "none",
        session="alive" if t.is_active() else "closed")
    t.close()
    return 0


def cmd_opgraves(a):
    """As an operator: open --n direct-tcpip channels to --target:--fport
    one after the other, send a line of garbage on each (the device's sshd
    closes it), and never answer the relay's CHANNEL_CLOSE. Reports
    opened=N closed_by_relay=N session=alive|closed."""
    t = ssh_login(a)
    swallowed = []
    orig = t.packetizer.read_message

    def read_message():
        ptype, m = orig()
        if ptype == MSG_CHANNEL_CLOSE:
            swallowed.append(struct.unpack(">I", m.asbytes()[:4])[0])
            return hidden()     # paramiko must not answer it
        return ptype, m
    t.packetizer.read_message = read_message
    opened = 0
    keep = []   # a Channel that is garbage-collected sends its CLOSE
    for i in range(a.n):
        if not t.is_active():
            break
        try:
            ch = t.open_channel("direct-tcpip", (a.target, a.fport),
                                ("127.0.0.1", 40000 + i), timeout=10)
        except Exception as e:
            note("open %d: %s" % (i, e))
            break
        opened += 1
        keep.append(ch)
        try:
            ch.sendall(b"not ssh\r\n")
            ch.shutdown_write()  # our EOF: the relay closes once sshd has
        except (EOFError, OSError, paramiko.SSHException) as e:
            note("channel %d: %s" % (i, e))  # the relay ended the session
            break
        end = time.time() + 5
        n = len(swallowed)
        while time.time() < end and len(swallowed) == n and t.is_active():
            time.sleep(0.05)
    time.sleep(1)
    out(opened=opened, closed_by_relay=len(swallowed),
        session="alive" if t.is_active() else "closed")
    t.close()
    return 0


class Strict:
    """Watches every incoming channel message like Go's x/crypto/ssh mux:
    a message for a channel the peer already closed, or for an id never
    opened, is a protocol error that ends the connection."""

    def __init__(self, t, a):
        self.t = t
        self.a = a
        self.peer_closed = set()
        self.violation = None
        self.pending = {}       # chanid -> names of our requests awaiting
        self.nreq = 0           # a reply, oldest first
        self.lock = threading.Lock()
        self.channels = 0
        self.closes = 0
        orig = t.packetizer.read_message

        def read_message():
            ptype, m = orig()
            if 91 <= ptype <= 100:
                what = None
                if ptype in (MSG_CHANNEL_SUCCESS, MSG_CHANNEL_FAILURE):
                    cid = struct.unpack(">I", m.asbytes()[:4])[0]
                    with self.lock:
                        if self.pending.get(cid):
                            what = self.pending[cid].pop(0)
                self.check(ptype, m, what)
                if what is not None:    # our raw request: not paramiko's
                    return hidden()
            return ptype, m
        t.packetizer.read_message = read_message

    def check(self, ptype, m, what=None):
        cid = struct.unpack(">I", m.asbytes()[:4])[0]
        why = None
        if cid in self.peer_closed:
            why = "%s%s for channel %d after its CHANNEL_CLOSE" % (
                NAMES.get(ptype, ptype),
                " (the reply to our %s request)" % what if what else "", cid)
        elif ptype not in (91, 92) and cid not in self.t.channels_seen:
            why = "%s for unknown channel %d" % (NAMES.get(ptype, ptype), cid)
        if ptype == MSG_CHANNEL_CLOSE:
            with self.lock:
                self.peer_closed.add(cid)
            self.closes += 1
        if why and self.violation is None:
            self.violation = why
            note("protocol error: " + why)
            # a strict client drops the whole connection at once
            try:
                self.t.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def chanreq(self, chan):
        """A channel request that wants a reply (some clients send them);
        never on a channel whose CLOSE we have seen or sent, as a correct
        client (a request the relay's CLOSE crossed on the wire is fine).
        The name is an unknown one, left to the relay's message code.
        Not keepalive@openssh.com: libssh 0.10.6 answers that one on a
        channel itself, before any callback, so a request of that name
        crossing the relay's CLOSE still gets a CHANNEL_FAILURE (none of
        the strict clients, Go, asyncssh, PuTTY, sends it on a channel;
        their keepalives are global requests or SSH_MSG_IGNORE)."""
        with self.lock:
            if chan.chanid in self.peer_closed or chan.closed:
                return
            self.nreq += 1
            name = "probe@simtun.test"
            self.pending.setdefault(chan.chanid, []).append(name)
        raw(self.t, ("byte", bytes([MSG_CHANNEL_REQUEST])),
            ("int", chan.remote_chanid),
            ("string", name.encode()), ("boolean", True))

    def echo(self, chan):
        """Echo everything back; a connection that starts with "SRC\n"
        gets an endless stream instead (a download). With --chanreq also
        send channel requests that want a reply every N s."""
        chan.settimeout(0.5)
        last_req = time.time()
        first = True
        block = os.urandom(32768)
        try:
            while True:
                if self.a.chanreq and time.time() - last_req > self.a.chanreq:
                    last_req = time.time()
                    self.chanreq(chan)
                try:
                    d = chan.recv(65536)
                except socket.timeout:
                    if chan.closed or chan.eof_received:
                        break
                    continue
                if not d:
                    break
                if first and d.startswith(b"SRC\n"):
                    chan.settimeout(5)
                    while not chan.closed:
                        chan.sendall(block)
                        if self.a.chanreq and \
                                time.time() - last_req > self.a.chanreq:
                            last_req = time.time()
                            self.chanreq(chan)
                    break
                first = False
                chan.sendall(d)
        except Exception:
            pass
        try:
            chan.close()
        except Exception:
            pass


def cmd_strict(a):
    """A strict device: echo on the forwarded port, exit 3 on a violation."""
    t = ssh_connect(a)
    st = Strict(t, a)
    key = paramiko.Ed25519Key.from_private_key_file(a.key)
    t.auth_publickey(a.user, key)

    def handler(chan, origin, server):
        st.channels += 1
        threading.Thread(target=st.echo, args=(chan,), daemon=True).start()
    for port in str(a.fports or a.fport).split(","):
        try:
            t.request_port_forward(a.bind, int(port), handler)
        except paramiko.SSHException:
            out(forward="refused", port=port)
            return 2
        out(forward="granted", port=port)
    stop = stopper()
    end = time.time() + a.duration
    while time.time() < end and not stop.is_set() and st.violation is None:
        if not t.is_active():
            break
        time.sleep(0.1)
    alive = t.is_active() and st.violation is None
    out(channels=st.channels, closes=st.closes,
        violation='"%s"' % st.violation if st.violation else "none",
        session="alive" if alive else "closed")
    if st.violation:
        return 3
    if not t.is_active():
        note("session lost: the relay closed it")
        return 4
    t.close()
    return 0


def cmd_sessions(a):
    """Open --n sessions with one key, one after the other; after --settle
    seconds report which are still alive (numbered from 1)."""
    ts = []
    for i in range(a.n):
        try:
            t = ssh_login(a)
            t.set_keepalive(0)
            ts.append(t)
        except Exception as e:
            out(session=i + 1, error='"%s"' % e)
            ts.append(None)
    time.sleep(a.settle)
    alive = [str(i + 1) for i, t in enumerate(ts) if t and t.is_active()]
    out(opened=sum(1 for t in ts if t), alive=",".join(alive) or "none")
    stop = stopper()
    end = time.time() + a.duration
    while time.time() < end and not stop.is_set():
        time.sleep(0.1)
    for t in ts:
        if t:
            t.close()
    return 0


def cmd_inject(a):
    """Peer text with line breaks, CR, ESC and high bytes, everywhere the
    relay might log or show it. Each step is independent."""
    forged = ("\n%s simtun-relay: device dev2 authenticated from 6.6.6.6 port"
              " 22 (key SHA256:forged)" % time.strftime("%H:%M:%S.000"))
    evil = (forged + "\r\x1b[2K\x1b]0;owned\x07\xff\xfe\xc3\xa9").encode(
        "latin-1") + b"\xe2\x80\xae end"
    steps = []

    def step(name, fn):
        try:
            fn()
            steps.append(name + ":ok")
        except Exception as e:
            steps.append(name + ":" + type(e).__name__)

    def login_unknown():    # a key the relay does not know, crafted user
        t = ssh_connect(a)
        try:
            t.auth_publickey(evil, paramiko.Ed25519Key.from_private_key_file(
                a.badkey))
        except paramiko.AuthenticationException:
            pass
        t.close()

    def login_known():      # the device's own key, crafted user
        t = ssh_login(a, user=evil)
        t.close()

    def banner():           # crafted client banner (no CR/LF possible)
        t = ssh_connect(a, banner=("SSH-2.0-x\x1b[31m\x07\xff\xfe" +
                                   "\u202e").encode("utf-8", "surrogateescape")
                        .decode("latin-1"))
        t.close()

    def disconnect_pre():   # DISCONNECT before auth
        t = ssh_connect(a)
        raw(t, ("byte", bytes([MSG_DISCONNECT])), ("int", 11),
            ("string", evil), ("string", b""))
        time.sleep(0.3)
        t.close()

    def disconnect_post():  # DISCONNECT from an authenticated device
        t = ssh_login(a)
        raw(t, ("byte", bytes([MSG_DISCONNECT])), ("int", 11),
            ("string", evil), ("string", b""))
        time.sleep(0.3)
        t.close()

    def forward_refused():  # a port the key may not take: refused, logged
        t = ssh_login(a)
        forward(t, evil, a.badport)
        t.close()

    step("login_unknown", login_unknown)
    step("login_known", login_known)
    step("banner", banner)
    step("disconnect_pre", disconnect_pre)
    step("disconnect_post", disconnect_post)
    step("forward_refused", forward_refused)
    # last: hold the permitted port with the crafted bind address (the
    # relay keeps it, may show it), until told to stop
    t = ssh_login(a)
    granted = forward(t, evil, a.fport)
    out(steps=",".join(steps), forward="granted" if granted else "refused")
    stop = stopper()
    hold(t, a.duration, stop)
    t.close()
    return 0


def cmd_authspam(a):
    """--tries attempts of --method in one connection (with --pipeline all
    but the first sent at once); reports how many were sent and how many
    USERAUTH_FAILURE answers came back before the relay closed the
    connection."""
    try:
        t = HTransport(tcp_connect(a))
    except Exception as e:
        out(connect="refused", error='"%s"' % type(e).__name__)
        return 0
    failures = [0]
    orig = t.packetizer.read_message

    def read_message():
        ptype, m = orig()
        if ptype == 51:         # MSG_USERAUTH_FAILURE
            failures[0] += 1
        return ptype, m
    t.packetizer.read_message = read_message
    try:
        t.start_client(timeout=15)
    except Exception as e:
        out(connect="refused", error='"%s"' % type(e).__name__)
        return 0
    sent = 0
    for i in range(a.tries):
        if not t.is_active():
            break
        if a.pipeline and i == 1:
            # the rest in one burst, without waiting for answers: a
            # relay that closes at the limit must not answer the others
            for j in range(1, a.tries):
                if a.method == "password":
                    raw(t, ("byte", bytes([50])), ("string", a.user),
                        ("string", "ssh-connection"), ("string", "password"),
                        ("boolean", False), ("string", "hunter%d" % j))
                else:
                    raw(t, ("byte", bytes([50])), ("string", a.user),
                        ("string", "ssh-connection"),
                        ("string", "keyboard-interactive"), ("string", ""),
                        ("string", ""))
                sent += 1
            time.sleep(1.5)
            break
        sent += 1
        try:
            if a.method == "password":
                t.auth_password(a.user, "hunter%d" % i)
            else:
                t.auth_interactive(a.user, lambda title, instr, prompts:
                                   ["hunter%d" % i for _ in prompts])
        except paramiko.AuthenticationException:
            continue
        except Exception:
            break      # connection gone
        out(result="accepted?!")
        break
    time.sleep(0.5)
    out(connect="ok", sent=sent, answered=failures[0],
        closed="yes" if not t.is_active() else "no")
    t.close()
    return 0


def cmd_banner(a):
    """The relay's identification line, or closed/timeout."""
    try:
        s = tcp_connect(a)
    except OSError:
        out(banner="connect-failed")
        return 0
    s.settimeout(5)
    data = b""
    try:
        while b"\n" not in data:
            d = s.recv(256)
            if not d:
                break
            data += d
    except socket.timeout:
        out(banner="timeout")
        return 0
    except OSError:
        pass
    line = data.split(b"\n")[0].strip()
    out(banner=line.decode("ascii", "replace").replace(" ", "_") if line
        else "closed")
    return 0


# ------------------------------------------------------------- laptop side

def lsock(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if a.src:
        s.bind((a.src, 0))
    return s


def rst_close(s):
    """Close with SO_LINGER 0: the peer sees a reset, not a FIN."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


def cmd_laptops(a):
    """Open --n connections (round-robin over --ports), never read or write
    unless --send; report how many the relay ended within --hold seconds
    and how long the slowest took."""
    ports = [int(p) for p in a.ports.split(",")]
    socks = {}
    t0 = time.time()
    failed = 0
    for i in range(a.n):
        s = lsock(a)
        s.setblocking(False)
        try:
            s.connect((a.host, ports[i % len(ports)]))
        except BlockingIOError:
            pass
        except OSError:
            failed += 1
            s.close()
            continue
        socks[s.fileno()] = (s, time.time())
    out(opened=len(socks), connect_failed=failed)
    ended = {}
    if a.send:
        time.sleep(0.2)
        for s, _ in socks.values():
            try:
                s.send(b"x" * a.send)
            except OSError:
                pass
    stop = stopper()
    p = select.poll()
    for fd in socks:
        p.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    end = t0 + a.hold
    while time.time() < end and len(ended) < len(socks) and not stop.is_set():
        for fd, ev in p.poll(100):
            s, t = socks[fd]
            try:
                d = s.recv(65536) if not a.noread else b""
            except OSError:
                d = b""
            if d and not (ev & (select.POLLERR | select.POLLHUP)):
                continue
            if d == b"" or ev & (select.POLLERR | select.POLLHUP):
                ended[fd] = time.time() - t
                p.unregister(fd)
        if a.noread:
            # only errors/hangups count; POLLIN with data is left unread
            pass
    slow = max(ended.values()) if ended else 0
    out(ended=len(ended), total=len(socks), slowest="%.1f" % slow)
    if a.linger:
        while time.time() < end and not stop.is_set():
            time.sleep(0.1)
    for s, _ in socks.values():
        rst_close(s) if a.reset else s.close()
    return 0


def cmd_hold(a):
    """Open --n connections that never read (a laptop that stalls), send
    --send bytes on each, hold them until told to stop."""
    ports = [int(p) for p in a.ports.split(",")]
    socks = []
    for i in range(a.n):
        s = lsock(a)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.settimeout(5)
        try:
            s.connect((a.host, ports[i % len(ports)]))
            if a.send:
                s.sendall(b"y" * a.send)
            socks.append(s)
        except OSError as e:
            note("connect %d: %s" % (i, e))
    out(held=len(socks))
    stop = stopper()
    end = time.time() + a.duration
    while time.time() < end and not stop.is_set():
        time.sleep(0.1)
    for s in socks:
        s.close()
    return 0


def cmd_resets(a):
    """--rounds rounds of --conns connections that reset mid-transfer:
    even ones upload (send data, read a little of the echo), odd ones
    download (ask the device for a stream with "SRC\n", read fast)."""
    ports = [int(p) for p in a.ports.split(",")]
    payload = os.urandom(a.bytes)
    done = 0
    for r in range(a.rounds):
        socks = []
        for i in range(a.conns):
            s = lsock(a)
            s.settimeout(5)
            try:
                s.connect((a.host, ports[i % len(ports)]))
                socks.append(s)
            except OSError as e:
                note("round %d conn %d: %s" % (r, i, e))
        down = set(socks[1::2])
        for s in socks:
            if s in down:
                s.sendall(b"SRC\n")
            s.setblocking(False)
        # push data both ways for a moment, reading only part of the echo
        end = time.time() + a.span
        off = {s: 0 for s in socks}
        while time.time() < end:
            for s in socks:
                try:
                    if s in down:
                        while s.recv(262144):
                            pass
                        continue
                    if off[s] < len(payload):
                        off[s] += s.send(payload[off[s]:off[s] + 65536])
                    s.recv(4096)
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    pass
            time.sleep(0.005)
        for s in socks:
            rst_close(s)
        done += 1
        time.sleep(a.gap)
    out(rounds=done)
    return 0


def cmd_echo(a):
    """Round trip through an echo device: --bytes random bytes come back."""
    payload = os.urandom(a.bytes)
    s = lsock(a)
    s.settimeout(a.timeout)
    t0 = time.time()
    try:
        s.connect((a.host, int(a.ports.split(",")[0])))
        got = bytearray()
        sent = 0
        s.setblocking(False)
        end = t0 + a.timeout
        while len(got) < len(payload) and time.time() < end:
            r, w, _ = select.select([s], [s] if sent < len(payload) else [],
                                    [], 0.1)
            if w:
                sent += s.send(payload[sent:sent + 65536])
            if r:
                d = s.recv(65536)
                if not d:
                    break
                got += d
    except OSError as e:
        out(echo="error", error='"%s"' % e)
        return 1
    ok = bytes(got) == payload
    out(echo="ok" if ok else "mismatch", got=len(got), want=len(payload),
        secs="%.2f" % (time.time() - t0))
    s.close()
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, default=2222)
    ap.add_argument("--src", help="source address to bind")
    ap.add_argument("--key", help="OpenSSH ed25519 private key")
    ap.add_argument("--badkey", help="a key the relay does not know")
    ap.add_argument("--user", default="dev")
    ap.add_argument("--bind", default="", help="tcpip-forward bind address")
    ap.add_argument("--fport", type=int, default=4650,
                    help="port to ask the relay for")
    ap.add_argument("--fports", help="strict: several ports, comma-separated")
    ap.add_argument("--badport", type=int, default=4999)
    ap.add_argument("--duration", type=float, default=3600)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--mb", type=int, default=64)
    ap.add_argument("--delay", type=float, default=5,
                    help="late: seconds before confirming")
    ap.add_argument("--target", default="dev1",
                    help="opgraves: the device name to open channels to")
    ap.add_argument("--fill", type=int, default=0,
                    help="tardy: channels whose window is filled")
    ap.add_argument("--hoard", type=float, default=0,
                    help="tardy: seconds before answering CLOSEs")
    ap.add_argument("--chanreq", type=float, default=0,
                    help="strict: channel request every N s per channel")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--settle", type=float, default=2)
    ap.add_argument("--tries", type=int, default=10)
    ap.add_argument("--pipeline", action="store_true",
                    help="authspam: all but the first attempt in one burst")
    ap.add_argument("--method", default="keyboard-interactive",
                    choices=["keyboard-interactive", "password"])
    ap.add_argument("--ports", default="4650")
    ap.add_argument("--hold", type=float, default=20)
    ap.add_argument("--send", type=int, default=0)
    ap.add_argument("--noread", action="store_true")
    ap.add_argument("--linger", action="store_true")
    ap.add_argument("--reset", action="store_true")
    ap.add_argument("--rounds", type=int, default=16)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--bytes", type=int, default=1 << 20)
    ap.add_argument("--span", type=float, default=0.3)
    ap.add_argument("--gap", type=float, default=0, help="resets: pause")
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("mode", choices=[
        "noanswer", "unconfirmed", "late", "overrun", "tardy", "opgraves",
        "strict",
        "sessions",
        "inject",
        "authspam", "banner", "laptops", "hold", "resets", "echo"])
    ap.add_argument("--debug", help="paramiko debug log to this file")
    a = ap.parse_args()
    if a.debug and paramiko:
        paramiko.util.log_to_file(a.debug)
    fn = globals()["cmd_" + a.mode]
    if paramiko is None and a.mode not in ("laptops", "hold", "resets",
                                           "echo", "banner"):
        note("paramiko is not installed (python3-paramiko)")
        return 2
    return fn(a)


if __name__ == "__main__":
    sys.exit(main())
