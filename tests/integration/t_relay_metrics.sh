#!/bin/bash
# Prometheus metrics on metrics_listen: curl /metrics shows devices connected,
# bytes per device (in = from the device), takeovers after a half-open reboot,
# refused requests (hijack attempt, unknown key) and keepalive failures after a
# device stops answering; other paths get 404, other methods are refused.
. "$(dirname "$0")/lib.sh"

require_relay
require_cmds curl
[ "$RELAY_KIND" = simtun ] || skip "metrics_listen is simtun-relay's"
netns_setup
add_device_key dev2 4650
make_key stranger
MURL=http://127.0.0.1:9464/metrics
start_relay "keepalive_interval = 1" "keepalive_count_max = 3" "metrics_listen = 127.0.0.1:9464"
metrics() { nsx "$NS_RELAY" curl -sf --max-time 5 "$MURL"; }
metric() { metrics | awk -v m="$1" '$1 == m {print $2}'; }

wait_until 5 metrics >/dev/null || fail "no answer on $MURL"
m=$(metrics)
for f in simtun_devices_connected simtun_unauthenticated_connections simtun_takeovers_total \
    simtun_refused_total simtun_keepalive_failures_total simtun_device_bytes_total; do
	echo "$m" | grep -q "^# TYPE $f " || fail "no # TYPE line for $f"
done
[ "$(metric simtun_devices_connected)" = 0 ] || fail "devices_connected without devices"
nsx "$NS_RELAY" curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:9464/" | grep -q 404 ||
    fail "GET / is not 404"
code=$(nsx "$NS_RELAY" curl -s -o /dev/null -w '%{http_code}' -X POST -d x "$MURL")
[ "$code" = 200 ] && fail "POST /metrics answered 200"
log "metrics up; GET / 404, POST /metrics $code"

device_ssh_R
ssh_R_wait 15 || fail "dev1 ssh -R not granted (see $SSH_R_LOG)"
ssh_R "$NS_DEVICE" dev2 "4650:127.0.0.1:22"
dev2_pid=$SSH_R_PID
ssh_R_wait 15 || fail "dev2 ssh -R not granted (see $SSH_R_LOG)"
wait_until 10 device_reachable -c 3 -T 8 || fail "device not reachable"
[ "$(metric simtun_devices_connected)" = 2 ] || fail "devices_connected $(metric simtun_devices_connected), want 2"

# 2 MiB to dev1's device, 1 MiB back.
head -c 2097152 /dev/urandom | laptop_ssh -T 60 'cat >/dev/null; head -c 1048576 /dev/zero' >/dev/null ||
    fail "transfer failed"
out=$(metric 'simtun_device_bytes_total{device="dev1",direction="out"}')
in=$(metric 'simtun_device_bytes_total{device="dev1",direction="in"}')
log "dev1 bytes: out (to device) $out, in (from device) $in"
[ -n "$out" ] && [ "$out" -ge 2097152 ] || fail "dev1 bytes out '$out' < 2 MiB"
[ -n "$in" ] && [ "$in" -ge 1048576 ] && [ "$in" -lt 2097152 ] || fail "dev1 bytes in '$in' not ~1 MiB"
[ -n "$(metric 'simtun_device_bytes_total{device="dev2",direction="in"}')" ] || fail "no bytes line for dev2"

# Refusals: dev2 asking for dev1's port, an unknown key.
r0=$(metric simtun_refused_total)
ssh_R "$NS_LAPTOP" dev2 "$DEVICE_PORT:127.0.0.1:22"
ssh_R_wait 10 && fail "dev2 was granted dev1's port"
kill -KILL "$SSH_R_PID" 2>/dev/null
ssh_R "$NS_LAPTOP" stranger "4660:127.0.0.1:22"
ssh_R_wait 10 && fail "unknown key was granted a port"
kill -KILL "$SSH_R_PID" 2>/dev/null
r1=$(metric simtun_refused_total)
log "refused_total $r0 -> $r1"
[ "$r1" -ge $((r0 + 2)) ] || fail "refused_total did not count the hijack and the unknown key"

# Takeover: half-open reboot, dev1 comes back from the new device.
reboot_device
device_ssh_R
ssh_R_wait 15 || fail "dev1 ssh -R after reboot not granted (see $SSH_R_LOG)"
[ "$(metric simtun_takeovers_total)" = 1 ] || fail "takeovers_total $(metric simtun_takeovers_total), want 1"
[ "$(metric simtun_devices_connected)" = 2 ] || fail "devices_connected after takeover, want 2"
# dev2's ssh ran in the old device namespace: its session is half-open now,
# no answer to keepalives -> one keepalive failure, dev2 gone from the metrics.
kill -0 "$dev2_pid" 2>/dev/null && fail "dev2's ssh survived the reboot"
wait_until 10 eval '[ "$(metric simtun_keepalive_failures_total)" = 1 ]' ||
    fail "keepalive_failures_total $(metric simtun_keepalive_failures_total), want 1"
[ "$(metric simtun_devices_connected)" = 1 ] || fail "devices_connected after dev2 expired, want 1"
metrics | grep -q 'device="dev2"' && fail "expired dev2 still in the metrics"
log "takeovers 1, keepalive failures 1, devices 1"
relay_alive || fail "relay exited"
exit 0
