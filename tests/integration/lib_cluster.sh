# tests/integration/lib_cluster.sh: several simtun-relays sharing a Redis
# directory (issue 14); source after lib.sh and lib_agent.sh.
#
#   laptop 198.18.0.2 (operators: ssh -F $CL_SSH_CONFIG -J relayN DEVICE)
#      |
#   inet br0 --+-- relay1 ns ($NS_RELAY)  198.18.0.1:2222   relay_id relay1
#              +-- relay2 ns (${ST_ID}r2) 198.18.0.12:2222  relay_id relay2
#              +-- relay3 ns (${ST_ID}r3) 198.18.0.13:2222  relay_id relay3
#              +-- redis ns  (${ST_ID}k)  198.18.0.20: master :6379,
#              |                          replica :6380, Sentinels :26379-26381
#              +-- carrier (CGNAT) --+-- device ns (lib.sh: dev1, sshd
#                                    |   127.0.0.1:22, reboot_device)
#                                    +-- fleet ns ($NS_FLEET) 100.64.250.2:
#                                        the pi-NN agents, one sshd on :22,
#                                        one "who am I" service on :7
#
# pi-NN's forwards are pi-NN:22 -> 127.0.1.NN:22 and pi-NN:7 -> 127.0.1.NN:7:
# a login sees 127.0.1.NN as the third word of $SSH_CONNECTION, and the
# service on :7 answers the address it was reached at, so both tell which
# device the relays routed to.  Every relay runs in its own namespace with
# its own relay.conf, control socket, state_db, log and metrics
# (127.0.0.1:9100 in its namespace); all share the host key and
# authorized_keys, as a cluster must.  Devices use named forwards only.
# The operators' ssh_config keeps one multiplexed session per relay
# (ControlMaster), so a jump costs a channel, not a login.
#
# cluster_setup             the bed (after the test's own require lines)
# cluster_redis_start [-s]  master + replica (+ 3 Sentinels with -s)
# cluster_relays_start      relays 1-3 with [cluster] (CL_DIRECTORY: redis|sentinel)
# fleet_add I...            keys pi-I... with their named forwards
# fleet_agents_start "I ACTIVE RELAY..."...   agents pi-I, relays in that order
# cluster_agent_start NAME NS LOCAL ACTIVE RELAY...   one agent anywhere
# cl_id N DEVICE            ssh -W DEVICE:7 relayN (what ProxyJump does): 0 if
#                           it reached DEVICE's "who am I" service
# cl_tunnels N I...         an operator session to relay N forwarding to pi-I:7
# cl_id_all "N..." OUT DEVICE...  each DEVICE through those, OUT lists the failures
# cl_reach N DEVICE         ssh -J relayN DEVICE: a login that lands on DEVICE
# cl_dev N DEVICE           "state relay" of DEVICE in relay N's devices --json
#
# Daemons start with `ip netns exec ... &`, never through the nsx function:
# $! must be the daemon itself (a SIGKILL test kills that pid), not a subshell.

NS_RELAYS=([1]="$NS_RELAY" [2]="${ST_ID}r2" [3]="${ST_ID}r3")
CL_ADDR=([1]="$RELAY_ADDR" [2]=198.18.0.12 [3]=198.18.0.13)
CL_PID=()
NS_REDIS=${ST_ID}k
REDIS_ADDR=198.18.0.20
REDIS_MASTER_PORT=6379			# the first master (Sentinel may move it)
REDIS_REPLICA_PORT=6380
SENTINEL_PORTS=(26379 26380 26381)
SENTINEL_MASTER=simtun
declare -A REDIS_PID=()			# master|replica|sentinel1..3 -> pid
NS_FLEET=${ST_ID}f
FLEET_ADDR=100.64.250.2
: "${CL_DIRECTORY:=redis}"		# redis (one master) | sentinel
: "${CL_LEASE:=4}"			# lease_time of the relays (s)
: "${CL_HOLD:=30}"			# hold_time of the relays (s)
: "${CL_BACKOFF_MAX:=2}"		# the agents' backoff_max (s)
declare -A AG_PID=() AG_LOG=()
CL_SSH_CONFIG=$T/ops_ssh_config

# cluster_require: what every cluster test needs.
cluster_require() {
	[ "$RELAY_KIND" = simtun ] || skip "a cluster of relays is simtun-relay's"
	require_relay
	require_agent
	require_cmds redis-server redis-sentinel redis-cli jq socat
}

