#!/bin/bash
# Issue 10, test 6: keyboard-interactive and password attempts count toward
# max_auth_tries and the penalty box, like failed public keys.  With
# max_auth_tries = 3 and penalty_failures = 6, from two laptop addresses
# (198.18.0.20 keyboard-interactive, 198.18.0.21 password; tests/hostile
# authspam, 10 tries per connection, the second connection sending 9 of
# them in one burst without waiting for answers):
#  - each connection is closed after at most 3 answered attempts;
#  - after two such connections (6 failures) the address is penalized:
#    a third connection gets no SSH banner, and the relay logs it;
#  - another address (the laptop's own) still gets a banner, the relay
#    answers `simtunctl status` within 1 s, RSS stays under +64 MB and the
#    honest device (4649) stays reachable.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/lib_hostile.sh"

dp_setup "max_auth_tries = 3" "penalty_failures = 6" "penalty_time = 60"
ip -n "$NS_LAPTOP" addr add 198.18.0.20/24 dev eth0
ip -n "$NS_LAPTOP" addr add 198.18.0.21/24 dev eth0
monitor_start

# Both methods are tried before failing, so one run reports both.
errs=
err() { log "ERROR: $*"; errs="$errs${errs:+; }$*"; }
for pair in keyboard-interactive:198.18.0.20 password:198.18.0.21; do
	method=${pair%%:*} src=${pair#*:}
	for conn in 1 2; do
		# the second connection sends 9 of its attempts in one burst
		res=$(hostile_fg "$NS_LAPTOP" authspam --src "$src" --method "$method" \
		    --user root --tries 10 $([ "$conn" = 2 ] && echo --pipeline))
		log "$method from $src, connection $conn: $res"
		if [ "$(kv "$res" connect)" != ok ]; then
			err "$method connection $conn from $src refused before any attempt"
		elif [ "$(kv "$res" closed)" != yes ]; then
			err "$method: $(kv "$res" answered) attempts answered and the connection is still open (max_auth_tries = 3)"
		elif [ "$(kv "$res" answered)" -gt 3 ]; then
			err "$method: $(kv "$res" answered) attempts answered before the relay closed the connection (max_auth_tries = 3)"
		fi
	done
	res=$(hostile_fg "$NS_LAPTOP" banner --src "$src")
	log "$src after 6 failed $method attempts: $res"
	case $(kv "$res" banner) in
	SSH-*) err "$src still gets a banner after 6 failed $method attempts (penalty_failures = 6)";;
	esac
	grep -qE "source $src penalized|refused connection from $src" "$RELAY_LOG" ||
	    err "no log line about penalizing $src"
	ctl_responsive 3
done
[ -z "$errs" ] || fail "$errs"

res=$(hostile_fg "$NS_LAPTOP" banner)
case $(kv "$res" banner) in
SSH-*) log "$LAPTOP_ADDR (not penalized) still gets the banner";;
*) fail "an innocent address ($LAPTOP_ADDR) gets no banner: $res";;
esac
monitor_stop
monitor_check 64 status "during the auth attempts"
rss_check 64 "after the auth attempts"
honest_check "after the penalties"
relay_alive || fail "relay died"
exit 0
