#!/bin/bash
# simtunctl status: the table and --json name each connected device with its
# ports, state, since, peer address (the carrier's NAT address), keepalive
# round trip, bytes in/out and takeovers; the control socket is 0600; a
# half-open reboot shows up as one takeover, never as two rows.
. "$(dirname "$0")/lib.sh"

require_relay
require_cmds jq sha256sum
[ "$RELAY_KIND" = simtun ] || skip "simtunctl talks to simtun-relay only"
[ -x "$SIMTUN_BIN/simtunctl" ] || skip "$SIMTUN_BIN/simtunctl not built"
netns_setup
add_device_key dev2 4650
SOCK=$T/relay/relay.sock
start_relay "keepalive_interval = 1"
ctl() { "$SIMTUN_BIN/simtunctl" -s "$SOCK" "$@"; }

# The socket keeps other local users out.
wait_until 5 test -S "$SOCK" || fail "no control socket $SOCK"
mode=$(stat -c %a "$SOCK")
[ "$mode" = 600 ] || fail "control socket mode $mode, want 600"
log "control socket $SOCK mode $mode"

# No device yet: a header and no rows; JSON with an empty list.
out=$(ctl status) || fail "simtunctl status failed: $out"
[ "$(echo "$out" | head -1 | awk '{print $1, $2, $3}')" = "DEVICE PORTS STATE" ] ||
    fail "status table header: $out"
[ "$(echo "$out" | wc -l)" = 1 ] || fail "status rows without devices: $out"
[ "$(ctl status --json | jq '.devices | length')" = 0 ] || fail "JSON devices not empty"

device_ssh_R
ssh_R_wait 15 || fail "ssh -R not granted (see $SSH_R_LOG)"
ssh_R "$NS_DEVICE" dev2 "4650:127.0.0.1:22"
ssh_R_wait 15 || fail "dev2 ssh -R not granted (see $SSH_R_LOG)"
wait_until 10 device_reachable -c 3 -T 8 || fail "device not reachable"

# Move 3 MiB to the device and 2 MiB back through dev1's port.
head -c 3145728 /dev/urandom >"$T/up.bin"
laptop_ssh -T 60 'cat >/dev/null; head -c 2097152 /dev/zero' <"$T/up.bin" >"$T/down.bin" ||
    fail "transfer through $DEVICE_PORT failed"
[ "$(stat -c %s "$T/down.bin")" = 2097152 ] || fail "short download"
# the relay probes a device once it has been silent a keepalive_interval:
# wait (bounded) for dev1's first round trip after the transfer
dev1_rtt() { ctl status | awk '$1 == "dev1" { print $6 }'; }
wait_until 15 eval 'case $(dev1_rtt) in *ms) true;; *) false;; esac' ||
    fail "dev1 RTT '$(dev1_rtt)' 15 s after the transfer, want a keepalive round trip in ms"

out=$(ctl status) || fail "simtunctl status failed"
log "status:"; echo "$out" | sed 's/^/    /'
row=$(echo "$out" | awk '$1 == "dev1"')
[ -n "$row" ] || fail "no dev1 row in status"
[ "$(echo "$out" | awk '$1 == "dev1"' | wc -l)" = 1 ] || fail "more than one dev1 row"
set -- $row
[ "$2" = "$DEVICE_PORT" ] || fail "dev1 ports '$2', want $DEVICE_PORT"
[ "$3" = connected ] || fail "dev1 state '$3'"
[ "$5" = "$CARRIER_ADDR" ] || fail "dev1 peer '$5', want the carrier NAT address $CARRIER_ADDR"
case $6 in *ms) ;; *) fail "dev1 RTT '$6', want a keepalive round trip in ms";; esac
[ "$(echo "$out" | awk '$1 == "dev2" {print $2}')" = 4650 ] || fail "dev2 row wrong: $out"

js=$(ctl status --json) || fail "simtunctl status --json failed"
echo "$js" | jq -e . >/dev/null || fail "status --json is not JSON: $js"
d1=$(echo "$js" | jq -c '.devices[] | select(.device == "dev1")')
[ -n "$d1" ] || fail "no dev1 in JSON: $js"
log "json dev1: $d1"
[ "$(echo "$d1" | jq -c .ports)" = "[$DEVICE_PORT]" ] || fail "JSON ports"
[ "$(echo "$d1" | jq -r .state)" = connected ] || fail "JSON state"
[ "$(echo "$d1" | jq -r .peer)" = "$CARRIER_ADDR" ] || fail "JSON peer"
now_s=$(date +%s); since=$(echo "$d1" | jq .since)
[ "$since" -le "$now_s" ] && [ "$since" -gt $((now_s - 120)) ] || fail "JSON since $since (now $now_s)"
[ "$(echo "$d1" | jq .rtt_ms)" -ge 0 ] || fail "JSON rtt_ms unknown after keepalives"
# bytes_out = to the device (>= 3 MiB uploaded), bytes_in = from it (>= 2 MiB).
bo=$(echo "$d1" | jq .bytes_out); bi=$(echo "$d1" | jq .bytes_in)
[ "$bo" -ge 3145728 ] || fail "bytes_out $bo < 3 MiB sent to the device"
[ "$bi" -ge 2097152 ] || fail "bytes_in $bi < 2 MiB received from the device"
[ "$bo" -lt 4194304 ] && [ "$bi" -lt 3145728 ] || fail "byte counts too large: out $bo in $bi"
[ "$(echo "$d1" | jq .takeovers)" = 0 ] || fail "takeovers before any reboot"
[ "$(echo "$d1" | jq -r .key)" = "$(ssh-keygen -lf "$T/keys/dev1.pub" | awk '{print $2}')" ] ||
    fail "JSON key is not dev1's fingerprint"
[ "$(echo "$js" | jq -r .host_key)" = "$(ssh-keygen -lf "$T/keys/relay_host.pub" | awk '{print $2}')" ] ||
    fail "JSON host_key is not the relay's fingerprint"
log "bytes to dev1 $bo, from dev1 $bi"

# Half-open reboot: the new session takes the port; one row, takeovers 1.
reboot_device
device_ssh_R
ssh_R_wait 15 || fail "ssh -R after reboot not granted (see $SSH_R_LOG)"
wait_until 10 device_reachable -c 3 -T 8 || fail "device not reachable after reboot"
js=$(ctl status --json)
[ "$(echo "$js" | jq '[.devices[] | select(.device == "dev1")] | length')" = 1 ] ||
    fail "dev1 listed more than once after the takeover: $js"
d1=$(echo "$js" | jq -c '.devices[] | select(.device == "dev1")')
[ "$(echo "$d1" | jq .takeovers)" = 1 ] || fail "dev1 takeovers after reboot: $d1"
[ "$(echo "$js" | jq .takeovers)" -ge 1 ] || fail "relay takeovers counter: $js"
[ "$(echo "$d1" | jq .bytes_out)" -lt 3145728 ] || fail "new session inherited the old byte counts"
log "after reboot: $d1"
ctl status | awk '$1 == "dev1" && $NF == 1 {f=1} END {exit !f}' || fail "table TAKEOVERS column not 1"

# Unknown requests are errors (exit 1).
ctl kick nosuchdevice >/dev/null && fail "kick of an unknown device exited 0"
relay_alive || fail "relay exited"
exit 0
