#!/bin/bash
# Issue 13, test 3: the state database (state_db) when things go wrong.
# Each case gives one clear line and the behaviour simtun.conf(5) states
# ("State database", and relay/state.c's header); nothing crashes
# (sanitizer reports in any relay output fail the test).
#  - removed while the relay runs: the next write says "removed or
#    replaced" and writes a new file from memory; after a restart both
#    grants are there. Removed while stopped: "created", no grants.
#  - at start, exit 1 within 5 s with one "state_db PATH: what: sqlite
#    message; hint" line, the file untouched (same sha256):
#    64 KB of random bytes, a real database with a damaged page ("move it
#    aside"); a read-only file system, existing file or new ("cannot be
#    written"); a full disk, existing file or new ("the disk is full");
#    the file of a running relay ("another process holds it").
#  - disk full while running: simtunctl grant still works and warns "not
#    written to state_db", the relay logs "cannot write grants" once
#    (across retries), the grants stay in force; space freed -> "writing
#    again" within a tick; after a restart every grant is back.
# The tmpfs mounts are under $T; the EXIT trap unmounts them (lazily: a
# relay may still hold files there) before lib.sh's _st_exit stops the
# daemons and removes $T, so a failing test leaves no mount behind.
# timeout: 90
. "$(dirname "$0")/lib.sh"

require_relay
require_cmds ip ss timeout awk jq sha256sum mount umount dd
[ "$RELAY_KIND" = simtun ] || skip "state_db is simtun-relay's"

MOUNTS=()
# lib.sh's EXIT trap, with the mounts undone first
_db_exit() {
	local rc=$1 m
	for m in "${MOUNTS[@]}"; do umount -l "$m" || rc=1; done
	_st_exit "$rc"
}
trap '_db_exit $?' EXIT

# tmpfs DIR SIZE: a tmpfs of SIZE at DIR (under $T), unmounted at exit.
tmpfs() {
	mkdir -p "$1"
	mount -t tmpfs -o "size=$2,mode=0755" tmpfs "$1" || fail "mount tmpfs $1"
	MOUNTS+=("$1")
}
sha() { sha256sum <"$1" | cut -d' ' -f1; }
ctl() { "$SIMTUN_BIN/simtunctl" -s "$T/relay/relay.sock" "$@"; }
# grant NAME: grant contractor pi-NAME:22 for 1h; GID = its id, output in $T/grant.NAME
grant() {
	ctl grant contractor "pi-$1:22" --for 1h >"$T/grant.$1" 2>&1 ||
	    fail "grant $1: $(cat "$T/grant.$1")"
	GID=$(awk '/^grant [0-9]+ until /{ print $2 }' "$T/grant.$1")
	[ -n "$GID" ] || fail "grant $1 printed no id: $(cat "$T/grant.$1")"
}
warned() { grep -q '^warning: not written to state_db' "$T/grant.$1"; }
# listed ID...: grants --json lists exactly these ids
listed() {
	local want
	want=$(printf '%s\n' "$@" | jq -sc 'sort')
	ctl grants --json | jq -e --argjson w "$want" '[.grants[].id] | sort == $w' >/dev/null
}
nlog() { grep -cF "$1" "$RELAY_LOG"; }

netns_new "$NS_RELAY"
make_key relay_host relay
cp "$T/keys/relay_host" "$T/relay/ssh_host_ed25519_key"
: >"$T/relay/authorized_keys"
: >"$T/relay/authorized_keys.openssh"
add_device_key contractor
DB=$T/relay/state.db

# --- removed while running, and while stopped -------------------------------
start_relay
grep -qF "state_db $DB: created (no grants, exposes or usage history before now)" "$RELAY_LOG" ||
    fail "no 'created' line for a new state_db"
