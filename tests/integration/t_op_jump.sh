#!/bin/bash
# Issue 12: operators reach devices by name through the relay, with stock
# OpenSSH (ProxyJump from a ~/.ssh/config block, as README shows):
#  - pi-01 is a named forward (ssh -N -R pi-01:22:127.0.0.1:22, no port on
#    the relay); dev1 is a port-mode device (ssh -R 4649:...);
#  - the operator key ops (permitopen="pi-*:22", permitopen="dev1:4649")
#    runs commands on both, copies 50 MB with scp and back with sftp
#    byte-exact, and uses -L to a second service on the device;
#  - refused, each with its reason in the log: an unknown device, a port
#    or device no permitopen allows, a device key opening a channel, an
#    operator key taking a port, from= mismatch, an expired key;
#  - a key whose expiry-time passes during a session loses it;
#  - the audit log has open/deny/close events with operator, device, bytes,
#    and the journal gets them with SIMTUN_* fields (a stand-in journald
#    socket bound over /run/systemd/journal in the relay's mount namespace).
. "$(dirname "$0")/lib.sh"

require_relay
require_cmds scp sftp socat jq sha256sum
/usr/bin/python3 -c 'import paramiko' 2>/dev/null || skip "python3-paramiko not installed (make deps)"
[ "$RELAY_KIND" = simtun ] || skip "operators by name are simtun-relay's"
netns_setup
add_device_key pi-01 "pi-01:22"
add_device_key -o 'permitopen="pi-*:22",permitopen="dev1:4649"' ops
add_device_key -o 'permitopen="pi-*:22",from="10.9.9.9"' ops-far
add_device_key -o 'permitopen="pi-*:22",expiry-time="20200101"' ops-old
AUDIT=$T/audit.jsonl
mkdir -p "$T/journal" /run/systemd/journal
python3 "$LIB_DIR/notify_listen.py" "$T/journal/socket" "$T/journal.txt" &
ST_DAEMONS+=("$!")
wait_until 5 test -S "$T/journal/socket" || fail "stand-in journal socket missing"
printf '#!/bin/sh\nmount --bind "%s" /run/systemd/journal || exit 1\nexec "$@"\n' \
    "$T/journal" >"$T/jwrap.sh"
chmod +x "$T/jwrap.sh"
RELAY_WRAPPER="unshare -m --propagation private $T/jwrap.sh"
start_relay "audit_log = $AUDIT" "metrics_listen = 127.0.0.1:9100"

ssh_R "$NS_DEVICE" pi-01 "pi-01:22:127.0.0.1:22"
named_pid=$SSH_R_PID
ssh_R_wait 15 || fail "named forward pi-01:22 not granted (see $SSH_R_LOG)"
device_ssh_R
ssh_R_wait 15 || fail "dev1 ssh -R not granted (see $SSH_R_LOG)"
kill -0 "$named_pid" 2>/dev/null || fail "named forward's ssh exited"
grep -q 'device pi-01: serving name pi-01:22 (named forward, no port)' "$RELAY_LOG" ||
    fail "relay did not log the named forward"
! nsx "$NS_RELAY" ss -ltnH | grep -q ':22 ' || fail "a named forward bound a port on the relay"

# the operator's ~/.ssh/config, as README shows it
cfg=$T/laptop_ssh_config
cat >"$cfg" <<EOF
Host relay relay-*
	HostName $RELAY_ADDR
	Port $RELAY_PORT
	HostKeyAlias relay
	UserKnownHostsFile $T/relay_known_hosts
Host relay
	User ops
	IdentityFile $T/keys/ops
Host relay-*
	User someone
Host relay-dev1
	IdentityFile $T/keys/dev1
Host relay-far
	IdentityFile $T/keys/ops-far
Host relay-old
	IdentityFile $T/keys/ops-old
Host relay-soon
	IdentityFile $T/keys/ops-soon
Host pi-* dev1
	User root
	ProxyJump relay
	IdentityFile $T/keys/laptop
	HostKeyAlias device
	UserKnownHostsFile $T/laptop_known_hosts
EOF
ssh_config_strict >>"$cfg"
op() { timeout 60 ip netns exec "$NS_LAPTOP" "$@"; }

got=$(op ssh -F "$cfg" pi-01 'ip netns identify') || fail "ssh -J relay pi-01 failed"
[ "$got" = "$NS_DEVICE" ] || fail "ssh pi-01 landed in '$got', want $NS_DEVICE"
got=$(op ssh -F "$cfg" -p 4649 dev1 'ip netns identify') || fail "ssh -J relay -p 4649 dev1 failed"
[ "$got" = "$NS_DEVICE" ] || fail "ssh -p 4649 dev1 landed in '$got'"
log "ssh -J to the named device pi-01 and to port-mode dev1:4649"

