#!/bin/bash
# Issue 10, test 4: file descriptor exhaustion.  The relay runs under
# `ulimit -n 128` with max_sessions_per_key = 4 and the connection caps set
# above the fd limit, so that the fd limit is what bites:
#  a) one key (dev3) opens 40 authenticated sessions, one after the other:
#     only the newest 4 stay open (newest wins), older ones are closed;
#  b) laptops open 300 connections over the 4 ports of an echo device
#     (tests/hostile strict, dev2) and 100 silent ones to the SSH port, far
#     more than 128 fds: the relay runs out of descriptors (EMFILE on
#     accept; or it refuses by its own caps first, but then it must have
#     used at least 100 fds).  Meanwhile the relay must not spin (CPU under
#     30% of a core once the connections are in) nor flood its log (fewer
#     than 20 "Too many open files" lines, under 20000 lines in all);
#  c) once the laptops are gone the relay recovers by itself: within 5 s a
#     fresh laptop connection gets its echo, `simtunctl status` answers and
#     the honest device (4649) is reachable; RSS stayed under +64 MB.
# DP_FD_PART=b runs b) and c) only (to check them on a relay that fails a).
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/lib_hostile.sh"

require_cmds prlimit
# fdfail MSG: fail, cutting a flooded relay log down first.
fdfail() { relay_log_trim; fail "$@"; }
RELAY_WRAPPER="prlimit --nofile=128:128"
dp_setup "max_sessions_per_key = 4" "max_conns = 100000" \
    "max_conns_per_source = 100000" "max_conns_per_port = 100000" \
    "max_startups_per_source = 1000"
[ "$(awk '/^Max open files/ { print $4 }' "/proc/$RELAY_PID/limits")" = 128 ] ||
    fail "relay not running under an fd limit of 128"

hostile "$NS_LAPTOP" echo strict --key "$T/keys/dev2" --fports 4650,4651,4652,4653
echo_pid=$HOSTILE_PID
echo_log=$HOSTILE_LOG
hostile_wait 10 '^forward=granted port=4653' || fail "echo device did not get its 4 ports (see $echo_log)"
hostile_fg "$NS_LAPTOP" echo --ports 4650 --bytes 65536 >"$T/echo0.out" ||
    fail "echo through 4650 failed before the test: $(cat "$T/echo0.out")"
monitor_start

if [ "${DP_FD_PART:-ab}" != b ]; then
# a) sessions per key: newest wins
hostile "$NS_LAPTOP" sessions sessions --key "$T/keys/dev3" --n 40 --settle 3 --duration 600
sess_log=$HOSTILE_LOG
hostile_wait 60 '^opened=' || fail "sessions: no report (see $sess_log)"
res=$(grep '^opened=' "$sess_log")
log "40 sessions of dev3: $res"
[ "$(kv "$res" opened)" = 40 ] || fail "only $(kv "$res" opened) of 40 dev3 sessions could log in"
[ "$(kv "$res" alive)" = "37,38,39,40" ] ||
    fail "after 40 logins with one key (max_sessions_per_key = 4), alive sessions are [$(kv "$res" alive)], want the newest 4 [37,38,39,40]"
ctl_responsive 3
honest_check "after 40 sessions of one key"
fi

# b) 300 laptop connections: accept runs out of fds
lines0=$(wc -l <"$RELAY_LOG")
hostile "$NS_LAPTOP" laptops laptops --n 300 --ports 4650,4651,4652,4653 --hold 8 --linger
lap_pid=$HOSTILE_PID lap_log=$HOSTILE_LOG
hostile "$NS_LAPTOP" silent laptops --n 100 --ports "$RELAY_PORT" --hold 8 --linger
ssh_pid=$HOSTILE_PID ssh_log=$HOSTILE_LOG
wait_until 5 grep -q '^opened=' "$lap_log" || fail "laptops did not start"
wait_until 5 grep -q '^opened=' "$ssh_log" || fail "laptops on the ssh port did not start"
log "laptops: $(grep '^opened=' "$lap_log"); on the ssh port: $(grep '^opened=' "$ssh_log")"
# CPU over the quiet part: the connections are in, nothing moves
sleep 2.5
t0=$(relay_cpu_ticks); s0=$(now)
wait_until 12 grep -q '^ended=' "$lap_log" || fail "laptops did not report"
t1=$(relay_cpu_ticks); dt=$(elapsed "$s0")
cpu=$(awk -v a="$t0" -v b="$t1" -v d="$dt" 'BEGIN { printf "%d", (b - a) / d }')
log "laptops: $(grep '^ended=' "$lap_log"); relay CPU ${cpu}% of a core over the last ${dt} s at the fd limit"
relay_alive || fdfail "relay died at the fd limit"
emfile=$(grep -c 'Too many open files' "$RELAY_LOG")
fds=$(monitor_peak_fds)
lines=$(($(wc -l <"$RELAY_LOG") - lines0))
log "\"Too many open files\" lines so far: $emfile; relay held up to $fds fds; $lines log lines"
[ "$emfile" -ge 1 ] || [ "$fds" -ge 100 ] ||
    fail "the relay never hit EMFILE and held at most $fds fds: the test did not reach the fd limit"
[ "$lines" -lt 20000 ] || fdfail "relay log flooded: $lines lines at the fd limit"
[ "$emfile" -lt 20 ] || fdfail "relay log flooded: $emfile \"Too many open files\" lines (want < 20)"
[ "$cpu" -lt 30 ] || fdfail "relay used ${cpu}% CPU at the fd limit (spinning on accept?)"

# c) the laptops are gone: recovery without help
wait_until 6 eval "! kill -0 $lap_pid 2>/dev/null && ! kill -0 $ssh_pid 2>/dev/null" ||
    kill "$lap_pid" "$ssh_pid" 2>/dev/null
t0=$(now)
wait_until 5 eval 'hostile_fg "$NS_LAPTOP" echo --ports 4651 --bytes 65536 --timeout 2 >"$T/echo1.out"' ||
    fdfail "no echo through 4651 within 5 s after the load went away: $(cat "$T/echo1.out")"
log "fresh laptop connection echoed $(elapsed "$t0") s after the load went away"
monitor_stop
ctl_responsive 5
honest_check "after the fd exhaustion"
kill -0 "$echo_pid" 2>/dev/null || fail "echo device's session dropped: $(tail -3 "$echo_log")"
monitor_check 64 nostatus "over the whole run"
emfile=$(grep -c 'Too many open files' "$RELAY_LOG")
[ "$emfile" -lt 20 ] || fdfail "relay log flooded: $emfile \"Too many open files\" lines (want < 20)"
log "\"Too many open files\" lines over the run: $emfile"
exit 0