# --- the bed --------------------------------------------------------------

# cluster_setup: lib.sh's bed, relay2 and relay3 namespaces, the redis
# namespace, the fleet namespace with its sshd, the operator key ops and
# the operators' ssh_config.
cluster_setup() {
	local i
	netns_setup
	for i in 2 3; do
		netns_new "${NS_RELAYS[$i]}"
		inet_attach "${NS_RELAYS[$i]}" "${CL_ADDR[$i]}"
	done
	for i in 1 2 3; do mkdir -p "$T/relay$i"; done
	netns_new "$NS_REDIS"
	inet_attach "$NS_REDIS" "$REDIS_ADDR"
	mkdir -p "$T/redis" "$T/agents"
	netns_new "$NS_FLEET"
	netns_link "$NS_CARRIER" fl0 100.64.250.1/24 "$NS_FLEET" eth0 "$FLEET_ADDR/24"
	ip -n "$NS_FLEET" route add default via 100.64.250.1
	_fleet_sshd
	ip netns exec "$NS_FLEET" socat TCP-LISTEN:7,fork,reuseaddr,backlog=256 SYSTEM:'echo $SOCAT_SOCKADDR' \
	    2>>"$T/fleet_whoami.log" &
	disown
	wait_until 10 port_listening "$NS_FLEET" 7 || fail "fleet who-am-I service did not start"
	# dev1 (lib.sh's device) serves the named forward dev1:22
	sed -i 's/permitlisten="4649"/permitlisten="dev1:22"/' "$T/relay/authorized_keys"
	add_device_key -o 'permitopen="pi-*:22",permitopen="pi-*:7",permitopen="dev1:22"' ops
	_cl_ssh_config
}

# _fleet_sshd: the fleet's sshd on 0.0.0.0:22: each pi-NN's forward reaches
# it at 127.0.1.NN, which a login sees as the third word of $SSH_CONNECTION.
_fleet_sshd() {
	sed -e 's/^ListenAddress .*/ListenAddress 0.0.0.0/' \
	    -e 's/^MaxStartups.*//' "$T/device/sshd_config" >"$T/fleet_sshd_config"
	# SHLVL=1: the login's bash is not a top-level shell, so it skips
	# ~/.bashrc (Debian's bash reads it for commands run by sshd)
	printf 'MaxStartups 60:30:100\nSetEnv SHLVL=1\n' >>"$T/fleet_sshd_config"
	ip netns exec "$NS_FLEET" /usr/sbin/sshd -D -e -f "$T/fleet_sshd_config" \
	    2>>"$T/fleet_sshd.log" &
	disown
	wait_until 10 port_listening "$NS_FLEET" 22 ||
	    fail "fleet sshd did not start (see $T/fleet_sshd.log)"
}

# _cl_ssh_config: the operators' ~/.ssh/config: relay1..3 as ops (one
# multiplexed session per relay, so a jump costs a channel, not a login),
# and every device by name, logged in as root with the laptop key.
_cl_ssh_config() {
	local i
	{
		for i in 1 2 3; do
			printf 'Host relay%s\n\tHostName %s\n' "$i" "${CL_ADDR[$i]}"
		done
		cat <<-EOF
		Host relay*
		 	User ops
		 	Port $RELAY_PORT
		 	IdentityFile $T/keys/ops
		 	HostKeyAlias relay
		 	UserKnownHostsFile $T/relay_known_hosts
		 	ControlMaster auto
		 	ControlPath $T/cm-%n
		 	ControlPersist 300
		Host pi-* dev1
		 	User root
		 	IdentityFile $T/keys/laptop
		 	HostKeyAlias device
		 	UserKnownHostsFile $T/laptop_known_hosts
		EOF
		ssh_config_strict
	} >"$CL_SSH_CONFIG"
}

# --- Redis and Sentinel ---------------------------------------------------

# rcli PORT ARGS...: redis-cli against $REDIS_ADDR:PORT from the redis ns.
rcli() {
	local p=$1; shift
	timeout 5 ip netns exec "$NS_REDIS" redis-cli -h "$REDIS_ADDR" -p "$p" "$@" 2>/dev/null
}

