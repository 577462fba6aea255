# tests/integration/lib.sh: network-namespace test bed for simtun.
#
# Source it from a test script (bash).  It gives every test its own set of
# namespaces (names unique per run), its own temp dir, and one EXIT trap that
# stops the daemons, checks their logs for sanitizer reports, kills what runs
# in the namespaces, deletes them, and keeps the temp dir only on failure.
#
# Topology (all addresses live only inside the test's namespaces):
#
#   laptop  198.18.0.2 --+                      +-- relay 198.18.0.1 (eth0)
#                        |                      |   second address 100.127.10.1
#                        +-- inet ns: br0 ------+   (on lo, the "Arc" side)
#                              198.18.0.254     |
#                                               +-- carrier 198.18.0.3 (eth0)
#                                                   CGNAT: masquerade 100.64/10
#                                                   dv<gen> 100.64.<gen>.1/24
#                                                          |
#                                               device 100.64.<gen>.2 (eth0)
#                                               sshd on 127.0.0.1:22
#
# Each device boot gets a new generation: a new carrier-side link dv<gen>
# and a new private address 100.64.<gen>.2.  The carrier silently drops (in
# prerouting, after de-NAT, before routing: no ICMP, no RST) anything from or
# to an address in its drop set; reboot_device puts the old address there.
#
# Hook for the Arc path (agent issue): create an arc-gw namespace with
# netns_new, give it a public address with inet_attach (e.g. $ARCGW_ADDR),
# and join it to the relay's private side with relay_private_link; the
# relay's second address $RELAY_ADDR2 is then reachable from arc-gw only.
#
# Conventions: exit 0 pass, 77 skip, anything else fail.

set -u

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$LIB_DIR/../.." && pwd)
: "${SIMTUN_BIN:=$REPO_ROOT/build}"
# LeakSanitizer suppressions for the daemons (tests/lsan.supp).
: "${LSAN_OPTIONS:=suppressions=$REPO_ROOT/tests/lsan.supp:print_suppressions=0}"
export LSAN_OPTIONS
: "${RELAY_KIND:=simtun}"		# simtun | openssh
TEST_NAME=$(basename "$0" .sh)

# Namespace names: short (st<pid><role>), unique per run.
ST_ID=${ST_ID:-st$$}
NS_INET=${ST_ID}i
NS_RELAY=${ST_ID}r
NS_LAPTOP=${ST_ID}l
NS_CARRIER=${ST_ID}c
NS_DEVICE=${ST_ID}d

INET_GW=198.18.0.254
RELAY_ADDR=198.18.0.1
LAPTOP_ADDR=198.18.0.2
CARRIER_ADDR=198.18.0.3
ARCGW_ADDR=198.18.0.4		# reserved for the agent issue's arc-gw ns
RELAY_ADDR2=100.127.10.1	# relay's second (private, Arc-side) address
RELAY_PORT=2222
DEVICE_PORT=4649
DEVICE_GEN=0
DEVICE_ADDR=

ST_NETNS=()			# namespaces we created, for cleanup
ST_DAEMONS=()			# pids to stop gently first (sanitizer reports)
ST_LOGS=()			# daemon stderr logs checked for sanitizer reports
ST_T0=$(date +%s.%N)
RELAY_PID=
RELAY_LOG=
SSH_R_PID=
SSH_R_LOG=
ST_SSH_R_N=0

T=$(mktemp -d "/tmp/simtun-${TEST_NAME}.XXXXXX")
mkdir -p "$T/keys" "$T/relay" "$T/device"

# --- small helpers ---------------------------------------------------------

# now: wall clock in seconds with ns digits, for elapsed().
now() { date +%s.%N; }

# elapsed START: seconds since START with ms resolution.
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }'; }

# log MSG...: progress line with the time since the test started.
log() { printf '[%7ss] %s\n' "$(elapsed "$ST_T0")" "$*"; }

