#!/bin/bash
# A device runs stock `ssh -N -R 4649:127.0.0.1:22 -p 2222 relay`; the laptop's
# `ssh -p 4649 root@relay` lands on the device's sshd and runs a command there.
. "$(dirname "$0")/lib.sh"

require_relay
netns_setup
start_relay

t0=$(now)
device_ssh_R
ssh_R_wait 15 || fail "device ssh -R was not granted 4649 (see $SSH_R_LOG)"
log "ssh -R granted after $(elapsed "$t0") s"

out=$(laptop_ssh -c 5 -T 20 'echo "$(ip netns identify) $(ip -4 -o addr show dev eth0 | awk "{print \$4}") $(id -un)"') ||
    fail "laptop could not log in through $RELAY_ADDR:$DEVICE_PORT"
want="$(device_identity) root"
[ "$out" = "$want" ] || fail "laptop landed on '$out', want '$want'"
log "laptop login ok after $(elapsed "$t0") s: $out"

relay_alive || fail "relay exited"
exit 0
