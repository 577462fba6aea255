#!/bin/bash
# simtunctl status against the agent's control socket: connected with the
# relay and path, and the bytes on that path (1 MB down shows up as sent, 1 MB
# up as received); after the relay dies, waiting with a next retry and the
# closed session's bytes still counted.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_agent.sh"

require_agent
require_relay
require_cmds python3
netns_setup
xfer_forward_4650
AGENT_EXTRA="
[forward xfer]
remote = 4650
local = 127.0.0.1:7000"
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
echo "$out" | grep -q "^PATH .*SENT .*RECEIVED .*TODAY-SENT .*TODAY-RECEIVED" ||
    fail "status has no per-path table"
echo "$out" | grep -q "^default route " || fail "status has no row for the default route"

# usage [IN_USE]: "SENT RECEIVED" of the default route, checked for sense
usage() {
	ctl status --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
p = [x for x in d["paths"] if x["name"] == "default route"]
assert len(p) == 1, d["paths"]
p = p[0]
assert p["in_use"] == (sys.argv[1] == "1"), p
assert p["bytes_sent"] > 0 and p["bytes_received"] > 0, p
assert 0 < p["today_sent"] <= p["bytes_sent"], p
assert 0 < p["today_received"] <= p["bytes_received"], p
assert p["tcp_overhead_sent"] > 0 and p["tcp_overhead_received"] > 0, p
print(p["bytes_sent"], p["bytes_received"])' "$1"
}
# grew NAME BEFORE AFTER MIN MAX: AFTER - BEFORE in [MIN, MAX)
grew() {
	local d=$(($3 - $2))
	log "$1 grew by $d bytes"
	[ "$d" -ge "$4" ] && [ "$d" -lt "$5" ] || fail "$1 grew by $d bytes, expected $4 to $5"
}
read -r s0 r0 < <(usage 1) && [ -n "$r0" ] || fail "no usage for the default route: $(ctl status --json)"
log "after the handshake: sent $s0, received $r0"
wait_until 5 port_listening "$NS_RELAY" 4650 || fail "relay does not listen on 4650"
xfer() {
	ip netns exec "$NS_LAPTOP" python3 "$LIB_DIR/xfer.py" rounds \
	    "$RELAY_ADDR" 4650 1 1 1000000 "$1" 30 || fail "1 MB $1 failed"
}
xfer down
read -r s1 r1 < <(usage 1) || fail "no usage after 1 MB down"
grew sent "$s0" "$s1" 1000000 1200000
grew received "$r0" "$r1" 0 500000
xfer up
read -r s2 r2 < <(usage 1) || fail "no usage after 1 MB up"
grew received "$r1" "$r2" 1000000 1200000
grew sent "$s1" "$s2" 0 500000
ctl status | sed -n '/^PATH/,$p'
ctl status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["paths"])'

kill_relay
wait_until 15 eval 'ctl status --json | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if d[\"state\"]==\"waiting\" and d[\"next_retry_ms\"]>=0 else 1)"' ||
    fail "status never showed waiting with a next retry: $(ctl status)"
ctl status
# the closed session stays counted, once
read -r s3 r3 < <(usage 0) || fail "no usage after the session closed: $(ctl status --json)"
grew "sent after the close" "$s2" "$s3" 0 100000
grew "received after the close" "$r2" "$r3" 0 100000
ctl kick dev1 >/dev/null 2>&1 && fail "agent accepted kick"
exit 0
