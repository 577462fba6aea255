#!/bin/bash
# Wrong pinned host key: the agent refuses before authenticating, logs both
# fingerprints, and nothing is forwarded (the relay never listens on 4649).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_agent.sh"

require_agent
require_relay
netns_setup
start_relay
make_key other other
AGENT_HOST_KEY=$(ssh-keygen -lf "$T/keys/other.pub" | awk '{print $2}')
real=$(relay_fingerprint)
start_agent
_mismatch_logged() { grep -q 'HOST KEY MISMATCH' "$AGENT_LOG"; }
wait_until 10 _mismatch_logged || fail "agent did not report a host key mismatch"
line=$(grep -m1 'HOST KEY MISMATCH' "$AGENT_LOG")
case $line in *"$real"*) ;; *) fail "mismatch line lacks the relay's fingerprint: $line";; esac
case $line in *"$AGENT_HOST_KEY"*) ;; *) fail "mismatch line lacks the pinned fingerprint: $line";; esac
log "agent refused: $line"
# it keeps retrying (never trusts) and never forwards
sleep 3
port_listening "$NS_RELAY" "$DEVICE_PORT" && fail "relay listens on $DEVICE_PORT: something was forwarded"
grep -q 'simtun-agent: connected to' "$AGENT_LOG" && fail "agent claims a forward"
grep -q 'authenticated to' "$AGENT_LOG" && fail "agent authenticated to an unverified relay"
[ "$(grep -c 'HOST KEY MISMATCH' "$AGENT_LOG")" -ge 2 ] || fail "agent stopped retrying"
agent_alive || fail "agent exited"
exit 0
