#!/bin/bash
# bench/b_cluster.sh N RUNS: several simtun-relays sharing a Redis directory
# ([cluster], issue 14). OpenSSH has no equivalent; simtun only.
#
#   laptop 198.18.0.2 (operator: ssh -L to a device by name)
#   fleet  198.18.0.5 (bench/loadgen: N devices, -H relay1,relay2,relay3)
#     |
#   inet br0 -- relay1 198.18.0.1, relay2 198.18.0.12, relay3 198.18.0.13
#            -- redis  198.18.0.20:6379 (one redis-server, no persistence)
#            -- carrier (CGNAT) -- device dev1 (simtun-agent on relay2 only)
#
# The relays share host key and authorized_keys; [cluster] redis =
# 198.18.0.20:6379, relay_id relayI, peer_address its own :2222, lease_time
# 10 (the default); [relay] as b_fleet.sh: keepalive 15 s x 3, max_startups
# N, penalty_exempt = the fleet's address.
#
# 1. Cross-relay latency: dev1's agent holds the named forward dev1:7 (an
#    echo on the device) on relay2. The operator keeps one `ssh -N -L
#    P:dev1:7` to relay1 (the channel goes relay1 -> relay2 over the pooled
#    relay-to-relay link) and one to relay2 (direct); rttprobe sends 1,000
#    64-byte round trips through each in turn, RUNS rounds (the order
#    alternates). Per round: median and p99 of each (us), and their
#    differences (a shared machine drifts; the pairs drift together).
#      cluster.rtt.{cross,direct}, cluster.rtt99.{cross,direct},
#      cluster.rttdiff, cluster.rtt99diff
# 2. Storm: loadgen's N devices, device i on relay (i mod 3), the others as
#    fallback (agent/slot.c: the next relay at once), ramp with 256 in
#    flight, all listed in the directory, 6 s idle. relay1 is SIGKILLed. A
#    redis-cli SUBSCRIBEd to simtun:events stamps each "up"/"down" as it
#    arrives (no scans of simtun:dir meanwhile: Redis does nothing else for
#    the bench); every 0.2 s the bench checks loadgen, those events and
#    SISMEMBER simtun:relays relay1, until all N are up again on
#    relay2/relay3 (loadgen's ALLUP), all of relay1's devices are listed on
#    them and relay1 has left simtun:relays (its lease lapsed, a heartbeat
#    of another relay reaped it).
#      cluster.storm_s      kill -> all N up again (loadgen)
#      cluster.dir_gone_s   kill -> no directory entry names relay1 (each
#                           claimed elsewhere or reaped)
#      cluster.dir_full_s   kill -> relay1's devices all listed on relay2/3
#      cluster.lease_s      kill -> relay1 out of simtun:relays
#      cluster.storm_relay_cpu_s   relay2 + relay3 CPU, kill -> all up
#      cluster.claims, cluster.claims_per_s, cluster.claims_peak_per_s
#                           HINCRBY simtun:epoch calls (one per claim, from
#                           the claim script) kill -> end: their number, per
#                           second over dir_full_s, and the most "up" events
#                           in any 1 s
#      cluster.redis_cpu_s  redis-server CPU (schedstat), kill -> all up;
#                           cluster.redis_eval_ms: its time in EVAL (the
#                           relays' scripts) meanwhile
#      also cluster.ramp_s, on_dead, moved, after_relay{2,3}, listen_drops,
#      storm_gen_cpu_s (loadgen's CPU: it shares the CPUs with the relays)
. "$(dirname "$0")/../tests/integration/lib.sh"
. "$(dirname "$0")/../tests/integration/lib_agent.sh"
. "$(dirname "$0")/lib_bench.sh"

N=$1 RUNS=${2:-3}
STORM_CAP=${STORM_CAP:-120}
RAMP_CAP=${RAMP_CAP:-240}
LEASE=10
CIPHER=chacha20-poly1305@openssh.com
MAXSTARTUPS=${MAXSTARTUPS:-$N}
[ "$MAXSTARTUPS" -lt 64 ] && MAXSTARTUPS=64
RELAY_KIND=simtun
require_relay
require_cmds redis-server redis-cli socat perl stdbuf nstat
[ -x "$BENCH_BIN/loadgen" ] || fail "$BENCH_BIN/loadgen not built"
[ -x "$BENCH_BIN/rttprobe" ] || fail "$BENCH_BIN/rttprobe not built"

