#!/bin/bash
# Issue 14, the directory's own failures: three simtun-relays find the Redis
# master through three Sentinels (master :6379, replica :6380; down after
# 1 s, failover timeout 3 s); pi-01..06 are on relay1..3, two each.
#  (5 runs first: the failover of 4 then starts from a directory the
#  relays rebuilt.)
#  5. Redis stopped entirely (master, replica and Sentinels): every relay
#     says simtun_cluster_redis_up 0 and keeps serving its own devices and
#     operators (a new operator session too), no device session drops, and
#     a device that comes up meanwhile (pi-07, on relay2) is served there.  Redis back, empty: the
#     relays re-publish what they hold, every relay lists every device on
#     its relay again, and operators on every relay reach every device.
#  4. SIGKILL the master: Sentinel promotes the replica; the relays follow
#     it with no restart (same pids, redis_up 1, no device session drops),
#     a device that comes up after the failover (pi-08, on relay3) is found
#     from relay1 and relay2, and every operator reaches every device.
# timeout: 90
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_agent.sh"
. "$(dirname "$0")/lib_cluster.sh"

CL_DIRECTORY=sentinel
cluster_require
cluster_setup
fleet_add 1 2 3 4 5 6 7 8
cluster_redis_start -s
cluster_relays_start
# pi-01/04 list relay1 first, pi-02/05 relay2, pi-03/06 relay3 (the others
# in turn); pi-07 relay2, pi-08 relay3
declare -A HOME_OF=()
# spec I FIRST: pi-I's fleet_agents_start argument (relays_active 1, FIRST
# then the others in turn); HOME_OF[pi-I] = relayFIRST.
spec() {
	local f=$(($2 - 1)) n
	printf -v n 'pi-%02d' "$1"
	HOME_OF[$n]=relay$2
	SPEC="$1 1 $2 $(((f + 1) % 3 + 1)) $(((f + 2) % 3 + 1))"
}
specs=()
for i in 1 2 3 4 5 6; do spec "$i" $(((i - 1) % 3 + 1)); specs+=("$SPEC"); done
fleet_agents_start "${specs[@]}"

# listed_home N: relay N lists every started device online on its home relay.
listed_home() {
	local d st h n=0
	while read -r d st h; do
		[ -n "${HOME_OF[$d]:-}" ] || continue
		[ "$st $h" = "online ${HOME_OF[$d]}" ] || return 1
		n=$((n + 1))
	done < <(cl_ctl "$1" devices --json 2>/dev/null | jq -r '.devices[] | "\(.device) \(.state) \(.relay)"')
	[ "$n" = "${#HOME_OF[@]}" ]
}
# listing N: what relay N says of the started devices.
listing() {
	cl_ctl "$1" devices --json | jq -r '.devices[] | select(.device | startswith("pi-")) | "\(.device) \(.state) \(.relay)"' |
	    tr '\n' ';'
}
# all_listed LIMIT WHAT: every relay lists every started device on its home, within LIMIT s.
all_listed() {
	local n
	for n in 1 2 3; do
		wait_until "$1" listed_home "$n" || fail "$2: relay$n lists $(listing "$n")"
	done
}
# matrix WHAT: an operator on each relay reaches each started device by name.
matrix() {
	cl_id_all "1 2 3" "$T/id" "${!HOME_OF[@]}"
	[ ! -s "$T/id" ] || fail "$1: not reached by name: $(tr '\n' ' ' <"$T/id") (see $T/ops.relay*.log)"
}
# sessions_count: sessions pi-01..06 lost (their logs' "session to ... closed").
sessions_count() {
	local i n=0 c
	for i in 1 2 3 4 5 6; do
		c=$(grep -c 'session to .* closed' "${AG_LOG[$(fleet_name "$i")]}")
		n=$((n + c))
	done
	echo "$n"
}
redis_up_all() { cl_redis_up_is 1 "$1" && cl_redis_up_is 2 "$1" && cl_redis_up_is 3 "$1"; }

for n in 1 2 3; do cl_tunnels "$n" 1 2 3 4 5 6 7 8; done
all_listed 20 "at start"
matrix "at start"
log "relays 1-3 list pi-01..06 on their relays; operators on each relay reach all six"
pids="${CL_PID[1]} ${CL_PID[2]} ${CL_PID[3]}"
s0=$(sessions_count)

