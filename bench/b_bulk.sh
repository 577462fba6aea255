#!/bin/bash
# bench/b_bulk.sh SIZE_MB RUNS: throughput laptop -> device through the relay,
# and small-request latency added by the relay; simtun, then OpenSSH+autossh,
# in the same test bed.  Default ciphers everywhere, as users run them: the
# agent's choice for this CPU (AES-GCM with AES instructions, else
# ChaCha20-Poly1305; see simtun-agent(8)), OpenSSH's own default for the
# autossh tunnel and for the laptop's end-to-end ssh.  BENCH_CIPHER=NAME
# forces one cipher for the OpenSSH ends (the agent keeps its choice).
#   bulk.KIND.ssh   MB/s of `ssh -p 4649 device 'cat >/dev/null'` (scp-like)
#   bulk.KIND.raw   MB/s of plain TCP through the tunnel to a sink on the device
#   bulkcpu.KIND.{relay,device}  CPU ms per MB of the raw copy in the relay
#                   (sshd: all its processes) and the device's tunnel client
#   rtt.KIND        median round trip (us) of 64-byte requests to an echo on
#                   the device through the tunnel; rtt.direct = laptop->relay
#                   + device->relay echo round trips (the path without relay
#                   software); added latency = rtt.KIND - rtt.direct
# Runs alternate simtun / OpenSSH; the table takes medians.
. "$(dirname "$0")/../tests/integration/lib.sh"
. "$(dirname "$0")/../tests/integration/lib_agent.sh"
. "$(dirname "$0")/lib_bench.sh"

SIZE_MB=$1 RUNS=$2
CIPHER=${BENCH_CIPHER:-}
COPT=()
[ -n "$CIPHER" ] && COPT=(-c "$CIPHER")
require_cmds socat autossh
[ -x "$BENCH_BIN/rttprobe" ] || fail "$BENCH_BIN/rttprobe not built"
netns_setup
# the device key may also take the echo (4650) and sink (4651) ports
sed -i 's/permitlisten="4649"/permitlisten="4649",permitlisten="4650",permitlisten="4651"/' \
    "$T/relay/authorized_keys" "$T/relay/authorized_keys.openssh"
bench_result bulk.cipher "${CIPHER:-default}"

# device_services: echo on 127.0.0.1:7 and a sink on :9 that says "done" at EOF.
device_services() {
	nsx "$NS_DEVICE" socat TCP-LISTEN:7,bind=127.0.0.1,reuseaddr,fork,nodelay PIPE \
	    >/dev/null 2>&1 &
	disown
	nsx "$NS_DEVICE" socat -t 60 TCP-LISTEN:9,bind=127.0.0.1,reuseaddr,fork \
	    SYSTEM:'cat >/dev/null; echo done' >/dev/null 2>&1 &
	disown
	wait_until 10 port_listening "$NS_DEVICE" 9 || fail "device sink did not start"
}
device_services
nsx "$NS_RELAY" socat TCP-LISTEN:7000,reuseaddr,fork,nodelay PIPE >/dev/null 2>&1 &
disown
wait_until 10 port_listening "$NS_RELAY" 7000 || fail "relay-side echo did not start"

rtt() { nsx "$1" "$BENCH_BIN/rttprobe" "$2" "$3" 2000 64 | awk '{ print $1 }'; }
a=$(rtt "$NS_LAPTOP" "$RELAY_ADDR" 7000) b=$(rtt "$NS_DEVICE" "$RELAY_ADDR" 7000)
bench_result rtt.direct "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1f", a + b }')"
log "direct round trips: laptop->relay $a us, device->relay $b us"

# mbps SECONDS: SIZE_MB / SECONDS
mbps() { awk -v s="$1" -v m="$SIZE_MB" 'BEGIN { printf "%.1f", m / s }'; }

# cpu_pids KIND: CPU_RELAY / CPU_DEV = the relay-side and device-side tunnel processes.
cpu_pids() {
	if [ "$1" = simtun ]; then
		CPU_RELAY=$SIMTUN_RELAY_PID CPU_DEV=$AGENT_PID
	else
		CPU_RELAY=$(ns_pids_named "$NS_RELAY" sshd | tr '\n' ' ') CPU_DEV=$(autossh_child)
	fi
}

