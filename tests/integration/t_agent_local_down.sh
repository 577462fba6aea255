#!/bin/bash
# The device's own sshd is down: a laptop connection through the tunnel is
# closed at once (no hang), the agent and its session stay up, and once
# sshd is back the laptop gets in.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_agent.sh"

require_agent
require_relay
netns_setup
start_relay
start_agent
agent_wait_connected 10 || fail "agent did not connect"
wait_until 10 device_reachable -c 3 -T 8 || fail "laptop could not reach the device"
pkill -KILL -f "sshd -D -e -f $T/device/sshd_config" ||
    fail "could not stop the device sshd"
wait_until 5 eval '! port_listening "$NS_DEVICE" 22' || fail "device sshd still listening"
t0=$(now)
laptop_ssh -c 5 -T 10 true 2>/dev/null && fail "login worked with the device's sshd down"
dt=$(elapsed "$t0")
log "laptop connection closed after $dt s with the device sshd down"
awk -v d="$dt" 'BEGIN { exit !(d < 5) }' || fail "laptop waited $dt s (want < 5 s)"
agent_alive || fail "agent exited"
relay_alive || fail "relay exited"
n=$(grep -c "connected to .* forwarding" "$AGENT_LOG")
start_device_sshd
wait_until 10 device_reachable -c 3 -T 8 || fail "laptop could not log in once sshd was back"
[ "$(grep -c "connected to .* forwarding" "$AGENT_LOG")" = "$n" ] ||
    fail "the agent reconnected instead of keeping its session"
exit 0
