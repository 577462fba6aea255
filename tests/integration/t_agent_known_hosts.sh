#!/bin/bash
# known_hosts instead of a pinned fingerprint, in OpenSSH's format: a listed
# key connects; a host listed with another key is refused with both
# fingerprints; a host not listed is refused (never trusted on first use).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_agent.sh"

require_agent
require_relay
netns_setup
start_relay
make_key other other
KH=$T/device/known_hosts
real=$(relay_fingerprint)
other=$(ssh-keygen -lf "$T/keys/other.pub" | awk '{print $2}')
# agent_conf with known_hosts in place of host_key
use_known_hosts() {
	agent_conf
	sed -i "s|^host_key = .*|known_hosts = $KH|" "$AGENT_CONF"
}

# 1. not listed at all: refused, nothing forwarded
echo "[192.0.2.99]:2222 $(cut -d' ' -f1,2 "$T/keys/other.pub")" >"$KH"
use_known_hosts
start_agent
wait_until 10 grep -q "is not in $KH" "$AGENT_LOG" ||
    fail "unknown relay key not refused as such"
grep -q "$real" "$AGENT_LOG" || fail "refusal lacks the relay's fingerprint"
port_listening "$NS_RELAY" "$DEVICE_PORT" && fail "forwarded to an unknown relay"
stop_agent

# 2. listed with another key: refused with both fingerprints
echo "[$RELAY_ADDR]:$RELAY_PORT $(cut -d' ' -f1,2 "$T/keys/other.pub")" >"$KH"
start_agent
wait_until 10 grep -q "HOST KEY MISMATCH" "$AGENT_LOG" || fail "changed key not refused"
line=$(grep -m1 "HOST KEY MISMATCH" "$AGENT_LOG")
case $line in *"$real"*"$other"*) ;; *) fail "mismatch line lacks a fingerprint: $line";; esac
port_listening "$NS_RELAY" "$DEVICE_PORT" && fail "forwarded to a mismatched relay"
stop_agent

# 3. the right key, as ssh-keyscan / known_hosts writes it: connects
echo "[$RELAY_ADDR]:$RELAY_PORT $(cut -d' ' -f1,2 "$T/keys/relay_host.pub")" >"$KH"
start_agent
agent_wait_connected 10 || fail "agent did not connect with a matching known_hosts"
wait_until 10 device_reachable -c 3 -T 8 || fail "laptop could not reach the device"
exit 0
