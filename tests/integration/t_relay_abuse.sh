#!/bin/bash
# Bad input on the SSH port: garbage bytes and 200 half-open unauthenticated
# connections (silent, or a banner then nothing) held against :2222. The relay
# stays up, the device stays reachable through 4649 meanwhile, and the relay
# takes new sessions again once the flood is gone.
. "$(dirname "$0")/lib.sh"

require_relay
require_cmds perl
netns_setup
add_device_key dev2 4650
start_relay

device_ssh_R
dev1_pid=$SSH_R_PID
ssh_R_wait 15 || fail "ssh -R not granted (see $SSH_R_LOG)"
wait_until 10 device_reachable -c 3 -T 8 || fail "device not reachable"

# Pure garbage first: connections that send random bytes and close.
for i in 1 2 3 4 5; do
	head -c 100000 /dev/urandom | timeout 5 ip netns exec "$NS_LAPTOP" \
	    socat -u - "TCP:$RELAY_ADDR:$RELAY_PORT" 2>/dev/null
	printf 'SSH-2.0-x\r\n\0\0\0\x0c\x0a\x14garbage-pkt' | timeout 5 \
	    ip netns exec "$NS_LAPTOP" socat -u - "TCP:$RELAY_ADDR:$RELAY_PORT" 2>/dev/null
done
relay_alive || fail "relay died on garbage bytes"
log "relay survived 10 garbage connections"

# 100 silent + 100 banner-then-stop + 10 garbage-then-stop, held 40 s.
ip netns exec "$NS_LAPTOP" perl "$LIB_DIR/abuse.pl" "$RELAY_ADDR" "$RELAY_PORT" \
    100 100 10 40 >"$T/abuse.out" 2>&1 &
abuse_pid=$!
disown
wait_until 15 grep -q '^open' "$T/abuse.out" || fail "abuse.pl did not report"
log "abuse: $(cat "$T/abuse.out") connections held against :$RELAY_PORT"

t0=$(now)
device_reachable -c 5 -T 15 || fail "device not reachable while the flood is held"
log "laptop login through $DEVICE_PORT ok during the flood ($(elapsed "$t0") s)"
relay_alive || fail "relay died during the flood"
kill -0 "$dev1_pid" 2>/dev/null || fail "device's ssh -R was dropped during the flood"
sleep 2
device_reachable -c 5 -T 15 || fail "device not reachable (2nd login) during the flood"

kill -KILL "$abuse_pid" 2>/dev/null
log "flood released"
relay_alive || fail "relay died after the flood"

# New sessions are accepted again once the unauthenticated ones are gone.
t0=$(now)
ok=
for try in 1 2 3 4 5; do
	ssh_R "$NS_LAPTOP" dev2 "4650:127.0.0.1:22"
	if ssh_R_wait 10; then ok=1; break; fi
	kill -KILL "$SSH_R_PID" 2>/dev/null
	sleep 1
done
[ -n "$ok" ] || fail "relay does not take new sessions after the flood (see $SSH_R_LOG)"
log "new session (dev2) accepted $(elapsed "$t0") s after the flood"
device_reachable -c 5 -T 15 || fail "device not reachable after the flood"
kill -0 "$dev1_pid" 2>/dev/null || fail "device's ssh -R was dropped"
relay_alive || fail "relay exited"
exit 0