head -c 50M /dev/urandom >"$T/big"
t0=$(now)
op scp -q -F "$cfg" "$T/big" "pi-01:$T/big.dev" || fail "scp through the jump failed"
t_scp=$(elapsed "$t0")
printf 'get %s %s\n' "$T/big.dev" "$T/big.back" >"$T/sftp.batch"
op sftp -q -F "$cfg" -b "$T/sftp.batch" pi-01 >/dev/null || fail "sftp through the jump failed"
[ "$(sha256sum <"$T/big")" = "$(sha256sum <"$T/big.dev")" ] || fail "scp copy differs"
[ "$(sha256sum <"$T/big")" = "$(sha256sum <"$T/big.back")" ] || fail "sftp copy differs"
log "50 MB scp (${t_scp}s) and sftp back through the jump, byte-exact"

# -L to a second service on the device (an echo server on 127.0.0.1:17000)
nsx "$NS_DEVICE" socat TCP-LISTEN:17000,bind=127.0.0.1,fork,reuseaddr EXEC:cat 2>/dev/null &
disown
wait_until 5 port_listening "$NS_DEVICE" 17000 || fail "echo service did not start"
op ssh -F "$cfg" -N -L 127.0.0.1:17001:127.0.0.1:17000 pi-01 &
lpid=$!
wait_until 15 port_listening "$NS_LAPTOP" 17001 || fail "ssh -L through the jump did not listen"
got=$(echo "hello through -L" | op socat -t 2 - TCP:127.0.0.1:17001) || true
kill "$lpid" 2>/dev/null
[ "$got" = "hello through -L" ] || fail "-L through the jump echoed '$got'"
log "ssh -J ... -L reaches a second service on the device"

# refusals
refused() {	# WHAT PATTERN CMD...: CMD fails and the relay logs PATTERN
	local what=$1 pat=$2; shift 2
	op "$@" >/dev/null 2>&1 && fail "$what: allowed"
	wait_until 5 grep -qE "$pat" "$RELAY_LOG" || fail "$what: no log line matching: $pat"
}
refused "unknown device" 'operator ops .*refused channel to pi-02:22: unknown device' \
    ssh -F "$cfg" pi-02 true
refused "port not in permitopen" 'operator ops .*refused channel to pi-01:2222: not permitted' \
    ssh -F "$cfg" -p 2222 pi-01 true
refused "device not in permitopen" 'operator ops .*refused channel to dev1:22: not permitted' \
    ssh -F "$cfg" dev1 true
refused "device key opening a channel" 'device dev1 .*refused channel to pi-01:22: not an operator key' \
    ssh -F "$cfg" -J relay-dev1 pi-01 true
refused "operator key taking a port" 'operator ops .*refused forward of port 4700.*no permitlisten' \
    ssh -F "$cfg" -o ExitOnForwardFailure=yes -N -R 4700:127.0.0.1:22 relay
refused "operator key taking a name" 'operator ops .*refused forward of port 22 \(bind address "pi-09"\).*no permitlisten' \
    ssh -F "$cfg" -o ExitOnForwardFailure=yes -N -R pi-09:22:127.0.0.1:22 relay
refused "from= mismatch" 'refused key .*\(ops-far\).*not allowed by from=' \
    ssh -F "$cfg" -J relay-far pi-01 true
refused "expired key" 'refused key .*\(ops-old\).*expired' \
    ssh -F "$cfg" -J relay-old pi-01 true
log "refusals: unknown device, port and device outside permitopen, device key, operator -R port and name, from=, expired"

# a key that expires during a session loses it (added by SIGHUP)
soon=$(date -u -d '+8 seconds' +%Y%m%d%H%M%SZ)
add_device_key -o "permitopen=\"pi-*:22\",expiry-time=\"$soon\"" ops-soon
kill -HUP "$RELAY_PID"
wait_until 5 grep -q 'reloaded .*authorized_keys: [0-9]* keys' "$RELAY_LOG" || fail "relay did not reload authorized_keys"
t0=$(now)
op ssh -F "$cfg" -J relay-soon pi-01 'sleep 60' >/dev/null 2>&1 &
spid=$!
wait_until 15 grep -q 'operator ops-soon authenticated' "$RELAY_LOG" || fail "ops-soon did not log in"
wait_until 25 eval '! kill -0 $spid 2>/dev/null' || fail "session of ops-soon outlived its expiry-time"
grep -q 'operator ops-soon .*closed: key expired (expiry-time)' "$RELAY_LOG" ||
    fail "no 'key expired' close for ops-soon"
