#!/bin/bash
# Issue 10, test 4 (caps): the connection caps of relay.conf refuse what
# is over them, each refusal logged (one line each, or counted in a
# rate-limited "N more connections refused" line), and nothing else.
# max_conns_per_source = 4, max_conns_per_port = 6, max_conns = 8; an echo
# device (tests/hostile strict, dev2) holds 4650 and 4651; groups of 10
# idle laptop connections, 1.2 s apart, each group held open:
#   198.18.0.2  -> 4650: 4 kept, 6 refused (max_conns_per_source)
#   198.18.0.20 -> 4650: 2 kept, 8 refused (max_conns_per_port)
#   198.18.0.21 -> 4651: 2 kept, 8 refused (max_conns)
# The kept ones still echo, the relay answers `simtunctl status` within
# 1 s, RSS stays under +64 MB, and once the laptops are gone the honest
# device (4649) is reachable again.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/lib_hostile.sh"

dp_setup "max_conns_per_source = 4" "max_conns_per_port = 6" "max_conns = 8"
ip -n "$NS_LAPTOP" addr add 198.18.0.20/24 dev eth0
ip -n "$NS_LAPTOP" addr add 198.18.0.21/24 dev eth0
hostile "$NS_LAPTOP" echo strict --key "$T/keys/dev2" --fports 4650,4651
echo_pid=$HOSTILE_PID
hostile_wait 10 '^forward=granted port=4651' || fail "echo device did not get 4650/4651 (see $HOSTILE_LOG)"
monitor_start

hostile "$NS_LAPTOP" g1 laptops --src "$LAPTOP_ADDR" --n 10 --ports 4650 --hold 6 --linger
sleep 1.2
hostile "$NS_LAPTOP" g2 laptops --src 198.18.0.20 --n 10 --ports 4650 --hold 5 --linger
sleep 1.2
hostile "$NS_LAPTOP" g3 laptops --src 198.18.0.21 --n 10 --ports 4651 --hold 4 --linger
sleep 0.5
ctl_responsive 3
wait_until 8 eval '[ "$(cat "$T"/hostile.g[123].log | grep -c "^ended=")" = 3 ]' ||
    fail "laptop groups did not report"
monitor_stop
errs=
for g in g1:6:max_conns_per_source g2:8:max_conns_per_port g3:8:max_conns; do
	IFS=: read -r name want cap <<<"$g"
	res=$(grep '^ended=' "$T/hostile.$name.log")
	log "$name: $res (want $want refused by $cap)"
	[ "$(kv "$res" ended)" = "$want" ] ||
	    errs="$errs; $name: $(kv "$res" ended) of 10 connections refused, want $want ($cap)"
	grep -q "($cap)" "$RELAY_LOG" || errs="$errs; no log line names $cap"
done
logged=$(grep -cE 'refused connection from 198\.18\.0\.(2|20|21) port [0-9]+ to port 465[01]' "$RELAY_LOG")
counted=$(sed -n 's/.* \([0-9][0-9]*\) more connections refused.*/\1/p' "$RELAY_LOG" | awk '{ s += $1 } END { print s + 0 }')
log "refusals: $logged logged one per line, $counted counted in summary lines"
[ $((logged + counted)) = 22 ] ||
    errs="$errs; $logged refusal lines + $counted counted = $((logged + counted)), want 22 (one per refused connection)"
[ -z "$errs" ] || fail "${errs#; }"
monitor_check 64 status "under the caps"
kill -0 "$echo_pid" 2>/dev/null || fail "echo device's session dropped"
res=$(hostile_fg "$NS_LAPTOP" echo --ports 4650 --bytes 65536) ||
    fail "no echo through 4650 after the laptops left: $res"
honest_check "after the caps"
exit 0