# fail MSG...: end the test as failed (the trap cleans up, keeps logs).
fail() { printf 'FAIL: %s\n' "$*"; exit 1; }

# skip MSG...: end the test as skipped (exit 77).
skip() { printf 'SKIP: %s\n' "$*"; exit 77; }

# nsx NS CMD...: run CMD inside namespace NS.
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# require_cmds CMD...: skip the test unless every CMD is installed and we are root.
require_cmds() {
	[ "$(id -u)" = 0 ] || skip "needs root (network namespaces)"
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "missing command: $c"
	done
}

# require_relay: skip unless the selected relay kind can run.
require_relay() {
	case $RELAY_KIND in
	simtun)
		[ -x "$SIMTUN_BIN/simtun-relay" ] ||
		    skip "$SIMTUN_BIN/simtun-relay not built (run make)";;
	openssh) ;;
	*) fail "unknown RELAY_KIND=$RELAY_KIND";;
	esac
}

# wait_until TIMEOUT CMD...: poll CMD every 50 ms until it succeeds; 1 on timeout.
wait_until() {
	local end
	end=$(awk -v t="$1" -v n="$(date +%s.%N)" 'BEGIN { printf "%.3f", n + t }')
	shift
	while :; do
		"$@" && return 0
		awk -v e="$end" -v n="$(date +%s.%N)" 'BEGIN { exit !(n > e) }' &&
		    return 1
		sleep 0.05
	done
}

# port_listening NS PORT: true if a TCP socket listens on PORT in NS.
port_listening() {
	nsx "$1" ss -ltnH "sport = :$2" 2>/dev/null | grep -q .
}

# register_log FILE: check FILE for sanitizer reports when the test ends.
register_log() { ST_LOGS+=("$1"); }

# check_sanitizer LOGFILE: fail (return 1, print report) if LOGFILE holds a sanitizer report.
check_sanitizer() {
	[ -f "$1" ] || return 0
	if grep -qE 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer|WARNING: ThreadSanitizer|WARNING: MemorySanitizer' "$1"; then
		echo "sanitizer report in $1:"
		grep -nE -A20 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer|WARNING: ThreadSanitizer|WARNING: MemorySanitizer' "$1" | head -60
		return 1
	fi
	return 0
}

# tail_logs [N]: print the last N lines of every log in the temp dir.
tail_logs() {
	local f
	for f in $(find "$T" -name '*.log' -type f | sort); do
		echo "----- $f (last ${1:-25} lines)"
		tail -n "${1:-25}" "$f"
	done
}

# --- namespaces and links -------------------------------------------------

# netns_new NAME: create namespace NAME with lo up, remembered for cleanup.
netns_new() {
	ip netns add "$1" || fail "ip netns add $1"
	ST_NETNS+=("$1")
	ip -n "$1" link set lo up
}

# netns_link NS1 IF1 ADDR1/PFX NS2 IF2 ADDR2/PFX: veth pair between two namespaces.
netns_link() {
	ip -n "$1" link add "$2" type veth peer name "$5" netns "$4" ||
	    fail "veth $1:$2 <-> $4:$5"
	ip -n "$1" addr add "$3" dev "$2"
	ip -n "$4" addr add "$6" dev "$5"
	ip -n "$1" link set "$2" up
	ip -n "$4" link set "$5" up
}

# inet_attach NS ADDR [IFNAME]: plug NS into the internet bridge as ADDR/24, default route via it.
inet_attach() {
	local ns=$1 addr=$2 ifn=${3:-eth0} port="p${1#"$ST_ID"}"
	ip -n "$NS_INET" link add "$port" type veth peer name "$ifn" netns "$ns" ||
	    fail "inet_attach $ns"
	ip -n "$NS_INET" link set "$port" master br0 up
	ip -n "$ns" addr add "$addr/24" dev "$ifn"
	ip -n "$ns" link set "$ifn" up
	ip -n "$ns" route add default via "$INET_GW"
}

