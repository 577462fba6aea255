#!/bin/bash
# Keepalive expiry: with keepalive_interval=1 and keepalive_count_max=3, a
# device whose ssh stops answering (SIGSTOP; its kernel still ACKs TCP) is
# dropped after about 3 s: the relay logs the close and frees port 4649.
. "$(dirname "$0")/lib.sh"

MIN=1.5		# closing before the 3rd probe could be answered is wrong too
MAX=10

require_relay
netns_setup
# hold_time = 0: the port closes with the expired session (holding is t_op_hold's)
start_relay "keepalive_interval = 1" "keepalive_count_max = 3" "hold_time = 0"

device_ssh_R
dev1_pid=$SSH_R_PID
ssh_R_wait 15 || fail "ssh -R not granted (see $SSH_R_LOG)"
wait_until 10 device_reachable -c 3 -T 8 || fail "device not reachable"
# It must survive several keepalive rounds while it answers them.
sleep 4
kill -0 "$dev1_pid" 2>/dev/null || fail "relay dropped a live session (keepalives answered)"
port_listening "$NS_RELAY" "$DEVICE_PORT" || fail "port $DEVICE_PORT not listening with a live session"
device_reachable -c 3 -T 8 || fail "device not reachable after 4 s of keepalives"
log "session alive after 4 s of answered keepalives"

lines=$(wc -l <"$RELAY_LOG")
kill -STOP "$dev1_pid" || fail "cannot SIGSTOP the device's ssh"
t0=$(now)
log "device ssh (pid $dev1_pid) stopped"
wait_until "$MAX" eval '! port_listening "$NS_RELAY" "$DEVICE_PORT"' ||
    fail "port $DEVICE_PORT still listening $(elapsed "$t0") s after the device stopped answering"
dt=$(elapsed "$t0")
relay_alive || fail "relay exited (not an expiry) $dt s after SIGSTOP"
log "port $DEVICE_PORT freed $dt s after SIGSTOP"
awk -v d="$dt" -v m="$MIN" 'BEGIN { exit !(d >= m) }' ||
    fail "session closed after only $dt s: fewer than 3 probes can have gone unanswered"

# The close must be logged with the device's name (simtun's *_close logs it).
if [ "$RELAY_KIND" = simtun ]; then
	wait_until 2 eval 'tail -n +$((lines + 1)) "$RELAY_LOG" | grep -q dev1' ||
	    fail "no relay log line naming dev1 after the expiry"
	log "relay log: $(tail -n +$((lines + 1)) "$RELAY_LOG" | grep dev1 | tail -1)"
else
	tail -n +$((lines + 1)) "$RELAY_LOG" | grep -q 'Timeout, client not responding' ||
	    fail "no sshd timeout line"
fi

# Let the old client go and come back: the port is granted again.
kill -KILL "$dev1_pid"
device_ssh_R
ssh_R_wait 15 || fail "new ssh -R not granted after the expiry (see $SSH_R_LOG)"
wait_until 10 device_reachable -c 3 -T 8 || fail "device not reachable after reconnecting"
log "device reconnected and reachable"
relay_alive || fail "relay exited"
exit 0
