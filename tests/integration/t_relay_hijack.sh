#!/bin/bash
# Port ownership: another authorized key (another device, even one permitted
# 4649) cannot take the port a device holds, and a key gets no port its
# authorized_keys line does not list.
. "$(dirname "$0")/lib.sh"

require_relay
netns_setup
add_device_key dev2 "$DEVICE_PORT" 4650	# may listen on 4649 too: must still be refused
add_device_key dev3			# no permitlisten: no port at all
start_relay

device_ssh_R
dev1_pid=$SSH_R_PID
ssh_R_wait 15 || fail "dev1 ssh -R not granted (see $SSH_R_LOG)"
wait_until 10 device_reachable -c 3 -T 8 || fail "device not reachable before the hijack"
log "dev1 holds $DEVICE_PORT, laptop reaches the device"

# refused KEY SPEC: stock ssh -R from the laptop ns with ExitOnForwardFailure=yes;
# true only if the relay refused the forward and ssh exited non-zero by itself.
refused() {
	local lg=$T/hijack.$1.${2%%:*}.log rc
	timeout 15 ip netns exec "$NS_LAPTOP" ssh -F /dev/null -N -v -p "$RELAY_PORT" \
	    -i "$T/keys/$1" -o IdentitiesOnly=yes -o BatchMode=yes \
	    -o HostKeyAlias=relay -o UserKnownHostsFile="$T/relay_known_hosts" \
	    -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes \
	    -o ConnectTimeout=5 -o ExitOnForwardFailure=yes \
	    -R "$2" "root@$RELAY_ADDR" 2>>"$lg"
	rc=$?
	if grep -q 'remote forward success' "$lg"; then
		echo "$1 was GRANTED $2 (ssh exit $rc)"; return 1
	fi
	if [ "$rc" = 124 ] || [ "$rc" = 0 ]; then
		echo "$1 asking $2: ssh exit $rc, no refusal"; return 1
	fi
	if ! grep -q 'remote port forwarding failed' "$lg"; then
		echo "$1 asking $2: ssh exit $rc without a forward refusal:"
		tail -3 "$lg"; return 1
	fi
	log "$1 asking for ${2%%:*} refused (ssh exit $rc)"
}

# 1. dev2 asks for 4649 held by dev1: refused, dev1 undisturbed.
refused dev2 "$DEVICE_PORT:127.0.0.1:22" ||
    fail "dev2 asking for $DEVICE_PORT (held by dev1) was not refused"
kill -0 "$dev1_pid" 2>/dev/null || fail "dev1's ssh -R died after the hijack attempt"
device_reachable -c 3 -T 8 || fail "device not reachable after the hijack attempt"
log "dev1 still holds $DEVICE_PORT, laptop still lands on the device"

# 2. dev2 asks for 5000, not in its permitlisten: refused, nothing listens.
refused dev2 "5000:127.0.0.1:22" || fail "dev2 asking for 5000 was not refused"
port_listening "$NS_RELAY" 5000 && fail "something listens on relay port 5000"
log "nothing listens on relay port 5000"

# 3. dev3 has no permitlisten at all: it may take no port (4650 is dev2's).
refused dev3 "4650:127.0.0.1:22" || fail "dev3 (no permitlisten) asking for 4650 was not refused"
port_listening "$NS_RELAY" 4650 && fail "something listens on relay port 4650"
log "nothing listens on relay port 4650"

kill -0 "$dev1_pid" 2>/dev/null || fail "dev1's ssh -R died"
device_reachable -c 3 -T 8 || fail "device not reachable at the end"
relay_alive || fail "relay exited"
exit 0
