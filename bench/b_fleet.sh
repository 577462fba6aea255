#!/bin/bash
# bench/b_fleet.sh KIND N: relay memory per idle device, handshake rate, and the
# reconnect storm after a relay SIGKILL, with N devices simulated by
# bench/loadgen (one process, N libssh sessions, each its own ed25519 key and
# its own port 20000+i, from one address 198.18.0.5 in a "fleet" namespace).
#
# Relay settings (both kinds): keepalive 15 s x 3, max_startups = N (sshd:
# MaxStartups N; override with MAXSTARTUPS=), and for simtun-relay penalty_exempt = the fleet address
# (many SIMs behind one carrier NAT address look like this; without it the
# per-source cap of 10 unauthenticated connections would throttle the fleet).
# Ramp: at most 256 handshakes in flight.  Storm: the relay is SIGKILLed (for
# OpenSSH every sshd process: listener and sessions), restarted 2 s later
# (RestartSec=2s in systemd/simtun-relay.service); the devices reconnect like
# simtun-agent (at once, then backoff 1..120 s with jitter); time from the
# restart until all N hold their forward again.
# Results: fleet.KIND.N.{base_rss,base_pss,rss,pss,keys_pss,rate,ramp_s,storm_s,storm_up}
. "$(dirname "$0")/../tests/integration/lib.sh"
. "$(dirname "$0")/../tests/integration/lib_agent.sh"
. "$(dirname "$0")/lib_bench.sh"

KIND=$1 N=$2
STORM_CAP=${STORM_CAP:-120}
MAXSTARTUPS=${MAXSTARTUPS:-$N}
RAMP_CAP=${RAMP_CAP:-240}
FLEET_ADDR=198.18.0.5
NS_FLEET=${ST_ID}f
RELAY_KIND=$KIND
[ -x "$BENCH_BIN/loadgen" ] || fail "$BENCH_BIN/loadgen not built"
netns_setup
netns_new "$NS_FLEET"
inet_attach "$NS_FLEET" "$FLEET_ADDR"
# the fleet holds N sockets, the relay 2N (session + listener)
nsx "$NS_FLEET" sysctl -qw net.ipv4.ip_local_port_range="1024 65000"

LG_OUT=$T/loadgen.out
ip netns exec "$NS_FLEET" "$BENCH_BIN/loadgen" -n "$N" -H "$RELAY_ADDR" -p "$RELAY_PORT" \
    -b 20000 -u root -a "$T/lg" -c 256 -K 30 -T 5 >"$LG_OUT" 2>"$T/loadgen.err" &
LG_PID=$!
ST_DAEMONS+=("$LG_PID")
wait_until 120 grep -q ' KEYS ' "$LG_OUT" || fail "loadgen did not write its keys"
log "loadgen: $(grep ' KEYS ' "$LG_OUT")"

relay_up() {
	if [ "$KIND" = simtun ]; then
		bench_start_simtun_relay "authorized_keys=$1" max_startups=$MAXSTARTUPS \
		    "penalty_exempt=$FLEET_ADDR" keepalive_interval=15 \
		    keepalive_count_max=3
	else
		cp "$1" "$T/relay/authorized_keys.openssh"
		start_openssh_relay keepalive_interval=15 keepalive_count_max=3 \
		    max_startups=$MAXSTARTUPS
	fi
}

relay_mem() {
	if [ "$KIND" = simtun ]; then
		proc_mem "$RELAY_PID"
	else
		# shellcheck disable=SC2046
		proc_mem $(ns_pids_named "$NS_RELAY" sshd)
	fi
}

# relay_cpu: CPU seconds the relay has used (sshd: every sshd, reaped children too).
relay_cpu() {
	if [ "$KIND" = simtun ]; then
		proc_cpu "$RELAY_PID"
	else
		# shellcheck disable=SC2046
		proc_cpu $(ns_pids_named "$NS_RELAY" sshd)
	fi
}

relay_kill() {
	if [ "$KIND" = simtun ]; then
		kill_relay
	else
		kill_ns_procs "$NS_RELAY" sshd
		RELAY_PID=
	fi
	wait_until 10 eval '[ -z "$(ns_pids_named "$NS_RELAY" sshd)$(ns_pids_named "$NS_RELAY" simtun-relay)" ]'
}

# allup_count: how many times loadgen reported all N up.
allup_count() { grep -c ' ALLUP ' "$LG_OUT"; }

if [ "$KIND" = simtun ]; then
	# what the key table itself costs: the same relay with no keys
	: >"$T/empty_keys"
	relay_up "$T/empty_keys"
	sleep 1
	read -r _ empty_pss <<<"$(relay_mem)"
	relay_kill
fi
relay_up "$T/lg.$KIND"
sleep 1
read -r base_rss base_pss <<<"$(relay_mem)"
bench_result "fleet.$KIND.$N.base_rss" "$base_rss"
bench_result "fleet.$KIND.$N.base_pss" "$base_pss"
[ "$KIND" = simtun ] && bench_result "fleet.$KIND.$N.keys_pss" "$((base_pss - empty_pss))"
log "relay idle with $N keys: RSS $base_rss kB, PSS $base_pss kB"

