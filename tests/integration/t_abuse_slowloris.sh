#!/bin/bash
# Slowloris: 1,000 unauthenticated connections held open against :2222 from
# ten laptop addresses (silent ones, ones that send a banner and stop, ones
# that drip a KEXINIT a byte at a time). With limits raised so the relay
# really holds all 1,000, a new device still connects, the existing one stays
# reachable, and every idle connection is closed after login_grace_time with
# the relay's fds back where they were. With the default limits the same
# flood is cut to max_startups_per_source per address, each refusal logged.
. "$(dirname "$0")/lib.sh"

GRACE=12
N=1000
NSRC=10

require_relay
require_cmds perl
[ "$RELAY_KIND" = simtun ] || skip "per-source limits are simtun-relay's"
[ "$(ulimit -n)" -ge 4096 ] || ulimit -n 4096 || skip "cannot raise the fd limit to 4096"
netns_setup
add_device_key dev2 4650
add_device_key dev3 4651
srcs=
for i in $(seq 10 $((9 + NSRC))); do
	ip -n "$NS_LAPTOP" addr add "198.18.0.$i/24" dev eth0
	srcs="$srcs 198.18.0.$i"
done

# flood.pl HOLD SRC:COUNT:KIND...: open the connections, print "open N", then
# watch them; print "closed N after S s" once all are closed (or HOLD ends).
cat >"$T/flood.pl" <<'PERL'
use strict; use warnings;
use IO::Socket::INET; use IO::Select; use Time::HiRes qw(time sleep);
$SIG{PIPE} = 'IGNORE'; $| = 1;
my ($host, $port, $hold, @spec) = @ARGV;
my (@s, %kind, %drip);
for my $sp (@spec) {
	my ($src, $n, $k) = split /:/, $sp;
	for (1 .. $n) {
		my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port,
		    LocalAddr => $src, Proto => 'tcp', Blocking => 0) or next;
		push @s, $s; $kind{$s} = $k; $drip{$s} = 0;
	}
}
my $sel = IO::Select->new(@s);
my %up; my $end = time + 10;
while (keys(%up) < @s && time < $end) {
	for my $w ($sel->can_write(0.2)) {
		next if $up{$w} || !$w->connected;
		$up{$w} = 1;
		syswrite($w, "SSH-2.0-slowloris_1.0\r\n") if $kind{$w} ne 'silent';
	}
}
print "open ", scalar(keys %up), " of ", scalar(@s), "\n";
my $t0 = time; my $closed = 0; my %gone; my $next_drip = time + 2;
my $kexinit = "\0\0\x01\x2c\x0a\x14" . ("A" x 280);
while (time < $t0 + $hold && $closed < keys %up) {
	for my $r ($sel->can_read(0.2)) {
		my $buf; my $n = sysread($r, $buf, 4096);
		next if defined $n && $n > 0;
		next if !defined $n && $!{EAGAIN};
		$sel->remove($r); $gone{$r} = 1; $closed++;
	}
	if (time > $next_drip) {	# one byte every 2 s per drip connection
		for my $d (grep { $kind{$_} eq 'drip' && !$gone{$_} } @s) {
			syswrite($d, substr($kexinit, $drip{$d}++ % length($kexinit), 1));
		}
		$next_drip = time + 2;
	}
}
printf "closed %d after %.1f s\n", $closed, time - $t0;
sleep 3600 if $closed < keys %up;	# keep them open until killed
PERL

relay_fds() { ls "/proc/$RELAY_PID/fd" 2>/dev/null | wc -l; }
unauth() { "$SIMTUN_BIN/simtunctl" -s "$T/relay/relay.sock" status --json | jq .unauthenticated; }
# flood NSOURCES COUNT_PER_SOURCE HOLD: flood.pl from the first NSOURCES flood addresses.
flood() {
	local per=$2 hold=$3 spec="" s k i=0
	for s in $(echo $srcs | cut -d' ' -f1-"$1"); do
		case $((i % 3)) in 0) k=silent;; 1) k=banner;; 2) k=drip;; esac
		spec="$spec $s:$per:$k"; i=$((i + 1))
	done
	ip netns exec "$NS_LAPTOP" perl "$T/flood.pl" "$RELAY_ADDR" "$RELAY_PORT" "$hold" $spec \
	    >"$T/flood.out" 2>&1 &
	FLOOD_PID=$!
	disown
	wait_until 20 grep -q '^open' "$T/flood.out" || fail "flood.pl did not report: $(cat "$T/flood.out")"
}