# redis_start NAME PORT [CONFIG LINE...]: redis-server NAME on PORT (the config
# file is written once and kept, so a restart finds what Sentinel rewrote).
redis_start() {
	local name=$1 port=$2 conf=$T/redis/$1.conf l; shift 2
	if [ ! -f "$conf" ]; then
		{
			echo "bind $REDIS_ADDR"
			echo "port $port"
			echo "protected-mode no"
			echo 'save ""'
			echo "appendonly no"
			echo "dir $T/redis"
			echo "dbfilename $name.rdb"
			echo "logfile $T/redis/$name.log"
			echo "daemonize no"
			echo "repl-diskless-sync-delay 0"
			for l in "$@"; do echo "$l"; done
		} >"$conf"
	fi
	ip netns exec "$NS_REDIS" redis-server "$conf" >>"$T/redis/$name.log" 2>&1 &
	REDIS_PID[$name]=$!
	disown
	ST_DAEMONS+=("${REDIS_PID[$name]}")
	wait_until 10 port_listening "$NS_REDIS" "$port" ||
	    fail "redis-server $name not listening on :$port (see $T/redis/$name.log)"
}

# sentinel_start I: redis-sentinel I (1-3) on ${SENTINEL_PORTS[I-1]}, watching the
# master $SENTINEL_MASTER: down after 1 s, failover timeout 3 s.
sentinel_start() {
	local i=$1 port=${SENTINEL_PORTS[$(($1 - 1))]} conf=$T/redis/sentinel$1.conf
	if [ ! -f "$conf" ]; then
		cat >"$conf" <<-EOF
		bind $REDIS_ADDR
		port $port
		protected-mode no
		dir $T/redis
		logfile $T/redis/sentinel$i.log
		daemonize no
		sentinel monitor $SENTINEL_MASTER $REDIS_ADDR $REDIS_MASTER_PORT 2
		sentinel down-after-milliseconds $SENTINEL_MASTER 1000
		sentinel failover-timeout $SENTINEL_MASTER 3000
		sentinel parallel-syncs $SENTINEL_MASTER 1
		EOF
	fi
	ip netns exec "$NS_REDIS" redis-sentinel "$conf" >>"$T/redis/sentinel$i.log" 2>&1 &
	REDIS_PID[sentinel$i]=$!
	disown
	ST_DAEMONS+=("${REDIS_PID[sentinel$i]}")
	wait_until 10 port_listening "$NS_REDIS" "$port" ||
	    fail "redis-sentinel $i not listening on :$port (see $T/redis/sentinel$i.log)"
}

# sentinel_fields I FIELD...: FIELDs of `SENTINEL MASTER` as Sentinel I sees them, one line.
sentinel_fields() {
	local i=$1; shift
	rcli "${SENTINEL_PORTS[$((i - 1))]}" sentinel master "$SENTINEL_MASTER" |
	    awk -v f="$*" 'BEGIN { n = split(f, want, " ") } k != "" { v[k] = $0; k = ""; next }
	    { k = $0 } END { for (j = 1; j <= n; j++) printf "%s%s", v[want[j]], j < n ? " " : "\n" }'
}

# sentinel_master_port I: the master's port as Sentinel I names it.
sentinel_master_port() { sentinel_fields "$1" port; }

# redis_role PORT: master | slave | (nothing when down).
redis_role() { rcli "$1" role | head -1; }

# redis_replicating MASTER_PORT REPLICA_PORT: the replica's link to the master is up.
redis_replicating() {
	rcli "$2" info replication | tr -d '\r' | grep -qx 'master_link_status:up' &&
	    rcli "$1" info replication | tr -d '\r' | grep -qx 'connected_slaves:1'
}

# sentinels_state: per Sentinel "master port, replicas, other Sentinels, flags".
sentinels_state() {
	local i
	for i in 1 2 3; do
		printf 'sentinel%s: %s; ' "$i" "$(sentinel_fields "$i" port num-slaves num-other-sentinels flags)"
	done
}

# sentinels_ready MASTER_PORT: every Sentinel names MASTER_PORT the master
# and knows the replica and the two other Sentinels (a failover needs them).
sentinels_ready() {
	local i
	for i in 1 2 3; do
		[ "$(sentinel_fields "$i" port num-slaves num-other-sentinels flags)" = "$1 1 2 master" ] ||
		    return 1
	done
}

