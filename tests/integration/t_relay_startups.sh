#!/bin/bash
# At max_startups the relay stops accepting instead of refusing: a device
# that connects while every slot is taken by idle connections waits in the
# backlog and gets in as soon as login_grace_time frees a slot.
. "$(dirname "$0")/lib.sh"

require_relay
netns_setup
start_relay "max_startups = 4" "max_startups_per_source = 0" \
    "login_grace_time = 3"
ip netns exec "$NS_LAPTOP" perl "$LIB_DIR/abuse.pl" "$RELAY_ADDR" "$RELAY_PORT" \
    4 0 0 30 >"$T/abuse.out" 2>&1 &
ABUSE=$!
ST_DAEMONS+=("$ABUSE")
wait_until 10 grep -q '^open' "$T/abuse.out" || fail "abuse.pl did not report"
wait_until 5 grep -q 'new connections wait' "$RELAY_LOG" ||
    fail "relay did not pause accepting at max_startups"
t0=$(now)
device_ssh_R
ssh_R_wait 15 || fail "device never got in after the idle ones timed out"
dt=$(elapsed "$t0")
log "device got its forward $dt s after connecting (idle slots expire after 3 s)"
grep -q "refused connection" "$RELAY_LOG" && fail "a connection was refused instead of waiting"
wait_until 10 device_reachable -c 3 -T 8 || fail "laptop could not reach the device"
relay_alive || fail "relay exited"
exit 0
