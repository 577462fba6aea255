#!/bin/bash
# SIGHUP re-reads relay.conf too: a broken file changes nothing; a new
# keepalive setting applies to running sessions at once (a frozen device is
# then expired after the new interval x count).
. "$(dirname "$0")/lib.sh"

require_relay
netns_setup
start_relay "keepalive_interval = 30" "keepalive_count_max = 3"
device_ssh_R
ssh_R_wait 15 || fail "ssh -R not granted"
conf=$T/relay/relay.conf
cp "$conf" "$T/relay.conf.good"

# 1. a broken relay.conf: logged, nothing changes, the device stays
echo "keepalive_interval = soon" >>"$conf"
kill -HUP "$RELAY_PID"
wait_until 5 grep -q "keeping the running configuration" "$RELAY_LOG" ||
    fail "broken relay.conf on reload was not reported"
grep "keeping the running" "$RELAY_LOG" | grep -q "relay.conf:[0-9]*: keepalive_interval" ||
    fail "reload error does not name file:line and key"
device_reachable -c 3 -T 8 || fail "device lost after a failed reload"

# 2. a faster keepalive applies to the running session
sed -e 's/^keepalive_interval = .*/keepalive_interval = 1/' \
    -e 's/^keepalive_count_max = .*/keepalive_count_max = 2/' "$T/relay.conf.good" >"$conf"
kill -HUP "$RELAY_PID"
wait_until 5 grep -q "reloaded $conf" "$RELAY_LOG" || fail "relay.conf not reloaded"
kill -STOP "$SSH_R_PID"
t0=$(now)
wait_until 10 grep -q "closed: no answer to 2 keepalives" "$RELAY_LOG" ||
    fail "frozen device not expired with the reloaded keepalive (1 s x 2)"
log "frozen device expired $(elapsed "$t0") s after SIGSTOP (was 30 s x 3 before reload)"
kill -CONT "$SSH_R_PID" 2>/dev/null
relay_alive || fail "relay exited"
exit 0