NS_R=([1]="$NS_RELAY" [2]="${ST_ID}r2" [3]="${ST_ID}r3")
ADDR=([1]="$RELAY_ADDR" [2]=198.18.0.12 [3]=198.18.0.13)
NS_REDIS=${ST_ID}k REDIS_ADDR=198.18.0.20 REDIS_PORT=6379
NS_FLEET=${ST_ID}f FLEET_ADDR=198.18.0.5
CL_PID=()
DEAD=1

netns_setup
for i in 2 3; do
	netns_new "${NS_R[$i]}"
	inet_attach "${NS_R[$i]}" "${ADDR[$i]}"
done
netns_new "$NS_REDIS"
inet_attach "$NS_REDIS" "$REDIS_ADDR"
netns_new "$NS_FLEET"
inet_attach "$NS_FLEET" "$FLEET_ADDR"
nsx "$NS_FLEET" sysctl -qw net.ipv4.ip_local_port_range="1024 65000"

# dev1 serves the named forward dev1:7 (an echo); the operator key ops may open it
sed -i 's/permitlisten="4649"/permitlisten="4649",permitlisten="dev1:7"/' "$T/relay/authorized_keys"
add_device_key -o 'permitopen="dev1:7"' ops
chmod 600 "$T/keys/ops"

# --- Redis ------------------------------------------------------------------
rcli() { timeout 5 ip netns exec "$NS_REDIS" redis-cli -h "$REDIS_ADDR" -p "$REDIS_PORT" "$@"; }
mkdir -p "$T/redis"
cat >"$T/redis/redis.conf" <<EOF
bind $REDIS_ADDR
port $REDIS_PORT
protected-mode no
save ""
appendonly no
dir $T/redis
logfile $T/redis.log
daemonize no
EOF
# (ip netns exec, not nsx: $! must be the daemon, not a subshell around it)
ip netns exec "$NS_REDIS" redis-server "$T/redis/redis.conf" >>"$T/redis.log" 2>&1 &
REDIS_PID=$!
disown
ST_DAEMONS+=("$REDIS_PID")
wait_until 10 port_listening "$NS_REDIS" "$REDIS_PORT" || fail "redis-server did not start: $(tail -3 "$T/redis.log")"
log "redis-server $(redis-server --version | awk '{ print $3 }') pid $REDIS_PID on $REDIS_ADDR:$REDIS_PORT"

# the directory in one reply (before and after the storm): loadgen devices
# listed, and those on relay1..3
DIR_LUA="local n, c = 0, {0, 0, 0}
local all = redis.call('HGETALL', 'simtun:dir')
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 2) == 'lg' then
    n = n + 1
    local r = tonumber(string.match(all[i + 1], '^relay(%d+) '))
    if r and c[r] then c[r] = c[r] + 1 end
  end
end
return {n, c[1], c[2], c[3]}"
DIR_SHA=$(rcli SCRIPT LOAD "$DIR_LUA") && [ -n "$DIR_SHA" ] || fail "SCRIPT LOAD failed"

# dir_sample: "LISTED ON1 ON2 ON3"
dir_sample() { rcli EVALSHA "$DIR_SHA" 0 2>/dev/null | tr -d '\r' | paste -sd' '; }

# --- the fleet's keys, then the relays --------------------------------------
LG_OUT=$T/loadgen.out
ip netns exec "$NS_FLEET" "$BENCH_BIN/loadgen" -n "$N" \
    -H "${ADDR[1]},${ADDR[2]},${ADDR[3]}" -p "$RELAY_PORT" \
    -b 20000 -u root -a "$T/lg" -c 256 -K 30 -T 5 >"$LG_OUT" 2>"$T/loadgen.err" &
LG_PID=$!
ST_DAEMONS+=("$LG_PID")
wait_until 120 grep -q ' KEYS ' "$LG_OUT" || fail "loadgen did not write its keys: $(tail -3 "$T/loadgen.err")"
cat "$T/relay/authorized_keys" "$T/lg.simtun" >"$T/cluster_keys"