# relay_private_link NS NET: Arc hook; veth NS<->relay on 10.99.0.0/30, NS routes
# $RELAY_ADDR2 via the relay, the relay routes NET (e.g. the Arc device net) via NS.
relay_private_link() {
	netns_link "$1" rp0 10.99.0.2/30 "$NS_RELAY" ap0 10.99.0.1/30
	ip -n "$1" route add "$RELAY_ADDR2/32" via 10.99.0.1
	[ -n "${2:-}" ] && ip -n "$NS_RELAY" route add "$2" via 10.99.0.2
	nsx "$1" sysctl -qw net.ipv4.ip_forward=1
}

# carrier_setup: CGNAT rules in the carrier (masquerade, silent drop set).
carrier_setup() {
	nsx "$NS_CARRIER" sysctl -qw net.ipv4.ip_forward=1
	nsx "$NS_CARRIER" nft -f - <<-'EOF' || fail "carrier nft rules"
	table ip cgnat {
		set dropped {
			type ipv4_addr
		}
		chain prenat {
			type nat hook prerouting priority dstnat; policy accept;
		}
		chain pre {
			# after de-NAT (-100), before routing: silent, no ICMP
			type filter hook prerouting priority -50; policy accept;
			ip saddr @dropped drop
			ip daddr @dropped drop
		}
		chain out {
			# a carrier never tells the internet a device is gone
			type filter hook output priority 0; policy accept;
			oifname "eth0" tcp flags & rst == rst drop
			oifname "eth0" icmp type destination-unreachable drop
		}
		chain post {
			type nat hook postrouting priority srcnat; policy accept;
			oifname "eth0" ip saddr 100.64.0.0/10 masquerade
		}
	}
	EOF
}

# carrier_drop ADDR: the carrier silently drops everything from/to ADDR.
carrier_drop() { nsx "$NS_CARRIER" nft add element ip cgnat dropped "{ $1 }"; }

# carrier_undrop ADDR: stop dropping ADDR.
carrier_undrop() { nsx "$NS_CARRIER" nft delete element ip cgnat dropped "{ $1 }"; }

# blackhole [ADDR]: silently drop the device's (or ADDR's) traffic at the carrier.
blackhole() { carrier_drop "${1:-$DEVICE_ADDR}"; }

# blackhole_off [ADDR]: undo blackhole.
blackhole_off() { carrier_undrop "${1:-$DEVICE_ADDR}"; }

# device_up: boot a fresh device namespace (next generation, new address, sshd).
device_up() {
	DEVICE_GEN=$((DEVICE_GEN + 1))
	DEVICE_ADDR=100.64.$DEVICE_GEN.2
	ip netns add "$NS_DEVICE" || fail "ip netns add $NS_DEVICE"
	case " ${ST_NETNS[*]} " in *" $NS_DEVICE "*) ;; *) ST_NETNS+=("$NS_DEVICE");; esac
	ip -n "$NS_DEVICE" link set lo up
	netns_link "$NS_CARRIER" "dv$DEVICE_GEN" "100.64.$DEVICE_GEN.1/24" \
	    "$NS_DEVICE" eth0 "$DEVICE_ADDR/24"
	ip -n "$NS_DEVICE" route add default via "100.64.$DEVICE_GEN.1"
	start_device_sshd
}

# make_key NAME [COMMENT]: ed25519 key pair $T/keys/NAME{,.pub}.
make_key() {
	[ -f "$T/keys/$1" ] && return 0
	ssh-keygen -q -t ed25519 -N '' -C "${2:-$1}" -f "$T/keys/$1" ||
	    fail "ssh-keygen $1"
}

