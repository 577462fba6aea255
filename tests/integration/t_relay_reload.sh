#!/bin/bash
# SIGHUP under traffic: while 60 MiB flow through device A's port, device B's
# key is removed and device C's permitlisten loses one of its two ports, then
# the relay gets SIGHUP. B's session is closed and its port freed, C keeps its
# session and its still-permitted port but loses the other, A's transfer
# arrives byte-exact and A (and D, untouched) keep their sessions.
. "$(dirname "$0")/lib.sh"

require_relay
require_cmds sha256sum jq
[ "$RELAY_KIND" = simtun ] || skip "SIGHUP reload of authorized_keys is simtun-relay's"
netns_setup				# A = dev1, port 4649
add_device_key dev2 4650		# B: removed
add_device_key dev3 4651 4652		# C: loses 4651
add_device_key dev4 4653		# D: untouched
SOCK=$T/relay/relay.sock
start_relay
ctl() { "$SIMTUN_BIN/simtunctl" -s "$SOCK" "$@"; }
session_of() { ctl status --json | jq -c ".devices[] | select(.device == \"$1\") | [.since, .peer_port]"; }

device_ssh_R; a_pid=$SSH_R_PID
ssh_R_wait 15 || fail "A ssh -R not granted (see $SSH_R_LOG)"
ssh_R "$NS_DEVICE" dev2 "4650:127.0.0.1:22"; b_pid=$SSH_R_PID
ssh_R_wait 15 || fail "B ssh -R not granted (see $SSH_R_LOG)"
ssh_R "$NS_DEVICE" dev3 "4651:127.0.0.1:22" -R "4652:127.0.0.1:22"; c_pid=$SSH_R_PID
ssh_R_wait 15 || fail "C ssh -R not granted (see $SSH_R_LOG)"
ssh_R "$NS_DEVICE" dev4 "4653:127.0.0.1:22"; d_pid=$SSH_R_PID
ssh_R_wait 15 || fail "D ssh -R not granted (see $SSH_R_LOG)"
for p in 4649 4650 4651 4652 4653; do
	wait_until 10 port_listening "$NS_RELAY" $p || fail "port $p not listening"
	wait_until 10 device_reachable -p $p -c 3 -T 8 || fail "device not reachable through $p"
done
a_sess=$(session_of dev1); c_sess=$(session_of dev3); d_sess=$(session_of dev4)
log "A, B, C (2 ports), D connected and reachable"

# 60 MiB through A, paced (1 MiB every 0.1 s) so the reload lands mid-transfer.
head -c 60M /dev/urandom >"$T/bulk.bin"
want=$(sha256sum <"$T/bulk.bin" | cut -d' ' -f1)
( for i in $(seq 0 59); do
	dd if="$T/bulk.bin" bs=1M skip="$i" count=1 status=none; sleep 0.1
  done | laptop_ssh -T 120 'sha256sum | cut -d" " -f1' >"$T/bulk.got" 2>"$T/bulk.err"
  echo $? >"$T/bulk.rc" ) &
xfer=$!
wait_until 10 eval '[ "$(ctl status --json | jq ".devices[] | select(.device == \"dev1\") | .bytes_out")" -gt 4000000 ]' ||
    fail "transfer through A did not get going"

# Remove B's line, narrow C's permitlisten to 4652, then SIGHUP.
ak=$T/relay/authorized_keys
grep -v ' dev2$' "$ak" | sed '/ dev3$/s/permitlisten="4651",//' >"$ak.new"
mv "$ak.new" "$ak"
grep -q dev2 "$ak" && fail "test bug: dev2 still in authorized_keys"
grep ' dev3$' "$ak" | grep -q 4651 && fail "test bug: dev3 still permits 4651"
lines=$(wc -l <"$RELAY_LOG")
bo=$(ctl status --json | jq '.devices[] | select(.device == "dev1") | .bytes_out')
kill -HUP "$RELAY_PID"
t0=$(now)
log "SIGHUP with $bo bytes of 60 MiB through A so far"
wait_until 5 eval 'tail -n +$((lines + 1)) "$RELAY_LOG" | grep -q "reloaded .*: 3 keys"' ||
    fail "no 'reloaded ...: 3 keys' log line after SIGHUP"

# B: session closed, port freed, ssh exits; it may not come back.
wait_until 3 eval '! port_listening "$NS_RELAY" 4650' || fail "B's port 4650 still listening after reload"
wait_until 5 eval '! kill -0 $b_pid 2>/dev/null' || fail "B's ssh -R still runs after its key was removed"
tail -n +$((lines + 1)) "$RELAY_LOG" | grep -q 'device dev2 .*closed: key removed from authorized_keys' ||
    fail "no log line closing dev2"
log "B closed and port 4650 freed $(elapsed "$t0") s after SIGHUP"
# C: 4651 closed, 4652 still its own, session unchanged.
wait_until 3 eval '! port_listening "$NS_RELAY" 4651' || fail "C's port 4651 still listening after reload"
port_listening "$NS_RELAY" 4652 || fail "C's still-permitted port 4652 was closed"
[ "$(session_of dev3)" = "$c_sess" ] || fail "C's session changed"
kill -0 "$c_pid" 2>/dev/null || fail "C's ssh -R died"
[ "$(ctl status --json | jq -c '.devices[] | select(.device == "dev3") | .ports')" = "[4652]" ] ||
    fail "C's ports after reload: $(ctl status --json | jq -c '.devices[] | select(.device == "dev3")')"
tail -n +$((lines + 1)) "$RELAY_LOG" | grep -q 'device dev3: port 4651 no longer permitted' ||
    fail "no log line for C's port 4651"
device_reachable -p 4652 -c 3 -T 8 || fail "device not reachable through C's 4652 after reload"
log "C lost 4651, kept 4652 and its session"

# A and D undisturbed.
kill -0 "$a_pid" 2>/dev/null || fail "A's ssh -R died"
kill -0 "$d_pid" 2>/dev/null || fail "D's ssh -R died"
[ "$(session_of dev4)" = "$d_sess" ] || fail "D's session changed"
device_reachable -p 4653 -c 3 -T 8 || fail "device not reachable through D's 4653"
wait "$xfer"
[ "$(cat "$T/bulk.rc")" = 0 ] || fail "transfer through A failed: $(cat "$T/bulk.err")"
[ "$(cat "$T/bulk.got")" = "$want" ] || fail "transfer through A corrupted: $(cat "$T/bulk.got") != $want"
[ "$(session_of dev1)" = "$a_sess" ] || fail "A's session changed"
log "60 MiB through A across the reload arrived byte-exact ($want)"
rm -f "$T/bulk.bin"

# The new rules hold for new requests.
ssh_R "$NS_DEVICE" dev2 "4650:127.0.0.1:22"
ssh_R_wait 10 && fail "B connected again with a removed key"
kill -KILL "$SSH_R_PID" 2>/dev/null
grep -q 'Permission denied' "$SSH_R_LOG" || fail "B not refused at authentication (see $SSH_R_LOG)"
ssh_R "$NS_LAPTOP" dev3 "4651:127.0.0.1:22"
ssh_R_wait 10 && fail "C was granted 4651 after it lost it"
kill -KILL "$SSH_R_PID" 2>/dev/null
grep -q 'remote port forwarding failed for listen port 4651' "$SSH_R_LOG" || fail "C's 4651 request not refused"
port_listening "$NS_RELAY" 4651 && fail "4651 listening"
kill -0 "$c_pid" 2>/dev/null || fail "C's first ssh -R died"
relay_alive || fail "relay exited"
exit 0
