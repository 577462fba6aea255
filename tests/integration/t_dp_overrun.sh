#!/bin/bash
# Issue 10, test 3: a device key that sends far past the window the relay
# granted (tests/hostile overrun: 3 channels, 64 MiB each, to 3 laptops
# that never read).  The relay must not buffer it: its RSS stays under
# +64 MB over the baseline, it closes the offending channel or session with
# a log line that says "window", its loop answers `simtunctl status` within
# 1 s throughout, and the honest device (4649) stays reachable.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/lib_hostile.sh"

MB=${OVERRUN_MB:-64}
dp_setup
monitor_start

hostile "$NS_LAPTOP" overrun overrun --key "$T/keys/dev2" --fport 4650 \
    --channels 3 --mb "$MB"
ovr_log=$HOSTILE_LOG
hostile_wait 10 '^forward=granted' || fail "overrun device did not get 4650 (see $ovr_log)"
# three laptops that connect and never read
hostile "$NS_LAPTOP" stalled hold --n 3 --ports 4650 --duration 60
wait_until 5 grep -q '^held=3' "$HOSTILE_LOG" || fail "stalled laptops did not connect"
wait_until 5 eval '[ "$(grep -c "^open=" "$ovr_log")" -ge 3 ]' ||
    fail "the relay did not open 3 channels to the device"
log "3 channels open; the device sends $MB MiB on each, the laptops never read"

sleep 2
ctl_responsive 3
honest_check "while the device overruns its window"
# until every channel finished sending (or the relay cut it off)
wait_until 10 eval '[ "$(grep -c "^channel=" "$ovr_log")" -ge 3 ]' ||
    log "device still sending after 10 s"
sleep 1
log "device: $(grep -E '^channel=|send failed' "$ovr_log" | tr '\n' ';')"
relay_alive || fail "relay died"
monitor_stop
monitor_check 64 status "while $((3 * MB)) MiB were sent past the window"
rss_check 64 "after the overrun"
lines=$(grep -iE 'window' "$RELAY_LOG" | grep -ivE 'debug:' | grep -E 'dev2')
[ -n "$lines" ] ||
    fail "no log line about dev2 overrunning its window (grep -i window); the relay kept the data"
log "relay: $(echo "$lines" | head -2 | tr '\n' ';')"
ctl_responsive 3
honest_check "after the overrun"
exit 0