# cluster_redis_start [-s]: master on :6379 and its replica on :6380, with -s
# also three Sentinels; waits until the replica (and the Sentinels) are in sync.
cluster_redis_start() {
	local t0; t0=$(now)
	redis_start master "$REDIS_MASTER_PORT"
	redis_start replica "$REDIS_REPLICA_PORT" "replicaof $REDIS_ADDR $REDIS_MASTER_PORT"
	wait_until 15 redis_replicating "$REDIS_MASTER_PORT" "$REDIS_REPLICA_PORT" ||
	    fail "redis replica not in sync with the master: $(rcli "$REDIS_REPLICA_PORT" info replication | tr -d '\r' | grep -E 'role|link')"
	if [ "${1:-}" = -s ]; then
		sentinel_start 1; sentinel_start 2; sentinel_start 3
		wait_until 20 sentinels_ready "$REDIS_MASTER_PORT" ||
		    fail "Sentinels not ready (port, replicas, other Sentinels, flags): $(sentinels_state)"
		log "redis master :$REDIS_MASTER_PORT, replica :$REDIS_REPLICA_PORT, 3 Sentinels agree ($(elapsed "$t0") s)"
	else
		log "redis master :$REDIS_MASTER_PORT, replica :$REDIS_REPLICA_PORT in sync ($(elapsed "$t0") s)"
	fi
}

# redis_kill NAME [SIG]: signal (default KILL) redis process NAME, wait until it is gone.
redis_kill() {
	local pid=${REDIS_PID[$1]:-}
	[ -n "$pid" ] || return 0
	kill "-${2:-KILL}" "$pid" 2>/dev/null
	wait_until 10 eval "! kill -0 $pid 2>/dev/null" || fail "redis $1 (pid $pid) did not exit"
	REDIS_PID[$1]=
}

# --- relays ---------------------------------------------------------------

# cl_directory_conf: the [cluster] lines that name the directory.
cl_directory_conf() {
	case $CL_DIRECTORY in
	redis) echo "redis = $REDIS_ADDR:$REDIS_MASTER_PORT";;
	sentinel)
		echo "sentinel = $REDIS_ADDR:${SENTINEL_PORTS[0]},$REDIS_ADDR:${SENTINEL_PORTS[1]},$REDIS_ADDR:${SENTINEL_PORTS[2]}"
		echo "sentinel_master = $SENTINEL_MASTER";;
	*) fail "CL_DIRECTORY=$CL_DIRECTORY";;
	esac
}

# cluster_relay_start N [key = value ...]: relay N in its namespace; the
# key = value lines go to [relay], then the [cluster] section.
cluster_relay_start() {
	_cl_relay_spawn "$@"
	_cl_relay_listening "$1"
}

# _cl_relay_spawn N [key = value ...]: write relay N's config, check it, start it.
_cl_relay_spawn() {
	require_relay
	local i=$1 conf=$T/relay$1/relay.conf kv; shift
	{
		cat <<-EOF
		[relay]
		listen = 0.0.0.0:$RELAY_PORT
		host_key = $T/relay/ssh_host_ed25519_key
		authorized_keys = $T/relay/authorized_keys
		forward_address = 0.0.0.0
		keepalive_interval = 15
		keepalive_count_max = 3
		max_startups = 64
		login_grace_time = 20
		control_socket = $T/relay$i/relay.sock
		state_db = $T/relay$i/state.db
		metrics_listen = 127.0.0.1:9100
		hold_time = $CL_HOLD
		EOF
		for kv in "$@"; do echo "$kv"; done
		echo
		echo "[cluster]"
		cl_directory_conf
		echo "relay_id = relay$i"
		echo "peer_address = ${CL_ADDR[$i]}:$RELAY_PORT"
		echo "lease_time = $CL_LEASE"
	} >"$conf"
	"$SIMTUN_BIN/simtun-relay" -n -c "$conf" >/dev/null 2>&1 ||
	    fail "relay$i: config rejected: $("$SIMTUN_BIN/simtun-relay" -n -c "$conf" 2>&1 | head -3)"
	register_log "$T/relay$i.log"
	echo "--- relay$i start $(date +%T.%N)" >>"$T/relay$i.log"
	ip netns exec "${NS_RELAYS[$i]}" "$SIMTUN_BIN/simtun-relay" -c "$conf" -v 2>>"$T/relay$i.log" &
	CL_PID[$i]=$!
	disown
	ST_DAEMONS+=("${CL_PID[$i]}")
}

