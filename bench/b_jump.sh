#!/bin/bash
# bench/b_jump.sh SIZE_MB RUNS: the operator's path, simtun vs OpenSSH, in
# one bed. simtun: `ssh -J ops@relay pi-01`, the agent serving the named
# forward pi-01:22. OpenSSH: sshd as the jump host (AllowTcpForwarding yes)
# to the port autossh -R holds there: `ssh -J ops@relay:2223 -p 5649
# 127.0.0.1`. Runs alternate; the table takes medians.
#   jump.KIND.ssh   MB/s of `ssh -J ... 'cat >/dev/null'`
#   jumprtt.KIND    median round trip (us) of 64-byte requests through
#                   `ssh -J ... -L` to an echo on the device
#   jumplogin.KIND  s for `ssh -J ... true` (two handshakes)
#   held.KIND       after a half-open reboot of the device, s from its
#                   tunnel client starting to the operator landing: simtun:
#                   one `ssh -J` started before it (held, no retry);
#                   OpenSSH: an `ssh -J` retried every 0.5 s
. "$(dirname "$0")/../tests/integration/lib.sh"
. "$(dirname "$0")/../tests/integration/lib_agent.sh"
. "$(dirname "$0")/lib_bench.sh"

SIZE_MB=$1 RUNS=$2
CIPHER=chacha20-poly1305@openssh.com
require_cmds socat autossh
[ -x "$BENCH_BIN/rttprobe" ] || fail "$BENCH_BIN/rttprobe not built"
netns_setup
sed -i 's/permitlisten="4649"/permitlisten="4649",permitlisten="pi-01:22"/' "$T/relay/authorized_keys"
add_device_key -o 'permitopen="pi-*:22"' ops
# the OpenSSH relay: the operator logs in as root with the same key and may
# open only the device's port
sed -i '/ ops$/d' "$T/relay/authorized_keys.openssh"
echo "restrict,port-forwarding,permitopen=\"127.0.0.1:5649\" $(cut -d' ' -f1,2 "$T/keys/ops.pub") ops" \
    >>"$T/relay/authorized_keys.openssh"
start_echo() {
	nsx "$NS_DEVICE" socat TCP-LISTEN:7,bind=127.0.0.1,reuseaddr,fork,nodelay PIPE >/dev/null 2>&1 &
	disown
	wait_until 10 port_listening "$NS_DEVICE" 7 || fail "device echo did not start"
}
start_echo
rtt() { nsx "$1" "$BENCH_BIN/rttprobe" "$2" "$3" 2000 64 | awk '{ print $1 }'; }

RELAY_KIND=simtun
start_relay "hold_time = 120"
SIMTUN_RELAY_PID=$RELAY_PID
bench_agent_defaults
AGENT_EXTRA="
[forward byname]
remote = pi-01:22
local = 127.0.0.1:22"
start_agent
agent_wait_connected 15 || fail "agent did not connect"

sed -i 's/permitlisten="4649"/permitlisten="5649"/' "$T/relay/authorized_keys.openssh"
RELAY_PORT=2223
start_openssh_relay
sed -i 's/^AllowTcpForwarding remote$/AllowTcpForwarding yes/' "$T/relay/sshd_config"
kill -HUP "$RELAY_PID"
OPENSSH_RELAY_PID=$RELAY_PID
bench_autossh -c "$CIPHER" -o ServerAliveInterval=30 -o ServerAliveCountMax=3 -- 5649:127.0.0.1:22
RELAY_PORT=2222
wait_until 20 device_reachable -p 5649 -c 3 -T 8 || fail "device not reachable (openssh)"

