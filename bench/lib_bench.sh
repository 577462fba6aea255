# bench/lib_bench.sh: bench-only helpers; source after tests/integration/lib.sh
# (and lib_agent.sh).  Nothing here changes the test bed: it adds the
# OpenSSH+autossh device side, a relay started with any relay.conf keys,
# memory and wakeup probes, and the laptop's retry loop.
#
# Results: bench_result KEY VALUE appends "KEY VALUE" to $BENCH_RESULTS.

: "${BENCH_RESULTS:=/dev/stdout}"
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${BENCH_BIN:=$REPO_ROOT/build/bench}"
AUTOSSH_PID=
AUTOSSH_LOG=

# bench_result KEY VALUE: one result line for bench/run.
bench_result() { printf '%s %s\n' "$1" "$2" >>"$BENCH_RESULTS"; }

# bench_agent_defaults: the documented agent.conf defaults (not the tests' fast ones).
bench_agent_defaults() {
	AGENT_KA_INTERVAL=30
	AGENT_KA_COUNT=3
	AGENT_BACKOFF_INITIAL=1
	AGENT_BACKOFF_MAX=120
}

# bench_autossh [ssh options...] -- SPEC...: autossh -M 0 on the device with key dev1,
# one -R per SPEC (default 4649:127.0.0.1:22).  AUTOSSH_GATETIME=0 as in the usual
# systemd units (retry even when the first ssh fails), everything else autossh's
# defaults (its own backoff up to AUTOSSH_POLL=600 s).  Sets AUTOSSH_PID, AUTOSSH_LOG.
bench_autossh() {
	local opts=() specs=() r a
	while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
	[ "${1:-}" = -- ] && shift
	specs=("$@")
	[ ${#specs[@]} -eq 0 ] && specs=("$DEVICE_PORT:127.0.0.1:22")
	for a in "${specs[@]}"; do r+=" -R $a"; done
	chmod 600 "$T/keys/dev1"
	AUTOSSH_LOG=$T/autossh.$DEVICE_GEN.log
	# shellcheck disable=SC2086
	AUTOSSH_GATETIME=0 AUTOSSH_LOGFILE=$AUTOSSH_LOG AUTOSSH_LOGLEVEL=7 \
	    ip netns exec "$NS_DEVICE" autossh -M 0 -F /dev/null -N \
	    -p "$RELAY_PORT" -i "$T/keys/dev1" \
	    -o IdentitiesOnly=yes -o BatchMode=yes \
	    -o HostKeyAlias=relay -o UserKnownHostsFile="$T/relay_known_hosts" \
	    -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes \
	    -o ConnectTimeout=10 -o ExitOnForwardFailure=yes \
	    "${opts[@]}" $r "root@$RELAY_ADDR" >/dev/null 2>&1 &
	AUTOSSH_PID=$!
	disown
	log "autossh pid $AUTOSSH_PID in $NS_DEVICE"
}

# autossh_child: pid of the ssh autossh runs now (empty if none).
autossh_child() { pgrep -P "$AUTOSSH_PID" -x ssh 2>/dev/null | head -1; }

# bench_start_simtun_relay [key = value ...]: simtun-relay without -v (a production
# log level), any relay.conf keys; defaults as start_simtun_relay.  Sets RELAY_PID.
bench_start_simtun_relay() {
	local conf=$T/relay/relay.conf kv k v seen=" "
	{
		echo "[relay]"
		for kv in "$@"; do
			k=${kv%%=*}; k=${k// /}; v=${kv#*=}; v=${v# }
			echo "$k = $v"; seen="$seen$k "
		done
		for kv in "listen=0.0.0.0:$RELAY_PORT" \
		    "host_key=$T/relay/ssh_host_ed25519_key" \
		    "authorized_keys=$T/relay/authorized_keys" \
		    "forward_address=0.0.0.0" "keepalive_interval=15" \
		    "keepalive_count_max=3" "max_startups=64" \
		    "login_grace_time=20" "control_socket=$T/relay/relay.sock" \
		    "state_db=$T/relay/state.db"; do
			k=${kv%%=*}
			case $seen in *" $k "*) continue;; esac
			echo "$k = ${kv#*=}"
		done
	} >"$conf"
	RELAY_LOG=$T/relay.log
	register_log "$RELAY_LOG"
	ip netns exec "$NS_RELAY" "$SIMTUN_BIN/simtun-relay" -c "$conf" \
	    2>>"$RELAY_LOG" &
	RELAY_PID=$!
	disown
	ST_DAEMONS+=("$RELAY_PID")
	wait_until 30 port_listening "$NS_RELAY" "$RELAY_PORT" || {
		kill -0 "$RELAY_PID" 2>/dev/null || fail "simtun-relay exited at start: $(tail -3 "$RELAY_LOG")"
		fail "simtun-relay not listening on :$RELAY_PORT after 30 s"
	}
}

# kill_ns_procs NS COMM: SIGKILL every process named COMM in NS.
kill_ns_procs() {
	local p
	for p in $(ip netns pids "$1" 2>/dev/null); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ] && kill -KILL "$p" 2>/dev/null
	done
	return 0
}

# proc_mem PID...: "RSS_KB PSS_KB" summed over PIDs (smaps_rollup).
proc_mem() {
	local p
	for p in "$@"; do cat "/proc/$p/smaps_rollup" 2>/dev/null; done |
	    awk '/^Rss:/ { r += $2 } /^Pss:/ { p += $2 } END { printf "%d %d\n", r, p }'
}

# ns_pids_named NS COMM: pids of processes named COMM in NS.
ns_pids_named() {
	local p
	for p in $(ip netns pids "$1" 2>/dev/null); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ] && echo "$p"
	done
	return 0
}

