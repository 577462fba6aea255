#!/bin/bash
# A relay impersonator sends, before the host key can be checked, a
# DISCONNECT whose text holds a newline, a forged "connected" log line and
# terminal escapes: the agent's log and `simtunctl status` show it escaped
# (\xNN), with no raw control byte and no forged line.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_agent.sh"

require_agent
require_cmds python3
netns_setup
ip netns exec "$NS_RELAY" python3 "$LIB_DIR/fake_relay.py" disconnect \
    0.0.0.0 "$RELAY_PORT" >"$T/fake_relay.log" 2>&1 &
ST_DAEMONS+=($!)
disown
wait_until 5 port_listening "$NS_RELAY" "$RELAY_PORT" || fail "fake relay did not start"
start_agent
wait_until 10 grep -q 'DISCONNECT' "$AGENT_LOG" || fail "agent never logged the relay's DISCONNECT"
ctl() { ip netns exec "$NS_DEVICE" "$SIMTUN_BIN/simtunctl" -s "$T/agent.sock" "$@"; }
wait_until 5 eval 'ctl status | grep -q "last error: .*DISCONNECT"' ||
    fail "status has no last error with the DISCONNECT: $(ctl status | cat -v)"
ctl status >"$T/status.txt"
cat -v "$T/status.txt"
grep -m1 'DISCONNECT' "$AGENT_LOG"
# no raw control byte (other than the newline ending each line)
for f in "$AGENT_LOG" "$T/status.txt"; do
	if LC_ALL=C grep -q "[[:cntrl:]]" <(tr -d '\n' <"$f"); then
		fail "$f holds raw control bytes: $(LC_ALL=C grep -n '[[:cntrl:]]' "$f" | cat -v | head -3)"
	fi
done
# the forged text stays inside the escaped line that carries it
grep -h '6\.6\.6\.6' "$AGENT_LOG" "$T/status.txt" | grep -v 'bye\\x0asimtun-agent: connected to 6\.6\.6\.6' &&
    fail "a forged line reached the log or the status"
grep -q '\\x1b\[2J' "$T/status.txt" || fail "status does not show the escape as \\x1b"
agent_alive || fail "agent exited"
exit 0