# _cl_relay_listening N: wait until relay N listens.
_cl_relay_listening() {
	local i=$1
	wait_until 10 port_listening "${NS_RELAYS[$i]}" "$RELAY_PORT" || {
		kill -0 "${CL_PID[$i]}" 2>/dev/null || fail "relay$i exited at start: $(tail -3 "$T/relay$i.log")"
		fail "relay$i not listening on :$RELAY_PORT after 10 s"
	}
	[ "$i" = 1 ] && { RELAY_PID=${CL_PID[1]}; RELAY_LOG=$T/relay1.log; }
	log "relay$i pid ${CL_PID[$i]} on ${CL_ADDR[$i]}:$RELAY_PORT"
}

# cluster_relays_start [key = value ...]: relays 1-3, then wait until each has its directory.
cluster_relays_start() {
	local i
	for i in 1 2 3; do _cl_relay_spawn "$i" "$@"; done
	for i in 1 2 3; do _cl_relay_listening "$i"; done
	for i in 1 2 3; do
		wait_until 15 cl_redis_up_is "$i" 1 ||
		    fail "relay$i: simtun_cluster_redis_up not 1 after 15 s: $(cl_metrics "$i" | grep cluster)"
	done
}

# cl_alive N: relay N runs.
cl_alive() { [ -n "${CL_PID[$1]:-}" ] && kill -0 "${CL_PID[$1]}" 2>/dev/null; }

# cluster_relay_kill N: SIGKILL relay N (a crash: no goodbye to anyone).
cluster_relay_kill() {
	local pid=${CL_PID[$1]}
	kill -KILL "$pid" 2>/dev/null
	wait_until 5 eval "! kill -0 $pid 2>/dev/null" || fail "relay$1 survived SIGKILL"
	CL_PID[$1]=
}

# cl_ctl N ARGS...: simtunctl against relay N.
cl_ctl() { local i=$1; shift; timeout 10 "$SIMTUN_BIN/simtunctl" -s "$T/relay$i/relay.sock" "$@"; }

# cl_dev N DEVICE: "STATE RELAY_ID" of DEVICE in relay N's devices --json ("relay" null = none).
cl_dev() {
	cl_ctl "$1" devices --json 2>/dev/null |
	    jq -r --arg d "$2" '.devices[] | select(.device == $d) | "\(.state) \(.relay)"'
}

# cl_dev_is N DEVICE "STATE RELAY": relay N lists DEVICE so.
cl_dev_is() { [ "$(cl_dev "$1" "$2")" = "$3" ]; }

# cl_metrics N: relay N's /metrics text.
cl_metrics() {
	timeout 5 ip netns exec "${NS_RELAYS[$1]}" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9100 &&
	    printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3' 2>/dev/null
}

# cl_redis_up_is N 0|1: relay N's simtun_cluster_redis_up is that.
cl_redis_up_is() {
	[ "$(cl_metrics "$1" | awk '$1 == "simtun_cluster_redis_up" { print $2 }')" = "$2" ]
}

# cl_log_time N PATTERN: the time of day (s since midnight, ms) of the first
# line in relay N's log matching PATTERN (an awk regex), after its last start.
cl_log_time() {
	awk -v p="$2" '/^--- relay[0-9] start/ { t = "" } t == "" && $0 ~ p {
	    split($1, a, ":"); t = a[1] * 3600 + a[2] * 60 + a[3] } END { if (t != "") print t }' \
	    "$T/relay$1.log"
}

# tod: the time of day now in s, as the daemons' logs print it (HH:MM:SS.mmm).
tod() { date +%T.%N | awk -F: '{ printf "%.3f", $1 * 3600 + $2 * 60 + $3 }'; }

# --- devices --------------------------------------------------------------

# fleet_add I...: the keys of pi-I... (made in parallel), each allowed the
# named forwards pi-I:22 and pi-I:7; the relays read them at start or SIGHUP.
fleet_add() {
	local i n t k
	for i in "$@"; do
		printf -v n 'pi-%02d' "$i"
		[ -f "$T/keys/$n" ] || ssh-keygen -q -t ed25519 -N '' -C "$n" -f "$T/keys/$n" &
	done
	wait
	for i in "$@"; do
		printf -v n 'pi-%02d' "$i"
		[ -f "$T/keys/$n.pub" ] || fail "ssh-keygen $n"
		read -r t k _ <"$T/keys/$n.pub"
		echo "restrict,permitlisten=\"$n:22\",permitlisten=\"$n:7\" $t $k $n" >>"$T/relay/authorized_keys"
	done
}

