#!/bin/bash
# Two paths: cellular (eth0, the CGNAT carrier) preferred, Arc (a wireguard-go
# tunnel to an arc-gw namespace that routes to the relay's private address)
# second. Blackhole cellular: the agent notices within about interval x count
# and is reachable again over Arc. Lift the blackhole: it moves back.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_agent.sh"

require_agent
require_relay
netns_setup
arc_setup
# a stock sshd relay frees the dead session's port only by its own ClientAlive
start_relay keepalive_interval=2 keepalive_count_max=3
_arc_ok() { nsx "$NS_DEVICE" timeout 2 bash -c "exec 3<>/dev/tcp/$RELAY_ADDR2/$RELAY_PORT" 2>/dev/null; }
wait_until 10 _arc_ok ||
    fail "test bed: relay's $RELAY_ADDR2 not reachable over the Arc tunnel"
AGENT_EXTRA="
[path cellular]
interface = eth0

[path arc]
interface = $ARC_IF
host = $RELAY_ADDR2
"
start_agent
agent_wait_connected 10 || fail "agent did not connect"
grep -q 'simtun-agent: connected to .* via cellular' "$AGENT_LOG" || fail "first session is not on cellular"
wait_until 10 device_reachable -c 3 -T 8 || fail "device not reachable over cellular"
log "connected over cellular"

limit=$((AGENT_KA_INTERVAL * AGENT_KA_COUNT + 8))
# stock sshd keeps the dead session's port for its own (slow) ClientAlive verdict
[ "$RELAY_KIND" = openssh ] && limit=$((limit + 60))
t0=$(now)
cellular_blackhole
log "cellular path blackholed (nft drop at the carrier)"
agent_wait_connected "$limit" 2 || fail "agent did not move to arc within $limit s"
t_arc=$(elapsed "$t0")
grep 'simtun-agent: connected to' "$AGENT_LOG" | tail -1 | grep -q 'via arc' ||
    fail "second session is not on arc: $(grep 'simtun-agent: connected to' "$AGENT_LOG" | tail -1)"
wait_until 15 device_reachable -c 2 -T 4 || fail "device not reachable over arc"
log "failover: agent on arc after $t_arc s, laptop login after $(elapsed "$t0") s (keepalive ${AGENT_KA_INTERVAL}s x $AGENT_KA_COUNT)"

t0=$(now)
cellular_blackhole_off
log "blackhole lifted"
agent_wait_connected 20 3 || fail "agent did not move back to cellular within 20 s"
grep 'simtun-agent: connected to' "$AGENT_LOG" | tail -1 | grep -q 'via cellular' ||
    fail "third session is not on cellular"
grep -q 'moving back' "$AGENT_LOG" || fail "no 'moving back' in the agent log"
wait_until 15 device_reachable -c 2 -T 4 || fail "device not reachable after moving back"
log "moved back to cellular after $(elapsed "$t0") s"
agent_alive || fail "agent exited"
exit 0