# cl_relay_start I: relay I in its namespace (no -v: a production log level)
cl_relay_start() {
	local i=$1 d=$T/relay$1
	mkdir -p "$d"
	cat >"$d/relay.conf" <<-EOF
	[relay]
	listen = 0.0.0.0:$RELAY_PORT
	host_key = $T/relay/ssh_host_ed25519_key
	authorized_keys = $T/cluster_keys
	forward_address = 0.0.0.0
	keepalive_interval = 15
	keepalive_count_max = 3
	max_startups = $MAXSTARTUPS
	login_grace_time = 20
	penalty_exempt = $FLEET_ADDR
	control_socket = $d/relay.sock
	state_db = $d/state.db

	[cluster]
	redis = $REDIS_ADDR:$REDIS_PORT
	relay_id = relay$i
	peer_address = ${ADDR[$i]}:$RELAY_PORT
	lease_time = $LEASE
	EOF
	"$SIMTUN_BIN/simtun-relay" -n -c "$d/relay.conf" >/dev/null 2>&1 ||
	    fail "relay$i: config rejected: $("$SIMTUN_BIN/simtun-relay" -n -c "$d/relay.conf" 2>&1 | head -3)"
	register_log "$T/relay$i.log"
	ip netns exec "${NS_R[$i]}" "$SIMTUN_BIN/simtun-relay" -c "$d/relay.conf" 2>>"$T/relay$i.log" &
	CL_PID[$i]=$!
	disown
	ST_DAEMONS+=("${CL_PID[$i]}")
	wait_until 30 port_listening "${NS_R[$i]}" "$RELAY_PORT" || {
		kill -0 "${CL_PID[$i]}" 2>/dev/null || fail "relay$i exited at start: $(tail -3 "$T/relay$i.log")"
		fail "relay$i not listening on :$RELAY_PORT after 30 s"
	}
}
for i in 1 2 3; do cl_relay_start "$i"; done
for i in 1 2 3; do
	wait_until 15 grep -q 'cluster: directory .* is up' "$T/relay$i.log" ||
	    fail "relay$i: directory not up after 15 s: $(grep cluster "$T/relay$i.log" | tail -2)"
done
wait_until 15 eval '[ "$(rcli SCARD simtun:relays)" = 3 ]' || fail "not 3 relays in simtun:relays: $(rcli SMEMBERS simtun:relays | tr '\n' ' ')"
log "3 relays (pids ${CL_PID[*]}) share the directory"

# --- 1. cross-relay latency -------------------------------------------------
nsx "$NS_DEVICE" socat TCP-LISTEN:7,bind=127.0.0.1,reuseaddr,fork,nodelay PIPE >/dev/null 2>&1 &
disown
wait_until 10 port_listening "$NS_DEVICE" 7 || fail "device echo did not start"
bench_agent_defaults
AGENT_RELAY_HOST=${ADDR[2]}
AGENT_EXTRA="
[forward echo]
remote = dev1:7
local = 127.0.0.1:7"
start_agent
agent_wait_connected 20 || fail "agent did not connect to relay2: $(tail -3 "$AGENT_LOG")"
wait_until 10 eval '[ "$(rcli HGET simtun:dir dev1 | cut -d" " -f1)" = relay2 ]' ||
    fail "dev1 not on relay2 in the directory: $(rcli HGET simtun:dir dev1)"