# cluster_agent_conf NAME LOCAL ACTIVE RELAY...: $T/agents/NAME.conf: key NAME,
# forward NAME:22 -> LOCAL (and NAME:7 -> LOCAL's address:7 with CL_WHOAMI=1),
# relays_active ACTIVE, [relay relayN] in the given order.
cluster_agent_conf() {
	local name=$1 local=$2 active=$3 i fp; shift 3
	[ -n "${CL_FP:-}" ] || CL_FP=$(relay_fingerprint)
	fp=$CL_FP
	{
		cat <<-EOF
		[agent]
		identity = $T/keys/$name
		user = root
		keepalive_interval = $AGENT_KA_INTERVAL
		keepalive_count_max = $AGENT_KA_COUNT
		backoff_initial = 1
		backoff_max = $CL_BACKOFF_MAX
		control_socket = $T/agents/$name.sock
		EOF
		echo "relays_active = $active"
		for i in "$@"; do
			printf '\n[relay relay%s]\nhost = %s\nport = %s\nhost_key = %s\n' \
			    "$i" "${CL_ADDR[$i]}" "$RELAY_PORT" "$fp"
		done
		printf '\n[forward ssh]\nremote = %s:22\nlocal = %s\n' "$name" "$local"
		[ "${CL_WHOAMI:-}" = 1 ] &&
		    printf '\n[forward whoami]\nremote = %s:7\nlocal = %s:7\n' "$name" "${local%:*}"
	} >"$T/agents/$name.conf"
}

# cluster_agent_start NAME NS LOCAL ACTIVE RELAY...: write NAME's config (key
# $T/keys/NAME, forward NAME:22 -> LOCAL), check it with -n, start simtun-agent
# -v in NS; log $T/agents/NAME.log.
cluster_agent_start() {
	local name=$1 ns=$2 v; shift 2
	cluster_agent_conf "$name" "$@"
	v=$("$SIMTUN_BIN/simtun-agent" -n -c "$T/agents/$name.conf" 2>&1) ||
	    fail "$name: agent config rejected: $v"
	AG_LOG[$name]=$T/agents/$name.log
	register_log "${AG_LOG[$name]}"
	echo "--- agent start $(date +%T.%N)" >>"${AG_LOG[$name]}"
	ip netns exec "$ns" "$SIMTUN_BIN/simtun-agent" -v -c "$T/agents/$name.conf" \
	    2>>"${AG_LOG[$name]}" &
	AG_PID[$name]=$!
	disown
	ST_DAEMONS+=("${AG_PID[$name]}")
}

# fleet_name I: pi-01 .. pi-99.
fleet_name() { printf 'pi-%02d' "$1"; }

