#!/bin/bash
# Issue 14: three simtun-relays share one Redis directory (redis = the
# master; lib_cluster.sh has the bed).  31 agents behind the CGNAT carrier.
#  1. pi-01..pi-30 each list the three relays in one of the six orders (no
#     DNS: the order is the agent's own); pi-01..06, 13..18, 25..30 have
#     relays_active = 1, the others 2.  Every relay lists all 30 (and pi-31,
#     dev1) online with a relay that holds them; the sessions are exactly
#     each agent's first relay, or first two; none flaps between relays.
#     An operator on each relay reaches every device by name (a session
#     per relay forwarding to NAME:7, the device's "who am I" service: 90
#     channels), and from each relay ssh -W NAME:7 (what ssh -J runs) and
#     an ssh -J login reach a device another relay holds.
#  2. dev1 (on relay1) reboots half-open and comes back on relay2: relay1
#     closes its stale session ("taken over by relay") within 2.5 s (the
#     relay probes it 2 s first), and the operator's ssh -J relay3 dev1
#     made during the reboot is held and lands on the new boot.
#  3. SIGKILL relay3: the relays_active = 2 agents answer every probe from
#     relay1 and relay2 throughout (kill to lease_time + 2 s); the
#     relays_active = 1 agents that were on relay3 are back on their next
#     relay within 2 x backoff_max + 3 s; pi-31 (relay3 only) leaves the
#     directory within lease_time (+ 1 s polling) and no device is left on
#     relay3.
#  Last, operators on relay1 and relay2 go through every device at the same
#  moment, keeping their side open: every channel brings the answer.
# timeout: 120
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_agent.sh"
. "$(dirname "$0")/lib_cluster.sh"

NFLEET=30
BACK_LIMIT=$((2 * CL_BACKOFF_MAX + 3))	# s: a relays_active = 1 agent back elsewhere
TAKEOVER_LIMIT=2.5		# s: new session on relay2 -> relay1 closes the old one (its probe: 2 s)
ORDERS=("1 2 3" "1 3 2" "2 3 1" "2 1 3" "3 1 2" "3 2 1")
cluster_require
cluster_setup
fleet_add $(seq "$NFLEET") 31
cluster_redis_start
cluster_relays_start

# pi-I: ORDER[I] its relays in its order, ACTIVE[I] its relays_active,
# HOLDERS[pi-I] the relays that may hold it (its first ACTIVE[I]).
ORDER=() ACTIVE=() ALL=() A1=() A2=()
declare -A HOLDERS=()
for i in $(seq "$NFLEET"); do
	ORDER[i]=${ORDERS[$(((i - 1) % 6))]}
	ACTIVE[i]=$((((i - 1) / 6) % 2 + 1))
	printf -v d 'pi-%02d' "$i"
	ALL+=("$d")
	if [ "${ACTIVE[i]}" = 1 ]; then
		A1+=("$i"); HOLDERS[$d]="relay${ORDER[i]%% *}"
	else
		A2+=("$i"); o=${ORDER[i]}; HOLDERS[$d]="relay${o:0:1} relay${o:2:1}"
	fi
done
HOLDERS[pi-31]=relay3
HOLDERS[dev1]=relay1

t0=$(now)
specs=()
for i in $(seq "$NFLEET"); do specs+=("$i ${ACTIVE[i]} ${ORDER[i]}"); done
fleet_agents_start "${specs[@]}" "31 1 3"
cluster_agent_start dev1 "$NS_DEVICE" 127.0.0.1:22 1 1 2 3
log "31 agents in $NS_FLEET and dev1 in $NS_DEVICE started ($(elapsed "$t0") s)"

# fleet_misplaced N: the devices relay N does not list online on a relay that
# may hold them ("device state relay" each, ';'-separated); empty = all well.
fleet_misplaced() {
	local d st h
	cl_ctl "$1" devices --json 2>/dev/null | jq -r '.devices[] | "\(.device) \(.state) \(.relay)"' |
	    while read -r d st h; do
		[ -n "${HOLDERS[$d]:-}" ] || continue
		[ "$st" = online ] && case " ${HOLDERS[$d]} " in *" $h "*) continue;; esac
		printf '%s %s %s (want %s); ' "$d" "$st" "$h" "${HOLDERS[$d]}"
	done
}
# fleet_listed N: relay N lists all 32 where they are.
fleet_listed() {
	local js
	js=$(cl_ctl "$1" devices --json 2>/dev/null) || return 1
	[ "$(echo "$js" | jq '[.devices[] | select(.device | test("^(pi-|dev1$)"))] | length')" = 32 ] &&
	    [ -z "$(fleet_misplaced "$1")" ]
}
for n in 1 2 3; do
	wait_until 40 fleet_listed "$n" || {
		cl_agents_alive
		fail "relay$n does not list the fleet where it is: $(fleet_misplaced "$n" | head -c 800)"
	}
