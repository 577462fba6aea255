#!/bin/bash
# Issue 13, test 4: usage. A 10 MB copy from the laptop to dev1 through the
# relay port shows on dev1's link as:
#  - status --json usage: payload_to >= 10 MB and < 11.5 MB (the inner SSH
#    session adds a little), payload_from > 0 but small; overhead_to > 2%
#    and < 10% of payload_to (outer SSH packets, ~0.1%, plus the TCP/IP
#    header estimate, 52 bytes per segment of at most 1448 on these
#    1500-byte veths: >= 3.6%), overhead_from > 0 (ACKs); with
#    keepalive_interval = 1 and the link idle, keepalive_to and
#    keepalive_from > 0 within seconds, and each <= its overhead;
#  - usage --json: today's row for dev1 with payload_to >= 10 MB;
#  - /metrics: simtun_device_wire_bytes_total payload to_device >= 10 MB;
#  - after a relay restart today's row is still there, with the keepalives
#    counted after the last usage request (SIGTERM writes what is pending);
#    usage --days 0 is refused (exit 1).
. "$(dirname "$0")/lib.sh"

MB10=10485760

require_relay
require_cmds jq
[ "$RELAY_KIND" = simtun ] || skip "usage accounting is simtun-relay's"
netns_setup
day0=$(date -u +%F)
start_relay "keepalive_interval = 1" "metrics_listen = 127.0.0.1:9100"
ctl() { "$SIMTUN_BIN/simtunctl" -s "$T/relay/relay.sock" "$@"; }

device_ssh_R
ssh_R_wait 15 || fail "ssh -R not granted (see $SSH_R_LOG)"

head -c "$MB10" /dev/urandom >"$T/10m.bin" || fail "cannot write the 10 MB file"
t0=$(now)
got=$(laptop_ssh -c 5 -T 60 'wc -c' <"$T/10m.bin" 2>>"$T/laptop.log") ||
    fail "copy through the relay failed after $(elapsed "$t0") s"
[ "$got" = "$MB10" ] || fail "device got '$got' bytes, laptop sent $MB10"
rm -f "$T/10m.bin"
log "10 MB laptop -> dev1 through $RELAY_ADDR:$DEVICE_PORT in $(elapsed "$t0") s"

# dev1's session usage; keepalives are counted once the link is idle
# (probe at the second silent 1 s interval, answered by ssh). The wait is
# generous: a loaded relay can read the answer inside the probe's own
# ssh_send_keepalive, and session_keepalive does not count that answer.
dev1_usage() { ctl status --json | jq -c '.devices[] | select(.device == "dev1") | .usage'; }
ka_both() {
	u=$(dev1_usage) || return 1
	[ "$(echo "$u" | jq '.keepalive_to > 0 and .keepalive_from > 0')" = true ]
}
t0=$(now)
wait_until 20 ka_both || fail "no keepalives counted both ways after 20 s idle: '$u'"
log "keepalives counted both ways $(elapsed "$t0") s after the copy"
u=$(dev1_usage)
log "status usage: $u"
v() { echo "$u" | jq -r ".$1"; }
pt=$(v payload_to) pf=$(v payload_from) ot=$(v overhead_to) of=$(v overhead_from)
kt=$(v keepalive_to) kf=$(v keepalive_from)
[ "$pt" -ge "$MB10" ] || fail "payload_to $pt < 10 MB ($MB10)"
[ "$pt" -lt 12058624 ] || fail "payload_to $pt >= 11.5 MB for a 10 MB copy"
[ "$pf" -gt 0 ] || fail "payload_from $pf: the device's sshd said nothing?"
[ "$pf" -lt 1048576 ] || fail "payload_from $pf >= 1 MB for a 10 MB upload"
[ "$ot" -gt $((pt / 50)) ] || fail "overhead_to $ot <= 2% of payload_to $pt (TCP/IP headers alone are >= 3.6%)"
[ "$ot" -lt $((pt / 10)) ] || fail "overhead_to $ot >= 10% of payload_to $pt"
[ "$of" -gt 0 ] || fail "overhead_from $of: no ACKs counted"
[ "$kt" -le "$ot" ] || fail "keepalive_to $kt > overhead_to $ot"
[ "$kf" -le "$of" ] || fail "keepalive_from $kf > overhead_from $of"
log "overhead_to $(awk -v o="$ot" -v p="$pt" 'BEGIN { printf "%.2f", 100 * o / p }')% of payload_to"

# the daily row (usage flushes pending usage to state_db first)
today_payload() {
	ctl usage dev1 --json | jq --arg d "$day0" \
	    '[.usage[] | select(.device == "dev1" and .day >= $d) | .payload_to] | add // 0'
}
js=$(ctl usage dev1 --json) || fail "usage dev1 --json failed: $js"
log "usage --json: $js"
p=$(today_payload)
[ "$p" -ge "$MB10" ] || fail "usage: today's payload_to for dev1 is $p, want >= $MB10: $js"
ctl usage --json | jq -e '.usage[] | select(.device == "dev1")' >/dev/null ||
    fail "usage --json (all devices) has no dev1 row"

# /metrics since the relay started
m=$(nsx "$NS_RELAY" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9100 && printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3')
mp=$(echo "$m" | awk '/^simtun_device_wire_bytes_total\{device="dev1",kind="payload",direction="to_device"\}/ { print $2 }')
mk=$(echo "$m" | awk '/^simtun_device_wire_bytes_total\{device="dev1",kind="keepalive",direction="from_device"\}/ { print $2 }')
[ "${mp:-0}" -ge "$MB10" ] || fail "metrics payload to_device '$mp' < $MB10: $(echo "$m" | grep wire_bytes)"
[ "${mk:-0}" -gt 0 ] || fail "metrics keepalive from_device '$mk': $(echo "$m" | grep wire_bytes)"
log "metrics: payload to_device $mp, keepalive from_device $mk"

# a restart keeps the day; what came after the usage request (a keepalive
# at least) is written at exit
k1=$(echo "$js" | jq '[.usage[] | select(.day >= "'"$day0"'") | .keepalive_to] | add // 0')
ka_after() {
	u=$(dev1_usage) || return 1
	[ "$(echo "$u" | jq .keepalive_to)" -gt "$k1" ]
}
wait_until 8 ka_after || fail "no keepalive after the usage request in 8 s: '$u' (stored keepalive_to $k1)"
stop_relay
start_relay "keepalive_interval = 1" "metrics_listen = 127.0.0.1:9100"
js=$(ctl usage dev1 --json) || fail "usage dev1 --json after restart failed: $js"
p2=$(today_payload)
[ "$p2" -ge "$p" ] || fail "after restart today's payload_to for dev1 is $p2, was $p: $js"
k2=$(echo "$js" | jq '[.usage[] | select(.day >= "'"$day0"'") | .keepalive_to] | add // 0')
[ "$k2" -gt "$k1" ] || fail "keepalives after the usage request not written at exit: keepalive_to $k2, was $k1: $js"
log "after restart: today's payload_to $p2, keepalive_to $k2 (was $k1)"
out=$(ctl usage --days 0 2>&1)
rc=$?
[ "$rc" = 1 ] || fail "usage --days 0: exit $rc, want 1: $out"
echo "$out" | grep -q 'error: --days' || fail "usage --days 0: no error: $out"
relay_alive || fail "relay died"
exit 0
