#!/bin/bash
# 100 MB from the device to the laptop through agent and relay (the other
# direction from t_relay_bulk): the device's server sends a file and closes;
# the laptop reads slowly at first (backpressure all the way back), then
# gets every byte, in order, and the end of the stream.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_agent.sh"

require_agent
require_relay
require_cmds socat sha256sum
netns_setup
sed -i 's/permitlisten="4649"/permitlisten="4649",permitlisten="4650"/' "$T/relay/authorized_keys"
# ASan keeps freed memory in quarantine (256 MB by default), which would
# hide what the relay really holds: keep it small for the RSS check below
export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}quarantine_size_mb=4"
start_relay
head -c 100000000 /dev/urandom >"$T/blob"
want=$(sha256sum <"$T/blob" | cut -d' ' -f1)
ip netns exec "$NS_DEVICE" socat -u FILE:"$T/blob" TCP-LISTEN:7002,bind=127.0.0.1,reuseaddr &
ST_DAEMONS+=($!)
AGENT_EXTRA="
[forward blob]
remote = 4650
local = 127.0.0.1:7002"
start_agent
agent_wait_connected 10 || fail "agent did not connect"
t0=$(now)
# read nothing for 2 s first: buffers fill and the device must be paused
timeout 120 ip netns exec "$NS_LAPTOP" sh -c \
    "sleep 0 | socat -u TCP:$RELAY_ADDR:4650,rcvbuf=65536 SYSTEM:'sleep 2; cat > $T/got'" ||
    fail "download did not finish"
dt=$(elapsed "$t0")
got=$(sha256sum <"$T/got" | cut -d' ' -f1)
size=$(stat -c %s "$T/got")
log "100 MB device -> laptop in $dt s (incl. a 2 s pause), $size bytes"
[ "$got" = "$want" ] || fail "sha256 differs ($size bytes arrived)"
rss=$(awk '/VmHWM/ {print $2}' /proc/"$RELAY_PID"/status)
log "relay peak RSS ${rss} kB"
# flow control: the relay holds a bounded window, not the 100 MB stream
[ "$rss" -lt 65536 ] || fail "relay peak RSS ${rss} kB: the stream was buffered"
agent_alive && relay_alive || fail "a daemon exited"
rm -f "$T/blob" "$T/got"
exit 0
