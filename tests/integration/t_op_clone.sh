#!/bin/bash
# Issue 12: the same device key live from two places at once (a cloned SD
# card image): two simtun-agents with key dev1 both forwarding 4649. The
# relay says so once (both addresses named), counts it in /metrics, and
# stops the copies thrashing: after the warning no more takeovers, few
# logins, `simtunctl status` answers, the device stays reachable.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_agent.sh"

require_agent
[ "$RELAY_KIND" = simtun ] || skip "clone detection is simtun-relay's"
netns_setup
start_relay "metrics_listen = 127.0.0.1:9100"
start_agent
agent_wait_connected 10 || fail "first agent did not connect"
sed "s|^control_socket = .*|control_socket = $T/agent2.sock|" "$AGENT_CONF" >"$T/device/agent2.conf"
ip netns exec "$NS_DEVICE" "$SIMTUN_BIN/simtun-agent" -v -c "$T/device/agent2.conf" \
    2>>"$T/agent2.log" &
ST_DAEMONS+=("$!")
register_log "$T/agent2.log"
PAT='device dev1: key .* is in use from two places at once'
wait_until 30 grep -q "$PAT" "$RELAY_LOG" || fail "no clone warning within 30 s"
grep "$PAT" "$RELAY_LOG" | head -1 | sed 's/^/    /'
line=$(grep -n "$PAT" "$RELAY_LOG" | head -1 | cut -d: -f1)
sleep 12
after() { tail -n +"$((line + 1))" "$RELAY_LOG" | grep -c "$1"; }
[ "$(grep -c "$PAT" "$RELAY_LOG")" = 1 ] || fail "$(grep -c "$PAT" "$RELAY_LOG") clone warnings, want 1"
tk=$(after 'port 4649 taken over by the new session')
logins=$(after 'device dev1 authenticated')
refusals=$(after 'key in use elsewhere (clone)')
log "in the 12 s after the warning: $tk takeovers, $logins logins of dev1, $refusals clone refusals"
[ "$tk" -le 1 ] || fail "the copies still thrash: $tk takeovers of 4649 in 12 s after the warning"
[ "$logins" -le 2 ] || fail "$logins logins of dev1 in 12 s after the warning"
timeout 1 "$SIMTUN_BIN/simtunctl" -s "$T/relay/relay.sock" status >/dev/null ||
    fail "relay status did not answer within 1 s"
device_reachable -c 5 -T 10 || fail "device not reachable through 4649"
m=$(nsx "$NS_RELAY" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9100 && printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3')
echo "$m" | grep -q '^simtun_key_clones_total 1' || fail "metric simtun_key_clones_total not 1: $(echo "$m" | grep clones)"
log "one warning, simtun_key_clones_total 1, relay responsive, device reachable"
exit 0
