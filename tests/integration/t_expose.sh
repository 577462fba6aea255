#!/bin/bash
# Issue 13: simtunctl expose opens a public port on the relay to one
# device for a window (Napter's model). dev1 runs simtun-agent with a
# named forward dev1:22 and port 4649.
#  - expose dev1:22 --for 3s --from the laptop: the laptop's connection reaches
#    the device, another source (the device's carrier address) is refused
#    and audited, the open connection and the port close when the window
#    ends;
#  - expose dev1 (two forwards) is refused: name the port;
#  - expose dev1:4649 --listen 20150 and a grant, then the relay is
#    SIGKILLed and started again inside their window: both are in force
#    (the laptop reaches the device through the port, the contractor
#    through ssh -J), and both still end on time.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_agent.sh"

require_agent
require_cmds jq
[ "$RELAY_KIND" = simtun ] || skip "exposes are simtun-relay's"
netns_setup
agent_named_forward
add_device_key contractor
AUDIT=$T/audit.jsonl
RELAY_ARGS=("audit_log = $AUDIT" "expose_ports = 20100-20109")
start_relay "${RELAY_ARGS[@]}"
start_agent
agent_wait_connected 10 || fail "agent did not connect"
wait_until 10 grep -q 'device dev1: serving name dev1:22' "$RELAY_LOG" || fail "no named forward dev1:22"
ctl() { "$SIMTUN_BIN/simtunctl" -s "$T/relay/relay.sock" "$@"; }
banner() {	# NS PORT: the first line the relay's port PORT sends to NS
	timeout 10 ip netns exec "$1" bash -c "exec 3<>/dev/tcp/$RELAY_ADDR/$2 && head -1 <&3" 2>/dev/null | tr -d '\r'
}

# a 3 s expose, from the laptop only
t0=$(now)
out=$(ctl expose dev1:22 --for 3s --from "$LAPTOP_ADDR/32") || fail "expose: $out"
log "$out"
eid=$(echo "$out" | awk '{ print $2 }')
port=$(echo "$out" | grep -o 'port [0-9]*' | awk '{ print $2 }')
case $port in 2010[0-9]) ;; *) fail "expose port '$port' is not from expose_ports";; esac
# a connection that stays open (the device's sshd waits for a login)
timeout 30 ip netns exec "$NS_LAPTOP" socat -u "TCP:$RELAY_ADDR:$port" STDOUT >"$T/s1.out" 2>&1 &
spid=$!
b=$(banner "$NS_DEVICE" "$port")
[ -z "$b" ] || fail "a source outside --from got '$b'"
wait_until 5 grep -q "refused connection from .* to exposed port $port: source not allowed by expose $eid" "$RELAY_LOG" ||
    fail "no refusal line for the outside source"
b=$(banner "$NS_LAPTOP" "$port")
case $b in SSH-2.0-OpenSSH*) ;; *) fail "laptop through the expose got '$b'";; esac
wait_until 5 grep -q '^SSH-2.0-OpenSSH' "$T/s1.out" || fail "laptop's connection through the expose: $(cat "$T/s1.out")"
log "laptop in through port $port after $(elapsed "$t0") s, the other source refused"
wait_until 10 eval '! kill -0 $spid 2>/dev/null' || fail "connection outlived the expose"
te=$(elapsed "$t0")
awk -v t="$te" 'BEGIN { exit !(t >= 2.5 && t < 8) }' || fail "connection closed at $te s, want about 3 s"
port_listening "$NS_RELAY" "$port" && fail "port $port still listening after the expose ended"
grep -q "expose $eid: port $port to dev1:22 from $LAPTOP_ADDR/32 until .*: expired" "$RELAY_LOG" ||
    fail "no expired line for expose $eid"
log "expose $eid: connection and port closed $te s after it began (window 3 s)"

out=$(ctl expose dev1 --for 1m 2>&1) && fail "expose of a device with two forwards and no port: $out"
echo "$out" | grep -q 'no single forward' || fail "expose dev1: $out"

# an expose and a grant outlive a relay crash, and still end on time
t0=$(now)
out=$(ctl expose dev1:4649 --for 9s --listen 20150 --from "$LAPTOP_ADDR/32") || fail "expose --listen: $out"
eid2=$(echo "$out" | awk '{ print $2 }')
out=$(ctl grant contractor 'dev1:22' --for 9s) || fail "grant: $out"
gid=$(echo "$out" | awk '{ print $2 }')
kill_relay
start_relay "${RELAY_ARGS[@]}"
log "relay SIGKILLed and started again $(elapsed "$t0") s into the window"
grep -q "expose $eid2 in force again" "$RELAY_LOG" && grep -q "grant $gid in force again" "$RELAY_LOG" ||
    fail "expose $eid2 / grant $gid not in force after the restart"
n=$(ctl grants --json | jq "[.grants[] | select(.id == $eid2 or .id == $gid)] | length")
[ "$n" = 2 ] || fail "grants after the restart: $(ctl grants)"
port_listening "$NS_RELAY" 20150 || fail "exposed port 20150 not listening after the restart"
got=$(laptop_ssh -p 20150 -T 20 -c 10 'ip netns identify') || fail "laptop through port 20150 after the restart"
[ "$got" = "$NS_DEVICE" ] || fail "port 20150 landed in '$got'"
got=$(timeout 30 ip netns exec "$NS_LAPTOP" ssh -F /dev/null -o BatchMode=yes \
    -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null \
    -o ProxyCommand="ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -i $T/keys/contractor -o HostKeyAlias=relay -o UserKnownHostsFile=$T/relay_known_hosts -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -p $RELAY_PORT -W %h:%p contractor@$RELAY_ADDR" \
    -i "$T/keys/laptop" -o HostKeyAlias=device -o UserKnownHostsFile="$T/laptop_known_hosts" \
    -o LogLevel=ERROR root@dev1 'ip netns identify') || fail "contractor's ssh -J under the restored grant"
[ "$got" = "$NS_DEVICE" ] || fail "contractor landed in '$got'"
log "after the restart: laptop in through port 20150, contractor through ssh -J ($(elapsed "$t0") s)"
wait_until 15 eval '! port_listening "$NS_RELAY" 20150' || fail "port 20150 outlived its window"
te=$(elapsed "$t0")
wait_until 5 grep -q "grant $gid: contractor may open dev1:22 from anywhere until .*: expired" "$RELAY_LOG" ||
    fail "grant $gid did not expire"
awk -v t="$te" 'BEGIN { exit !(t >= 8 && t < 13) }' || fail "expose ended at $te s, want about 9 s"
log "both ended on time: port closed $te s after they began (window 9 s)"

ev() { jq -c "select($1)" "$AUDIT" | wc -l; }
[ "$(ev ".event == \"deny\" and .grant == $eid and (.reason | test(\"source not allowed\"))")" = 1 ] ||
    fail "no deny event for the outside source"
[ "$(ev ".event == \"expose\" and .grant == $eid and (.asked_by | test(\"simtunctl\"))")" = 1 ] ||
    fail "no expose event with who asked"
[ "$(ev ".event == \"open\" and .grant == $eid and .device == \"dev1\"")" -ge 1 ] || fail "no open event under expose $eid"
[ "$(ev ".event == \"expire\" and .grant == $eid2")" = 1 ] || fail "no expire event for expose $eid2"
relay_alive || fail "relay died"
agent_alive || fail "agent died"
exit 0
