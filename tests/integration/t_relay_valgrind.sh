#!/bin/bash
# The relay under valgrind through forwards, logins and half-open reboots:
# no invalid access, and no memory definitely or indirectly lost at exit,
# so nothing leaks per session (the plain build: valgrind and ASan don't mix).
. "$(dirname "$0")/lib.sh"

CYCLES=4
command -v valgrind >/dev/null || skip "valgrind not installed"
SIMTUN_BIN=${SIMTUN_PLAIN_BIN:-$REPO_ROOT/build}
[ -x "$SIMTUN_BIN/simtun-relay" ] || skip "no plain build in $SIMTUN_BIN (make)"
require_relay
netns_setup
RELAY_WRAPPER="valgrind --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --log-file=$T/valgrind.log"
register_log "$T/valgrind.log"
start_relay "keepalive_interval = 1" "keepalive_count_max = 3"

for i in $(seq 1 $CYCLES); do
	device_ssh_R
	ssh_R_wait 30 || fail "cycle $i: ssh -R not granted under valgrind"
	wait_until 20 device_reachable -c 8 -T 15 || fail "cycle $i: device not reachable"
	reboot_device
	log "cycle $i done"
done
# one more session that ends with a proper disconnect, and a refused one
device_ssh_R
ssh_R_wait 30 || fail "last ssh -R not granted"
kill "$SSH_R_PID"
ssh_R "$NS_DEVICE" dev1 "5999:127.0.0.1:22"
ssh_R_wait 30 && fail "port 5999 granted without permitlisten"

pid=$RELAY_PID
kill -TERM "$pid"
wait_until 60 eval '! kill -0 '"$pid"' 2>/dev/null' || fail "relay did not exit under valgrind"
RELAY_PID=
grep -E "definitely lost|indirectly lost|ERROR SUMMARY|All heap blocks" "$T/valgrind.log" | sed 's/^==[0-9]*== */    /'
grep -q "ERROR SUMMARY: 0 errors" "$T/valgrind.log" || fail "valgrind reported errors (see $T/valgrind.log)"
if grep -q "definitely lost:" "$T/valgrind.log"; then
	grep -q "definitely lost: 0 bytes" "$T/valgrind.log" || fail "memory definitely lost"
	grep -q "indirectly lost: 0 bytes" "$T/valgrind.log" || fail "memory indirectly lost"
fi
log "$((CYCLES + 2)) sessions, $CYCLES half-open reboots: no leaks"
exit 0