# jssh KIND ARGS...: the operator's ssh through the jump host of KIND
jssh() {
	local kind=$1 jport=2222 juser=ops target=pi-01 tport=22; shift
	[ "$kind" = openssh ] && { jport=2223 juser=root target=127.0.0.1 tport=5649; }
	timeout "${JTO:-120}" ip netns exec "$NS_LAPTOP" ssh -F /dev/null -c "$CIPHER" -o BatchMode=yes -o IdentitiesOnly=yes \
	    -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=10 \
	    -o ProxyCommand="ssh -F /dev/null -c $CIPHER -o BatchMode=yes -o IdentitiesOnly=yes -i $T/keys/ops -o HostKeyAlias=relay -o UserKnownHostsFile=$T/relay_known_hosts -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -p $jport -W %h:%p $juser@$RELAY_ADDR" \
	    -i "$T/keys/laptop" -o HostKeyAlias=device -o UserKnownHostsFile="$T/laptop_known_hosts" \
	    -o LogLevel=ERROR -p "$tport" "root@$target" "$@"
}
[ "$(jssh simtun 'ip netns identify')" = "$NS_DEVICE" ] || fail "simtun jump does not reach the device"
[ "$(jssh openssh 'ip netns identify')" = "$NS_DEVICE" ] || fail "OpenSSH jump does not reach the device"

measure() {
	local kind=$1 t0 dt lport=$((17000 + RANDOM % 1000)) lpid out
	t0=$(now)
	head -c "${SIZE_MB}M" /dev/zero | jssh "$kind" 'cat >/dev/null' ||
	    fail "$kind: copy through the jump failed"
	dt=$(elapsed "$t0")
	bench_result "jump.$kind.ssh" "$(awk -v s="$dt" -v m="$SIZE_MB" 'BEGIN { printf "%.1f", m / s }')"
	t0=$(now)
	JTO=30 jssh "$kind" true || fail "$kind: login through the jump failed"
	bench_result "jumplogin.$kind" "$(elapsed "$t0")"
	jssh "$kind" -N -L "127.0.0.1:$lport:127.0.0.1:7" &
	lpid=$!
	wait_until 15 port_listening "$NS_LAPTOP" "$lport" || fail "$kind: -L through the jump did not listen"
	out=$(rtt "$NS_LAPTOP" 127.0.0.1 "$lport")
	kill "$lpid" 2>/dev/null; wait "$lpid" 2>/dev/null
	[ -n "$out" ] || fail "$kind: echo through the jump failed"
	bench_result "jumprtt.$kind" "$out"
	log "$kind: $SIZE_MB MB in $dt s, login $(grep "^jumplogin.$kind" "$BENCH_RESULTS" | tail -1 | cut -d' ' -f2) s, rtt $out us"
}
for i in $(seq 1 "$RUNS"); do
	if [ $((i % 2)) = 1 ]; then measure simtun; measure openssh; else measure openssh; measure simtun; fi
done

# held: half-open reboot (reboot_device SIGKILLs the agent and autossh and
# drops the old address silently); the operator starts before it is back
reboot_device
AGENT_PID=
start_echo
jssh simtun 'ip netns identify' >"$T/held.out" 2>/dev/null &
held_pid=$!
sleep 2
t0=$(now)
start_agent
wait "$held_pid"
[ "$(cat "$T/held.out")" = "$NS_DEVICE" ] || fail "held ssh -J did not land on the device"
bench_result held.simtun "$(elapsed "$t0")"
log "simtun: held ssh -J landed $(elapsed "$t0") s after the agent started"
RELAY_PORT=2223
t0=$(now)
bench_autossh -c "$CIPHER" -o ServerAliveInterval=30 -o ServerAliveCountMax=3 -- 5649:127.0.0.1:22
RELAY_PORT=2222
succ=
while awk -v e="$(elapsed "$t0")" 'BEGIN { exit !(e < 120) }'; do
	if [ "$(JTO=3 jssh openssh 'ip netns identify' 2>/dev/null)" = "$NS_DEVICE" ]; then
		succ=$(elapsed "$t0"); break
	fi
	sleep 0.5
done
bench_result held.openssh "${succ:-cap}"
log "OpenSSH: ssh -J retried every 0.5 s landed ${succ:-never (cap 120)} s after autossh started"
exit 0
