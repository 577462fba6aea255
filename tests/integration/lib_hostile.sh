# tests/integration/lib_hostile.sh: helpers for the data-path abuse tests
# (t_dp_*.sh).  Source it after lib.sh.
#
# The misbehaving peer is tests/hostile/hostile.py (paramiko); it runs in
# the laptop namespace (198.18.0.2) as device key dev2 on port 4650, and
# plays the laptops too.  The honest device is stock `ssh -N -R` with key
# dev1 on port 4649 from the device namespace (behind the carrier NAT), so
# a penalty for the laptop's address never touches it.
#
# While the abuse runs, monitor_start samples the relay every 0.25 s:
# whether `simtunctl status` answered within 1 s, and its VmRSS and CPU
# ticks; monitor_check then asserts on the samples.

HOSTILE=$REPO_ROOT/tests/hostile/hostile.py
# ASan keeps freed memory in a quarantine (256 MB by default) that would
# show up as RSS growth; keep it small so the RSS bounds mean what they say.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16"
SOCK=$T/relay/relay.sock
HOSTILE_PID=
HOSTILE_LOG=
MON_PID=
MON_FILE=$T/monitor.txt
RSS_BASE=

# require_hostile: skip unless a python3 with paramiko (python3-paramiko) is there.
require_hostile() {
	local p
	HPY=
	for p in /usr/bin/python3 python3; do
		if command -v "$p" >/dev/null 2>&1 &&
		    "$p" -c 'import paramiko' 2>/dev/null; then
			HPY=$(command -v "$p"); break
		fi
	done
	[ -n "$HPY" ] || skip "python3-paramiko not installed (make deps)"
	[ "$RELAY_KIND" = simtun ] || skip "simtunctl and relay.conf keys are simtun-relay's"
	[ -x "$SIMTUN_BIN/simtunctl" ] || skip "$SIMTUN_BIN/simtunctl not built"
}

# ctl ARGS...: simtunctl against the test relay's control socket.
ctl() { "$SIMTUN_BIN/simtunctl" -s "$SOCK" "$@"; }

# ctl_ok: true if `simtunctl status` answers within 1 s.
ctl_ok() { timeout 1 "$SIMTUN_BIN/simtunctl" -s "$SOCK" status >/dev/null 2>&1; }

# ctl_responsive N: `status` answers within 1 s, N times in a row (0.1 s apart).
ctl_responsive() {
	local i
	for i in $(seq "$1"); do
		ctl_ok || fail "relay loop not responsive: simtunctl status took over 1 s (try $i)"
		sleep 0.1
	done
}

# hostile NS NAME ARGS...: start hostile.py ARGS in NS in the background (stdout+stderr
# to $T/hostile.NAME.log); sets HOSTILE_PID, HOSTILE_LOG.
hostile() {
	local ns=$1 name=$2; shift 2
	HOSTILE_LOG=$T/hostile.$name.log
	ip netns exec "$ns" "$HPY" "$HOSTILE" --host "$RELAY_ADDR" --port "$RELAY_PORT" \
	    "$@" >>"$HOSTILE_LOG" 2>&1 &
	HOSTILE_PID=$!
	disown
}

# hostile_fg NS ARGS...: run hostile.py in NS in the foreground; its result lines on stdout.
hostile_fg() {
	local ns=$1; shift
	ip netns exec "$ns" "$HPY" "$HOSTILE" --host "$RELAY_ADDR" --port "$RELAY_PORT" \
	    "$@" 2>>"$T/hostile.fg.log"
}

# hostile_wait TIMEOUT PATTERN [LOG]: wait until LOG (default $HOSTILE_LOG) has a line matching PATTERN.
hostile_wait() { wait_until "$1" grep -qE "$2" "${3:-$HOSTILE_LOG}"; }

# kv LINE KEY: the value of KEY in a "k=v k=v" result line.
kv() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | tail -1; }

# relay_rss_kb: the relay's VmRSS in kB.
relay_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$RELAY_PID/status" 2>/dev/null; }

# relay_cpu_ticks: user+system clock ticks the relay has used.
relay_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$RELAY_PID/stat" 2>/dev/null; }

# honest_up: the honest device: stock ssh -N -R 4649 with key dev1 from the device ns,
# reachable from the laptop. Sets HONEST_PID.
honest_up() {
	device_ssh_R -o ServerAliveInterval=5
	HONEST_PID=$SSH_R_PID
	ssh_R_wait 15 || fail "honest device: ssh -R not granted (see $SSH_R_LOG)"
	wait_until 10 device_reachable -c 3 -T 8 || fail "honest device not reachable at the start"
}

# honest_check WHEN: the honest device's session is up and a laptop logs in through it
# (a real ssh round trip through the relay) within 10 s.
honest_check() {
	kill -0 "$HONEST_PID" 2>/dev/null ||
	    fail "honest device's ssh -R session dropped ($1)"
	device_reachable -c 5 -T 10 ||
	    fail "honest device not reachable from the laptop ($1)"
	log "honest device reachable ($1)"
}