# add_device_key [-o OPTS] NAME [PORT...]: make key NAME, authorize it on the relay for PORTs.
# The comment is the device name.  No PORT = a key that may take no port.
add_device_key() {
	local extra="" opts="" p
	if [ "${1:-}" = -o ]; then extra=$2; shift 2; fi
	local name=$1; shift
	make_key "$name"
	for p in "$@"; do opts="$opts${opts:+,}permitlisten=\"$p\""; done
	local pub; pub=$(cut -d' ' -f1,2 "$T/keys/$name.pub")
	# simtun form: restrict + permitlisten; no permitlisten = no port.
	local s="restrict${extra:+,$extra}${opts:+,$opts}"
	echo "$s $pub $name" >>"$T/relay/authorized_keys"
	# OpenSSH form: restrict disables forwarding unless re-enabled.
	if [ -n "$opts" ]; then
		s="restrict,port-forwarding${extra:+,$extra},$opts"
	else
		s="restrict${extra:+,$extra}"
	fi
	echo "$s $pub $name" >>"$T/relay/authorized_keys.openssh"
}

# netns_setup: build the whole bed (namespaces, links, CGNAT, keys, device with sshd).
# Keys: relay host key, device host key, laptop key, device key dev1 (port 4649).
netns_setup() {
	require_cmds ip nft ssh sshd ssh-keygen ss timeout awk
	netns_new "$NS_INET"
	ip -n "$NS_INET" link add br0 type bridge
	ip -n "$NS_INET" addr add "$INET_GW/24" dev br0
	ip -n "$NS_INET" link set br0 up
	netns_new "$NS_RELAY"
	inet_attach "$NS_RELAY" "$RELAY_ADDR"
	ip -n "$NS_RELAY" addr add "$RELAY_ADDR2/32" dev lo
	netns_new "$NS_LAPTOP"
	inet_attach "$NS_LAPTOP" "$LAPTOP_ADDR"
	netns_new "$NS_CARRIER"
	inet_attach "$NS_CARRIER" "$CARRIER_ADDR"
	carrier_setup

	make_key relay_host relay
	make_key device_host device
	make_key laptop laptop
	cp "$T/keys/relay_host" "$T/relay/ssh_host_ed25519_key"
	echo "relay $(cut -d' ' -f1,2 "$T/keys/relay_host.pub")" >"$T/relay_known_hosts"
	echo "device $(cut -d' ' -f1,2 "$T/keys/device_host.pub")" >"$T/laptop_known_hosts"
	cp "$T/keys/laptop.pub" "$T/device/authorized_keys"
	: >"$T/relay/authorized_keys"
	: >"$T/relay/authorized_keys.openssh"
	add_device_key dev1 "$DEVICE_PORT"
	device_up
}

# --- device sshd ----------------------------------------------------------

# start_device_sshd: Debian's sshd in the device ns on 127.0.0.1:22, own config/keys.
start_device_sshd() {
	mkdir -p /run/sshd
	cat >"$T/device/sshd_config" <<-EOF
	Port 22
	ListenAddress 127.0.0.1
	HostKey $T/keys/device_host
	AuthorizedKeysFile $T/device/authorized_keys
	UsePAM no
	StrictModes no
	PidFile none
	PermitRootLogin prohibit-password
	PasswordAuthentication no
	KbdInteractiveAuthentication no
	Subsystem sftp internal-sftp
	LogLevel INFO
	EOF
	ip netns exec "$NS_DEVICE" /usr/sbin/sshd -D -e -f "$T/device/sshd_config" \
	    2>>"$T/device_sshd.log" &
	disown
	wait_until 10 port_listening "$NS_DEVICE" 22 ||
	    fail "device sshd did not start (see $T/device_sshd.log)"
}

# --- relay ----------------------------------------------------------------

# start_relay [key = value ...]: start the relay of kind $RELAY_KIND (simtun|openssh).
start_relay() {
	case $RELAY_KIND in
	simtun) start_simtun_relay "$@";;
	openssh) start_openssh_relay "$@";;
	*) fail "unknown RELAY_KIND=$RELAY_KIND";;
	esac
}

