#!/bin/bash
# simtunctl status against the agent's control socket: connected with the
# relay and path; after the relay dies, waiting with a next retry.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_agent.sh"

require_agent
require_relay
netns_setup
start_relay
start_agent
agent_wait_connected 10 || fail "agent did not connect"
ctl() { ip netns exec "$NS_DEVICE" "$SIMTUN_BIN/simtunctl" -s "$T/agent.sock" "$@"; }
out=$(ctl status) || fail "simtunctl status failed: $out"
echo "$out"
echo "$out" | grep -q "^$RELAY_ADDR:$RELAY_PORT .*default route .*connected" ||
    fail "status does not show the connected relay"
[ "$(stat -c %a "$T/agent.sock")" = 600 ] || fail "agent socket is not 0600"
json=$(ctl status --json) || fail "status --json failed"
echo "$json"
echo "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["state"]=="connected", d; assert d["relay"]=="'"$RELAY_ADDR"'", d' ||
    fail "json status wrong"
kill_relay
wait_until 15 eval 'ctl status --json | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if d[\"state\"]==\"waiting\" and d[\"next_retry_ms\"]>=0 else 1)"' ||
    fail "status never showed waiting with a next retry: $(ctl status)"
ctl status
ctl kick dev1 >/dev/null 2>&1 && fail "agent accepted kick"
exit 0