# --- 1. default limits: the flood is cut per source ------------------------
# 1,000 from 5 addresses: 10 each are held (max_startups_per_source), 50 in
# all, below max_startups (64), so devices still get in.
start_relay "login_grace_time = $GRACE"
device_ssh_R
ssh_R_wait 15 || fail "dev1 ssh -R not granted (see $SSH_R_LOG)"
wait_until 10 device_reachable -c 3 -T 8 || fail "device not reachable"
flood 5 $((N / 5)) 30
wait_until 5 eval '[ "$(unauth)" -ge 50 ]'
held=$(unauth)
refusals=$(grep -c 'refused connection from 198.18.0.1[0-9] port .*max_startups_per_source' "$RELAY_LOG")
log "default limits: flood $(cat "$T/flood.out"), relay holds $held unauthenticated, $refusals refusals logged"
[ "$held" -le 50 ] || fail "relay holds $held > 5 sources x max_startups_per_source (10)"
[ "$refusals" = $((N - 50)) ] || fail "$refusals per-source refusals logged, want $((N - 50))"
ssh_R "$NS_DEVICE" dev3 "4651:127.0.0.1:22"
ssh_R_wait 15 || fail "new device (dev3) refused during the flood under default limits (see $SSH_R_LOG)"
device_reachable -c 5 -T 15 || fail "device not reachable during the flood (default limits)"
kill -KILL "$FLOOD_PID" 2>/dev/null
stop_relay
pkill_ssh() { local p; for p in $(ip netns pids "$NS_DEVICE"); do
	[ "$(cat /proc/$p/comm 2>/dev/null)" = ssh ] && kill -KILL "$p"; done; }
pkill_ssh

# --- 2. limits raised: the relay holds all 1,000 --------------------------
start_relay "login_grace_time = $GRACE" "max_startups = 2000" \
    "max_startups_per_source = $((N / NSRC))"
device_ssh_R
dev1_pid=$SSH_R_PID
ssh_R_wait 15 || fail "dev1 ssh -R not granted (see $SSH_R_LOG)"
wait_until 10 device_reachable -c 3 -T 8 || fail "device not reachable"
sleep 1
fd0=$(relay_fds)
rss0=$(awk '/VmRSS/ {print $2}' "/proc/$RELAY_PID/status")
t_flood=$(now)
flood "$NSRC" $((N / NSRC)) $((GRACE + 20))
log "flood: $(head -1 "$T/flood.out")"
[ "$(awk '/^open/ {print $2}' "$T/flood.out")" = "$N" ] || fail "flood opened fewer than $N connections"
wait_until 10 eval '[ "$(unauth)" -ge "$N" ]' || fail "relay holds only $(unauth) of $N unauthenticated"
fd1=$(relay_fds)
rss1=$(awk '/VmRSS/ {print $2}' "/proc/$RELAY_PID/status")
log "relay holds $(unauth) unauthenticated connections; fds $fd0 -> $fd1, VmRSS $rss0 -> $rss1 kB"
[ "$fd1" -ge $((fd0 + N)) ] || fail "relay fds $fd1: not holding the $N connections"

# One more from a flood address is over its per-source cap: refused, logged.
timeout 5 ip netns exec "$NS_LAPTOP" socat -u - "TCP:$RELAY_ADDR:$RELAY_PORT,bind=198.18.0.10" \
    </dev/null >/dev/null 2>&1
wait_until 3 grep -q 'refused connection from 198.18.0.10 port .*max_startups_per_source' "$RELAY_LOG" ||
    fail "connection over the per-source cap not refused"

# During the flood: a new device connects, the existing one stays reachable.
t0=$(now)
ssh_R "$NS_DEVICE" dev2 "4650:127.0.0.1:22"
ssh_R_wait 15 || fail "new device (dev2) could not connect during the flood (see $SSH_R_LOG)"
log "new device dev2 connected during the flood in $(elapsed "$t0") s"
device_reachable -p 4650 -c 5 -T 15 || fail "dev2's port not reachable during the flood"
t0=$(now)
device_reachable -c 5 -T 15 || fail "dev1 not reachable during the flood"
log "dev1 reachable during the flood (login $(elapsed "$t0") s)"
kill -0 "$dev1_pid" 2>/dev/null || fail "dev1's session was dropped during the flood"

# After login_grace_time every flood connection is closed by the relay.
wait_until $((GRACE + 15)) grep -q '^closed' "$T/flood.out" || fail "flood.pl did not finish"
closed=$(awk '/^closed/ {print $2}' "$T/flood.out")
log "flood: $(tail -1 "$T/flood.out") (login_grace_time $GRACE s)"
[ "$closed" = "$N" ] || fail "relay closed only $closed of $N idle connections"
after=$(awk '/^closed/ {print $4}' "$T/flood.out")
awk -v a="$after" -v g="$GRACE" 'BEGIN { exit !(a >= g - 2 && a <= g + 5) }' ||
    fail "idle connections closed after $after s, login_grace_time is $GRACE s"
n=$(grep -c 'closed before authentication: login grace time' "$RELAY_LOG")
[ "$n" -ge "$N" ] || fail "only $n 'login grace time' log lines"
wait_until 5 eval '[ "$(unauth)" = 0 ]' || fail "relay still counts $(unauth) unauthenticated"
# dev2 joined meanwhile: its session (our socket and libssh's copy) and port
wait_until 5 eval '[ "$(relay_fds)" -le $((fd0 + 3)) ]' ||
    fail "relay fds $(relay_fds) after the flood, $fd0 before (+3 for dev2's session and port)"
fd2=$(relay_fds)
rss2=$(awk '/VmRSS/ {print $2}' "/proc/$RELAY_PID/status")
log "after grace: fds $fd2 (before flood $fd0, dev2 added up to 3), VmRSS $rss2 kB, unauthenticated 0"
kill -0 "$dev1_pid" 2>/dev/null || fail "dev1's session was dropped"
device_reachable -c 5 -T 15 || fail "dev1 not reachable after the flood"
relay_alive || fail "relay exited"
exit 0
