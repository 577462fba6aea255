#!/bin/bash
# systemd Type=notify without systemd: a stand-in NOTIFY_SOCKET receives
# READY=1, STATUS= lines that say what each daemon does, WATCHDOG=1 at half
# of WATCHDOG_USEC, RELOADING=1/READY=1 around the relay's SIGHUP, and
# STOPPING=1 at SIGTERM.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_agent.sh"

require_agent
require_relay
require_cmds python3
netns_setup
python3 "$LIB_DIR/notify_listen.py" "$T/relay.notify" "$T/relay.msgs" &
ST_DAEMONS+=($!)
python3 "$LIB_DIR/notify_listen.py" "$T/agent.notify" "$T/agent.msgs" &
ST_DAEMONS+=($!)
wait_until 5 eval '[ -S "$T/relay.notify" ] && [ -S "$T/agent.notify" ]' ||
    fail "notify listeners did not start"

NOTIFY_SOCKET=$T/relay.notify WATCHDOG_USEC=2000000 start_relay
NOTIFY_SOCKET=$T/agent.notify WATCHDOG_USEC=2000000 start_agent
agent_wait_connected 10 || fail "agent did not connect"

wait_until 5 grep -qx "READY=1" "$T/relay.msgs" || fail "relay sent no READY=1"
wait_until 5 grep -qx "READY=1" "$T/agent.msgs" || fail "agent sent no READY=1"
wait_until 8 grep -q "^STATUS=connected to $RELAY_ADDR via default route, forwarding 4649" "$T/agent.msgs" ||
    fail "agent STATUS does not say it is connected: $(grep STATUS "$T/agent.msgs" | tail -2)"
wait_until 8 grep -q "^STATUS=1 device connected" "$T/relay.msgs" ||
    fail "relay STATUS does not count the device: $(grep STATUS "$T/relay.msgs" | tail -2)"
sleep 2.5
r=$(grep -cx "WATCHDOG=1" "$T/relay.msgs"); a=$(grep -cx "WATCHDOG=1" "$T/agent.msgs")
log "watchdog pings after ~3 s with WatchdogSec=2s: relay $r, agent $a"
[ "$r" -ge 2 ] && [ "$a" -ge 2 ] || fail "watchdog pings too rare (relay $r, agent $a)"

kill -HUP "$RELAY_PID"
wait_until 5 grep -qx "RELOADING=1" "$T/relay.msgs" || fail "relay sent no RELOADING=1"
[ "$(grep -cx READY=1 "$T/relay.msgs")" -ge 2 ] ||
    wait_until 5 eval '[ "$(grep -cx READY=1 "$T/relay.msgs")" -ge 2 ]' ||
    fail "relay sent no READY=1 after the reload"

kill -TERM "$AGENT_PID"
kill -TERM "$RELAY_PID"
wait_until 5 grep -qx "STOPPING=1" "$T/relay.msgs" || fail "relay sent no STOPPING=1"
sed 's/^/    relay: /' "$T/relay.msgs" | sort -u | head -8
grep STATUS "$T/agent.msgs" | sed 's/^/    agent: /' | head -4
exit 0
