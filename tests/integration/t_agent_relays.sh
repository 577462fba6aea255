#!/bin/bash
# An agent on two relays (issue 14): standalone simtun-relays a (relay ns,
# 198.18.0.1) and b (its own ns, 198.18.0.5), each with its own host key,
# [relay a] and [relay b] in that order in agent.conf.
#  - relays_active = 1: the device is on a only; a SIGKILLed: on b within
#    the backoff; a restarted: the agent probes it and moves back.
#  - SIGHUP to relays_active = 2: the device port answers on both relays; a
#    SIGKILLed: still answers on b (whose session is untouched); a restarted:
#    the agent is on a again within the backoff.
#  - simtunctl status --json shows each session; SIGTERM sends a disconnect
#    on both, so both relays close the device's session at once.
# timeout: 90
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_agent.sh"

require_agent
require_relay
[ "$RELAY_KIND" = simtun ] || skip "two standalone simtun-relays"
require_cmds jq
netns_setup
relayb_setup
start_named_relay a "$NS_RELAY" "$T/keys/relay_host"
start_named_relay b "$NS_RELAYB" "$T/keys/relayb_host"
RA="a=$RELAY_ADDR:$RELAY_PORT:$(relay_fingerprint)"
RB="b=$RELAYB_ADDR:$RELAY_PORT:$(ssh-keygen -lf "$T/keys/relayb_host.pub" | awk '{print $2}')"
LIMIT=$((AGENT_BACKOFF_MAX + 3))	# "within the backoff", with slack

ctl() { timeout 10 "$SIMTUN_BIN/simtunctl" -s "$T/agent.sock" "$@"; }
# on NAME: relay NAME has a session of dev1 (its status --json)
on() {
	timeout 10 "$SIMTUN_BIN/simtunctl" -s "$T/relay-$1/relay.sock" status --json 2>/dev/null |
	    jq -e '.devices[] | select(.device == "dev1")' >/dev/null
}
only_on() { on "$1" && ! on "$2"; }
# since NAME: when relay NAME's session of dev1 began
since() {
	"$SIMTUN_BIN/simtunctl" -s "$T/relay-$1/relay.sock" status --json |
	    jq '.devices[] | select(.device == "dev1") | .since'
}
# reach NAME: a laptop login through relay NAME's port 4649 lands on the device
reach() {
	local RELAY_ADDR=$RELAY_ADDR
	[ "$1" = b ] && RELAY_ADDR=$RELAYB_ADDR
	device_reachable -c 3 -T 8
}
# ns_of NAME: relay NAME's namespace
ns_of() { if [ "$1" = a ]; then echo "$NS_RELAY"; else echo "$NS_RELAYB"; fi; }
# agent_json JQ-EXPR: true if the expression holds for the agent's status --json
agent_json() { ctl status --json | jq -e "$1" >/dev/null; }

# --- relays_active = 1 --------------------------------------------------------
agent_conf_relays 1 "$RA" "$RB"
start_agent
wait_until 10 only_on a b || fail "device not on relay a (only): $(ctl status)"
reach a || fail "device not reachable through relay a"
port_listening "$NS_RELAYB" "$DEVICE_PORT" && fail "relay b listens on $DEVICE_PORT with relays_active = 1"
ctl status
agent_json '.state == "connected" and .relay == "'"$RELAY_ADDR"'" and .path == "default route" and
    .relays_active == 1 and (.relays | length) == 1 and .relays[0].name == "a" and
    .relays[0].host == "'"$RELAY_ADDR"'" and .relays[0].state == "connected" and (.relays[0].since > 0)' ||
    fail "status --json with relays_active = 1: $(ctl status --json)"

t0=$(now)
kill_named_relay a
log "relay a SIGKILLed"
wait_until "$LIMIT" on b || fail "device not on relay b $LIMIT s after relay a died"
log "device on relay b $(elapsed "$t0") s after relay a died (limit $LIMIT s)"
reach b || fail "device not reachable through relay b"
agent_json '.relays[0].name == "b" and .relays[0].state == "connected"' ||
    fail "status does not show the session on b: $(ctl status --json)"

start_named_relay a "$NS_RELAY" "$T/keys/relay_host"
t0=$(now)
# the agent probes its preferred relay every max(keepalive_interval, connect timeout) = 6 s
wait_until 15 only_on a b || fail "agent did not move back to relay a: $(ctl status)"
log "back on relay a $(elapsed "$t0") s after its restart"
grep -q 'preferred relay a .* reachable again; moving back' "$AGENT_LOG" ||
    fail "no 'moving back' to relay a in the agent log"
grep -E "dev1 .*closed: " "$T/relay-b.log" | tail -1 | grep -qi "disconnect" ||
    fail "relay b saw no proper disconnect when the agent left it"
reach a || fail "device not reachable through relay a after moving back"

# --- SIGHUP: relays_active = 2 ------------------------------------------------
agent_conf_relays 2 "$RA" "$RB"
kill -HUP "$AGENT_PID"
wait_until 10 eval 'on a && on b' || fail "reload to relays_active = 2: not on both relays: $(ctl status)"
log "relays_active = 2 after SIGHUP: on both relays"
reach a || fail "device not reachable through relay a (relays_active = 2)"
reach b || fail "device not reachable through relay b (relays_active = 2)"
ctl status
agent_json '.state == "connected" and .relays_active == 2 and (.relays | length) == 2 and
    ([.relays[] | .name] == ["a", "b"]) and ([.relays[] | .state] == ["connected", "connected"]) and
    .relays[1].host == "'"$RELAYB_ADDR"'"' ||
    fail "status --json with relays_active = 2: $(ctl status --json)"
ctl status | grep -q "^status (b): connected to b ($RELAYB_ADDR) via default route, forwarding $DEVICE_PORT" ||
    fail "status text has no line for b"

sb=$(since b)
kill_named_relay a
log "relay a SIGKILLed"
reach b || fail "device not reachable through relay b with relay a dead"
wait_until 10 agent_json '.relays[0].name == "a" and .relays[0].state != "connected" and .relays[1].state == "connected"' ||
    fail "status does not show a down and b up: $(ctl status --json)"
start_named_relay a "$NS_RELAY" "$T/keys/relay_host"
t0=$(now)
wait_until "$LIMIT" on a || fail "agent not back on relay a $LIMIT s after its restart"
log "back on relay a $(elapsed "$t0") s after its restart (limit $LIMIT s)"
reach a || fail "device not reachable through relay a after its restart"
[ "$(since b)" = "$sb" ] || fail "relay b's session was replaced meanwhile"
agent_json '([.relays[] | .state] == ["connected", "connected"])' ||
    fail "status --json: $(ctl status --json)"

# --- SIGTERM: both sessions say goodbye ---------------------------------------
kill -TERM "$AGENT_PID"
t0=$(now)
wait_until 5 eval '! on a && ! on b' || fail "a relay still has a session of dev1 after the agent's SIGTERM"
log "both sessions closed $(elapsed "$t0") s after the agent's SIGTERM"
for r in a b; do
	grep -E "dev1 .*closed: " "$T/relay-$r.log" | tail -1 | grep -qi "disconnect" ||
	    fail "relay $r saw no proper disconnect: $(grep 'closed:' "$T/relay-$r.log" | tail -1)"
done
wait_until 5 eval '! kill -0 "$AGENT_PID" 2>/dev/null' || fail "agent did not exit"
exit 0
