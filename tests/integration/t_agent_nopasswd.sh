#!/bin/bash
# The agent as a uid with no passwd entry and an empty environment (no
# HOME, no USER), as systemd's DynamicUser gives it on an image without
# libnss-systemd: it sets every libssh path itself, connects, and the
# laptop reaches the device's sshd through the relay.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_agent.sh"

AGENT_UID=4242
require_agent
require_relay
require_cmds setpriv getent
getent passwd "$AGENT_UID" >/dev/null && skip "uid $AGENT_UID has a passwd entry here"
netns_setup
start_relay
# only what the agent needs is readable by the uid: its dir, key, config
chmod 711 "$T"
D=$T/nopw
mkdir -m 700 "$D"
cp "$T/keys/dev1" "$D/id_ed25519"
chmod 600 "$D/id_ed25519"
agent_conf
sed -e "s|^identity = .*|identity = $D/id_ed25519|" \
    -e "s|^control_socket = .*|control_socket = $D/agent.sock|" \
    "$AGENT_CONF" >"$D/agent.conf"
chown -R "$AGENT_UID:$AGENT_UID" "$D"
"$SIMTUN_BIN/simtun-agent" -n -c "$D/agent.conf" >/dev/null || fail "config rejected"
register_log "$AGENT_LOG"
# an empty environment but for the sanitizer's own settings (test plumbing)
ip netns exec "$NS_DEVICE" env -i ${LSAN_OPTIONS:+LSAN_OPTIONS="$LSAN_OPTIONS"} \
    ${ASAN_OPTIONS:+ASAN_OPTIONS="$ASAN_OPTIONS"} \
    setpriv --reuid="$AGENT_UID" --regid="$AGENT_UID" --clear-groups \
    "$SIMTUN_BIN/simtun-agent" -v -c "$D/agent.conf" 2>>"$AGENT_LOG" &
AGENT_PID=$!
disown
ST_DAEMONS+=("$AGENT_PID")
wait_until 3 eval '[ "$(stat -c %u /proc/$AGENT_PID 2>/dev/null)" = $AGENT_UID ]' ||
    fail "agent does not run as uid $AGENT_UID"
tr '\0' '\n' </proc/$AGENT_PID/environ | grep -qE '^(HOME|USER)=' &&
    fail "agent has HOME or USER in its environment"
agent_wait_connected 10 || fail "agent did not connect as a uid without passwd entry: $(grep -m3 -E 'failed|error' "$AGENT_LOG")"
grep -q "Couldn't apply options" "$AGENT_LOG" && fail "libssh could not apply its options"
wait_until 10 device_reachable -c 3 -T 8 || fail "laptop could not reach the device"
log "uid $AGENT_UID, no passwd entry, empty environment: connected, laptop reached the device"
exit 0