log "a key's expiry-time closed its live session after $(elapsed "$t0") s"

# the audit trail
[ -s "$AUDIT" ] || fail "no audit log"
jq -e . "$AUDIT" >/dev/null || fail "audit log is not JSON lines"
ev() { jq -c "select($1)" "$AUDIT" | wc -l; }
[ "$(ev '.event == "open" and .operator == "ops" and .device == "pi-01" and .port == 22')" -ge 4 ] ||
    fail "fewer than 4 open events for ops -> pi-01:22"
[ "$(ev '.event == "close" and .operator == "ops" and .device == "pi-01" and .bytes_to_device >= 52428800')" -ge 1 ] ||
    fail "no close event carrying the 50 MB scp"
[ "$(ev '.event == "deny" and .operator == "ops" and .device == "pi-02" and .reason == "unknown device"')" = 1 ] ||
    fail "no deny event for pi-02"
[ "$(ev '.event == "close" and .operator == "ops-soon" and (.reason | test("expired"))')" -ge 1 ] ||
    fail "no close event for the expired session"
[ "$(ev '.event == "open" and .operator == "-" and .device == "dev1"')" = 0 ] ||
    fail "an operator channel was audited as a bare port connection"
grep -q 'ops-soon' "$AUDIT" && ! grep -qiE 'PRIVATE KEY|password' "$AUDIT" || fail "audit log content"
log "audit: $(jq -r .event "$AUDIT" | sort | uniq -c | tr -s ' \n' ' ')"
# the journal: the same events as SIMTUN_* fields
grep -q '^SIMTUN_EVENT=deny$' "$T/journal.txt" && grep -q '^SIMTUN_DEVICE=pi-02$' "$T/journal.txt" &&
    grep -q '^SIMTUN_OPERATOR=ops$' "$T/journal.txt" && grep -q '^SIMTUN_EVENT=close$' "$T/journal.txt" &&
    grep -q '^SIMTUN_REASON=unknown device$' "$T/journal.txt" ||
    fail "journal entries lack the SIMTUN_* fields: $(head -c 600 "$T/journal.txt")"
log "journal: $(grep -c '^SIMTUN_EVENT=' "$T/journal.txt") events with SIMTUN_* fields"
# an operator that never answers the relay's CLOSE: at most 16 such
# channels, then its session is closed (the relay stays, dev1 too)
res=$(timeout 120 ip netns exec "$NS_LAPTOP" /usr/bin/python3 "$REPO_ROOT/tests/hostile/hostile.py" \
    --host "$RELAY_ADDR" --port "$RELAY_PORT" --key "$T/keys/ops" --target dev1 --fport 4649 \
    --n 24 opgraves 2>>"$T/hostile.log" | tail -1)
log "operator withholding CLOSE: $res"
case $res in *"session=closed"*) ;; *) fail "operator session survived 24 unclosed channels: $res";; esac
grep -q "operator ops .*closed: protocol violation: more than 16 channels not closed by the peer" "$RELAY_LOG" ||
    fail "no protocol violation line for the operator's unclosed channels"
relay_alive || fail "relay died (operator withholding CLOSE)"

# per-operator counters in /metrics
m=$(nsx "$NS_RELAY" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9100 && printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3')
o=$(echo "$m" | awk '/^simtun_operator_channels_total\{operator="ops",result="opened"\}/ { print $2 }')
dn=$(echo "$m" | awk '/^simtun_operator_channels_total\{operator="ops",result="denied"\}/ { print $2 }')
b=$(echo "$m" | awk '/^simtun_operator_bytes_total\{operator="ops",direction="out"\}/ { print $2 }')
[ "${o:-0}" -ge 4 ] && [ "${dn:-0}" -ge 3 ] && [ "${b:-0}" -ge 52428800 ] ||
    fail "operator metrics: opened '$o' denied '$dn' bytes out '$b': $(echo "$m" | grep operator)"
echo "$m" | grep -q '^simtun_devices_connected 2$' || fail "operators counted as devices: $(echo "$m" | grep devices_connected)"
log "metrics: ops opened $o channels, $dn denied, $b bytes to devices"
relay_alive || fail "relay died"
exit 0
