# tests/integration/lib_agent.sh: simtun-agent helpers; source after lib.sh.
#
# start_agent            simtun-agent in the device ns with $T/device/agent.conf
# agent_conf             (re)write that config from the AGENT_* variables below
# agent_wait_connected   wait for the agent's next "connected to" line
# agent_named_forward    AGENT_EXTRA += a named forward dev1:22 (and the
#                        relay's permitlisten for it)
# arc_setup              arc-gw ns + wireguard-go tunnel arc0 on the device
# cellular_blackhole     nft drop of the device's cellular traffic (at the carrier)
# relayb_setup           a second relay machine: ns $NS_RELAYB at $RELAYB_ADDR
# start_named_relay      another standalone simtun-relay (own conf, log, socket)
# kill_named_relay       SIGKILL it
# agent_conf_relays      $AGENT_CONF with [relay NAME] sections and relays_active
#
# Agent config knobs (set before agent_conf/start_agent):
#   AGENT_KA_INTERVAL AGENT_KA_COUNT AGENT_BACKOFF_INITIAL AGENT_BACKOFF_MAX
#   AGENT_USER AGENT_HOST_KEY (default: the relay's real fingerprint)
#   AGENT_RELAY_HOST AGENT_EXTRA (text appended, e.g. [path ...] sections)