c_relay0=$(relay_cpu) c_lg0=$(proc_cpu "$LG_PID")
kill -USR1 "$LG_PID"
# BENCH_PROFILE=DIR: perf record the relay (call graphs) through the ramp
if [ -n "${BENCH_PROFILE:-}" ] && [ "$KIND" = simtun ]; then
	perf record -q -g -p "$RELAY_PID" -o "$BENCH_PROFILE/perf.ramp.$N.data" -- sleep 20 >/dev/null 2>&1 &
fi
if ! wait_until "$RAMP_CAP" eval '[ "$(allup_count)" -ge 1 ] || ! kill -0 $LG_PID'; then
	st=$(grep ' STAT ' "$LG_OUT" | tail -1)
	log "ramp: not all up after $RAMP_CAP s: $st"
	up=$(sed -n 's/.* up=\([0-9]*\).*/\1/p' <<<"$st")
	bench_result "fleet.$KIND.$N.ramp_up" "${up:-0}"
	bench_result "fleet.$KIND.$N.rate" "$(awk -v u="${up:-0}" -v c="$RAMP_CAP" 'BEGIN { printf "%.0f", u / c }')"
	exit 0
fi
kill -0 "$LG_PID" 2>/dev/null || fail "loadgen died: $(tail -3 "$T/loadgen.err")"
ramp=$(grep ' ALLUP ' "$LG_OUT" | head -1 | awk '{ print $4 }')
bench_result "fleet.$KIND.$N.ramp_s" "$ramp"
bench_result "fleet.$KIND.$N.rate" "$(awk -v n="$N" -v r="$ramp" 'BEGIN { printf "%.0f", n / r }')"
log "ramp: $N devices up in $ramp s"
c_relay=$(fsub "$(relay_cpu)" "$c_relay0") c_lg=$(fsub "$(proc_cpu "$LG_PID")" "$c_lg0")
bench_result "fleet.$KIND.$N.ramp_relay_cpu_ms" "$(awk -v c="$c_relay" -v n="$N" 'BEGIN { printf "%.2f", c * 1000 / n }')"
bench_result "fleet.$KIND.$N.ramp_gen_cpu_ms" "$(awk -v c="$c_lg" -v n="$N" 'BEGIN { printf "%.2f", c * 1000 / n }')"
log "ramp CPU per handshake: relay $(awk -v c="$c_relay" -v n="$N" 'BEGIN { printf "%.2f", c * 1000 / n }') ms, generator $(awk -v c="$c_lg" -v n="$N" 'BEGIN { printf "%.2f", c * 1000 / n }') ms"
sleep 6		# idle; loadgen counts sessions up >= 5 s as stable
read -r rss pss <<<"$(relay_mem)"
bench_result "fleet.$KIND.$N.rss" "$rss"
bench_result "fleet.$KIND.$N.pss" "$pss"
log "relay with $N idle devices: RSS $rss kB, PSS $pss kB ($(( (pss - base_pss) * 1024 / N )) B/device)"

# reconnect storm
relay_kill
log "relay SIGKILLed with $N devices"
sleep 2
c_lg0=$(proc_cpu "$LG_PID")
t_restart=$(now)
relay_up "$T/lg.$KIND"
bench_result "fleet.$KIND.$N.restart_listen_s" "$(elapsed "$t_restart")"
log "relay restarted"
if [ -n "${BENCH_PROFILE:-}" ] && [ "$KIND" = simtun ]; then
	perf record -q -g -p "$RELAY_PID" -o "$BENCH_PROFILE/perf.storm.$N.data" -- sleep 20 >/dev/null 2>&1 &
fi
if wait_until "$STORM_CAP" eval '[ "$(allup_count)" -ge 2 ]'; then
	t_all=$(grep ' ALLUP ' "$LG_OUT" | sed -n 2p | awk '{ print $1 }')
	s=$(fsub "$t_all" "$t_restart")
	bench_result "fleet.$KIND.$N.storm_s" "$s"
	log "storm: all $N back $s s after the restart"
	c_relay=$(relay_cpu) c_lg=$(fsub "$(proc_cpu "$LG_PID")" "$c_lg0")
	bench_result "fleet.$KIND.$N.storm_relay_cpu_s" "$c_relay"
	bench_result "fleet.$KIND.$N.storm_gen_cpu_s" "$c_lg"
	log "storm CPU: relay $c_relay s, generator $c_lg s (since the restart)"
else
	st=$(grep ' STAT ' "$LG_OUT" | tail -1)
	up=$(sed -n 's/.* up=\([0-9]*\).*/\1/p' <<<"$st")
	bench_result "fleet.$KIND.$N.storm_s" cap
	bench_result "fleet.$KIND.$N.storm_up" "${up:-0}"
	log "storm: not all back after $STORM_CAP s: $st"
fi
grep -c 'refused connection' "$RELAY_LOG" 2>/dev/null | sed 's/^/relay refusals: /'
kill -TERM "$LG_PID" 2>/dev/null
exit 0
