#!/bin/bash
# Bulk copy through the tunnel: 200 MB of random data from the laptop to the
# device through relay port 4649 arrive byte-exact (same sha256 and size).
. "$(dirname "$0")/lib.sh"

MB=${BULK_MB:-200}

require_relay
require_cmds sha256sum
netns_setup
start_relay

device_ssh_R
ssh_R_wait 15 || fail "ssh -R not granted (see $SSH_R_LOG)"
wait_until 10 device_reachable -c 3 -T 8 || fail "device not reachable"

head -c "${MB}M" /dev/urandom >"$T/bulk.bin" || fail "cannot write $MB MB test file"
want="$(sha256sum <"$T/bulk.bin" | cut -d' ' -f1) $((MB * 1024 * 1024))"
log "sending $MB MB laptop -> device through $RELAY_ADDR:$DEVICE_PORT"

t0=$(now)
got=$(laptop_ssh -c 5 -T 150 'tee >(wc -c >&2) | sha256sum | cut -d" " -f1' <"$T/bulk.bin" 2>"$T/bulk.wc") ||
    fail "transfer failed after $(elapsed "$t0") s"
dt=$(elapsed "$t0")
got="$got $(tr -d ' ' <"$T/bulk.wc")"
[ "$got" = "$want" ] || fail "device got '$got' (sha256 bytes), laptop sent '$want'"
log "sha256 and size identical at both ends: ${want%% *}"
log "$MB MB in $dt s: $(awk -v m="$MB" -v d="$dt" 'BEGIN { printf "%.1f", m / d }') MB/s"
rm -f "$T/bulk.bin"
relay_alive || fail "relay exited"
exit 0