# --- 5. Redis stopped entirely --------------------------------------------
t0=$(now)
for r in sentinel1 sentinel2 sentinel3 replica master; do redis_kill "$r" TERM; done
wait_until 10 redis_up_all 0 ||
    fail "simtun_cluster_redis_up not 0 on every relay $(elapsed "$t0") s after Redis stopped"
log "Redis stopped: every relay says simtun_cluster_redis_up 0 after $(elapsed "$t0") s"
for n in 1 2 3; do
	for d in pi-0$n pi-0$((n + 3)); do
		cl_id "$n" "$d" || fail "Redis down: an operator on relay$n cannot reach $d, which relay$n holds"
	done
done
cl_reach 2 pi-05 || fail "Redis down: ssh -J relay2 pi-05 (held by relay2) failed"
got=$(timeout 15 ip netns exec "$NS_LAPTOP" ssh -F "$CL_SSH_CONFIG" -o ControlPath=none \
    -W pi-06:7 relay3 </dev/null 2>>"$T/ops.relay3.log")
[ "$got" = 127.0.1.6 ] || fail "Redis down: a new operator session on relay3 did not reach pi-06 (got '$got')"
spec 7 2; fleet_agents_start "$SPEC"
wait_until 15 cl_id 2 pi-07 3 || fail "Redis down: pi-07, come up on relay2, not reached from relay2"
log "Redis down: each relay serves its own devices and operators, also pi-07 that came up meanwhile"
if cl_id 1 pi-02 3; then x="still works"; else x="does not work (not required)"; fi
log "Redis down: relay1 -> pi-02 on relay2 $x"
[ "$(sessions_count)" = "$s0" ] || fail "device sessions dropped while Redis was down"
t0=$(now)
redis_start master "$REDIS_MASTER_PORT"
redis_start replica "$REDIS_REPLICA_PORT"
sentinel_start 1; sentinel_start 2; sentinel_start 3
log "Redis back (empty: no persistence)"
wait_until 20 redis_up_all 1 ||
    fail "simtun_cluster_redis_up not 1 on every relay $(elapsed "$t0") s after Redis came back"
all_listed 20 "Redis back"
log "Redis back: every relay lists pi-01..07 on their relays again after $(elapsed "$t0") s"
[ "$(rcli "$REDIS_MASTER_PORT" dbsize)" -gt 0 ] || fail "Redis back: the master is still empty"
matrix "Redis back"
log "Redis back: operators on each relay reach all seven by name"
[ "$(sessions_count)" = "$s0" ] || fail "device sessions dropped when Redis came back"

# --- 4. SIGKILL the master: Sentinel promotes the replica -----------------
wait_until 20 redis_replicating "$REDIS_MASTER_PORT" "$REDIS_REPLICA_PORT" ||
    fail "the replica did not sync again"
wait_until 20 sentinels_ready "$REDIS_MASTER_PORT" ||
    fail "Sentinels not ready again (port, replicas, other Sentinels, flags): $(sentinels_state)"
redis_kill master KILL
t0=$(now)
log "redis master :$REDIS_MASTER_PORT SIGKILLed"
promoted() {
	[ "$(sentinel_master_port 1)" = "$REDIS_REPLICA_PORT" ] &&
	    [ "$(redis_role "$REDIS_REPLICA_PORT")" = master ]
}
wait_until 20 promoted ||
    fail "Sentinel did not promote the replica in $(elapsed "$t0") s: $(sentinels_state)"
log "Sentinel promoted the replica :$REDIS_REPLICA_PORT after $(elapsed "$t0") s"
spec 8 3; fleet_agents_start "$SPEC"
wait_until 20 eval 'listed_home 1 && listed_home 2 && listed_home 3' ||
    fail "after the failover, pi-08 (on relay3) is '$(cl_dev 1 pi-08)' on relay1, '$(cl_dev 2 pi-08)' on relay2"
redis_up_all 1 || fail "after the failover: simtun_cluster_redis_up not 1 everywhere"
log "relays follow the new master: pi-08, up on relay3 after the failover, is listed on every relay $(elapsed "$t0") s after the kill"
matrix "after the failover"
log "after the failover: operators on each relay reach all eight by name"
[ "$(rcli "$REDIS_REPLICA_PORT" dbsize)" -gt 0 ] || fail "the new master holds no directory"
[ "${CL_PID[1]} ${CL_PID[2]} ${CL_PID[3]}" = "$pids" ] && cl_alive 1 && cl_alive 2 && cl_alive 3 ||
    fail "a relay died or was restarted"
[ "$(sessions_count)" = "$s0" ] || fail "device sessions dropped in the failover"
exit 0
