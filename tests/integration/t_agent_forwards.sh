#!/bin/bash
# Several [forward] sections: each granted port reaches its own local
# target; a port the key may not take is refused by the relay and the agent
# still serves the others, and asks again later (granted once allowed); SIGTERM disconnects properly, so the relay frees
# the ports at once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_agent.sh"

require_agent
require_relay
require_cmds socat
netns_setup
sed -i 's/permitlisten="4649"/permitlisten="4649",permitlisten="4650",permitlisten="4652"/' "$T/relay/authorized_keys"
# hold_time = 0: ports close with their session (holding is t_op_hold's)
start_relay "hold_time = 0"
ip netns exec "$NS_DEVICE" socat TCP-LISTEN:7000,bind=127.0.0.1,reuseaddr,fork EXEC:cat &
ST_DAEMONS+=($!)
# a server that speaks first and the client only listens (like SMTP)
ip netns exec "$NS_DEVICE" socat TCP-LISTEN:7001,bind=127.0.0.1,reuseaddr,fork SYSTEM:'echo server-speaks-first' &
ST_DAEMONS+=($!)
AGENT_EXTRA="
[forward banner]
remote = 4652
local = 127.0.0.1:7001

[forward echo]
remote = 4650
local = 127.0.0.1:7000

[forward nope]
remote = 4651
local = 127.0.0.1:7000"
start_agent
agent_wait_connected 10 || fail "agent did not connect"
wait_until 10 device_reachable -c 3 -T 8 || fail "forward ssh (4649) does not reach sshd"
got=$(echo "echo-through-4650" | timeout 5 ip netns exec "$NS_LAPTOP" socat -t 2 - TCP:$RELAY_ADDR:4650)
[ "$got" = "echo-through-4650" ] || fail "forward echo (4650) answered '$got'"
got=$(timeout 5 ip netns exec "$NS_LAPTOP" socat -u TCP:$RELAY_ADDR:4652 STDOUT)
[ "$got" = "server-speaks-first" ] || fail "server-first forward (4652) gave '$got'"
grep -q "refused forward of port 4651" "$RELAY_LOG" || fail "relay did not refuse 4651"
port_listening "$NS_RELAY" 4651 && fail "relay listens on 4651"
log "4649 -> sshd and 4650 -> echo work; 4651 refused"
grep -q "connected to .* forwarding 4649, 4652, 4650$" "$AGENT_LOG" ||
    fail "agent does not report the granted ports: $(grep 'connected to' "$AGENT_LOG" | tail -1)"

# the relay now permits 4651: the agent asks again on its own (every
# backoff_max) and gets it, without dropping its session
n=$(grep -c "simtun-agent: connecting to" "$AGENT_LOG")
sed -i 's/permitlisten="4652"/permitlisten="4652",permitlisten="4651"/' "$T/relay/authorized_keys"
kill -HUP "$RELAY_PID"
t0=$(now)
wait_until 15 port_listening "$NS_RELAY" 4651 || fail "agent did not ask again for 4651"
log "refused forward granted $(elapsed "$t0") s after the relay allowed it"
got=$(echo "late-4651" | timeout 5 ip netns exec "$NS_LAPTOP" socat -t 2 - TCP:$RELAY_ADDR:4651)
[ "$got" = "late-4651" ] || fail "forward nope (4651) answered '$got'"
[ "$(grep -c "simtun-agent: connecting to" "$AGENT_LOG")" = "$n" ] ||
    fail "the agent reconnected instead of asking on its session"
device_reachable -c 3 -T 8 || fail "4649 lost after the late grant"

kill -TERM "$AGENT_PID"
t0=$(now)
wait_until 5 eval '! port_listening "$NS_RELAY" 4649 && ! port_listening "$NS_RELAY" 4650 && ! port_listening "$NS_RELAY" 4652 && ! port_listening "$NS_RELAY" 4651' ||
    fail "relay still listens after the agent's SIGTERM"
log "ports freed $(elapsed "$t0") s after the agent's SIGTERM"
grep -E "dev1 .*closed: " "$RELAY_LOG" | tail -1 | grep -qi "disconnect" ||
    fail "relay did not see a proper disconnect: $(grep 'closed:' "$RELAY_LOG" | tail -1)"
exit 0
