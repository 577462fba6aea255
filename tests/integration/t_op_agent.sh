#!/bin/bash
# Issue 12: simtun-agent serves a named forward (remote = dev1:22) beside a
# port (remote = 4649); an operator reaches both through the relay with
# stock ssh -J, and `simtunctl status` on the device lists the name.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_agent.sh"

require_agent
[ "$RELAY_KIND" = simtun ] || skip "named forwards are simtun-relay's"
netns_setup
agent_named_forward
add_device_key -o 'permitopen="dev1:*"' ops
start_relay
start_agent
agent_wait_connected 10 || fail "agent did not connect"
wait_until 10 grep -q 'device dev1: serving name dev1:22' "$RELAY_LOG" ||
    fail "relay has no named forward dev1:22 from the agent"

jump() {
	timeout 30 ip netns exec "$NS_LAPTOP" ssh -F /dev/null -o BatchMode=yes \
	    -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null \
	    -o ProxyCommand="ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -i $T/keys/ops -o HostKeyAlias=relay -o UserKnownHostsFile=$T/relay_known_hosts -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -p $RELAY_PORT -W %h:%p ops@$RELAY_ADDR" \
	    -i "$T/keys/laptop" -o HostKeyAlias=device -o UserKnownHostsFile="$T/laptop_known_hosts" \
	    -o LogLevel=ERROR "$@"
}
got=$(jump root@dev1 'ip netns identify') || fail "ssh through the relay to the agent's named forward failed"
[ "$got" = "$NS_DEVICE" ] || fail "landed in '$got'"
got=$(jump -p 4649 root@dev1 'ip netns identify') || fail "ssh through the relay to the agent's port 4649 failed"
[ "$got" = "$NS_DEVICE" ] || fail "landed in '$got'"
log "operator reached the agent's named forward dev1:22 and its port 4649"
st=$("$SIMTUN_BIN/simtunctl" -s "$T/agent.sock" status) || fail "simtunctl status on the device failed"
echo "$st" | sed 's/^/    /'
echo "$st" | grep -q 'dev1:22' || fail "agent status does not show the named forward"
exit 0