listed || fail "a new state_db has grants: $(ctl grants --json)"
grant one; g1=$GID
rm -f "$DB" "$DB-wal" "$DB-shm"
grant two; g2=$GID
warned two && fail "grant after the file was removed: $(cat "$T/grant.two")"
[ "$(nlog "state_db $DB was removed or replaced while the relay ran: writing a new one from memory")" = 1 ] ||
    fail "no (or more than one) 'removed or replaced' line"
[ -s "$DB" ] || fail "no new $DB written"
stop_relay
start_relay
grep -qF "state_db $DB: 2 grants and exposes in force" "$RELAY_LOG" || fail "restart: no '2 grants ... in force' line"
listed "$g1" "$g2" || fail "after the file was removed and the relay restarted, want grants $g1 $g2: $(ctl grants --json)"
log "removed while running: rewritten from memory, grants $g1 $g2 back after a restart"
stop_relay
cp "$DB" "$T/good.db"		# a real database with two grants
rm -f "$DB" "$DB-wal" "$DB-shm"
n=$(nlog "state_db $DB: created")
start_relay
[ "$(nlog "state_db $DB: created (no grants, exposes or usage history before now)")" = $((n + 1)) ] ||
    fail "removed while stopped: no 'created' line at start"
listed || fail "removed while stopped: grants listed: $(ctl grants --json)"
stop_relay

# --- disk full while running (the start cases run meanwhile) ----------------
tmpfs "$T/rt" 1m
RDB=$T/rt/state.db
start_relay "state_db = $RDB"
grant a; ga=$GID
warned a && fail "grant with space left warned: $(cat "$T/grant.a")"
dd if=/dev/zero of="$T/rt/filler" bs=4k 2>/dev/null
[ "$(df --output=avail "$T/rt" | tail -1 | tr -d ' ')" = 0 ] || fail "filler did not fill $T/rt: $(df "$T/rt")"
t_full=$(now)
grant b; gb=$GID
warned b || fail "grant on a full disk: no warning: $(cat "$T/grant.b")"
CANT="state_db $RDB: cannot write grants: database or disk is full; going on from memory"
wait_until 2 grep -qF "$CANT" "$RELAY_LOG" || fail "disk full: no 'cannot write grants' line"
log "disk full while running: grant $gb warned, relay logged: $(grep -F "$CANT" "$RELAY_LOG" | cut -c1-160)..."

# start_fails NAME DB WHAT HINT: the relay on state_db DB exits 1 within 5 s, its
# last line "...: error: fatal: state_db DB: WHAT...; ...HINT..." the only one
# about DB. Own port and control socket: the relay above keeps running.
start_fails() {
	local name=$1 db=$2 what=$3 hint=$4 conf=$T/relay/$1.conf out=$T/start_$1.log rc t0 dt last
	sed -e "s|^state_db = .*|state_db = $db|" -e "s|^listen = .*|listen = 0.0.0.0:$((RELAY_PORT + 1))|" \
	    -e "s|^control_socket = .*|control_socket = $T/relay/$name.sock|" "$T/relay/relay.conf" >"$conf"
	register_log "$out"
	t0=$(now)
	timeout 10 ip netns exec "$NS_RELAY" "$SIMTUN_BIN/simtun-relay" -c "$conf" 2>"$out"
	rc=$?
	dt=$(elapsed "$t0")
	check_sanitizer "$out" || fail "$name: sanitizer report"
	[ "$rc" = 1 ] || fail "$name: exit $rc, want 1: $(tail -3 "$out")"
	awk -v t="$dt" 'BEGIN { exit !(t < 5) }' || fail "$name: took $dt s to exit"
	last=$(tail -1 "$out")
	case $last in
	*" simtun-relay: error: fatal: state_db $db: $what"*"; "*"$hint"*) ;;
	*) fail "$name: want 'state_db $db: $what...; ...$hint...' as the last line, got: $(tail -2 "$out")";;
	esac
	[ "$(grep -cF "state_db $db" "$out")" = 1 ] || fail "$name: more than one line about state_db: $(cat "$out")"
	log "$name: exit 1 in $dt s: ${last#*fatal: }"
}

