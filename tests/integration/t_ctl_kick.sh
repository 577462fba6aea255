#!/bin/bash
# simtunctl kick DEVICE: the device's session is closed at once (its ssh -R
# exits, its port stops listening, the relay logs the kick with the byte
# counts) while another device's session and a transfer through it carry on
# byte-exact. The kicked device may connect again; unknown names are errors.
. "$(dirname "$0")/lib.sh"

require_relay
require_cmds sha256sum
[ "$RELAY_KIND" = simtun ] || skip "simtunctl talks to simtun-relay only"
[ -x "$SIMTUN_BIN/simtunctl" ] || skip "$SIMTUN_BIN/simtunctl not built"
netns_setup
add_device_key dev2 4650
SOCK=$T/relay/relay.sock
start_relay
ctl() { "$SIMTUN_BIN/simtunctl" -s "$SOCK" "$@"; }

device_ssh_R
dev1_pid=$SSH_R_PID
ssh_R_wait 15 || fail "dev1 ssh -R not granted (see $SSH_R_LOG)"
ssh_R "$NS_DEVICE" dev2 "4650:127.0.0.1:22"
dev2_pid=$SSH_R_PID
ssh_R_wait 15 || fail "dev2 ssh -R not granted (see $SSH_R_LOG)"
wait_until 10 device_reachable -c 3 -T 8 || fail "device not reachable through $DEVICE_PORT"
wait_until 10 device_reachable -p 4650 -c 3 -T 8 || fail "device not reachable through 4650"
since2=$(ctl status --json | jq '.devices[] | select(.device == "dev2") | .since')

# A slow transfer through dev2 (40 MiB in 1 MiB steps) runs across the kick.
head -c 40M /dev/urandom >"$T/bulk.bin"
want=$(sha256sum <"$T/bulk.bin" | cut -d' ' -f1)
( for i in $(seq 0 39); do
	dd if="$T/bulk.bin" bs=1M skip="$i" count=1 status=none; sleep 0.1
  done | laptop_ssh -p 4650 -T 90 'sha256sum | cut -d" " -f1' >"$T/bulk.got" 2>"$T/bulk.err"
  echo $? >"$T/bulk.rc" ) &
xfer=$!
wait_until 10 eval '[ "$(ctl status --json | jq ".devices[] | select(.device == \"dev2\") | .connections")" -ge 1 ]' ||
    fail "transfer through 4650 did not start"
sleep 1

lines=$(wc -l <"$RELAY_LOG")
t0=$(now)
out=$(ctl kick dev1) || fail "simtunctl kick dev1 failed: $out"
log "simtunctl: $out"
echo "$out" | grep -q 'kicked dev1 (1 session)' || fail "kick answer: $out"
wait_until 3 eval '! port_listening "$NS_RELAY" "$DEVICE_PORT"' ||
    fail "port $DEVICE_PORT still listening $(elapsed "$t0") s after the kick"
log "port $DEVICE_PORT closed $(elapsed "$t0") s after the kick"
wait_until 5 eval '! kill -0 $dev1_pid 2>/dev/null' || fail "dev1's ssh -R still runs after the kick"
tail -n +$((lines + 1)) "$RELAY_LOG" | grep -q 'device dev1 .*closed: kicked by simtunctl; [0-9]* bytes from device' ||
    fail "no relay log line for the kick"
ctl status | awk '$1 == "dev1" {f=1} END {exit f}' || fail "dev1 still in status after the kick"
device_reachable -c 2 -T 5 && fail "device reachable through the kicked port"

# dev2 undisturbed: same session, transfer completes byte-exact.
kill -0 "$dev2_pid" 2>/dev/null || fail "dev2's ssh -R died with the kick"
[ "$(ctl status --json | jq '.devices[] | select(.device == "dev2") | .since')" = "$since2" ] ||
    fail "dev2's session changed"
wait "$xfer"
[ "$(cat "$T/bulk.rc")" = 0 ] || fail "transfer through 4650 failed: $(cat "$T/bulk.err")"
[ "$(cat "$T/bulk.got")" = "$want" ] || fail "transfer through 4650 corrupted: $(cat "$T/bulk.got") != $want"
log "40 MiB through dev2 across the kick arrived byte-exact"
rm -f "$T/bulk.bin"

# A kick is not a ban: dev1 connects again.
device_ssh_R
ssh_R_wait 15 || fail "dev1 not granted $DEVICE_PORT again after the kick (see $SSH_R_LOG)"
wait_until 10 device_reachable -c 3 -T 8 || fail "device not reachable after dev1 came back"

out=$(ctl kick nosuchdevice) && fail "kick of an unknown device exited 0: $out"
echo "$out" | grep -q 'no device named nosuchdevice' || fail "kick unknown device answer: $out"
kill -0 "$dev2_pid" 2>/dev/null || fail "dev2's ssh -R died"
relay_alive || fail "relay exited"
exit 0
