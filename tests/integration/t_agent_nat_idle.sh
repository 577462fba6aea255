#!/bin/bash
# Issue 15: a carrier that forgets idle TCP mappings. The carrier's
# conntrack gives established TCP flows MAP s (nft ct timeout) and drops
# what arrives for a forgotten flow (no loose pick-up, invalid dropped),
# as a CGNAT that re-maps ports does. The agent watches its idle link
# with TCP probes every keepalive_interval (< MAP); the relay sends none
# (keepalive_interval 60 there), so the agent's probes alone must keep
# the mapping:
#  - control: a plain TCP connection through the carrier, idle 3 x MAP,
#    is dead (its next bytes never arrive);
#  - the agent's session, idle 3 x MAP, is the same session and the
#    device is reachable through it;
#  - the agent sent no SSH keepalive meanwhile (TCP probes only).
# timeout: 90
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/lib_agent.sh"

MAP=5			# s the carrier keeps an idle flow
IDLE=$((3 * MAP))
require_relay
require_agent
require_cmds python3 socat
[ "$RELAY_KIND" = simtun ] || skip "the agent's test"
netns_setup
nsx "$NS_CARRIER" sysctl -qw net.netfilter.nf_conntrack_tcp_loose=0 ||
    skip "no per-namespace conntrack sysctls"
nsx "$NS_CARRIER" nft -f - <<EOF || fail "carrier ct timeout rules"
table ip natidle {
	ct timeout idle {
		protocol tcp;
		l3proto ip;
		policy = { established: $MAP }
	}
	chain raw {
		type filter hook prerouting priority filter; policy accept;
		ct timeout set "idle"
	}
	chain drop_forgotten {
		type filter hook forward priority 0; policy accept;
		ct state invalid drop
	}
}
EOF
start_device_sshd
start_relay "keepalive_interval = 60" "keepalive_count_max = 3"
AGENT_KA_INTERVAL=2 AGENT_KA_COUNT=3
start_agent
agent_wait_connected 15 || fail "agent did not connect"
wait_until 15 device_reachable || fail "device not reachable through the tunnel"
log "tunnel up; carrier forgets idle flows after $MAP s"

# the control: an echo service in the relay's namespace, a client on the
# device that stays idle, then speaks
nsx "$NS_RELAY" socat TCP-LISTEN:7777,reuseaddr,fork EXEC:cat 2>/dev/null &
ST_DAEMONS+=("$!")
wait_until 5 port_listening "$NS_RELAY" 7777 || fail "echo service did not start"
nsx "$NS_DEVICE" python3 - "$RELAY_ADDR" "$IDLE" >"$T/control.out" 2>&1 <<'EOF' &
import socket, sys, time
s = socket.create_connection((sys.argv[1], 7777), timeout=5)
s.sendall(b"a"); print("first", s.recv(1) == b"a", flush=True)
time.sleep(float(sys.argv[2]))
s.settimeout(4)
try:
    s.sendall(b"b")
    print("after-idle", s.recv(1) == b"b", flush=True)
except Exception as e:
    print("after-idle dead", type(e).__name__, flush=True)
EOF
ctl_pid=$!
ssh_ka0=$(grep -c 'keepalive sent' "$AGENT_LOG")
conn0=$(agent_connected_count)
sleep "$IDLE"
wait "$ctl_pid"
log "control connection: $(tr '\n' ' ' <"$T/control.out")"
grep -q '^first True' "$T/control.out" || fail "control connection never worked: $(cat "$T/control.out")"
grep -q '^after-idle True' "$T/control.out" &&
    fail "the carrier kept an idle flow for $IDLE s: the test proves nothing"

device_reachable || fail "device not reachable after $IDLE s idle (mapping lost?)"
[ "$(agent_connected_count)" = "$conn0" ] ||
    fail "the agent reconnected during the idle time: $(grep 'closed\|connected to' "$AGENT_LOG" | tail -3)"
[ "$(grep -c 'keepalive sent' "$AGENT_LOG")" = "$ssh_ka0" ] ||
    fail "the agent sent SSH keepalives while TCP probes watch the link"
log "same session after $IDLE s idle, reachable, no SSH keepalive sent"
exit 0
