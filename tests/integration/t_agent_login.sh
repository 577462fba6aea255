#!/bin/bash
# simtun-agent + relay: the agent connects, gets 4649, and the laptop's
# `ssh -p 4649 relay` lands on the device's sshd.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_agent.sh"

require_agent
require_relay
netns_setup
start_relay
t0=$(now)
start_agent
agent_wait_connected 10 || fail "agent did not connect to the relay"
log "first connect: agent up after $(elapsed "$t0") s"
wait_until 10 device_reachable -c 3 -T 8 || fail "laptop could not log in through the relay"
log "first connect to laptop login: $(elapsed "$t0") s"
# a second login works too (channels are freed and reaccepted)
device_reachable -c 3 -T 8 || fail "second laptop login failed"
agent_alive || fail "agent exited"
exit 0
