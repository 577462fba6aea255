#!/bin/bash
# A relay (verified host key) opens channels the agent never asked for:
# session, x11, direct-tcpip, auth-agent, forwarded-tcpip to a port not
# requested. Each is refused at once (OPEN_FAILURE, a log line), nothing
# waits in libssh's queue; the forward that was asked for still works.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_agent.sh"

require_agent
require_cmds python3
PY=python3
$PY -c 'import paramiko' 2>/dev/null || PY=/usr/bin/python3
$PY -c 'import paramiko' 2>/dev/null || skip "python3-paramiko missing"
netns_setup
ip netns exec "$NS_RELAY" $PY "$LIB_DIR/fake_relay.py" channels \
    0.0.0.0 "$RELAY_PORT" "$T/keys/relay_host" "$DEVICE_PORT" >"$T/fake_relay.log" 2>&1 &
FAKE_PID=$!
ST_DAEMONS+=($FAKE_PID)
disown
wait_until 5 port_listening "$NS_RELAY" "$RELAY_PORT" || fail "fake relay did not start"
start_agent
wait_until 40 grep -q '^done' "$T/fake_relay.log" || fail "fake relay did not finish: $(cat "$T/fake_relay.log")"
cat "$T/fake_relay.log"
for kind in session:0 x11:0 direct-tcpip:22 auth-agent@openssh.com:0 "forwarded-tcpip:$((DEVICE_PORT + 1))"; do
	line=$(grep "^$kind " "$T/fake_relay.log") || fail "no result for $kind"
	set -- $line
	[ "$2" = refused ] || fail "$kind: $2, want refused"
	awk -v t="$3" 'BEGIN { exit !(t < 1) }' || fail "$kind refused only after $3 s"
done
grep -q "^forwarded-tcpip:$DEVICE_PORT accepted" "$T/fake_relay.log" ||
    fail "the requested forward was not accepted"
for kind in session x11 direct-tcpip auth-agent; do
	grep -q "relay opened a $kind channel .*refused" "$AGENT_LOG" ||
	    fail "no log line for the refused $kind channel"
done
grep -q "relay opened a channel for .*:$((DEVICE_PORT + 1)) that we never asked for" "$AGENT_LOG" ||
    fail "no log line for the unrequested port"
exit 0
