#!/bin/bash
# 8 concurrent 1 MiB transfers through simtun-agent, 30 rounds each way,
# against simtun-relay and against a stock OpenSSH sshd as relay: every
# byte arrives (sha256) and no round takes more than 1 s. A forwarded
# connection that closes must not stall the others until the next packet
# (its CLOSE sits in libssh unsent, a pump waits for a write event that
# nobody armed).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_agent.sh"

ROUNDS=${XFER_ROUNDS:-30}
CONNS=8
SIZE=1048576
MAXSECS=1
require_agent
require_cmds python3
netns_setup
xfer_forward_4650
wait_until 5 port_listening "$NS_DEVICE" 7000 || fail "transfer server did not start"
# keepalives far apart: a stall would last until the next one
AGENT_KA_INTERVAL=30
AGENT_EXTRA="
[forward xfer]
remote = 4650
local = 127.0.0.1:7000"

# run_rounds KIND: relay of KIND, agent, ROUNDS down and ROUNDS up.
run_rounds() {
	local kind=$1 dir n
	RELAY_KIND=$kind
	start_relay
	n=$(agent_connected_count)
	start_agent
	agent_wait_connected 10 $((n + 1)) || fail "agent did not connect to the $kind relay"
	wait_until 5 port_listening "$NS_RELAY" 4650 || fail "$kind relay does not listen on 4650"
	for dir in down up; do
		ip netns exec "$NS_LAPTOP" python3 "$LIB_DIR/xfer.py" rounds \
		    "$RELAY_ADDR" 4650 "$ROUNDS" "$CONNS" "$SIZE" "$dir" "$MAXSECS" \
		    >"$T/xfer.$kind.$dir.log" 2>&1
		rc=$?
		log "$kind relay: $(tail -1 "$T/xfer.$kind.$dir.log")"
		[ $rc = 0 ] || { cat "$T/xfer.$kind.$dir.log"; fail "$kind relay, $dir: a round failed"; }
	done
	agent_alive && relay_alive || fail "a daemon exited"
	stop_agent
	stop_relay
	wait_until 5 eval '! port_listening "$NS_RELAY" "$RELAY_PORT"'
}

for kind in ${XFER_RELAYS:-simtun openssh}; do
	run_rounds "$kind"
done
exit 0