# measure KIND BASEPORT: one ssh copy, one raw copy, one round-trip series.
measure() {
	local kind=$1 bp=$2 t0 dt out
	t0=$(now)
	head -c "${SIZE_MB}M" /dev/zero | timeout 120 ip netns exec "$NS_LAPTOP" \
	    ssh -F /dev/null -p "$bp" "${COPT[@]}" \
	    -i "$T/keys/laptop" -o IdentitiesOnly=yes -o BatchMode=yes \
	    -o HostKeyAlias=device -o UserKnownHostsFile="$T/laptop_known_hosts" \
	    -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes \
	    -o LogLevel=ERROR "root@$RELAY_ADDR" 'cat >/dev/null' ||
	    fail "$kind: bulk ssh copy failed"
	dt=$(elapsed "$t0")
	bench_result "bulk.$kind.ssh" "$(mbps "$dt")"
	log "$kind: ssh copy of $SIZE_MB MB in $dt s ($(mbps "$dt") MB/s)"
	cpu_pids "$kind"
	# BENCH_PROFILE=DIR: perf record the relay and the device client through a raw copy
	if [ -n "${BENCH_PROFILE:-}" ]; then
		perf record -q -g -o "$BENCH_PROFILE/perf.bulk.$kind.relay.data" -p "$(echo $CPU_RELAY | tr ' ' ,)" -- sleep 3 >/dev/null 2>&1 &
		perf record -q -g -o "$BENCH_PROFILE/perf.bulk.$kind.device.data" -p "$CPU_DEV" -- sleep 3 >/dev/null 2>&1 &
		sleep 0.3
	fi
	c0=$(proc_cpu $CPU_RELAY) d0=$(proc_cpu $CPU_DEV)
	t0=$(now)
	out=$(head -c "${SIZE_MB}M" /dev/zero | timeout 120 ip netns exec "$NS_LAPTOP" \
	    socat -t 60 -T 60 - "TCP:$RELAY_ADDR:$((bp + 2))" 2>/dev/null)
	dt=$(elapsed "$t0")
	[ "$out" = done ] || fail "$kind: raw copy through the tunnel did not finish ($out)"
	bench_result "bulk.$kind.raw" "$(mbps "$dt")"
	bench_result "bulkcpu.$kind.relay" "$(awk -v a="$c0" -v b="$(proc_cpu $CPU_RELAY)" -v m="$SIZE_MB" 'BEGIN { printf "%.2f", (b - a) * 1000 / m }')"
	bench_result "bulkcpu.$kind.device" "$(awk -v a="$d0" -v b="$(proc_cpu $CPU_DEV)" -v m="$SIZE_MB" 'BEGIN { printf "%.2f", (b - a) * 1000 / m }')"
	log "$kind: raw TCP copy of $SIZE_MB MB in $dt s ($(mbps "$dt") MB/s)"
	out=$(rtt "$NS_LAPTOP" "$RELAY_ADDR" $((bp + 1)))
	[ -n "$out" ] || fail "$kind: echo through the tunnel failed"
	bench_result "rtt.$kind" "$out"
	log "$kind: round trip through the tunnel $out us"
}

# Both set-ups run side by side, so the runs can alternate (the machine is
# shared: alternating keeps drift out of the ratio).  simtun: relay :2222,
# device ports 4649-4651; OpenSSH: sshd :2223, device ports 5649-5651.
RELAY_KIND=simtun
start_relay
AGENT_KA_INTERVAL=30 AGENT_KA_COUNT=3 AGENT_BACKOFF_MAX=120
AGENT_EXTRA="
[forward echo]
remote = 4650
local = 127.0.0.1:7

[forward sink]
remote = 4651
local = 127.0.0.1:9
"
start_agent
agent_wait_connected 15 || fail "agent did not connect"
wait_until 15 device_reachable -c 3 -T 8 || fail "device not reachable (simtun)"
wait_until 10 port_listening "$NS_RELAY" 4651 || fail "relay not listening on 4651"

sed -i 's/permitlisten="4649",permitlisten="4650",permitlisten="4651"/permitlisten="5649",permitlisten="5650",permitlisten="5651"/' \
    "$T/relay/authorized_keys.openssh"
SIMTUN_RELAY_PID=$RELAY_PID
RELAY_PORT=2223
start_openssh_relay
bench_autossh "${COPT[@]}" -o ServerAliveInterval=30 -o ServerAliveCountMax=3 -- \
    5649:127.0.0.1:22 5650:127.0.0.1:7 5651:127.0.0.1:9
wait_until 20 device_reachable -p 5649 -c 3 -T 8 || fail "device not reachable (openssh)"
wait_until 10 port_listening "$NS_RELAY" 5651 || fail "sshd not listening on 5651"
RELAY_PORT=2222

for i in $(seq 1 "$RUNS"); do
	a=$(rtt "$NS_LAPTOP" "$RELAY_ADDR" 7000) b=$(rtt "$NS_DEVICE" "$RELAY_ADDR" 7000)
	bench_result rtt.direct "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1f", a + b }')"
	if [ $((i % 2)) = 1 ]; then
		measure simtun 4649; measure openssh 5649
	else
		measure openssh 5649; measure simtun 4649
	fi
done
exit 0
