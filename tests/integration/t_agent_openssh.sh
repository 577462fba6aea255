#!/bin/bash
# simtun-agent against a stock OpenSSH sshd as the relay (GatewayPorts yes,
# ClientAliveInterval): the agent logs in as an existing user with its key in
# that sshd's authorized_keys, gets 4649, and the laptop reaches the device.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_agent.sh"

RELAY_KIND=openssh
require_agent
netns_setup
start_relay keepalive_interval=5
t0=$(now)
start_agent
agent_wait_connected 10 || fail "agent did not connect to the OpenSSH relay"
log "agent connected after $(elapsed "$t0") s"
wait_until 10 device_reachable -c 3 -T 8 ||
    fail "laptop could not log in through the OpenSSH relay"
log "first connect to laptop login: $(elapsed "$t0") s"
grep -q 'Accepted publickey for root' "$RELAY_LOG" ||
    fail "relay log has no publickey login for root"
stop_agent
wait_until 5 eval '! port_listening "$NS_RELAY" "$DEVICE_PORT"' ||
    fail "relay still listens on $DEVICE_PORT 5 s after the agent's SIGTERM"
grep -q 'Received disconnect' "$RELAY_LOG" ||
    fail "relay did not see a proper disconnect on SIGTERM"
log "SIGTERM: relay freed $DEVICE_PORT (proper disconnect)"
exit 0