# corrupt: random bytes; a real database with its second page overwritten
head -c 65536 /dev/urandom >"$T/relay/garbage.db"
sum=$(sha "$T/relay/garbage.db")
start_fails garbage "$T/relay/garbage.db" "cannot read: file is not a database" \
    "is corrupt: restore a backup, or move it aside"
[ "$(sha "$T/relay/garbage.db")" = "$sum" ] || fail "garbage: the file was changed"
ls "$T/relay/garbage.db-"* >/dev/null 2>&1 && fail "garbage: files left beside it: $(ls "$T/relay/garbage.db-"*)"
cp "$T/good.db" "$T/relay/damaged.db"
head -c 4096 /dev/zero | tr '\0' '\377' |
    dd of="$T/relay/damaged.db" bs=4096 seek=1 conv=notrunc status=none
sum=$(sha "$T/relay/damaged.db")
start_fails damaged "$T/relay/damaged.db" "integrity check failed: " \
    "is corrupt: restore a backup, or move it aside"
[ "$(sha "$T/relay/damaged.db")" = "$sum" ] || fail "damaged: the file was changed"

# read-only file system: a database with grants, and a new file
tmpfs "$T/ro" 1m
cp "$T/good.db" "$T/ro/state.db"
mount -o remount,ro "$T/ro" || fail "remount $T/ro read-only"
sum=$(sha "$T/ro/state.db")
start_fails ro "$T/ro/state.db" "cannot write: attempt to write a readonly database" \
    "it cannot be written (read-only file system"
[ "$(sha "$T/ro/state.db")" = "$sum" ] || fail "ro: the file was changed"
start_fails ro_new "$T/ro/new.db" "cannot open: unable to open database file" \
    "it cannot be written (read-only file system"

# full disk at start: a database with grants, and a new file
tmpfs "$T/full" 64k
cp "$T/good.db" "$T/full/state.db"
dd if=/dev/zero of="$T/full/filler" bs=4k 2>/dev/null
sum=$(sha "$T/full/state.db")
start_fails full "$T/full/state.db" "cannot write: database or disk is full" "the disk is full"
[ "$(sha "$T/full/state.db")" = "$sum" ] || fail "full: the file was changed"
start_fails full_new "$T/full/new.db" "cannot write: database or disk is full" "the disk is full"

# another relay on the file the running one holds
start_fails locked "$RDB" "cannot read: database is locked" "another process holds it (another simtun-relay?)"

# back to the full disk under the running relay: at least one retry (tick
# 5 s) went by without a new line
relay_alive || fail "relay died on a full disk"
left=$(awk -v a="$t_full" -v b="$(now)" 'BEGIN { d = 5.5 - (b - a); print (d > 0 ? d : 0) }')
sleep "$left"
grant c; gc=$GID
warned c || fail "second grant on a full disk: no warning: $(cat "$T/grant.c")"
listed "$ga" "$gb" "$gc" || fail "disk full: want grants $ga $gb $gc in force: $(ctl grants --json)"
[ "$(nlog "cannot write")" = 1 ] || fail "disk full: 'cannot write' said $(nlog "cannot write") times, want once"
rm "$T/rt/filler"
t0=$(now)
wait_until 7 grep -qF "state_db $RDB: writing again" "$RELAY_LOG" || fail "no 'writing again' within 7 s of freeing space"
log "space freed: 'writing again' after $(elapsed "$t0") s"
[ "$(nlog "cannot write")" = 1 ] || fail "'cannot write' said again"
relay_alive || fail "relay died"
stop_relay
start_relay "state_db = $RDB"
grep -qF "state_db $RDB: 3 grants and exposes in force" "$RELAY_LOG" || fail "restart: no '3 grants ... in force' line"
listed "$ga" "$gb" "$gc" || fail "after the disk was full and the relay restarted, want grants $ga $gb $gc: $(ctl grants --json)"
log "restart after disk full: grants $ga $gb $gc back"
relay_alive || fail "relay died"
stop_relay
exit 0
