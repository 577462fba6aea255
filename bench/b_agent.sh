#!/bin/bash
# bench/b_agent.sh KIND WINDOW: the device-side footprint while idle.
#   simtun:  simtun-agent, keepalive_interval 10, keepalive_count_max 3
#   openssh: autossh -M 0 + its ssh, ServerAliveInterval 10, CountMax 3
# (equal detection time: 30 s).  Relays: keepalive 15 s x 3 (sshd: ClientAlive).
# After the session is up and one laptop login went through, WINDOW seconds
# of idle are measured:
#   agent.KIND.rss / .pss     kB, summed over the device-side processes
#   agent.KIND.wakeups        context switches per minute (voluntary +
#                             involuntary, /proc/PID/status), scaled
#   agent.KIND.bytes_hour     IP bytes of the tunnel's TCP connection on the
#                             device's cellular link (eth0 in + out, nft
#                             counters: IP+TCP+SSH, keepalives and ACKs of
#                             both ends; no Ethernet headers, ARP or IPv6
#                             neighbour traffic), scaled to one hour
. "$(dirname "$0")/../tests/integration/lib.sh"
. "$(dirname "$0")/../tests/integration/lib_agent.sh"
. "$(dirname "$0")/lib_bench.sh"

KIND=$1 WINDOW=$2
KA=10 KC=3
RELAY_KIND=$KIND
[ "$KIND" = openssh ] && require_cmds autossh
netns_setup
start_relay keepalive_interval=15 keepalive_count_max=3
if [ "$KIND" = simtun ]; then
	AGENT_KA_INTERVAL=$KA AGENT_KA_COUNT=$KC AGENT_BACKOFF_MAX=120
	start_agent
	agent_wait_connected 15 || fail "agent did not connect"
else
	bench_autossh -o ServerAliveInterval=$KA -o ServerAliveCountMax=$KC
fi
wait_until 20 device_reachable -c 3 -T 8 || fail "device not reachable"
sleep 3
pids() {
	if [ "$KIND" = simtun ]; then echo "$AGENT_PID"; else echo "$AUTOSSH_PID $(autossh_child)"; fi
}
P=$(pids)
# shellcheck disable=SC2086
ns_ip_count "$NS_DEVICE" eth0 "$RELAY_PORT" || fail "nft counters in $NS_DEVICE"
s0=$(proc_switches $P) b0=$(ns_ip_bytes "$NS_DEVICE") t0=$(now)
sleep "$WINDOW"
# shellcheck disable=SC2086
s1=$(proc_switches $P) b1=$(ns_ip_bytes "$NS_DEVICE") dt=$(elapsed "$t0")
[ "$(pids)" = "$P" ] || fail "device-side processes changed during the window ($P -> $(pids))"
# shellcheck disable=SC2086
read -r rss pss <<<"$(proc_mem $P)"
# where the memory is: per mapping, for the record (kept with BENCH_LOGDIR)
for p in $P; do
	awk '/^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "") ? "[anon]" : $6 }
	    /^Rss:/ { rss[name] += $2 } /^Pss:/ { pss[name] += $2 }
	    END { for (n in rss) printf "%8d %8d %s\n", rss[n], pss[n], n }' \
	    "/proc/$p/smaps" | sort -rn >"$T/smaps.$KIND.$(cat "/proc/$p/comm").log"
done
bench_result "agent.$KIND.rss" "$rss"
bench_result "agent.$KIND.pss" "$pss"
bench_result "agent.$KIND.wakeups" "$(awk -v a="$s0" -v b="$s1" -v t="$dt" 'BEGIN { printf "%.1f", (b - a) * 60 / t }')"
bench_result "agent.$KIND.bytes_hour" "$(awk -v a="$b0" -v b="$b1" -v t="$dt" 'BEGIN { printf "%.0f", (b - a) * 3600 / t }')"
bench_result "agent.$KIND.window" "$dt"
log "$KIND idle ${dt}s: RSS $rss kB PSS $pss kB, $((s1 - s0)) switches, $((b1 - b0)) bytes on eth0"
exit 0