# op_forward I PORT: the operator's ssh -N -L 127.0.0.1:PORT:dev1:7 through relay I
op_forward() {
	ip netns exec "$NS_LAPTOP" ssh -F /dev/null -N -c "$CIPHER" -o BatchMode=yes \
	    -o IdentitiesOnly=yes -i "$T/keys/ops" -o HostKeyAlias=relay \
	    -o UserKnownHostsFile="$T/relay_known_hosts" -o GlobalKnownHostsFile=/dev/null \
	    -o StrictHostKeyChecking=yes -o ExitOnForwardFailure=yes -o LogLevel=ERROR \
	    -p "$RELAY_PORT" -L "127.0.0.1:$2:dev1:7" "ops@${ADDR[$1]}" 2>>"$T/ops.log" &
	OP_PIDS+=($!)
	wait_until 15 port_listening "$NS_LAPTOP" "$2" || fail "ssh -L through relay$1 did not listen"
}
OP_PIDS=()
P_CROSS=17001 P_DIRECT=17002
op_forward 1 "$P_CROSS"
op_forward 2 "$P_DIRECT"
declare -A RTT_MED RTT_P99
rtt() {	# rtt KIND PORT: one rttprobe run, results cluster.rtt{,99}.KIND
	local out med p99
	out=$(nsx "$NS_LAPTOP" "$BENCH_BIN/rttprobe" 127.0.0.1 "$2" 1000 64) ||
	    fail "$1: echo through the relay failed"
	read -r med _ p99 <<<"$out"
	bench_result "cluster.rtt.$1" "$med"
	bench_result "cluster.rtt99.$1" "$p99"
	RTT_MED[$1]=$med RTT_P99[$1]=$p99
}
for i in $(seq 1 "$RUNS"); do
	if [ $((i % 2)) = 1 ]; then rtt cross "$P_CROSS"; rtt direct "$P_DIRECT"
	else rtt direct "$P_DIRECT"; rtt cross "$P_CROSS"; fi
	bench_result cluster.rttdiff "$(fsub "${RTT_MED[cross]}" "${RTT_MED[direct]}")"
	bench_result cluster.rtt99diff "$(fsub "${RTT_P99[cross]}" "${RTT_P99[direct]}")"
	log "round trip, median/p99 us: via relay1 ${RTT_MED[cross]}/${RTT_P99[cross]}, direct ${RTT_MED[direct]}/${RTT_P99[direct]}"
done
grep -q 'via relay relay2' "$T/relay1.log" ||
    log "warning: relay1's log does not show the channel going via relay2"
kill "${OP_PIDS[@]}" 2>/dev/null

# --- 2. the storm -----------------------------------------------------------
bench_result cluster.n "$N"
bench_result cluster.cap "$STORM_CAP"
kill -USR1 "$LG_PID"
if ! wait_until "$RAMP_CAP" eval '[ "$(grep -c " ALLUP " "$LG_OUT")" -ge 1 ] || ! kill -0 $LG_PID'; then
	fail "ramp: not all $N up after $RAMP_CAP s: $(grep ' STAT ' "$LG_OUT" | tail -1)"
fi
kill -0 "$LG_PID" 2>/dev/null || fail "loadgen died: $(tail -3 "$T/loadgen.err")"
ramp=$(grep ' ALLUP ' "$LG_OUT" | head -1 | awk '{ print $4 }')
bench_result cluster.ramp_s "$ramp"
log "ramp: $N devices up in $ramp s"
wait_until 60 eval '[ "$(dir_sample | cut -d" " -f1)" = "$N" ]' ||
    fail "the directory lists $(dir_sample | cut -d' ' -f1) of $N devices after 60 s"
sleep 6		# idle; loadgen counts sessions up >= 5 s as stable
read -r _ on1 on2 on3 <<<"$(dir_sample)"
log "directory: $on1 / $on2 / $on3 devices on relay1 / relay2 / relay3; loadgen $(grep ' STAT ' "$LG_OUT" | tail -1 | sed 's/.*relays=/relays=/')"
bench_result cluster.on_dead "$on1"
[ "$on1" -gt 0 ] || fail "no device on relay1"
# the dead relay's devices, per the directory before the kill
rcli HGETALL simtun:dir | tr -d '\r' |
    awk -v d="relay$DEAD" 'NR % 2 { k = $0; next } k ~ /^lg/ && $1 == d { print k }' >"$T/dead_names.out"
[ "$(wc -l <"$T/dead_names.out")" = "$on1" ] || fail "relay$DEAD's devices: $(wc -l <"$T/dead_names.out") names, $on1 counted"

# the directory's events (claims publish "up NAME RELAY EPOCH", releases and
# reaps "down ..."), stamped as they arrive: the storm is followed here, not
# by scanning simtun:dir, so that Redis does nothing for the bench meanwhile
EVENTS=$T/events.out
ip netns exec "$NS_REDIS" stdbuf -oL redis-cli -h "$REDIS_ADDR" -p "$REDIS_PORT" SUBSCRIBE simtun:events 2>/dev/null |
    perl -MTime::HiRes=time -ne '$| = 1; s/\r//; printf "%.6f %s", time, $_' >"$EVENTS" &
wait_until 5 grep -q 'simtun:events' "$EVENTS" || fail "could not subscribe to simtun:events"