# fleet_agents_start "I ACTIVE RELAY..."...: agents pi-I in the fleet ns, each
# with forwards pi-I:22 -> 127.0.1.I:22 and pi-I:7 -> 127.0.1.I:7, all started
# from one shell in the fleet ns (a fleet starts in a fraction of the time);
# only the fleet's first config is checked with -n (cl_agents_alive tells
# why one exited).
fleet_agents_start() {
	local spec n pid names=() i
	for spec in "$@"; do
		# shellcheck disable=SC2086
		set -- $spec
		i=$1; shift
		printf -v n 'pi-%02d' "$i"
		CL_WHOAMI=1 cluster_agent_conf "$n" "127.0.1.$i:22" "$@"
		if [ -z "${_CL_FLEET_CHECKED:-}" ]; then
			"$SIMTUN_BIN/simtun-agent" -n -c "$T/agents/$n.conf" >/dev/null 2>&1 ||
			    fail "$n: agent config rejected: $("$SIMTUN_BIN/simtun-agent" -n -c "$T/agents/$n.conf" 2>&1)"
			_CL_FLEET_CHECKED=1
		fi
		AG_LOG[$n]=$T/agents/$n.log
		register_log "${AG_LOG[$n]}"
		names+=("$n")
	done
	while read -r n pid; do
		AG_PID[$n]=$pid
		ST_DAEMONS+=("$pid")
	done < <(ip netns exec "$NS_FLEET" bash -c '
	    bin=$1 dir=$2; shift 2
	    for n in "$@"; do
		echo "--- agent start $(date +%T.%N)" >>"$dir/$n.log"
		"$bin" -v -c "$dir/$n.conf" 2>>"$dir/$n.log" </dev/null >/dev/null &
		echo "$n $!"
	    done' fleet_agents_start "$SIMTUN_BIN/simtun-agent" "$T/agents" "${names[@]}")
	[ "${#AG_PID[@]}" -ge "${#names[@]}" ] || fail "fleet_agents_start: pids missing"
}

# ag_connected_after NAME TOD: "DELAY relayN" of agent NAME's first "connected
# to relayN" (or to relayN's address) logged at or after TOD (see tod), DELAY
# in s since TOD.
ag_connected_after() {
	awk -v t="$2" -v a1="${CL_ADDR[1]}" -v a2="${CL_ADDR[2]}" -v a3="${CL_ADDR[3]}" '
	    { split($1, a, ":"); s = a[1] * 3600 + a[2] * 60 + a[3] }
	    s >= t && / connected to / {
		sub(/.* connected to /, ""); r = $1; sub(/:[0-9]*$/, "", r)
		if (r == a1) r = "relay1"; else if (r == a2) r = "relay2"; else if (r == a3) r = "relay3"
		printf "%.3f %s\n", s - t, r; exit }' "${AG_LOG[$1]}"
}

# cl_agents_alive: fail naming the first agent that exited (and its -n verdict).
cl_agents_alive() {
	local a
	for a in "${!AG_PID[@]}"; do
		[ -n "${AG_PID[$a]}" ] || continue
		kill -0 "${AG_PID[$a]}" 2>/dev/null ||
		    fail "agent $a exited: $(tail -2 "${AG_LOG[$a]}" | tr '\n' ' ') (-n: $("$SIMTUN_BIN/simtun-agent" -n -c "$T/agents/$a.conf" 2>&1))"
	done
}

# cl_identity DEVICE: what a login to DEVICE prints (see cl_reach).
cl_identity() {
	case $1 in
	dev1) echo "$NS_DEVICE $DEVICE_ADDR/24 127.0.0.1";;
	pi-*) echo "$NS_FLEET $FLEET_ADDR/24 127.0.1.$((10#${1#pi-}))";;
	esac
}

# cl_ssh N DEVICE [TIMEOUT] CMD...: an operator on relay N: ssh -J relayN root@DEVICE CMD.
cl_ssh() {
	local i=$1 d=$2 tt=20
	shift 2
	case ${1:-} in [0-9]*) tt=$1; shift;; esac
	timeout "$tt" ip netns exec "$NS_LAPTOP" ssh -F "$CL_SSH_CONFIG" \
	    -o ConnectTimeout="$tt" -J "relay$i" "$d" "$@"
}

# cl_reach N DEVICE [TIMEOUT]: an operator on relay N logs in to DEVICE by name and
# lands on it (namespace, boot's address, the forward's local address).
cl_reach() {
	local got want
	want=$(cl_identity "$2")
	got=$(cl_ssh "$1" "$2" ${3:-} 'set -- $SSH_CONNECTION; echo "$(ip netns identify) $(ip -4 -o addr show dev eth0 | awk "{print \$4}") $3"' \
	    2>>"$T/ops.relay$1.log") || {
		echo "$(date +%T.%N) relay$1 -> $2: ssh failed" >>"$T/ops.relay$1.log"
		return 1
	}
	[ "$got" = "$want" ] || {
		echo "$(date +%T.%N) relay$1 -> $2: landed on '$got', want '$want'" >>"$T/ops.relay$1.log"
		return 1
	}
}

