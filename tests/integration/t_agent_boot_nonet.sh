#!/bin/bash
# No network at boot: the device's link is down when the agent starts; it
# keeps trying (backing off), and connects within 2 s of the link coming up
# (netlink wakes it up; backoff_max is far longer than that).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_agent.sh"

LIMIT=2
AGENT_BACKOFF_MAX=60
require_agent
require_relay
netns_setup
start_relay
gw=$(ip -n "$NS_DEVICE" route show default | awk '{print $3}')
ip -n "$NS_DEVICE" link set eth0 down
start_agent
sleep 8
grep -q 'retrying in' "$AGENT_LOG" || fail "agent did not back off while the network was down"
agent_alive || fail "agent gave up without network"
log "agent is backing off: $(grep -c 'retrying in' "$AGENT_LOG") retries so far"
t0=$(now)
ip -n "$NS_DEVICE" link set eth0 up
ip -n "$NS_DEVICE" route replace default via "$gw"
agent_wait_connected 10 || fail "agent did not connect after the link came up"
dt=$(elapsed "$t0")
log "connected $dt s after the link came up (limit $LIMIT s)"
awk -v d="$dt" -v l="$LIMIT" 'BEGIN { exit !(d <= l) }' ||
    fail "agent took $dt s after the link came up (limit $LIMIT s)"
wait_until 10 device_reachable -c 3 -T 8 || fail "device not reachable"
exit 0
