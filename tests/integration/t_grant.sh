#!/bin/bash
# Issue 13: time-limited access. A key with neither permitlisten nor
# permitopen (a contractor's) reaches pi-01 with stock OpenSSH (ssh -J)
# only inside a grant's window:
#  - refused before the grant ("no grant");
#  - simtunctl grant contractor 'pi-*:22' --for 3s: a session opened in
#    the window works, and is closed when the window ends ("grant N
#    expired"); a new one is refused after;
#  - a grant --from another address does not let the laptop in;
#  - revoke closes the grant's open session at once;
#  - bad requests (too long, unknown key, bad duration) are refused;
#  - audit: grant, expire, revoke events with who asked (uid 0, simtunctl).
. "$(dirname "$0")/lib.sh"

require_relay
require_cmds jq
[ "$RELAY_KIND" = simtun ] || skip "grants are simtun-relay's"
netns_setup
add_device_key pi-01 "pi-01:22"
add_device_key contractor
AUDIT=$T/audit.jsonl
start_relay "audit_log = $AUDIT"
ctl() { "$SIMTUN_BIN/simtunctl" -s "$T/relay/relay.sock" "$@"; }

ssh_R "$NS_DEVICE" pi-01 "pi-01:22:127.0.0.1:22"
ssh_R_wait 15 || fail "named forward pi-01:22 not granted (see $SSH_R_LOG)"

cfg=$T/laptop_ssh_config
cat >"$cfg" <<EOF
Host relay
	HostName $RELAY_ADDR
	Port $RELAY_PORT
	User contractor
	IdentityFile $T/keys/contractor
	HostKeyAlias relay
	UserKnownHostsFile $T/relay_known_hosts
	ControlPath $T/ctl.%C
Host pi-01
	User root
	ProxyCommand ssh -F $cfg -S $T/ctl.master -W %h:%p relay
	IdentityFile $T/keys/laptop
	HostKeyAlias device
	UserKnownHostsFile $T/laptop_known_hosts
EOF
ssh_config_strict >>"$cfg"
op() { timeout 60 ip netns exec "$NS_LAPTOP" "$@"; }
# one relay login, kept: a channel opens on it at once (the grant window
# is short, and the relay handshake is not what is being tested)
op ssh -F "$cfg" -M -S "$T/ctl.master" -N -f relay || fail "contractor cannot log in to the relay"

op ssh -F "$cfg" pi-01 true 2>/dev/null && fail "contractor reached pi-01 without a grant"
wait_until 5 grep -q 'device contractor .*refused channel to pi-01:22: not an operator key (no permitopen) and no grant' \
    "$RELAY_LOG" || fail "no refusal line before the grant"

# refused requests
ctl grant contractor 'pi-*:22' --for 9h >"$T/out" 2>&1 && fail "a 9h grant was accepted (max_grant_time 8h)"
grep -q 'max_grant_time' "$T/out" || fail "9h refusal: $(cat "$T/out")"
ctl grant nobody 'pi-*:22' --for 1h >"$T/out" 2>&1 && fail "a grant to an unknown key was accepted"
grep -q 'no key named nobody' "$T/out" || fail "unknown key refusal: $(cat "$T/out")"
ctl grant contractor 'pi-*:22' --for soon >"$T/out" 2>&1 && fail "--for soon was accepted"
ctl grant contractor 'pi-*:22' >"$T/out" 2>&1 && fail "a grant without --for was accepted"
ctl grant contractor 'pi 01' --for 1h >/dev/null 2>&1 && fail "a blank inside an argument was accepted"

# a grant from another address does not let the laptop in
out=$(ctl grant contractor 'pi-*:22' --for 1h --from 10.9.9.9/32) || fail "grant --from: $out"
gfar=$(echo "$out" | awk '{ print $2 }')
op ssh -F "$cfg" pi-01 true 2>/dev/null && fail "grant --from 10.9.9.9/32 let the laptop in"
wait_until 5 grep -q "refused channel to pi-01:22: grant $gfar does not allow source $LAPTOP_ADDR" "$RELAY_LOG" ||
    fail "no 'does not allow source' line"
