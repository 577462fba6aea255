#!/bin/bash
# make demo: a real `ssh -p 4649` session through simtun-relay and simtun-agent.
# Builds a small internet in network namespaces (a laptop, a relay, a carrier
# doing CGNAT, a device running Debian's sshd behind it), starts the relay and
# the agent, logs in from the laptop, reboots the device half-open and logs in
# again, lets an operator reach the device by name (ssh -J relay dev1), then
# removes everything it made.
set -u
if [ "$(id -u)" != 0 ]; then
	echo "make demo needs root (it creates network namespaces): sudo make demo"
	exit 1
fi
. "$(dirname "$0")/integration/lib.sh"
. "$(dirname "$0")/integration/lib_agent.sh"

if [ -t 1 ]; then B='\033[1m' N='\033[0m'; else B= N=; fi
step() { printf "\n${B}==> %s${N}\n" "$*"; }
show() { printf '    $ %s\n' "$*"; }

require_relay
require_agent

step "1. Network: laptop and relay on an 'internet', the device behind a carrier NAT"
netns_setup
echo "    relay $RELAY_ADDR:$RELAY_PORT, laptop $LAPTOP_ADDR, device $DEVICE_ADDR (private, NATed by the carrier)"

step "2. The device runs Debian's sshd on 127.0.0.1:22 (not reachable from outside)"
nsx "$NS_DEVICE" ss -tlnH "( sport = :22 )" | awk '{print "    listening: " $4}'

step "3. The relay: simtun-relay with the device's key (and an operator's) in authorized_keys"
agent_named_forward
add_device_key -o 'permitopen="dev*:22"' ops
sed 's/^/    /' "$T/relay/authorized_keys" | cut -c1-110
start_relay
echo "    host key: $(relay_fingerprint)"

step "4. The device: simtun-agent, relay host key pinned, forward 4649 (and the name dev1:22) -> 127.0.0.1:22"
agent_conf
sed 's/^/    /' "$AGENT_CONF"
t0=$(now)
start_agent
agent_wait_connected 15 || fail "the agent did not connect (log: $AGENT_LOG)"
echo "    connected after $(elapsed "$t0") s"
"$SIMTUN_BIN/simtunctl" -s "$T/relay/relay.sock" status | sed 's/^/    /'

step "5. The laptop: ssh -p $DEVICE_PORT root@$RELAY_ADDR"
cmd='echo "hello from the device: namespace $(ip netns identify)"; ip -4 -o addr show dev eth0; uptime'
show "ssh -p $DEVICE_PORT root@$RELAY_ADDR '$cmd'"
wait_until 10 device_reachable || fail "laptop could not reach the device"
laptop_ssh "$cmd" | sed 's/^/    /' || fail "ssh -p $DEVICE_PORT failed"

step "6. Reboot the device half-open: no FIN or RST ever reaches the relay"
reboot_device
echo "    new device address $DEVICE_ADDR; the old session still holds port $DEVICE_PORT on the relay"
t0=$(now)
AGENT_PID=
start_agent
wait_until 15 device_reachable || fail "the rebooted device is not reachable"
echo "    the laptop logs in again $(elapsed "$t0") s after the agent started"
laptop_ssh 'echo "hello again from $(ip -4 -o addr show dev eth0 | awk "{print \$4}")"' | sed 's/^/    /'
grep -E "taken over|replaced by" "$RELAY_LOG" | sed 's/^/    relay: /' | cut -c1-150

step "7. An operator reaches the device by name, no public port: ssh -J ops@relay dev1"
show "ssh -J ops@$RELAY_ADDR:$RELAY_PORT root@dev1 'echo ...'"
out=$(timeout 30 ip netns exec "$NS_LAPTOP" ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes \
    -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null \
    -o ProxyCommand="ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -i $T/keys/ops -o HostKeyAlias=relay -o UserKnownHostsFile=$T/relay_known_hosts -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -p $RELAY_PORT -W %h:%p ops@$RELAY_ADDR" \
    -i "$T/keys/laptop" -o HostKeyAlias=device -o UserKnownHostsFile="$T/laptop_known_hosts" \
    -o LogLevel=ERROR root@dev1 'echo "hello, operator, from $(ip -4 -o addr show dev eth0 | awk "{print \$4}")"') ||
    fail "ssh -J to dev1 failed"
echo "$out" | sed 's/^/    /'
grep -E "operator ops" "$RELAY_LOG" | grep -v debug | head -3 | sed 's/^/    relay: /' | cut -c1-150
"$SIMTUN_BIN/simtunctl" -s "$T/relay/relay.sock" devices | sed 's/^/    /'

step "8. Cleaning up (namespaces and processes are removed)"
exit 0