# relay_conf_value KEY DEFAULT [key = value ...]: the override for KEY, else DEFAULT.
relay_conf_value() {
	local key=$1 val=$2 kv k; shift 2
	for kv in "$@"; do
		k=${kv%%=*}; k=${k// /}
		[ "$k" = "$key" ] && { val=${kv#*=}; val=${val# }; }
	done
	printf '%s' "$val"
}

# start_simtun_relay [key = value ...]: simtun-relay -c conf -v in the relay ns; overrides go to [relay]
# (keys outside the fixed list are appended as given).
start_simtun_relay() {
	require_relay
	local conf=$T/relay/relay.conf k
	{
		echo "[relay]"
		for k in listen host_key authorized_keys forward_address \
		    keepalive_interval keepalive_count_max max_startups \
		    login_grace_time control_socket state_db; do
			local d
			case $k in
			listen) d="0.0.0.0:$RELAY_PORT";;
			host_key) d="$T/relay/ssh_host_ed25519_key";;
			authorized_keys) d="$T/relay/authorized_keys";;
			forward_address) d=0.0.0.0;;
			keepalive_interval) d=15;;
			keepalive_count_max) d=3;;
			max_startups) d=64;;
			login_grace_time) d=20;;
			control_socket) d="$T/relay/relay.sock";;
			state_db) d="$T/relay/state.db";;
			esac
			echo "$k = $(relay_conf_value "$k" "$d" "$@")"
		done
		# any other "key = value" (metrics_listen, penalty_exempt...) as is
		for k in "$@"; do
			local kk=${k%%=*}; kk=${kk// /}
			case " listen host_key authorized_keys forward_address keepalive_interval keepalive_count_max max_startups login_grace_time control_socket state_db " in
			*" $kk "*) ;;
			*) echo "$k";;
			esac
		done
	} >"$conf"
	RELAY_LOG=$T/relay.log
	register_log "$RELAY_LOG"
	# RELAY_WRAPPER: a command the relay runs under (e.g. valgrind).
	ip netns exec "$NS_RELAY" ${RELAY_WRAPPER:-} "$SIMTUN_BIN/simtun-relay" -c "$conf" -v 2>>"$RELAY_LOG" &
	RELAY_PID=$!
	disown
	ST_DAEMONS+=("$RELAY_PID")
	wait_until 10 port_listening "$NS_RELAY" "$RELAY_PORT" || {
		kill -0 "$RELAY_PID" 2>/dev/null || fail "simtun-relay exited at start"
		fail "simtun-relay not listening on :$RELAY_PORT after 10 s"
	}
	log "simtun-relay pid $RELAY_PID listening on $RELAY_ADDR:$RELAY_PORT"
}

# start_openssh_relay [key = value ...]: stock sshd as the relay (GatewayPorts yes, ClientAlive*).
start_openssh_relay() {
	mkdir -p /run/sshd
	cat >"$T/relay/sshd_config" <<-EOF
	Port $RELAY_PORT
	ListenAddress 0.0.0.0
	HostKey $T/relay/ssh_host_ed25519_key
	AuthorizedKeysFile $T/relay/authorized_keys.openssh
	UsePAM no
	StrictModes no
	PidFile none
	PermitRootLogin prohibit-password
	PasswordAuthentication no
	KbdInteractiveAuthentication no
	GatewayPorts yes
	AllowTcpForwarding remote
	PermitTTY no
	X11Forwarding no
	ClientAliveInterval $(relay_conf_value keepalive_interval 15 "$@")
	ClientAliveCountMax $(relay_conf_value keepalive_count_max 3 "$@")
	MaxStartups $(relay_conf_value max_startups 64 "$@")
	LoginGraceTime $(relay_conf_value login_grace_time 20 "$@")
	LogLevel VERBOSE
	EOF
	RELAY_LOG=$T/relay.log
	ip netns exec "$NS_RELAY" /usr/sbin/sshd -D -e -f "$T/relay/sshd_config" \
	    2>>"$RELAY_LOG" &
	RELAY_PID=$!
	disown
	wait_until 10 port_listening "$NS_RELAY" "$RELAY_PORT" ||
	    fail "openssh relay not listening on :$RELAY_PORT"
	log "openssh relay (sshd) pid $RELAY_PID listening on $RELAY_ADDR:$RELAY_PORT"
}

