#!/bin/bash
# Issue 10, closed channels the device still holds (tests/hostile "tardy"):
# a device that answers channel opens only after the relay gave up on them
# (OpenSSH may answer minutes late), fills the windows of some of them and
# withholds its CLOSE replies for a while.
#  - 16 ports x 18 connections (max_conns_per_port = 18): 288 unanswered
#    opens, more than the agent's 256-grave limit, are not a violation: the
#    session stays up;
#  - connections whose open is unanswered, or whose channel the device has
#    not closed, still count: further laptops are refused with a log line;
#  - every late confirmation gets the relay's CLOSE, and nothing for that
#    channel ever follows it (no WINDOW_ADJUST, as strict peers demand);
#  - once the device sends its CLOSEs the slots come back;
#  - RSS stays bounded, status answers, the honest device stays reachable.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/lib_hostile.sh"

require_relay
require_hostile
netns_setup
PORTS=$(seq -s, 4650 4665)
add_device_key dev2 $(seq 4650 4665)
start_relay "channel_open_timeout = 1" "max_conns_per_port = 18" "max_conns_per_source = 18"
wait_until 5 test -S "$SOCK" || fail "no control socket $SOCK"
honest_up
rss_baseline
monitor_start

hostile "$NS_LAPTOP" tardy tardy --key "$T/keys/dev2" --fports "$PORTS" \
    --delay 3 --fill 16 --hoard 5
dev_log=$HOSTILE_LOG
hostile_wait 10 '^forward=granted' || fail "tardy device did not get its ports (see $dev_log)"
opens() { grep -c '^open=' "$dev_log"; }

# 20 laptops per port: 18 reach the device, 2 are refused
hostile_fg "$NS_LAPTOP" laptops --n 320 --ports "$PORTS" --hold 4 >"$T/laptops1.out"
log "320 laptops: $(cat "$T/laptops1.out" | tr '\n' ' ')"
wait_until 5 eval '[ "$(opens)" -ge 288 ]' || fail "only $(opens) opens reached the device, want 288"
[ "$(kv "$(grep '^ended=' "$T/laptops1.out")" ended)" = 320 ] ||
    fail "not every laptop connection ended within 4 s (channel_open_timeout = 1)"
# the 288 timed-out opens are unanswered yet: they still hold the slots
hostile_fg "$NS_LAPTOP" laptops --n 16 --ports 4650 --hold 2 >"$T/laptops2.out"
sleep 0.5
[ "$(opens)" = 288 ] || fail "$(opens) opens reached the device, want 288: unanswered opens were not counted"
[ "$(relay_log_lines 'port 46[56][0-9]: [0-9]+ connections open or awaiting the device \(max_conns_per_port\)')" -ge 1 ] ||
    fail "no max_conns_per_port refusal in the relay log"

# the late confirmations: each gets the relay's CLOSE
wait_until 15 eval '[ "$(grep -c "^relay_closed=" "$dev_log")" -ge 288 ]' ||
    fail "the relay closed $(grep -c '^relay_closed=' "$dev_log") of 288 late-confirmed channels; the relay's sockets (Recv-Q: bytes it has not read): $(nsx "$NS_RELAY" ss -tnH state established "( sport = :$RELAY_PORT )" | tr -s ' ' | tr '\n' ';')"
log "288 late confirmations closed by the relay"
ctl_responsive 3
# the device has not answered the CLOSEs yet: the slots are still taken
hostile_fg "$NS_LAPTOP" laptops --n 8 --ports 4651 --hold 1 >"$T/laptops3.out"
sleep 0.3
[ "$(opens)" = 288 ] || fail "a port whose channels the device holds took new connections"
# ... and once it has, they come back
hostile_wait 15 '^answered=' || fail "tardy device never answered the CLOSEs"
wait_until 10 eval '
	hostile_fg "$NS_LAPTOP" laptops --n 2 --ports 4652 --hold 1 >/dev/null
	[ "$(opens)" -gt 288 ]' || fail "no new open reached the device after it closed its channels"
log "slots free again after the device's CLOSEs: $(opens) opens in all"

honest_check "after 288 late-confirmed channels"
kill -TERM "$HOSTILE_PID" 2>/dev/null
wait_until 5 grep -q '^opens=' "$dev_log" || fail "tardy device did not report (see $dev_log)"
res=$(grep '^opens=' "$dev_log")
log "tardy device: $res"
[ "$(kv "$res" session)" = alive ] || fail "the relay closed the tardy device's session: $res"
[ "$(kv "$res" after_close)" = none ] ||
    fail "the relay sent $(kv "$res" after_close) on a channel after its CHANNEL_CLOSE"
[ "$(kv "$res" filled)" -gt 1000000 ] || fail "the device filled only $(kv "$res" filled) bytes of window"
[ "$(relay_log_lines 'protocol violation|channels not closed')" = 0 ] ||
    fail "relay called the late device a protocol violation: $(grep -m1 -E 'protocol violation|channels not closed' "$RELAY_LOG")"
monitor_stop
monitor_check 96 status "with 288 closed channels held by the device"
relay_alive || fail "relay died"
exit 0