ctl revoke "$gfar" >/dev/null || fail "revoke $gfar"

# the 3 s window: a session opened inside it works and ends with it
t0=$(now)
out=$(ctl grant contractor 'pi-*:22' --for 3s) || fail "grant: $out"
log "$out"
gid=$(echo "$out" | awk '{ print $2 }')
case $gid in [0-9]*) ;; *) fail "grant printed no id: $out";; esac
op ssh -F "$cfg" pi-01 'echo in; exec sleep 60' >"$T/s1.out" 2>&1 &
spid=$!
wait_until 5 grep -qx in "$T/s1.out" || fail "session inside the grant did not start: $(cat "$T/s1.out")"
log "inside the window after $(elapsed "$t0") s"
ctl grants --json | jq -e ".grants[] | select(.id == $gid and .kind == \"grant\" and .target == \"pi-*\" and .port == 22)" \
    >/dev/null || fail "grants --json: $(ctl grants --json)"
wait_until 10 eval '! kill -0 $spid 2>/dev/null' || fail "session outlived its grant"
te=$(elapsed "$t0")
grep -q "grant $gid: contractor may open pi-\*:22 from anywhere until .*: expired" "$RELAY_LOG" || fail "no expire line for grant $gid"
log "the grant's session closed $te s after the grant (window 3 s)"
awk -v t="$te" 'BEGIN { exit !(t >= 2.5 && t < 8) }' || fail "closed at $te s, want about 3 s"
op ssh -F "$cfg" pi-01 true 2>/dev/null && fail "contractor reached pi-01 after the grant"
ctl grants | grep -q "^$gid " && fail "expired grant still listed"

# revoke closes at once
out=$(ctl grant contractor 'pi-01' --for 1h) || fail "grant: $out"
gid2=$(echo "$out" | awk '{ print $2 }')
op ssh -F "$cfg" pi-01 'echo in; exec sleep 60' >"$T/s2.out" 2>&1 &
spid=$!
wait_until 10 grep -qx in "$T/s2.out" || fail "session under the 1h grant did not start: $(cat "$T/s2.out")"
t0=$(now)
ctl revoke "$gid2" | grep -q "revoked grant $gid2" || fail "revoke $gid2"
wait_until 5 eval '! kill -0 $spid 2>/dev/null' || fail "session outlived revoke"
log "revoke closed the session in $(elapsed "$t0") s"
ctl revoke "$gid2" >/dev/null 2>&1 && fail "a second revoke of $gid2 succeeded"

# audit
ev() { jq -c "select($1)" "$AUDIT" | wc -l; }
[ "$(ev ".event == \"grant\" and .grant == $gid and (.asked_by | test(\"^uid 0 pid [0-9]+ \\\\(simtunctl\\\\)\"))")" = 1 ] ||
    fail "no grant event with who asked: $(grep '"grant"' "$AUDIT" | head -2)"
[ "$(ev ".event == \"expire\" and .grant == $gid")" = 1 ] || fail "no expire event"
[ "$(ev ".event == \"revoke\" and .grant == $gid2")" = 1 ] || fail "no revoke event"
[ "$(ev ".event == \"open\" and .grant == $gid and .operator == \"contractor\" and .device == \"pi-01\"")" -ge 1 ] ||
    fail "no open event under grant $gid"
[ "$(ev ".event == \"close\" and .grant == $gid and (.reason | test(\"expired\"))")" -ge 1 ] ||
    fail "no close event for the expired grant's session"
[ "$(ev ".event == \"close\" and .grant == $gid2 and (.reason | test(\"revoked\"))")" -ge 1 ] ||
    fail "no close event for the revoked grant's session"
log "audit: $(jq -r .event "$AUDIT" | sort | uniq -c | tr -s ' \n' ' ')"
relay_alive || fail "relay died"
exit 0
