#!/bin/bash
# Issue 12, hold: a connection made while a device reboots is held until
# it is back (hold_time), with stock OpenSSH on both ends.
#  a) dev1, a simtun-agent serving the named forward dev1:22, reboots
#     half-open; the operator's `ssh -J relay dev1` started meanwhile
#     succeeds once the agent is back, with no retry by the user;
#  b) with the device gone for good it fails after hold_time, logged as
#     "device offline";
#  c) port mode: dev1's port 4649 lingers after its session closed; a
#     laptop's ssh -p 4649 made meanwhile lands once dev1 is back.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_agent.sh"

require_relay
require_agent
require_cmds jq
[ "$RELAY_KIND" = simtun ] || skip "hold is simtun-relay's"
netns_setup
add_device_key pi-01 "pi-01:22"
agent_named_forward
add_device_key -o 'permitopen="pi-*:22",permitopen="dev1:22"' ops
AUDIT=$T/audit.jsonl
start_relay "hold_time = 30" "audit_log = $AUDIT"
opssh() {
	timeout 40 ip netns exec "$NS_LAPTOP" ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes \
	    -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=30 \
	    -o ProxyCommand="ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -i $T/keys/ops -o HostKeyAlias=relay -o UserKnownHostsFile=$T/relay_known_hosts -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -p $RELAY_PORT -W %h:%p ops@$RELAY_ADDR" \
	    -i "$T/keys/laptop" -o HostKeyAlias=device -o UserKnownHostsFile="$T/laptop_known_hosts" \
	    -o LogLevel=ERROR "$@"
}

# a) half-open reboot of an agent serving a named forward
start_agent
agent_wait_connected 10 || fail "agent did not connect"
wait_until 10 grep -q 'device dev1: serving name dev1:22' "$RELAY_LOG" || fail "no named forward dev1:22"
[ "$(opssh root@dev1 'ip netns identify')" = "$NS_DEVICE" ] || fail "dev1 not reachable before the reboot"
reboot_device
AGENT_PID=
opssh root@dev1 'ip netns identify' >"$T/held.out" 2>"$T/held.err" &
op_pid=$!
sleep 3			# the device boots
t0=$(now)
start_agent
wait "$op_pid" || fail "held ssh -J dev1 failed: $(cat "$T/held.err")"
[ "$(cat "$T/held.out")" = "$NS_DEVICE" ] || fail "held ssh landed in '$(cat "$T/held.out")'"
grep -qE 'held for the device.s next session' "$RELAY_LOG" || fail "relay did not log the hold"
grep -q 'device dev1: held channel from .* served after' "$RELAY_LOG" || fail "relay did not log the held channel served"
log "ssh -J dev1 started during a half-open reboot landed $(elapsed "$t0") s after the agent started again"
stop_agent

# b) gone for good: fails after hold_time
ssh_R "$NS_DEVICE" pi-01 "pi-01:22:127.0.0.1:22"
ssh_R_wait 15 || fail "pi-01 not granted (see $SSH_R_LOG)"
sed -i 's/^hold_time = .*/hold_time = 3/' "$T/relay/relay.conf"
kill -HUP "$RELAY_PID"
wait_until 5 grep -q "reloaded $T/relay/relay.conf" "$RELAY_LOG" || fail "relay.conf not reloaded"
kill -TERM "$SSH_R_PID"
wait_until 5 grep -q 'device pi-01: closed name pi-01:22' "$RELAY_LOG" || fail "pi-01's session did not close"
t0=$(now)
opssh root@pi-01 true 2>/dev/null &
op_pid=$!
ctl() { "$SIMTUN_BIN/simtunctl" -s "$T/relay/relay.sock" "$@"; }
wait_until 5 eval '[ "$(ctl devices --json | jq -r '"'"'.devices[] | select(.device == "pi-01") | .state'"'"')" = held ]' ||
    fail "simtunctl devices does not show pi-01 held: $(ctl devices)"
ctl devices | sed 's/^/    /'
wait "$op_pid" && fail "ssh to an offline device succeeded"
e=$(elapsed "$t0")
awk -v e="$e" 'BEGIN { exit !(e >= 2.5 && e < 15) }' || fail "held ssh failed after $e s, hold_time is 3"
wait_until 5 grep -q 'device pi-01: held channel .* closed: device offline (held 3 s, hold_time)' "$RELAY_LOG" ||
    fail "no 'device offline' line for the expired hold"
log "with the device gone, ssh -J pi-01 failed after $e s (hold_time 3): device offline"

# c) port mode: the port lingers and holds a laptop's connection
sed -i 's/^hold_time = .*/hold_time = 30/' "$T/relay/relay.conf"
kill -HUP "$RELAY_PID"
device_ssh_R
ssh_R_wait 15 || fail "dev1 not granted (see $SSH_R_LOG)"
kill -TERM "$SSH_R_PID"
wait_until 5 grep -q 'device dev1: port 4649 kept for its next session' "$RELAY_LOG" ||
    fail "port 4649 did not linger"
port_listening "$NS_RELAY" 4649 || fail "lingering port 4649 not listening"
t0=$(now)
laptop_ssh -T 40 'ip netns identify' >"$T/held2.out" 2>"$T/held2.err" &
lp_pid=$!
sleep 2
device_ssh_R
ssh_R_wait 15 || fail "dev1 not granted again (see $SSH_R_LOG)"
wait "$lp_pid" || fail "held laptop ssh -p 4649 failed: $(cat "$T/held2.err")"
[ "$(cat "$T/held2.out")" = "$NS_DEVICE" ] || fail "held laptop ssh landed in '$(cat "$T/held2.out")'"
grep -q 'device dev1: port 4649 back after' "$RELAY_LOG" || fail "no 'port back' line"
log "a laptop's ssh -p 4649 during dev1's absence landed $(elapsed "$t0") s later"

js=$(ctl devices --json) || fail "simtunctl devices --json failed"
[ "$(echo "$js" | jq -r '.devices[] | select(.device == "pi-01") | .state')" = offline ] ||
    fail "pi-01 not offline in devices: $js"
[ "$(echo "$js" | jq -r '.devices[] | select(.device == "pi-01") | .last_address')" = "$CARRIER_ADDR" ] ||
    fail "pi-01's last address not the carrier's: $js"
[ "$(echo "$js" | jq -r '.devices[] | select(.device == "dev1") | .state')" = online ] ||
    fail "dev1 not online in devices: $js"
[ "$(echo "$js" | jq '[.devices[] | select(.device == "ops")] | length')" = 0 ] ||
    fail "an operator key listed as a device: $js"
log "simtunctl devices: pi-01 offline (last from $CARRIER_ADDR), dev1 online"
[ "$(jq -c 'select(.event == "open" and (.reason | test("held")))' "$AUDIT" | wc -l)" -ge 1 ] ||
    fail "no held open event in the audit log"
[ "$(jq -c 'select(.event == "close" and (.reason | test("device offline")))' "$AUDIT" | wc -l)" -ge 1 ] ||
    fail "no 'device offline' close event in the audit log"
relay_alive || fail "relay died"
exit 0