# proc_switches PID...: voluntary + involuntary context switches, summed.
proc_switches() {
	local p
	for p in "$@"; do cat "/proc/$p/status" 2>/dev/null; done |
	    awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ { s += $2 } END { print s + 0 }'
}

# ns_ip_count NS IF PORT: count, from now on, the IP bytes in and out of IF
# in NS of the TCP connection(s) to PORT (nft counters: IP and TCP headers
# and payload; no link-layer header, ARP or other flows: the tunnel's own
# cost on a cellular link); ns_ip_bytes NS reads in+out bytes.
ns_ip_count() {
	nsx "$1" nft -f - <<-EOF
	table inet ipacct {
		counter ip_in { }
		counter ip_out { }
		chain in { type filter hook input priority 0; iifname "$2" tcp sport $3 counter name ip_in; }
		chain out { type filter hook output priority 0; oifname "$2" tcp dport $3 counter name ip_out; }
	}
	EOF
}
ns_ip_bytes() {
	nsx "$1" nft list counters table inet ipacct |
	    awk '/bytes/ { for (i = 1; i < NF; i++) if ($i == "bytes") n += $(i + 1) } END { print n + 0 }'
}

# ns_if_bytes NS IF: rx+tx bytes of interface IF in NS (/proc/net/dev).
ns_if_bytes() {
	nsx "$1" cat /proc/net/dev | awk -v i="$2:" '$1 == i { print $2 + $10 }'
}

# fsub A B: A - B with 3 decimals.
fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }

# laptop_retry T0 INTERVAL PHASE CAP ATTEMPT_TIMEOUT: the laptop tries a login
# through the relay at T0+PHASE and then every INTERVAL seconds (each attempt in
# the background, bounded by ATTEMPT_TIMEOUT), and prints the seconds from T0
# to the first successful login (checked to land on the current device), or
# "cap" if none succeeded by T0+CAP.
laptop_retry() {
	local t0=$1 iv=$2 ph=$3 cap=$4 at=$5 next n=0 succ=$T/laptop_succ.$RANDOM now_s
	local ct
	ct=$(awk -v a="$at" 'BEGIN { c = a - 1; if (c < 1) c = 1; printf "%d", c }')
	: >"$succ"
	next=$(awk -v a="$t0" -v p="$ph" 'BEGIN { printf "%.3f", a + p }')
	while :; do
		now_s=$(now)
		if [ -s "$succ" ]; then break; fi
		awk -v n="$now_s" -v a="$t0" -v c="$cap" 'BEGIN { exit !(n - a > c) }' && break
		if awk -v n="$now_s" -v x="$next" 'BEGIN { exit !(n >= x) }'; then
			n=$((n + 1))
			( device_reachable -c "$ct" -T "$at" && now >>"$succ" ) &
			next=$(awk -v x="$next" -v i="$iv" 'BEGIN { printf "%.3f", x + i }')
		fi
		sleep 0.05
	done
	if [ -s "$succ" ]; then
		fsub "$(sort -n "$succ" | head -1)" "$t0"; echo
	else
		echo cap
	fi
	wait 2>/dev/null
	rm -f "$succ"
}

# bench_save_logs: copy this bed's logs to $BENCH_LOGDIR/<script>.<ST_ID>/ (if set).
bench_save_logs() {
	[ -n "${BENCH_LOGDIR:-}" ] && [ -d "$T" ] || return 0
	local d=$BENCH_LOGDIR/$TEST_NAME.$ST_ID
	mkdir -p "$d" && find "$T" -maxdepth 2 \( -name '*.log' -o -name '*.out' -o -name '*.err' -o -name '*.conf' -o -name 'sshd_config' \) -exec cp {} "$d/" \; 2>/dev/null
	return 0
}
trap 'rc=$?; bench_save_logs; _st_exit $rc' EXIT

# proc_cpu PID...: CPU seconds (user+sys, with reaped children) summed over PIDs.
proc_cpu() {
	local p tck
	tck=$(getconf CLK_TCK)
	for p in "$@"; do
		# fields after the ")" of comm: utime is field 14 overall
		sed 's/.*) //' "/proc/$p/stat" 2>/dev/null
	done | awk -v t="$tck" '{ s += $12 + $13 + $14 + $15 } END { printf "%.3f", s / t }'
}
