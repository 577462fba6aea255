#!/bin/bash
# bench/b_failover.sh KIND CYCLES CAP: dead-path detection and failover.
# The device's cellular path to the relay is blackholed at the carrier (nft
# drop, no RST/ICMP); the laptop retries every 0.5 s.  Keepalive 5 s x 3 on
# the device for both kinds (agent keepalive_interval/count_max; ssh
# ServerAliveInterval/ServerAliveCountMax); relays keepalive 15 s x 3.
#   simtun:  agent with [path cellular] eth0 and [path arc] (wireguard-go to
#            an arc-gw ns routing to the relay's private address).
#   openssh: autossh on the default route; it has no second path, so after
#            detecting the dead path it can only retry the same one.
# Results: failover.KIND.detect <s> (blackhole -> client notices: agent's
# next session / autossh's ssh exits), failover.KIND.reach <s|cap> (blackhole
# -> laptop login on the device).
. "$(dirname "$0")/../tests/integration/lib.sh"
. "$(dirname "$0")/../tests/integration/lib_agent.sh"
. "$(dirname "$0")/lib_bench.sh"

KIND=$1 CYCLES=$2 CAP=$3
KA=5 KC=3
RELAY_KIND=$KIND
[ "$KIND" = openssh ] && require_cmds autossh
netns_setup
start_relay keepalive_interval=15 keepalive_count_max=3

if [ "$KIND" = simtun ]; then
	arc_setup
	_arc_ok() { nsx "$NS_DEVICE" timeout 2 bash -c "exec 3<>/dev/tcp/$RELAY_ADDR2/$RELAY_PORT" 2>/dev/null; }
	wait_until 15 _arc_ok || fail "test bed: relay's $RELAY_ADDR2 not reachable over the Arc tunnel"
	AGENT_KA_INTERVAL=$KA AGENT_KA_COUNT=$KC AGENT_BACKOFF_INITIAL=1 AGENT_BACKOFF_MAX=120
	AGENT_EXTRA="
[path cellular]
interface = eth0

[path arc]
interface = $ARC_IF
host = $RELAY_ADDR2
"
	start_agent
	agent_wait_connected 15 || fail "agent did not connect"
else
	bench_autossh -o ServerAliveInterval=$KA -o ServerAliveCountMax=$KC
fi

for c in $(seq 1 "$CYCLES"); do
	wait_until 60 device_reachable -c 3 -T 8 || fail "device not reachable before cycle $c"
	if [ "$KIND" = simtun ]; then
		n0=$(agent_connected_count)
		grep 'simtun-agent: connected to' "$AGENT_LOG" | tail -1 | grep -q 'via cellular' ||
		    { wait_until 30 eval 'grep "simtun-agent: connected to" "$AGENT_LOG" | tail -1 | grep -q "via cellular"' ||
		      fail "agent not back on cellular before cycle $c"; n0=$(agent_connected_count); }
		wait_until 10 device_reachable -c 3 -T 8 || fail "device not reachable on cellular"
	else
		child0=$(autossh_child)
	fi
	t0=$(now)
	cellular_blackhole
	# detection watcher: when the client notices the dead path
	det=$T/detect.$c
	(
		while :; do
			if [ "$KIND" = simtun ]; then
				[ "$(agent_connected_count)" -gt "$n0" ] && break
			else
				[ "$(autossh_child)" != "$child0" ] && break
			fi
			awk -v a="$t0" -v n="$(now)" -v c="$CAP" 'BEGIN { exit !(n - a > c) }' && exit 0
			sleep 0.05
		done
		fsub "$(now)" "$t0" >"$det"
	) &
	r=$(laptop_retry "$t0" 0.5 0 "$CAP" 3)
	wait
	d=$(cat "$det" 2>/dev/null); d=${d:-cap}
	log "failover $KIND cycle $c: client noticed after $d s, laptop login after $r s"
	bench_result "failover.$KIND.detect" "$d"
	bench_result "failover.$KIND.reach" "$r"
	[ "$KIND" = simtun ] && log "$(grep 'simtun-agent: connected to' "$AGENT_LOG" | tail -1)"
	cellular_blackhole_off
done
exit 0
