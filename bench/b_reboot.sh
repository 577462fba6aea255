#!/bin/bash
# bench/b_reboot.sh KIND INTERVAL CAP PHASE...: reboot-to-reachable behind CGNAT.
# KIND simtun (simtun-relay + simtun-agent) or openssh (sshd + autossh).  One
# half-open reboot per PHASE, in this one test bed: the device vanishes (no
# FIN/RST reaches the relay), boots with a new address and starts its agent
# (or autossh) at t0; the laptop tries to log in at t0+PHASE and then every
# INTERVAL seconds.  Result lines: "reboot.KIND.INTERVAL <seconds|cap>".
# Both relays: keepalive 15 s x 3 (sshd: ClientAliveInterval 15, CountMax 3).
# Device side: agent.conf defaults (keepalive 30 x 3, backoff 1..120 s);
# autossh -M 0 with ServerAliveInterval 30, CountMax 3, ExitOnForwardFailure.
. "$(dirname "$0")/../tests/integration/lib.sh"
. "$(dirname "$0")/../tests/integration/lib_agent.sh"
. "$(dirname "$0")/lib_bench.sh"

KIND=$1 IV=$2 CAP=$3; shift 3
[ "$KIND" = openssh ] && require_cmds autossh
RELAY_KIND=$KIND
bench_agent_defaults
netns_setup
start_relay keepalive_interval=15 keepalive_count_max=3

# device_start: the device's tunnel client, as its boot would start it.
device_start() {
	if [ "$KIND" = simtun ]; then
		rm -f "$AGENT_CONF"
		start_agent
	else
		bench_autossh -o ServerAliveInterval=30 -o ServerAliveCountMax=3
	fi
}

device_start
wait_until 30 device_reachable -c 3 -T 8 || fail "device not reachable before the first reboot"
for ph in "$@"; do
	# steady state: the device has been reachable, the relay holds its session
	if ! wait_until 60 device_reachable -c 3 -T 8; then
		log "device not reachable before reboot; skipping this sample"
		continue
	fi
	reboot_device
	n=$(nsx "$NS_RELAY" ss -tnH state established "( sport = :$RELAY_PORT )" | wc -l)
	[ "$n" -ge 1 ] || fail "test bed: relay saw the old session close (no half-open state)"
	t0=$(now)
	device_start
	r=$(laptop_retry "$t0" "$IV" "$ph" "$CAP" "$(awk -v i="$IV" 'BEGIN { print (i < 3) ? 3 : 5 }')")
	log "reboot: $KIND, laptop every $IV s from +$ph s: $r"
	bench_result "reboot.$KIND.$IV" "$r"
done
exit 0
