#!/bin/bash
# Device reboot (half-open: no FIN/RST reaches the relay, new address); the
# agent starts again in the fresh device and the laptop logs in within 2 s.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_agent.sh"

LIMIT=2
require_agent
[ "$RELAY_KIND" = openssh ] &&
    skip "stock sshd keeps the half-open session's port (that is what simtun-relay fixes)"
require_relay
netns_setup
start_relay
start_agent
agent_wait_connected 10 || fail "agent did not connect before the reboot"
wait_until 10 device_reachable -c 3 -T 8 || fail "device not reachable before reboot"
log "device reachable (generation $DEVICE_GEN)"

reboot_device
n=$(nsx "$NS_RELAY" ss -tnH state established "( sport = :$RELAY_PORT )" | wc -l)
[ "$n" -ge 1 ] || fail "test bed: relay saw the old session close (no half-open state)"

t0=$(now)
start_agent
agent_wait_connected 10 2 || fail "agent did not reconnect after reboot ($(elapsed "$t0") s)"
log "agent up again after $(elapsed "$t0") s"
wait_until 10 device_reachable -c 2 -T 4 ||
    fail "rebooted device not reachable after $(elapsed "$t0") s"
dt=$(elapsed "$t0")
log "reboot-to-reachable: $dt s (agent start to laptop login; limit $LIMIT s)"
awk -v d="$dt" -v l="$LIMIT" 'BEGIN { exit !(d <= l) }' ||
    fail "laptop login took $dt s after the agent restarted (limit $LIMIT s)"
exit 0
