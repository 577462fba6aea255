#!/bin/bash
# What the relay does not do is refused with a log line, and the device
# is not harmed: a shell/exec session and ssh -L (direct-tcpip).
. "$(dirname "$0")/lib.sh"

require_relay
netns_setup
start_relay
# dev_ssh [ssh options] -- [command]: the device's key, to the relay
dev_ssh() {
	local opts=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
	[ "${1:-}" = -- ] && shift
	timeout 10 ip netns exec "$NS_DEVICE" ssh -F /dev/null -p "$RELAY_PORT" \
	    -i "$T/keys/dev1" -o IdentitiesOnly=yes -o BatchMode=yes \
	    -o HostKeyAlias=relay -o UserKnownHostsFile="$T/relay_known_hosts" \
	    -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes \
	    -o ConnectTimeout=5 "${opts[@]}" "root@$RELAY_ADDR" "$@"
}
# 1. a command: refused, ssh fails, one log line
dev_ssh -- uptime >"$T/exec.out" 2>&1 && fail "a command ran on the relay"
grep -q "refused a shell/exec session" "$RELAY_LOG" || fail "no log line for the refused session"
# 2. ssh -L through the relay: the channel is refused
dev_ssh -N -L 127.0.0.1:9999:127.0.0.1:22 >"$T/L.out" 2>&1 &
LPID=$!
wait_until 5 eval 'ip netns exec "$NS_DEVICE" ss -tlnH "( sport = :9999 )" | grep -q 9999' ||
    fail "ssh -L did not start"
timeout 5 ip netns exec "$NS_DEVICE" socat -T 3 - TCP:127.0.0.1:9999 </dev/null >/dev/null 2>&1
wait_until 5 grep -q "device dev1 .*refused channel to 127.0.0.1:22: not an operator key" "$RELAY_LOG" || fail "no log line for ssh -L"
grep -q "administratively prohibited" "$T/L.out" || fail "ssh -L was not told no"
kill "$LPID" 2>/dev/null
# 3. the device still works
device_ssh_R
ssh_R_wait 10 || fail "ssh -R not granted after the refusals"
wait_until 10 device_reachable -c 3 -T 8 || fail "device not reachable"
relay_alive || fail "relay exited"
exit 0