# relay_alive: true while the relay process runs.
relay_alive() { [ -n "$RELAY_PID" ] && kill -0 "$RELAY_PID" 2>/dev/null; }

# stop_relay: SIGTERM the relay, SIGKILL after 5 s.
stop_relay() {
	relay_alive || return 0
	kill -TERM "$RELAY_PID" 2>/dev/null
	wait_until 5 eval '! kill -0 "$RELAY_PID" 2>/dev/null' ||
	    kill -KILL "$RELAY_PID" 2>/dev/null
	RELAY_PID=
}

# kill_relay: SIGKILL the relay (crash / relay restart scenarios).
kill_relay() {
	local pid=$RELAY_PID
	relay_alive && kill -KILL "$pid" 2>/dev/null
	# wait for it to be gone, so a restart can bind the port at once
	[ -n "$pid" ] && wait_until 5 eval '! kill -0 '"$pid"' 2>/dev/null'
	RELAY_PID=
}

# --- ssh clients ----------------------------------------------------------

# ssh_R NS KEY SPEC [ssh options...]: background stock `ssh -N -R SPEC` from NS with key KEY
# to the relay (host key pinned, ExitOnForwardFailure=yes, -v); sets SSH_R_PID, SSH_R_LOG.
ssh_R() {
	local ns=$1 key=$2 spec=$3; shift 3
	ST_SSH_R_N=$((ST_SSH_R_N + 1))
	SSH_R_LOG=$T/ssh_R.$ST_SSH_R_N.$key.log
	ip netns exec "$ns" ssh -F /dev/null -N -v -p "$RELAY_PORT" -i "$T/keys/$key" \
	    -o IdentitiesOnly=yes -o BatchMode=yes \
	    -o HostKeyAlias=relay -o UserKnownHostsFile="$T/relay_known_hosts" \
	    -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes \
	    -o ConnectTimeout=5 -o ExitOnForwardFailure=yes \
	    "$@" -R "$spec" "root@$RELAY_ADDR" 2>>"$SSH_R_LOG" &
	SSH_R_PID=$!
	disown
}

# device_ssh_R [ssh options...]: the device's `ssh -N -R 4649:127.0.0.1:22` with key dev1.
device_ssh_R() { ssh_R "$NS_DEVICE" dev1 "$DEVICE_PORT:127.0.0.1:22" "$@"; }

# ssh_R_wait TIMEOUT [PID LOG]: wait for "remote forward success"; 1 if refused, exited or timed out.
ssh_R_wait() {
	local t=$1 pid=${2:-$SSH_R_PID} lg=${3:-$SSH_R_LOG}
	_ssh_R_state() {
		grep -q 'remote forward success' "$lg" && return 0
		grep -q 'remote port forwarding failed' "$lg" && return 0
		kill -0 "$pid" 2>/dev/null || return 0
		return 1
	}
	wait_until "$t" _ssh_R_state
	grep -q 'remote forward success' "$lg" && kill -0 "$pid" 2>/dev/null
}

# ssh_config_strict: the closing "Host *" block of a test's ~/.ssh/config:
# keys only, no prompts, host keys pinned, bounded connects, quiet.
ssh_config_strict() {
	printf 'Host *\n\tIdentitiesOnly yes\n\tBatchMode yes\n\tStrictHostKeyChecking yes\n\tGlobalKnownHostsFile /dev/null\n\tConnectTimeout 10\n\tLogLevel ERROR\n'
}

