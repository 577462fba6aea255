#!/bin/bash
# Issue 10, test 1: a stock `ssh -N -R 4650:127.0.0.1:7000` device whose
# service never accepts (the device's kernel drops every SYN to :7000, so
# ssh never answers the relay's channel opens; it sends keepalives every
# 2 s, as autossh setups do), and 64 laptops connect to 4650 at once.
# With channel_open_timeout = 3 every laptop connection is ended by the
# relay within 10 s; meanwhile and after, the relay's loop answers
# `simtunctl status` within 1 s, its RSS stays under +64 MB, the honest
# device (4649) stays reachable, and the stuck device keeps its session.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/lib_hostile.sh"

dp_setup "channel_open_timeout = 3" "max_conns_per_source = 100" \
    "max_conns_per_port = 100"

# The device's service: nothing accepts, SYNs vanish (no RST, no answer).
nsx "$NS_DEVICE" nft -f - <<-'NFT' || fail "device nft rule"
table inet blackhole {
	chain out {
		type filter hook output priority 0; policy accept;
		tcp dport 7000 tcp flags & (syn | ack) == syn drop
	}
}
NFT
ssh_R "$NS_DEVICE" dev2 "4650:127.0.0.1:7000" -o ServerAliveInterval=2
stuck_pid=$SSH_R_PID
ssh_R_wait 15 || fail "stuck device: ssh -R 4650 not granted (see $SSH_R_LOG)"
log "stuck device (dev2) holds 4650; its service drops every SYN"

monitor_start
hostile "$NS_LAPTOP" laptops laptops --n 64 --ports 4650 --hold 14
hostile_wait 5 '^opened=' || fail "laptops did not start"
log "laptops: $(grep '^opened=' "$HOSTILE_LOG")"

# While 64 opens are pending: the loop answers, the honest device works.
sleep 1
ctl_responsive 5
honest_check "64 channel opens pending"
ctl_responsive 5

wait_until 16 grep -q '^ended=' "$HOSTILE_LOG" || fail "laptops did not report"
res=$(grep '^ended=' "$HOSTILE_LOG")
log "laptops: $res"
monitor_stop
relay_alive || fail "relay died"
monitor_check 64 status "with 64 pending channel opens"
[ "$(kv "$res" ended)" = 64 ] && [ "$(kv "$res" total)" = 64 ] ||
    fail "only $(kv "$res" ended) of $(kv "$res" total) laptop connections were ended within 14 s (channel_open_timeout = 3)"
awk -v s="$(kv "$res" slowest)" 'BEGIN { exit !(s <= 10) }' ||
    fail "slowest laptop connection ended after $(kv "$res" slowest) s (channel_open_timeout = 3, bound 10 s)"

# After: responsive, bounded, honest device fine; the stuck device is no
# reason to drop its session either.
ctl_responsive 5
rss_check 64 "after the laptops"
honest_check "after the laptops"
kill -0 "$stuck_pid" 2>/dev/null || fail "the stuck device's session was dropped"
exit 0