# rss_baseline: remember the relay's RSS now (after start-up and the honest device).
rss_baseline() {
	RSS_BASE=$(relay_rss_kb)
	[ -n "$RSS_BASE" ] || fail "cannot read the relay's VmRSS"
	log "relay RSS baseline $((RSS_BASE / 1024)) MB"
}

# rss_check MAX_GROWTH_MB WHEN: the relay's RSS now is at most baseline + MAX_GROWTH_MB.
rss_check() {
	local now; now=$(relay_rss_kb)
	[ -n "$now" ] || fail "relay gone ($2)"
	[ $((now - RSS_BASE)) -le $(($1 * 1024)) ] ||
	    fail "relay RSS grew $(((now - RSS_BASE) / 1024)) MB ($((RSS_BASE / 1024)) -> $((now / 1024)) MB), bound +$1 MB ($2)"
}

# monitor_start: sample the relay every 0.25 s in the background into $MON_FILE:
# "time status_rc status_seconds rss_kb cpu_ticks open_fds". Needs rss_baseline first.
monitor_start() {
	: >"$MON_FILE"
	(
		while kill -0 "$RELAY_PID" 2>/dev/null; do
			t0=$(date +%s.%N)
			timeout 1 "$SIMTUN_BIN/simtunctl" -s "$SOCK" status >/dev/null 2>&1
			rc=$?
			echo "$t0 $rc $(elapsed "$t0") $(relay_rss_kb) $(relay_cpu_ticks)" \
			    "$(ls "/proc/$RELAY_PID/fd" 2>/dev/null | wc -l)"
			sleep 0.25
		done
	) >>"$MON_FILE" 2>/dev/null &
	MON_PID=$!
	disown
}

# monitor_stop: end the sampling loop.
monitor_stop() {
	[ -n "$MON_PID" ] && kill "$MON_PID" 2>/dev/null
	MON_PID=
}

# monitor_check MAX_GROWTH_MB [status|nostatus] WHEN: over the samples so far, every status
# answered within 1 s (unless nostatus), and RSS stayed under baseline + MAX_GROWTH_MB.
monitor_check() {
	local bound=$1 want=${2:-status} when=${3:-during the abuse} n bad peak slow
	n=$(wc -l <"$MON_FILE")
	[ "$n" -ge 4 ] || fail "monitor took only $n samples ($when)"
	bad=$(awk '$2 != 0' "$MON_FILE" | wc -l)
	slow=$(awk 'BEGIN { m = 0 } $3 > m { m = $3 } END { print m }' "$MON_FILE")
	peak=$(awk -v b="$RSS_BASE" 'BEGIN { m = b } $4 > m { m = $4 } END { print m }' "$MON_FILE")
	log "monitor: $n samples, $bad status misses, slowest status ${slow}s, peak RSS $((peak / 1024)) MB (baseline $((RSS_BASE / 1024)) MB)"
	if [ "$want" = status ] && [ "$bad" -gt 0 ]; then
		fail "relay loop not responsive $when: $bad of $n \`simtunctl status\` calls did not answer within 1 s"
	fi
	[ $((peak - RSS_BASE)) -le $((bound * 1024)) ] ||
	    fail "relay RSS peaked at $((peak / 1024)) MB $when: grew $(((peak - RSS_BASE) / 1024)) MB, bound +$bound MB"
}

# monitor_cpu_pct: average CPU use (percent of one core) over the samples so far.
monitor_cpu_pct() {
	awk 'NR == 1 { t0 = $1; c0 = $5 } { t1 = $1; c1 = $5 }
	    END { d = t1 - t0; if (d <= 0) d = 1; printf "%d", (c1 - c0) / d }' "$MON_FILE"
}

# monitor_peak_fds: the most descriptors the relay held in any sample.
monitor_peak_fds() { awk 'BEGIN { m = 0 } $6 > m { m = $6 } END { print m }' "$MON_FILE"; }

# relay_log_lines ERE: number of relay log lines matching ERE.
relay_log_lines() { grep -cE "$1" "$RELAY_LOG"; }

# dp_setup [relay.conf lines...]: the common bed: namespaces, key dev2 (ports 4650-4653)
# for hostile.py, key dev3 (no port), relay started with the given settings, the honest
# device up, RSS baseline.
dp_setup() {
	require_relay
	require_hostile
	netns_setup
	add_device_key dev2 4650 4651 4652 4653
	add_device_key dev3
	start_relay "$@"
	wait_until 5 test -S "$SOCK" || fail "no control socket $SOCK"
	honest_up
	rss_baseline
}

# relay_log_trim: a flooded relay log (over 20 MB) keeps its first and last 2000 lines
# (same inode: the relay still appends to it), so a failed run does not keep gigabytes.
relay_log_trim() {
	local sz; sz=$(stat -c %s "$RELAY_LOG" 2>/dev/null) || return 0
	[ "$sz" -gt 20000000 ] || return 0
	{ head -n 2000 "$RELAY_LOG"; echo "[... $sz bytes of log cut by the test ...]"
	  tail -n 2000 "$RELAY_LOG"; } >"$T/relay.log.trim"
	cat "$T/relay.log.trim" >"$RELAY_LOG"
	rm -f "$T/relay.log.trim"
}