done
log "every relay lists the 31 agents and dev1 online where they are ($(elapsed "$t0") s after the start)"

# --- 1. the fleet spread over the relays, reached from every relay ----------
# the sessions: each relays_active = 1 agent on its first relay, each
# relays_active = 2 agent on both of its first two (its forwards on both)
for n in 1 2 3; do
	cl_ctl "$n" status --json | jq -r '.devices[] | select(.device | startswith("pi-")) | .device' |
	    sed "s/^/relay$n /"
done | sort >"$T/sessions.got"
for i in $(seq "$NFLEET"); do
	printf -v d 'pi-%02d' "$i"
	for h in ${HOLDERS[$d]}; do echo "$h $d"; done
done | { cat; echo "relay3 pi-31"; } | sort >"$T/sessions.want"
cmp -s "$T/sessions.got" "$T/sessions.want" ||
    fail "fleet sessions (relay device) differ from the agents' relays and relays_active: $(diff "$T/sessions.want" "$T/sessions.got" | grep '^[<>]' | head -8 | tr '\n' ';')"
log "sessions: $(awk '{ n[$1]++ } END { for (r in n) printf "%s %d, ", r, n[r] }' "$T/sessions.got")the ${#A2[@]} relays_active = 2 agents on both of their first two relays"
t0=$(now)
for n in 1 2 3; do cl_tunnels "$n" $(seq "$NFLEET"); done
cl_id_all "1 2 3" "$T/id1" "${ALL[@]}"
[ ! -s "$T/id1" ] || fail "operators could not reach by name: $(tr '\n' ' ' <"$T/id1" | head -c 600) (see $T/ops.relay*.log)"
log "an operator on each relay reached all $NFLEET devices by name ($((3 * NFLEET)) channels, $(elapsed "$t0") s)"
# what ProxyJump runs (ssh -W), each to a device another relay holds:
# relay1 -> pi-03 (on relay2), relay2 -> pi-05 (on relay3), relay3 -> pi-01
for x in "1 pi-03" "2 pi-05" "3 pi-01"; do
	set -- $x
	cl_id "$1" "$2" || fail "ssh -W $2:7 relay$1 failed (see $T/ops.relay$1.log)"
done
# a device flapping between relays (say, the two sessions of a relays_active
# = 2 agent each taking the other over) would have shown by now
for n in 1 2 3; do
	f=$(grep -c 'taken over by relay' "$T/relay$n.log")
	[ "$f" = 0 ] || fail "relay$n: $f sessions taken over by another relay in a quiet fleet, e.g. $(grep -m3 -o 'device [^ ]* ([^)]*) closed: taken over by relay [^:]*' "$T/relay$n.log" | tr '\n' ';')"
done
# and ssh -J logins on the same paths
t0=$(now)
cl_reach 1 pi-03 & l1=$!
cl_reach 2 pi-05 & l2=$!
cl_reach 3 pi-01 & l3=$!
wait $l1 && wait $l2 && wait $l3 || fail "an ssh -J login to a device on another relay failed (see $T/ops.relay*.log)"
log "ssh -J logins relay1 -> pi-03 (relay2), relay2 -> pi-05 (relay3), relay3 -> pi-01 (relay1) ($(elapsed "$t0") s)"

# --- 2. half-open reboot, back on another relay, held ssh lands -------------
cl_reach 3 dev1 || fail "dev1 not reachable from relay3 before the reboot"
reboot_device
AG_PID[dev1]=
cl_ctl 1 status --json | jq -e '.devices[] | select(.device == "dev1")' >/dev/null ||
    fail "test bed: relay1 saw dev1's session close (no half-open session)"
( cl_reach 3 dev1 45 && echo landed >"$T/held.ok" ) &
held_pid=$!
sleep 2		# the device boots; the operator's channel waits
t0=$(now)
cluster_agent_start dev1 "$NS_DEVICE" 127.0.0.1:22 1 2 3 1
wait_until 15 grep -q 'dev1.*taken over by relay relay2' "$T/relay1.log" ||
    fail "relay1 did not close dev1's stale session when dev1 came up on relay2 ($(elapsed "$t0") s)"