: "${AGENT_KA_INTERVAL:=2}"
: "${AGENT_KA_COUNT:=3}"
: "${AGENT_BACKOFF_INITIAL:=1}"
: "${AGENT_BACKOFF_MAX:=4}"
: "${AGENT_USER:=root}"
: "${AGENT_EXTRA:=}"
AGENT_PID=
AGENT_LOG=$T/agent.log
AGENT_CONF=$T/device/agent.conf
NS_ARCGW=${ST_ID}a
ARC_DEV_ADDR=10.77.0.2		# device's arc0 address
ARC_GW_ADDR=10.77.0.1		# arc-gw's wg0 address
ARC_NET=10.77.0.0/24
ARC_IF=a${ST_ID#st}		# device's wireguard-go interface (names are global
GW_IF=g${ST_ID#st}		# in /var/run/wireguard, so unique per run)

# require_agent: skip unless simtun-agent is built.
require_agent() {
	[ -x "$SIMTUN_BIN/simtun-agent" ] ||
	    skip "$SIMTUN_BIN/simtun-agent not built (run make)"
}

# relay_fingerprint: SHA256:... of the relay host key, as ssh-keygen -lf prints it.
relay_fingerprint() { ssh-keygen -lf "$T/keys/relay_host.pub" | awk '{print $2}'; }

# agent_conf: write $AGENT_CONF from the AGENT_* knobs (key dev1, forward 4649 -> sshd).
agent_conf() {
	chmod 600 "$T/keys/dev1"
	cat >"$AGENT_CONF" <<-EOF
	[agent]
	identity = $T/keys/dev1
	user = $AGENT_USER
	keepalive_interval = $AGENT_KA_INTERVAL
	keepalive_count_max = $AGENT_KA_COUNT
	backoff_initial = $AGENT_BACKOFF_INITIAL
	backoff_max = $AGENT_BACKOFF_MAX
	control_socket = $T/agent.sock

	[relay]
	host = ${AGENT_RELAY_HOST:-$RELAY_ADDR}
	port = $RELAY_PORT
	host_key = ${AGENT_HOST_KEY:-$(relay_fingerprint)}

	[forward ssh]
	remote = $DEVICE_PORT
	local = 127.0.0.1:22
	$AGENT_EXTRA
	EOF
}

# agent_named_forward: the agent also serves the named forward dev1:22
# (remote = dev1:22), which dev1's key on the relay is allowed to take.
agent_named_forward() {
	sed -i 's/permitlisten="4649"/permitlisten="4649",permitlisten="dev1:22"/' "$T/relay/authorized_keys"
	AGENT_EXTRA="$AGENT_EXTRA
[forward byname]
remote = dev1:22
local = 127.0.0.1:22"
}

# xfer_forward_4650: the device key may also take port 4650, and xfer.py
# serves on the device's 127.0.0.1:7000 (a forward 4650 -> 7000 moves bulk).
xfer_forward_4650() {
	local f
	for f in authorized_keys authorized_keys.openssh; do
		sed -i 's/permitlisten="4649"/permitlisten="4649",permitlisten="4650"/' \
		    "$T/relay/$f"
	done
	ip netns exec "$NS_DEVICE" python3 "$LIB_DIR/xfer.py" serve 7000 &
	ST_DAEMONS+=($!)
	disown
}

# start_agent: simtun-agent -v in the device ns (writes the config if missing).
start_agent() {
	require_agent
	[ -f "$AGENT_CONF" ] || agent_conf
	"$SIMTUN_BIN/simtun-agent" -n -c "$AGENT_CONF" >/dev/null ||
	    fail "agent config rejected: $("$SIMTUN_BIN/simtun-agent" -n -c "$AGENT_CONF" 2>&1)"
	register_log "$AGENT_LOG"
	echo "--- agent start $(date +%T.%N)" >>"$AGENT_LOG"
	ip netns exec "$NS_DEVICE" "$SIMTUN_BIN/simtun-agent" -v -c "$AGENT_CONF" \
	    2>>"$AGENT_LOG" &
	AGENT_PID=$!
	disown
	ST_DAEMONS+=("$AGENT_PID")
	log "simtun-agent pid $AGENT_PID in $NS_DEVICE"
}

# agent_alive: true while the agent runs.
agent_alive() { [ -n "$AGENT_PID" ] && kill -0 "$AGENT_PID" 2>/dev/null; }

# agent_connected_count: how many times the agent has logged "connected to".
agent_connected_count() { grep -c 'simtun-agent: connected to .* forwarding' "$AGENT_LOG" 2>/dev/null || true; }

# agent_wait_connected TIMEOUT [N]: wait until the agent logged its Nth "connected to".
agent_wait_connected() {
	local n=${2:-1}
	_agent_conn_n() { [ "$(agent_connected_count)" -ge "$n" ]; }
	wait_until "$1" _agent_conn_n
}

# stop_agent: SIGTERM the agent, wait up to 5 s.
stop_agent() {
	agent_alive || return 0
	kill -TERM "$AGENT_PID"
	wait_until 5 eval '! kill -0 "$AGENT_PID" 2>/dev/null' ||
	    fail "agent ignored SIGTERM for 5 s"
	AGENT_PID=
}

# arc_setup: arc-gw namespace (a SORACOM Arc stand-in) with wireguard-go, joined to the
# internet bridge and to the relay's private side; the device gets arc0 (wireguard-go)
# ($ARC_IF) whose peer is arc-gw over the cellular path, and a route to $RELAY_ADDR2 via arc0.
arc_setup() {
	require_cmds wireguard-go wg
	netns_new "$NS_ARCGW"
	inet_attach "$NS_ARCGW" "$ARCGW_ADDR"
	relay_private_link "$NS_ARCGW" "$ARC_NET"
	(umask 077; wg genkey >"$T/keys/wg_gw"; wg genkey >"$T/keys/wg_dev")
	wg pubkey <"$T/keys/wg_gw" >"$T/keys/wg_gw.pub"
	wg pubkey <"$T/keys/wg_dev" >"$T/keys/wg_dev.pub"
	_wg_up "$NS_ARCGW" "$GW_IF" "$ARC_GW_ADDR/24" "$T/keys/wg_gw" 51820
	nsx "$NS_ARCGW" wg set "$GW_IF" peer "$(cat "$T/keys/wg_dev.pub")" \
	    allowed-ips "$ARC_DEV_ADDR/32"
	_wg_up "$NS_DEVICE" "$ARC_IF" "$ARC_DEV_ADDR/24" "$T/keys/wg_dev" ""
	nsx "$NS_DEVICE" wg set "$ARC_IF" peer "$(cat "$T/keys/wg_gw.pub")" \
	    endpoint "$ARCGW_ADDR:51820" allowed-ips "$ARC_NET,$RELAY_ADDR2/32" \
	    persistent-keepalive 1
	ip -n "$NS_DEVICE" route add "$RELAY_ADDR2/32" dev "$ARC_IF"
	# arc-gw forwards arc traffic to the relay's private address
	nsx "$NS_ARCGW" sysctl -qw net.ipv4.ip_forward=1
	log "arc: $NS_DEVICE $ARC_IF $ARC_DEV_ADDR <-> $NS_ARCGW $GW_IF $ARC_GW_ADDR -> relay $RELAY_ADDR2"
}

# _wg_up NS IFNAME ADDR KEYFILE LISTENPORT: userspace wireguard-go interface in NS.
_wg_up() {
	local ns=$1 ifn=$2 addr=$3 key=$4 lport=$5
	WG_PROCESS_FOREGROUND=1 ip netns exec "$ns" wireguard-go "$ifn" \
	    >>"$T/wireguard-go.$ifn.log" 2>&1 &
	disown
	wait_until 10 ip -n "$ns" link show "$ifn" >/dev/null 2>&1 ||
	    fail "wireguard-go did not create $ifn in $ns"
	wait_until 10 test -S "/var/run/wireguard/$ifn.sock" ||
	    fail "wireguard-go control socket for $ifn missing"
	nsx "$ns" wg set "$ifn" private-key "$key" ${lport:+listen-port "$lport"} ||
	    fail "wg set $ifn"
	ip -n "$ns" addr add "$addr" dev "$ifn"
	ip -n "$ns" link set "$ifn" up
}

# cellular_blackhole: silently drop the device's TCP to the relay's public address at
# the carrier (the Arc tunnel's UDP still passes, as when only the SIM's IP path breaks).
cellular_blackhole() {
	nsx "$NS_CARRIER" nft -f - <<-EOF || fail "blackhole rules"
	table ip blackhole {
		chain relaytcp {
			type filter hook forward priority -10; policy accept;
			ip daddr $RELAY_ADDR tcp dport $RELAY_PORT drop
			ip saddr $RELAY_ADDR tcp sport $RELAY_PORT drop
		}
	}
	EOF
}

# cellular_blackhole_off: lift cellular_blackhole.
cellular_blackhole_off() { nsx "$NS_CARRIER" nft delete table ip blackhole; }

# --- several relays (issue 14) ---------------------------------------------

NS_RELAYB=${ST_ID}b
RELAYB_ADDR=198.18.0.5
declare -A NAMED_RELAY_PID=()

# relayb_setup: a second relay machine: namespace $NS_RELAYB on the internet
# bridge as $RELAYB_ADDR, and its own host key $T/keys/relayb_host.
relayb_setup() {
	netns_new "$NS_RELAYB"
	inet_attach "$NS_RELAYB" "$RELAYB_ADDR"
	make_key relayb_host relayb
}

# start_named_relay NAME NS HOSTKEY [key = value ...]: a standalone simtun-relay -v
# in NS on :$RELAY_PORT (device ports on 0.0.0.0), with its own relay.conf, control
# socket ($T/relay-NAME/relay.sock), state_db and log ($T/relay-NAME.log); the
# device keys are $T/relay/authorized_keys. Extra "key = value" lines go to [relay].
start_named_relay() {
	require_relay
	local name=$1 ns=$2 key=$3 d=$T/relay-$1 kv pid; shift 3
	mkdir -p "$d"
	install -m 600 "$key" "$d/ssh_host_ed25519_key"
	{
		echo "[relay]"
		echo "listen = 0.0.0.0:$RELAY_PORT"
		echo "host_key = $d/ssh_host_ed25519_key"
		echo "authorized_keys = $T/relay/authorized_keys"
		echo "forward_address = 0.0.0.0"
		echo "control_socket = $d/relay.sock"
		echo "state_db = $d/state.db"
		for kv in "$@"; do echo "$kv"; done
	} >"$d/relay.conf"
	register_log "$T/relay-$name.log"
	echo "--- relay $name start $(date +%T.%N)" >>"$T/relay-$name.log"
	ip netns exec "$ns" "$SIMTUN_BIN/simtun-relay" -c "$d/relay.conf" -v \
	    2>>"$T/relay-$name.log" &
	pid=$!
	disown
	NAMED_RELAY_PID[$name]=$pid
	ST_DAEMONS+=("$pid")
	wait_until 10 port_listening "$ns" "$RELAY_PORT" || {
		kill -0 "$pid" 2>/dev/null || fail "simtun-relay $name exited at start"
		fail "simtun-relay $name not listening on :$RELAY_PORT in $ns after 10 s"
	}
	log "simtun-relay $name pid $pid listening on :$RELAY_PORT in $ns"
}

# kill_named_relay NAME: SIGKILL that relay and wait until it is gone.
kill_named_relay() {
	local pid=${NAMED_RELAY_PID[$1]:-}
	[ -n "$pid" ] || return 0
	kill -KILL "$pid" 2>/dev/null
	wait_until 5 eval "! kill -0 $pid 2>/dev/null"
	NAMED_RELAY_PID[$1]=
}

# agent_conf_relays ACTIVE NAME=HOST:PORT:FINGERPRINT...: write $AGENT_CONF as
# agent_conf does, with relays_active = ACTIVE and one [relay NAME] per argument,
# in that order.
agent_conf_relays() {
	local active=$1 r name rest; shift
	chmod 600 "$T/keys/dev1"
	{
		cat <<-EOF
		[agent]
		identity = $T/keys/dev1
		user = $AGENT_USER
		keepalive_interval = $AGENT_KA_INTERVAL
		keepalive_count_max = $AGENT_KA_COUNT
		backoff_initial = $AGENT_BACKOFF_INITIAL
		backoff_max = $AGENT_BACKOFF_MAX
		control_socket = $T/agent.sock
		relays_active = $active
		EOF
		for r in "$@"; do
			name=${r%%=*} rest=${r#*=}
			printf '\n[relay %s]\nhost = %s\nport = %s\nhost_key = %s\n' \
			    "$name" "${rest%%:*}" "$(echo "$rest" | cut -d: -f2)" \
			    "${rest#*:*:}"
		done
		printf '\n[forward ssh]\nremote = %s\nlocal = 127.0.0.1:22\n%s\n' \
		    "$DEVICE_PORT" "$AGENT_EXTRA"
	} >"$AGENT_CONF"
}
