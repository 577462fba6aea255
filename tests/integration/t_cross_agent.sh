#!/bin/bash
# The Raspberry Pi agent: simtun-agent cross-built for armhf and arm64 (make
# cross) runs under qemu-user in the device namespace against the native
# relay.  The laptop's ssh -p 4649 reaches the device's sshd through it, and
# after a half-open reboot (no FIN/RST reaches the relay, new address) the
# restarted agent takes port 4649 over at once.
# CROSS_ARCHES="armhf arm64" (default) picks the architectures; the test
# builds them (make cross) when needed and skips when the cross toolchain or
# the foreign libraries cannot be installed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_agent.sh"

: "${CROSS_ARCHES:=armhf arm64}"
LIMIT=10		# s from agent start to laptop login after the reboot (emulated)
require_cmds ip nft ssh sshd ssh-keygen ss timeout awk make
require_relay

# --- cross binaries -------------------------------------------------------
declare -A QEMU=([armhf]=qemu-arm [arm64]=qemu-aarch64)
declare -A MACHINE=([armhf]=ARM [arm64]=AArch64)
for a in $CROSS_ARCHES; do
	[ -n "${QEMU[$a]:-}" ] || fail "CROSS_ARCHES: unknown architecture $a"
	# cross-deps.sh installs or reports; failing here means no toolchain or
	# no $a libraries from the mirror: a skip, with its reason.
	if ! bash "$REPO_ROOT/tests/cross-deps.sh" "$a" ${SYSROOT:+"$SYSROOT"} >"$T/cross-deps.$a.log" 2>&1; then
		skip "cannot install the $a cross toolchain or libraries: $(grep -v '^ ' "$T/cross-deps.$a.log" | tail -1)"
	fi
	command -v "${QEMU[$a]}" >/dev/null || skip "${QEMU[$a]} missing (apt-get install qemu-user)"
	# make cross: the test fails (not skips) if the code does not build for $a
	make -C "$REPO_ROOT" --no-print-directory cross ARCH="$a" >"$T/make-cross.$a.log" 2>&1 ||
	    fail "make cross ARCH=$a failed: $(grep -E 'error|Error' "$T/make-cross.$a.log" | head -3)"
	readelf -h "$REPO_ROOT/build-$a/simtun-agent" | grep -q "Machine:.*${MACHINE[$a]}" ||
	    fail "build-$a/simtun-agent is not an ${MACHINE[$a]} binary"
	log "build-$a/simtun-agent: $(file -b "$REPO_ROOT/build-$a/simtun-agent" | cut -d, -f1-2)"
done

# xagent ARCH ARGS...: the cross-built agent under qemu-user, libraries from
# its sysroot (what make cross unpacked; / for a multiarch build).
xagent() {
	local a=$1; shift
	local sr=${SYSROOT:-$REPO_ROOT/build-$a/sysroot}
	"${QEMU[$a]}" -L "$sr" "$REPO_ROOT/build-$a/simtun-agent" "$@"
}

# start_xagent ARCH: like start_agent, with the emulated ARCH binary; log $T/agent.ARCH.log.
start_xagent() {
	local a=$1 v
	[ -f "$AGENT_CONF" ] || agent_conf
	v=$(xagent "$a" -n -c "$AGENT_CONF" 2>&1) || fail "$a agent: config rejected: $v"
	[ "$v" = "configuration OK" ] || fail "$a agent -n printed '$v'"
	AGENT_LOG=$T/agent.$a.log
	register_log "$AGENT_LOG"
	echo "--- $a agent start $(date +%T.%N)" >>"$AGENT_LOG"
	ip netns exec "$NS_DEVICE" "${QEMU[$a]}" -L "${SYSROOT:-$REPO_ROOT/build-$a/sysroot}" \
	    "$REPO_ROOT/build-$a/simtun-agent" -v -c "$AGENT_CONF" 2>>"$AGENT_LOG" &
	AGENT_PID=$!
	disown
	ST_DAEMONS+=("$AGENT_PID")
	log "$a simtun-agent (${QEMU[$a]}) pid $AGENT_PID in $NS_DEVICE"
}

# --- the bed --------------------------------------------------------------
netns_setup
start_relay keepalive_interval=5
n=0
for a in $CROSS_ARCHES; do
	v=$(xagent "$a" -V 2>&1) || fail "$a agent -V: $v"
	log "$a: $v"
	start_xagent "$a"
	agent_wait_connected 30 1 || {
		agent_alive || fail "$a agent exited"
		fail "$a agent did not connect within 30 s"
	}
	wait_until 20 device_reachable -c 5 -T 15 ||
	    fail "$a: laptop cannot reach the device's sshd through the relay"
	log "$a: laptop ssh -p $DEVICE_PORT lands on the device (generation $DEVICE_GEN)"

	takeovers=$(grep -c 'taken over by the new session' "$RELAY_LOG")
	reboot_device
	n=$(nsx "$NS_RELAY" ss -tnH state established "( sport = :$RELAY_PORT )" | wc -l)
	[ "$n" -ge 1 ] || fail "test bed: relay saw the old session close (no half-open state)"
	t0=$(now)
	start_xagent "$a"
	agent_wait_connected 30 2 || fail "$a agent did not reconnect after the reboot ($(elapsed "$t0") s)"
	log "$a agent up again after $(elapsed "$t0") s"
	wait_until 20 device_reachable -c 3 -T 8 ||
	    fail "$a: rebooted device not reachable after $(elapsed "$t0") s"
	dt=$(elapsed "$t0")
	grep -q 'remote port forwarding failed\|refused' "$AGENT_LOG" &&
	    fail "$a: the relay refused the port after the reboot (no takeover)"
	log "$a: reboot-to-reachable $dt s under emulation (limit $LIMIT s)"
	awk -v d="$dt" -v l="$LIMIT" 'BEGIN { exit !(d <= l) }' ||
	    fail "$a: laptop login took $dt s after the agent restarted (limit $LIMIT s)"
	[ "$(grep -c 'taken over by the new session' "$RELAY_LOG")" -gt "$takeovers" ] ||
	    fail "$a: relay log shows no takeover of port $DEVICE_PORT"
	stop_agent
done
exit 0
