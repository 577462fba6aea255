#!/bin/bash
# Half-open reboot: the device vanishes without FIN/RST and comes back with a new
# address; its new `ssh -R 4649` gets the port back at once and the laptop logs in
# within 3 s of the new ssh -R starting.
. "$(dirname "$0")/lib.sh"

LIMIT=3

require_relay
netns_setup
start_relay

device_ssh_R
ssh_R_wait 15 || fail "first ssh -R not granted (see $SSH_R_LOG)"
wait_until 10 device_reachable -c 3 -T 8 || fail "device not reachable before reboot"
log "device reachable via $RELAY_ADDR:$DEVICE_PORT (generation $DEVICE_GEN)"

reboot_device

# Bed sanity: the relay must still see the old session as established
# (no FIN or RST got through), or this test would not test the half-open case.
n=$(nsx "$NS_RELAY" ss -tnH state established "( sport = :$RELAY_PORT )" | wc -l)
[ "$n" -ge 1 ] || fail "test bed: relay saw the old session close (no half-open state)"
log "relay still holds $n established session(s) on :$RELAY_PORT (half-open)"

t0=$(now)
device_ssh_R
if ! ssh_R_wait 10; then
	grep -E 'remote port forwarding failed|Error|error' "$SSH_R_LOG" | tail -3
	fail "rebooted device's ssh -R was not granted $DEVICE_PORT after $(elapsed "$t0") s"
fi
log "new ssh -R granted after $(elapsed "$t0") s"
wait_until 10 device_reachable -c 2 -T 4 ||
    fail "rebooted device not reachable from the laptop after $(elapsed "$t0") s"
dt=$(elapsed "$t0")
log "reboot-to-reachable: $dt s (from new ssh -R start to laptop login; limit $LIMIT s)"
awk -v d="$dt" -v l="$LIMIT" 'BEGIN { exit !(d <= l) }' ||
    fail "laptop login took $dt s after the new ssh -R (limit $LIMIT s)"
relay_alive || fail "relay exited"
exit 0