t_up=$(cl_log_time 2 'device dev1: serving name dev1:22')
t_gone=$(cl_log_time 1 'dev1.*taken over by relay relay2')
[ -n "$t_up" ] || fail "relay2 did not log dev1's named forward"
dt=$(awk -v a="$t_up" -v b="$t_gone" 'BEGIN { printf "%.3f", b - a }')
awk -v d="$dt" -v l="$TAKEOVER_LIMIT" 'BEGIN { exit !(d <= l) }' ||
    fail "relay1 closed dev1's stale session $dt s after dev1 was up on relay2 (limit $TAKEOVER_LIMIT s)"
log "relay1 closed dev1's stale session $dt s after dev1 came up on relay2: $(grep -o 'dev1.*taken over by relay relay2[^;]*' "$T/relay1.log" | head -1)"
wait_until 5 eval '! cl_ctl 1 status --json | jq -e ".devices[] | select(.device == \"dev1\")" >/dev/null' ||
    fail "relay1 still lists dev1's stale session"
wait "$held_pid"
[ -f "$T/held.ok" ] || fail "the operator's ssh -J relay3 dev1 made during the reboot did not land on the new boot (see $T/ops.relay3.log)"
log "the held ssh -J relay3 dev1 landed on the new boot $(elapsed "$t0") s after the agent started"
for n in 1 3; do
	wait_until 5 cl_dev_is "$n" dev1 "online relay2" ||
	    fail "relay$n lists dev1 as '$(cl_dev "$n" dev1)', want 'online relay2'"
done

# --- 3. SIGKILL relay3 --------------------------------------------------------
on3=()		# relays_active = 1 agents on relay3
for i in "${A1[@]}"; do [ "${ORDER[i]%% *}" = 3 ] && on3+=("$i"); done
a2names=()
for i in "${A2[@]}"; do printf -v d 'pi-%02d' "$i"; a2names+=("$d"); done
cl_dev_is 1 pi-31 "online relay3" || fail "pi-31 not on relay3 before the kill: $(cl_dev 1 pi-31)"
t_kill_tod=$(tod)
t_kill=$(now)
cluster_relay_kill 3
log "relay3 SIGKILLed"
# relays_active = 2: probed from relay1 and relay2 until past lease_time
probe_loop() {
	local end
	end=$(awk -v t="$t_kill" -v l="$CL_LEASE" 'BEGIN { printf "%.3f", t + l + 2 }')
	: >"$T/probe.lat"
	: >"$T/probe.fail"
	while :; do
		LAT=$T/probe.lat PACE=0.02 cl_id_all "1 2" "$T/probe.out" "${a2names[@]}"
		sed "s/^/$(elapsed "$t_kill") s: /" "$T/probe.out" >>"$T/probe.fail"
		awk -v e="$end" -v n="$(now)" 'BEGIN { exit !(n > e) }' && break
	done
}
probe_loop &
p1=$!
# relay3's lease: pi-31 (relay3 only) leaves the directory: relay N lists it
# offline, on no relay (one simtunctl a poll: the watch stays fine-grained)
pi31_gone() {
	case $(cl_ctl "$1" devices --json | grep -o '{"device":"pi-31"[^}]*}') in
	*'"state":"offline"'*'"relay":null'*) return 0;;
	esac
	return 1
}
lease_watch() { wait_until $((CL_LEASE + 4)) pi31_gone 1 && elapsed "$t_kill" >"$T/lease.gone"; }
lease_watch &
pl=$!
# relays_active = 1 agents that were on relay3: back on their next relay
# (as their logs say: "connected to relayN" after the kill)
back_all() {
	local i d
	for i in "${on3[@]}"; do
		printf -v d 'pi-%02d' "$i"
		[ -n "$(ag_connected_after "$d" "$t_kill_tod")" ] || return 1
	done
}
wait_until $((BACK_LIMIT + 1)) back_all
back_max=0
for i in "${on3[@]}"; do
	printf -v d 'pi-%02d' "$i"
	o=${ORDER[i]}; want=relay${o:2:1}
	read -r dt got <<<"$(ag_connected_after "$d" "$t_kill_tod")"
	[ -n "${dt:-}" ] || fail "$d (relays_active = 1, relay3 first) did not connect to another relay within $((BACK_LIMIT + 1)) s of the kill"
	[ "$got" = "$want" ] || fail "$d connected to $got after relay3 died, want $want (its next relay)"
	awk -v d="$dt" -v l="$BACK_LIMIT" 'BEGIN { exit !(d <= l) }' ||
	    fail "$d was back on $want $dt s after the kill (limit $BACK_LIMIT s: 2 x backoff_max + 3)"
	back_max=$(awk -v a="$back_max" -v b="$dt" 'BEGIN { print (b > a ? b : a) }')