# cl_id N DEVICE [TIMEOUT]: an operator on relay N opens a channel to DEVICE:7 by name
# (ssh -W, the jump of ssh -J) and DEVICE's "who am I" service answers.
cl_id() {
	local got want=127.0.1.$((10#${2#pi-}))
	got=$(timeout "${3:-10}" ip netns exec "$NS_LAPTOP" ssh -F "$CL_SSH_CONFIG" \
	    -o ConnectTimeout="${3:-10}" -W "$2:7" "relay$1" </dev/null 2>>"$T/ops.relay$1.log")
	[ "$got" = "$want" ] && return 0
	echo "$(date +%T.%N) relay$1 -> $2:7: got '$got', want '$want'" >>"$T/ops.relay$1.log"
	return 1
}

# cl_tunnels N I...: an operator's session to relay N (no multiplexing) with
# a local forward by name per device, laptop's 127.0.0.1:tunnel_port(N, I) ->
# pi-I:7 (ssh -L: a direct-tcpip channel by name per connection, as ssh -W
# opens for ssh -J); cl_id_all goes through them.
cl_tunnels() {
	local n=$1 i d fw=(); shift
	for i in "$@"; do
		printf -v d 'pi-%02d' "$i"
		fw+=(-L "127.0.0.1:$((20000 + 100 * n + i)):$d:7")
	done
	ip netns exec "$NS_LAPTOP" ssh -F "$CL_SSH_CONFIG" -o ControlMaster=no -o ControlPath=none \
	    -o ExitOnForwardFailure=yes -N "${fw[@]}" "relay$n" 2>>"$T/ops.tunnels$n.log" &
	ST_DAEMONS+=("$!")
	disown
	wait_until 10 port_listening "$NS_LAPTOP" "$(tunnel_port "$n" "${@: -1}")" ||
	    fail "operator tunnels to relay$n did not come up (see $T/ops.tunnels$n.log)"
}

# tunnel_port N I: the laptop's port forwarded through relay N to pi-I:7
# (cl_id_all computes it the same way).
tunnel_port() { echo $((20000 + 100 * $1 + $2)); }

# cl_id_all "N..." OUT DEVICE...: each DEVICE (pi-NN) through the tunnels of
# relays N... (see cl_tunnels), one channel at a time, from one shell in the
# laptop ns: it must answer its own address within 10 s.  The operator's
# side sends EOF at once (as ssh -W with nothing to send does).  Each
# failure is a line "relayN DEVICE" in OUT; with LAT=FILE each probe's
# seconds go to FILE, with PACE=S a pause follows each probe.
cl_id_all() {
	local ns=$1 out=$2; shift 2
	: >"$out"
	ip netns exec "$NS_LAPTOP" bash -c '
	ns=$1 out=$2 lg=$3 lat=$4 pace=$5; shift 5
	for d in "$@"; do
		for n in $ns; do
			i=$((10#${d#pi-})) got= t0=$EPOCHREALTIME port=$((20000 + 100 * n + i))
			got=$(timeout 12 socat -t 10 -T 10 - "TCP:127.0.0.1:$port" </dev/null 2>/dev/null)
			[ -n "$lat" ] && { us=$((${EPOCHREALTIME/./} - ${t0/./})); printf "%d.%06d\n" $((us / 1000000)) $((us % 1000000)) >>"$lat"; }
			[ -n "$pace" ] && sleep "$pace"
			[ "$got" = "127.0.1.$i" ] && continue
			echo "$(date +%T.%N) relay$n -> $d:7 (tunnel): got '"'"'$got'"'"', want 127.0.1.$i" >>"$lg.relay$n.log"
			echo "relay$n $d" >>"$out"
		done
	done' cl_id_all "$ns" "$out" "$T/ops" "${LAT:-}" "${PACE:-}" "$@"
}

# cl_id_burst N OUT DEVICE...: through relay N's tunnels, a channel to every
# DEVICE at once, the operator's side kept open (as an ssh client's, until
# the server's banner came); each must bring its device's answer within 5 s.
# Each failure is a line "relayN DEVICE" in OUT.
cl_id_burst() {
	local n=$1 out=$2; shift 2
	: >"$out"
	ip netns exec "$NS_LAPTOP" bash -c '
	n=$1 out=$2 lg=$3; shift 3
	declare -A fds=()
	for d in "$@"; do
		fd=
		{ exec {fd}<>"/dev/tcp/127.0.0.1/$((20000 + 100 * n + 10#${d#pi-}))"; } 2>/dev/null
		fds[$d]=$fd
	done
	end=$((${EPOCHREALTIME/./} + 5000000))
	for d in "$@"; do
		got= fd=${fds[$d]} left=$((end - ${EPOCHREALTIME/./}))
		[ "$left" -gt 100000 ] || left=100000
		if [ -n "$fd" ]; then
			IFS= read -t "$((left / 1000000)).$(printf %06d $((left % 1000000)))" -r got <&"$fd"
			exec {fd}<&-
		fi
		[ "$got" = "127.0.1.$((10#${d#pi-}))" ] && continue
		echo "$(date +%T.%N) relay$n -> $d:7 (tunnel, burst, kept open): got '"'"'$got'"'"'" >>"$lg.relay$n.log"
		echo "relay$n $d" >>"$out"
	done' cl_id_burst "$n" "$out" "$T/ops" "$@"
}