# ev_status: "GONE FULL UP_ELSEWHERE UPS" over the dead relay's devices: when
# the last of them left relay1's entry (claimed elsewhere or reaped), when the
# last was listed on another relay ("-": not yet), how many are, and how many
# "up" events (claims) there were in all
ev_status() {
	awk -v dead="relay$DEAD" 'FNR == NR { want[$1] = 1; n++; next }
	NF == 5 && ($2 == "up" || $2 == "down") {
		if ($2 == "up") ups++
		if (!($3 in want)) next
		if (!($3 in seen)) { seen[$3] = 1; if (++ns == n) gone = $1 }
		if ($2 == "up" && $4 != dead) { if (!($3 in on)) { on[$3] = 1; nu++ } }
		else if ($3 in on) { delete on[$3]; nu-- }
		if (nu == n && full == "") full = $1
	}
	END { printf "%s %s %d %d\n", gone == "" ? "-" : gone, full == "" ? "-" : full, nu, ups }' \
	    "$T/dead_names.out" "$EVENTS"
}

# sched_cpu PID...: CPU seconds of every thread of PIDs (schedstat, ns precision)
sched_cpu() {
	local p
	for p in "$@"; do cat /proc/"$p"/task/*/schedstat 2>/dev/null; done |
	    awk '{ s += $1 } END { printf "%.3f", s / 1e9 }'
}
# listen_drops: SYNs and handshakes the kernel dropped at relay2 + relay3's listeners
listen_drops() {
	local i
	for i in 2 3; do
		ip netns exec "${NS_R[$i]}" nstat -asz TcpExtListenDrops
	done | awk '$1 == "TcpExtListenDrops" { s += $2 } END { print s + 0 }'
}
# cmdstat NAME FIELD: INFO commandstats' FIELD (calls, usec) of command NAME
cmdstat() {
	rcli INFO commandstats | tr -d '\r' | awk -F'[:,=]' -v c="cmdstat_$1" -v f="$2" \
	    '$1 == c { for (i = 2; i < NF; i += 2) if ($i == f) v = $(i + 1) } END { print v + 0 }'
}
drops0=$(listen_drops)
allup0=$(grep -c ' ALLUP ' "$LG_OUT")
h0=$(cmdstat hincrby calls) e0=$(cmdstat eval usec)
c_r20=$(sched_cpu "${CL_PID[2]}") c_r30=$(sched_cpu "${CL_PID[3]}")
c_redis0=$(sched_cpu "$REDIS_PID") c_lg0=$(sched_cpu "$LG_PID")
[ "$(cat "/proc/${CL_PID[$DEAD]}/comm" 2>/dev/null)" = simtun-relay ] ||
    fail "pid ${CL_PID[$DEAD]} is not relay$DEAD"
t_kill=$(now)
kill -KILL "${CL_PID[$DEAD]}"
wait_until 5 eval "! kill -0 ${CL_PID[$DEAD]} 2>/dev/null" || fail "relay$DEAD survived SIGKILL"
log "relay$DEAD SIGKILLed with $on1 of $N devices"
t_up='' t_gone='' t_full='' t_lease='' c_r2='' c_r3='' c_redis='' c_lg='' e_up=''
while :; do
	if [ -z "$t_up" ] && [ "$(grep -c ' ALLUP ' "$LG_OUT")" -gt "$allup0" ]; then
		c_r2=$(fsub "$(sched_cpu "${CL_PID[2]}")" "$c_r20")
		c_r3=$(fsub "$(sched_cpu "${CL_PID[3]}")" "$c_r30")
		c_redis=$(fsub "$(sched_cpu "$REDIS_PID")" "$c_redis0")
		c_lg=$(fsub "$(sched_cpu "$LG_PID")" "$c_lg0")
		e_up=$(cmdstat eval usec)
		t_up=$(grep ' ALLUP ' "$LG_OUT" | sed -n "$((allup0 + 1))p" | awk '{ print $1 }')
		t_up=$(fsub "$t_up" "$t_kill")
	fi
	read -r gone full _ _ <<<"$(ev_status)"
	[ -z "$t_gone" ] && [ "$gone" != - ] && t_gone=$(fsub "$gone" "$t_kill")
	[ -z "$t_full" ] && [ "$full" != - ] && t_full=$(fsub "$full" "$t_kill")
	[ -z "$t_lease" ] && [ "$(rcli SISMEMBER simtun:relays "relay$DEAD")" = 0 ] && t_lease=$(elapsed "$t_kill")
	[ -n "$t_up" ] && [ -n "$t_full" ] && [ -n "$t_lease" ] && break
	awk -v e="$(elapsed "$t_kill")" -v c="$STORM_CAP" 'BEGIN { exit !(e > c) }' && break
	sleep 0.2
done
bench_result cluster.storm_s "${t_up:-cap}"
bench_result cluster.dir_gone_s "${t_gone:-cap}"
bench_result cluster.dir_full_s "${t_full:-cap}"
bench_result cluster.lease_s "${t_lease:-cap}"
if [ -z "$t_up" ]; then
	st=$(grep ' STAT ' "$LG_OUT" | tail -1)
	bench_result cluster.storm_up "$(sed -n 's/.* up=\([0-9]*\).*/\1/p' <<<"$st")"
	log "storm: not all back after $STORM_CAP s: $st"
	exit 0
fi
claims=$(( $(cmdstat hincrby calls) - h0 ))
read -r _ _ moved ups <<<"$(ev_status)"
bench_result cluster.storm_relay_cpu_s "$(awk -v a="$c_r2" -v b="$c_r3" 'BEGIN { printf "%.3f", a + b }')"
bench_result cluster.storm_relay2_cpu_s "$c_r2"
bench_result cluster.storm_relay3_cpu_s "$c_r3"
bench_result cluster.storm_gen_cpu_s "$c_lg"
bench_result cluster.redis_cpu_s "$c_redis"
bench_result cluster.redis_eval_ms "$(awk -v a="$e0" -v b="$e_up" 'BEGIN { printf "%.1f", (b - a) / 1000 }')"
bench_result cluster.claims "$claims"
bench_result cluster.moved "$moved"
# claims per second: over the time the directory took to list them all, and
# the best 1 s window of the "up" events
rate=$(awk -v c="$claims" -v t="${t_full:-$t_up}" 'BEGIN { printf "%.0f", c / t }')
bench_result cluster.claims_per_s "$rate"
peak=$(awk -v t0="$t_kill" '$2 == "up" && NF == 5 && $1 >= t0 { t[++n] = $1 }
    END { j = 1; for (i = 1; i <= n; i++) { while (t[i] - t[j] >= 1) j++; if (i - j + 1 > best) best = i - j + 1 }
	print best + 0 }' "$EVENTS")
bench_result cluster.claims_peak_per_s "$peak"
read -r _ _ n2 n3 <<<"$(dir_sample)"
bench_result cluster.after_relay2 "$n2"
bench_result cluster.after_relay3 "$n3"
bench_result cluster.listen_drops "$(( $(listen_drops) - drops0 ))"
# epochs: 1 = the ramp, 2 = moved once; more = claimed again
log "devices by epoch: $(rcli HVALS simtun:epoch | sort -n | uniq -c | awk '{ printf "epoch %s: %s; ", $2, $1 }')"
log "storm: all $N up ${t_up} s after the kill; relay$DEAD's $on1 devices out of its entries ${t_gone:-never} s, all $moved listed on relay2/3 ${t_full:-never} s, relay$DEAD reaped ${t_lease:-never} s"
log "storm: $claims claims ($ups up events; $rate/s, best 1 s $peak); CPU relay2 $c_r2 s + relay3 $c_r3 s, redis $c_redis s ($(awk -v a="$e0" -v b="$e_up" 'BEGIN { printf "%.1f", (b - a) / 1000 }') ms in EVAL), loadgen $c_lg s; now $n2 / $n3 on relay2 / relay3; $(( $(listen_drops) - drops0 )) connections dropped at their listeners (backlog)"
log "loadgen holds $(ls "/proc/$LG_PID/fd" | wc -l) fds for $N devices; relay logs: $(cat "$T/relay2.log" "$T/relay3.log" | grep -c 'taken over') takeovers, $(cat "$T/relay2.log" "$T/relay3.log" | grep -c 'closed before authentication') connections closed before authentication"
kill -TERM "$LG_PID" 2>/dev/null
for p in $(ns_pids_named "$NS_REDIS" redis-cli); do kill "$p" 2>/dev/null; done
exit 0