done
# on3_listed: relay1 lists them online on their next relay
on3_listed() {
	local js i d o
	js=$(cl_ctl 1 devices --json | jq -r '.devices[] | "\(.device) \(.state) \(.relay)"') || return 1
	for i in "${on3[@]}"; do
		printf -v d 'pi-%02d' "$i"
		o=${ORDER[i]}
		echo "$js" | grep -qx "$d online relay${o:2:1}" || return 1
	done
}
wait_until 5 on3_listed ||
    fail "relay1 does not list relay3's relays_active = 1 agents on their next relay: $(cl_ctl 1 devices --json | jq -c '[.devices[] | select(.relay == "relay3" or .state != "online") | [.device, .state, .relay]]')"
on3names=()
for i in "${on3[@]}"; do printf -v d 'pi-%02d' "$i"; on3names+=("$d"); done
cl_id_all 1 "$T/id3" "${on3names[@]}"
[ ! -s "$T/id3" ] || fail "relay1 does not reach by name: $(tr '\n' ' ' <"$T/id3")"
log "the ${#on3[@]} relays_active = 1 agents of relay3 were back on their next relay within $back_max s of the kill (limit $BACK_LIMIT s), listed there and reached"
wait "$pl"
[ -s "$T/lease.gone" ] ||
    fail "pi-31 still '$(cl_dev 1 pi-31)' on relay1, '$(cl_dev 2 pi-31)' on relay2 $(elapsed "$t_kill") s after relay3 died (lease_time $CL_LEASE)"
dt=$(cat "$T/lease.gone")
awk -v d="$dt" -v l="$CL_LEASE" 'BEGIN { exit !(d <= l + 1) }' ||
    fail "pi-31 left the directory $dt s after relay3 died, lease_time is $CL_LEASE s (+ 1 s for polling)"
wait_until 2 pi31_gone 2 ||
    fail "relay2 still lists pi-31 as '$(cl_dev 2 pi-31)' when relay1 lists it offline"
log "pi-31 (relay3 only) left the directory (offline, on no relay, in devices --json) $dt s after the kill (lease_time $CL_LEASE s)"
wait "$p1"
n=$(grep -c . "$T/probe.lat")
worst=$(sort -n "$T/probe.lat" | tail -1 | awk '{ printf "%.3f", $1 }')
[ ! -s "$T/probe.fail" ] ||
    fail "relays_active = 2 agents unreachable after relay3 died (pass ending s after the kill: relay device): $(head -8 "$T/probe.fail" | tr '\n' ';') (see $T/ops.relay*.log)"
log "the ${#a2names[@]} relays_active = 2 agents answered all $n probes from relay1 and relay2 in the $(elapsed "$t_kill") s after the kill (slowest $worst s)"
for n in 1 2; do
	left=$(cl_ctl "$n" devices --json | jq -r '.devices[] | select(.relay == "relay3") | .device' | tr '\n' ' ')
	[ -z "$left" ] || fail "relay$n still lists on the dead relay3: $left"
done
# after the kill: relay1 and relay2 list the 30 on relays that may hold them
for i in $(seq "$NFLEET"); do
	printf -v d 'pi-%02d' "$i"
	h='' k=0
	for n in ${ORDER[i]}; do
		[ "$n" != 3 ] && [ "$k" -lt "${ACTIVE[i]}" ] && { h="$h relay$n"; k=$((k + 1)); }
	done
	HOLDERS[$d]=${h# }
done
HOLDERS[dev1]=relay2
unset 'HOLDERS[pi-31]'
for n in 1 2; do
	wait_until 5 eval "[ -z \"\$(fleet_misplaced $n)\" ]" ||
	    fail "after relay3 died, relay$n lists: $(fleet_misplaced "$n" | head -c 800)"
done
log "relay1 and relay2 list all $NFLEET online on their remaining relays"

# --- operators on two relays at once ------------------------------------------
# each opens a channel to every device at the same moment, keeping its
# side open until the answer came (as an ssh client does until the
# server's banner): every channel must bring the device's answer
for n in 1 2; do cl_id_burst "$n" "$T/burst.relay$n" "${ALL[@]}" & done
wait
bad=$(cat "$T/burst.relay1" "$T/burst.relay2")
if [ -n "$bad" ]; then
	read -r r d <<<"$bad"
	sleep 1		# its close is logged
	fail "operators on relay1 and relay2 at once: $(echo "$bad" | wc -l) of $((2 * NFLEET)) channels brought nothing in 5 s ($(echo $bad | head -c 300)); $r's log of the first: $(grep "operator ops .* channel to $d:7 .*closed" "$T/$r.log" | tail -1)"
fi
log "operators on relay1 and relay2 at once: all $((2 * NFLEET)) channels brought the device's answer"
cl_alive 1 && cl_alive 2 || fail "a relay died"
exit 0
