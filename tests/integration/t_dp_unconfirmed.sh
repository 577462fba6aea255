#!/bin/bash
# Issue 10, test 2: device keys that abuse channel opens (tests/hostile):
#  a) a device that never answers the relay's channel opens (but keeps its
#     session alive): 16 laptops connect; with channel_open_timeout = 3 the
#     relay ends each within 10 s and its loop stays responsive;
#  b) a device that sends CHANNEL_DATA / EOF / CLOSE (and WINDOW_ADJUST, and
#     data for ids never opened) on channels it never confirmed, while
#     laptops connect and reset at once (0.1 s apart, until 16 opens
#     reached the device, at most 12 s); if the relay closes its session
#     for it, it logs in again: at least 8 opens (each kind of
#     misbehaviour, at once and delayed) must reach it;
#  c) a device that confirms opens only after the relay gave up on them
#     (4 s > channel_open_timeout = 3), then sends 32 MiB on each of 2 late
#     channels: the relay closes those channels (or the session) instead
#     of keeping a channel nobody reads.
# Throughout: the relay survives (ASan-clean: lib.sh fails the test on any
# sanitizer report), `simtunctl status` answers within 1 s, RSS stays under
# +64 MB, the honest device (4649) stays reachable.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/lib_hostile.sh"

dp_setup "channel_open_timeout = 3"
monitor_start

# a) never answers
hostile "$NS_LAPTOP" noanswer noanswer --key "$T/keys/dev2" --fport 4650
silent_pid=$HOSTILE_PID
hostile_wait 10 '^forward=granted' || fail "noanswer device did not get 4650 (see $HOSTILE_LOG)"
hostile "$NS_LAPTOP" laptops16 laptops --n 16 --ports 4650 --hold 12
laptops_log=$HOSTILE_LOG
wait_until 5 grep -q '^opened=16' "$laptops_log" || fail "laptops did not connect"
sleep 1
ctl_responsive 5
honest_check "16 channel opens never answered"
wait_until 14 grep -q '^ended=' "$laptops_log" || fail "laptops did not report"
res=$(grep '^ended=' "$laptops_log")
log "never-answered opens: $res; device: $(tail -1 "$T/hostile.noanswer.log")"
relay_alive || fail "relay died (never-answered opens)"
[ "$(kv "$res" ended)" = 16 ] ||
    fail "only $(kv "$res" ended) of 16 laptop connections to a device that never answers were ended within 12 s (channel_open_timeout = 3)"
awk -v s="$(kv "$res" slowest)" 'BEGIN { exit !(s <= 10) }' ||
    fail "slowest laptop connection ended after $(kv "$res" slowest) s (bound 10 s)"
monitor_check 64 status "while opens went unanswered"
kill "$silent_pid" 2>/dev/null

# b) data / eof / close on unconfirmed channels, laptops resetting at once
hostile "$NS_LAPTOP" unconfirmed unconfirmed --key "$T/keys/dev2" --fport 4651
hostile_wait 10 '^forward=granted' || fail "unconfirmed device did not get 4651 (see $HOSTILE_LOG)"
# laptops connect and reset at once, 0.1 s apart, until 16 opens reached
# the device (each kind of misbehaviour twice) or 12 s passed
t0=$(now)
while relay_alive && [ "$(grep -c '^open=' "$T/hostile.unconfirmed.log")" -lt 16 ] &&
    awk -v e="$(elapsed "$t0")" 'BEGIN { exit !(e < 12) }'; do
	hostile_fg "$NS_LAPTOP" resets --ports 4651 --rounds 5 --conns 1 --span 0 \
	    --bytes 100 --gap 0.1 >>"$T/resets.out"
done
sleep 1		# the delayed half of the misbehaviour
log "resets: $(($(grep -c '^rounds=' "$T/resets.out") * 5)) connections; device opens: $(grep -c '^open=' "$T/hostile.unconfirmed.log"), sessions: $(grep -c '^forward=granted' "$T/hostile.unconfirmed.log")"
relay_alive || fail "relay died on data/eof/close for unconfirmed channels"
[ "$(grep -c '^open=' "$T/hostile.unconfirmed.log")" -ge 8 ] ||
    fail "the relay opened fewer than 8 channels to the hostile device: the abuse did not run"
ctl_responsive 5
honest_check "after data/eof/close on unconfirmed channels"

# c) late confirmations
hostile "$NS_LAPTOP" late late --key "$T/keys/dev2" --fport 4652 --delay 4 --mb 32
late_pid=$HOSTILE_PID late_log=$HOSTILE_LOG
hostile_wait 10 '^forward=granted' || fail "late device did not get 4652 (see $late_log)"
hostile "$NS_LAPTOP" laptops2 laptops --n 2 --ports 4652 --hold 6
wait_until 8 grep -q '^ended=' "$T/hostile.laptops2.log" || fail "laptops (late) did not report"
res=$(grep '^ended=' "$T/hostile.laptops2.log")
log "late-confirmed opens, laptops: $res"
[ "$(kv "$res" ended)" = 2 ] ||
    fail "$(kv "$res" ended) of 2 laptop connections ended within 6 s (channel_open_timeout = 3)"
wait_until 8 eval '[ "$(grep -c "^relay_closed=" "$late_log")" -ge 2 ]' ||
    log "late device still sending"
kill "$HOSTILE_PID" 2>/dev/null
kill -TERM "$late_pid" 2>/dev/null
wait_until 5 grep -q '^opens=' "$late_log" || fail "late device did not report (see $late_log)"
res=$(grep '^opens=' "$late_log")
log "late device: $(grep -E '^(confirmed|channel|relay_closed)=' "$late_log" | tr '\n' ' ')$res"
relay_alive || fail "relay died on late confirmations"
[ "$(kv "$res" opens)" -ge 2 ] || fail "the late device got $(kv "$res" opens) opens, want 2"
[ "$(kv "$res" relay_closed)" -ge 2 ] || [ "$(kv "$res" session)" = closed ] ||
    fail "the relay kept channels it had given up on open: $res"
ctl_responsive 3
honest_check "after late confirmations"
monitor_stop
monitor_check 64 status "during the whole test"
rss_check 64 "at the end"
relay_alive || fail "relay died"
exit 0
