#!/bin/bash
# Issue 10, test 5 (relay part): peer text cannot forge log lines or put
# raw control bytes into the log or the status output.  A key whose
# comment has bytes >= 0x80 is added (reload) and logs in; and
# tests/hostile inject sends, with newlines, CR, ESC sequences, BEL, bytes
# >= 0x80 and a
# forged line "\n<time> simtun-relay: device dev2 authenticated from
# 6.6.6.6 ...": the login name (unknown key, and the device's own key), the
# client banner, a DISCONNECT message before and after auth, and the bind
# address of a refused and of a granted tcpip-forward (held while status
# is read).  Then: every relay log line has the relay's own prefix, none
# begins with the forged text, no log line carries a byte outside
# printable ASCII, `simtunctl status` and `status --json` carry none
# either, the JSON parses; the relay stays responsive, bounded, and the
# honest device reachable.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/lib_hostile.sh"

dp_setup
make_key evil
monitor_start

# A key whose comment (the device name) carries bytes >= 0x80 (UTF-8 and not),
# added by a reload: refused or shown escaped, never raw.
make_key hiname
printf 'restrict,permitlisten="4653" %s dev-\xc3\xa9\xff\n' \
    "$(cut -d' ' -f1,2 "$T/keys/hiname.pub")" >>"$T/relay/authorized_keys"
kill -HUP "$RELAY_PID"
wait_until 5 grep -q 'reloaded' "$RELAY_LOG" || fail "relay did not reload authorized_keys"
hostile "$NS_LAPTOP" hiname strict --key "$T/keys/hiname" --fport 4653 --duration 30
hostile "$NS_LAPTOP" inject inject --key "$T/keys/dev2" --badkey "$T/keys/evil" \
    --fport 4650 --badport 4999
inj_pid=$HOSTILE_PID
hostile_wait 30 '^steps=' || fail "inject did not finish its steps (see $HOSTILE_LOG)"
res=$(grep '^steps=' "$HOSTILE_LOG")
log "inject: $res"
relay_alive || fail "relay died on crafted peer text"
ctl_responsive 3
# the crafted text reached the relay: the refusals it came with are logged
evil_fp=$(ssh-keygen -lf "$T/keys/evil.pub" | awk '{ print $2 }')
grep -qF "$evil_fp" "$RELAY_LOG" ||
    fail "the unknown key $evil_fp (crafted login name) is not in the relay log: did it reach the relay?"
grep -q 'port 4999' "$RELAY_LOG" ||
    fail "no log line about port 4999 (crafted bind address): did the request reach the relay?"

# status while dev2 holds 4650 with the crafted bind address
ctl status >"$T/status.txt" || fail "simtunctl status failed"
ctl status --json >"$T/status.json" || fail "simtunctl status --json failed"
grep -q '^dev2 ' "$T/status.txt" || fail "dev2 (crafted bind address) not in status: $(cat "$T/status.txt")"
kill "$inj_pid" 2>/dev/null
sleep 0.5

bad=0
# forged lines: the relay's prefix followed by the forged event
if grep -naE '^([0-9:.]+ )?simtun-relay: (info: )?device dev2 authenticated from 6\.6\.6\.6|^device dev2 authenticated' "$RELAY_LOG" >"$T/forged.txt"; then
	echo "forged log lines:"; cat -v "$T/forged.txt" | head -5; bad=1
fi
# every line is one of the relay's own
if LC_ALL=C grep -navE '^[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} simtun-relay: ' "$RELAY_LOG" >"$T/foreign.txt"; then
	echo "relay log lines without the relay's prefix (continuations of peer text?):"
	cat -v "$T/foreign.txt" | head -5; bad=1
fi
# raw control bytes or bytes >= 0x80 anywhere
for f in "$RELAY_LOG" "$T/status.txt" "$T/status.json"; do
	if LC_ALL=C grep -naP '[^\x20-\x7e]' "$f" >"$T/raw.txt"; then
		echo "raw control or non-ASCII bytes in $(basename "$f"):"
		cat -v "$T/raw.txt" | head -5; bad=1
	fi
done
"$HPY" -c 'import json, sys; json.load(open(sys.argv[1]))' "$T/status.json" ||
    { echo "status --json does not parse"; bad=1; }
[ "$bad" = 0 ] || fail "peer text reached the log or status unescaped (see above)"
log "no forged line, no raw control or non-ASCII byte in the log, status or status --json"

monitor_stop
monitor_check 64 status "during the injection"
rss_check 64 "after the injection"
honest_check "after the injection"
relay_alive || fail "relay died"
exit 0