# laptop_ssh [-p PORT] [-c CONNECT_TIMEOUT] [-T TOTAL_TIMEOUT] CMD...: ssh root@relay:PORT
# from the laptop ns into the device (BatchMode, device host key pinned); stdin passes through.
laptop_ssh() {
	local port=$DEVICE_PORT ct=5 tt=30 OPTIND=1 o
	while getopts p:c:T: o; do
		case $o in
		p) port=$OPTARG;; c) ct=$OPTARG;; T) tt=$OPTARG;;
		*) return 2;;
		esac
	done
	shift $((OPTIND - 1))
	timeout "$tt" ip netns exec "$NS_LAPTOP" ssh -F /dev/null -p "$port" \
	    -i "$T/keys/laptop" -o IdentitiesOnly=yes -o BatchMode=yes \
	    -o ConnectTimeout="$ct" -o HostKeyAlias=device \
	    -o UserKnownHostsFile="$T/laptop_known_hosts" \
	    -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes \
	    -o LogLevel=ERROR "root@$RELAY_ADDR" "$@"
}

# device_identity: what device_reachable expects: "<device ns> <device address>/24".
device_identity() { echo "$NS_DEVICE $DEVICE_ADDR/24"; }

# device_reachable [laptop_ssh options]: laptop logs in through the relay and lands on the
# current device (checks its netns name and current address).
device_reachable() {
	local got
	got=$(laptop_ssh "$@" 'echo "$(ip netns identify) $(ip -4 -o addr show dev eth0 | awk "{print \$4}")"' 2>>"$T/laptop.log") ||
	    return 1
	[ "$got" = "$(device_identity)" ] || {
		echo "device_reachable: got '$got', want '$(device_identity)'" >>"$T/laptop.log"
		return 1
	}
}

# --- device reboot --------------------------------------------------------

# reboot_device: half-open reboot. The carrier drops the old address, every process in
# the device ns is SIGKILLed, the ns and its link are deleted, a fresh device (new address,
# sshd running) boots. No FIN/RST reaches the relay. Start the new ssh -R/agent yourself.
reboot_device() {
	local old=$DEVICE_ADDR pids
	carrier_drop "$old" || fail "carrier_drop $old"
	pids=$(ip netns pids "$NS_DEVICE" 2>/dev/null)
	[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
	wait_until 5 eval '[ -z "$(ip netns pids "$NS_DEVICE" 2>/dev/null)" ]' ||
	    fail "device processes survived SIGKILL"
	ip netns del "$NS_DEVICE" || fail "ip netns del $NS_DEVICE"
	device_up
	log "device rebooted: $old -> $DEVICE_ADDR (old address silently dropped)"
}

# --- teardown -------------------------------------------------------------

# cleanup: stop daemons gently, kill everything in our namespaces, delete them.
cleanup() {
	local p ns pids
	for p in "${ST_DAEMONS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${ST_DAEMONS[@]}"; do
		wait_until 5 eval "! kill -0 $p 2>/dev/null" ||
		    { echo "daemon pid $p ignored SIGTERM for 5 s"; kill -KILL "$p" 2>/dev/null; }
	done
	for ns in "${ST_NETNS[@]}"; do
		pids=$(ip netns pids "$ns" 2>/dev/null)
		[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
	done
	for ns in "${ST_NETNS[@]}"; do
		wait_until 3 eval "[ -z \"\$(ip netns pids $ns 2>/dev/null)\" ]"
		ip netns del "$ns" 2>/dev/null
	done
}

# _st_exit RC: the EXIT trap: cleanup, sanitizer check, keep logs only on failure.
_st_exit() {
	local rc=$1 f
	trap - EXIT INT TERM
	cleanup
	for f in "${ST_LOGS[@]}"; do
		check_sanitizer "$f" || rc=1
	done
	if [ "$rc" = 0 ] || [ "$rc" = 77 ]; then
		rm -rf "$T"
	else
		tail_logs 30
		echo "logs kept in $T"
	fi
	exit "$rc"
}
trap '_st_exit $?' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
