#!/bin/bash
# Relay SIGKILLed and restarted a few seconds later: the agent, backing off
# with jitter, is connected again within backoff_max plus a few seconds.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_agent.sh"

AGENT_BACKOFF_MAX=4
SLACK=3
require_agent
require_relay
netns_setup
start_relay
start_agent
agent_wait_connected 10 || fail "agent did not connect"
wait_until 10 device_reachable -c 3 -T 8 || fail "device not reachable before the relay restart"
kill_relay
# sshd as relay forks a child per session: kill every relay process
pids=$(ip netns pids "$NS_RELAY")
[ -n "$pids" ] && kill -KILL $pids
log "relay SIGKILLed; down for 6 s"
sleep 6
grep -q 'retrying in' "$AGENT_LOG" || fail "agent logged no backoff while the relay was down"
t0=$(now)
start_relay
limit=$((AGENT_BACKOFF_MAX + SLACK))
agent_wait_connected "$limit" 2 || fail "agent not back $limit s after the relay restarted"
log "agent back $(elapsed "$t0") s after the relay restart (limit $limit s)"
wait_until 10 device_reachable -c 3 -T 8 || fail "device not reachable after the relay restart"
agent_alive || fail "agent exited"
exit 0
