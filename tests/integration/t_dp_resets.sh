#!/bin/bash
# Issue 10, test 8: laptops that reset their connections mid-transfer must
# not cost a strict device its session.  The device (tests/hostile strict,
# dev2 on 4650) echoes every byte back (or streams, for a download) and
# sends a channel request that wants a reply every 0.1 s on each channel
# (keepalive@openssh.com, which libssh answers itself, and an unknown
# one, in turn; never after it saw the relay's CLOSE); like Go's x/crypto/ssh,
# asyncssh and PuTTY it treats ANY message for a channel after the relay's
# CHANNEL_CLOSE for it (WINDOW_ADJUST, DATA, CHANNEL_FAILURE, ...) as a
# protocol error and drops the connection.  16 rounds of 4 laptop
# connections push data, read a little and reset (SO_LINGER 0).  Then the
# strict device is still connected and never saw such a message, a 1 MiB
# echo through 4650 is byte-exact, and throughout the relay answers
# `simtunctl status` within 1 s, RSS stays under +64 MB and the honest
# device (4649) stays reachable.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/lib_hostile.sh"

dp_setup
hostile "$NS_LAPTOP" strict strict --key "$T/keys/dev2" --fport 4650 --chanreq 0.1
strict_pid=$HOSTILE_PID
strict_log=$HOSTILE_LOG
hostile_wait 10 '^forward=granted' || fail "strict device did not get 4650 (see $strict_log)"
hostile_fg "$NS_LAPTOP" echo --ports 4650 --bytes 65536 >"$T/echo0.out" ||
    fail "echo through 4650 failed before the resets: $(cat "$T/echo0.out")"
monitor_start

hostile "$NS_LAPTOP" resets resets --ports 4650 --rounds 16 --conns 4 --span 0.3 --bytes 1048576
sleep 2
honest_check "while laptops reset connections"
wait_until 20 grep -q '^rounds=' "$HOSTILE_LOG" || fail "resets did not finish (see $HOSTILE_LOG)"
sleep 1
monitor_stop
log "laptops: $(grep '^rounds=' "$HOSTILE_LOG"); strict device channels so far: $(grep -c . "$strict_log") log lines"
if grep -q 'protocol error' "$strict_log"; then
	fail "strict device: $(grep 'protocol error' "$strict_log" | head -1) (the relay sent a message on a channel it had closed)"
fi
kill -0 "$strict_pid" 2>/dev/null ||
    fail "strict device's session ended: $(tail -2 "$strict_log" | tr '\n' ' ')"
relay_alive || fail "relay died"

res=$(hostile_fg "$NS_LAPTOP" echo --ports 4650 --bytes 1048576 --timeout 15) ||
    fail "1 MiB echo through 4650 after the resets failed: $res"
log "after 16 rounds of resets: $res"
monitor_check 64 status "while laptops reset connections"
ctl_responsive 3
honest_check "after the resets"
kill -TERM "$strict_pid"
wait_until 5 grep -q '^channels=' "$strict_log" || fail "strict device did not report"
res=$(grep '^channels=' "$strict_log")
log "strict device: $res"
[ "$(kv "$res" violation)" = none ] || fail "strict device saw a protocol violation: $res"
[ "$(kv "$res" channels)" -ge 60 ] || fail "only $(kv "$res" channels) channels reached the device (want >= 60 of 66)"
exit 0
