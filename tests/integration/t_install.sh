#!/bin/bash
# t_install: `make install DESTDIR=...` installs the binaries, the units, the
# example configs and the man pages with sane modes; the units point at the
# installed binaries; the installed daemons accept the example configs
# (adjusted to temp paths) with "configuration OK".
. "$(dirname "$0")/lib.sh"

command -v make >/dev/null 2>&1 || skip "missing command: make"
DEST=$T/root
mkdir -p "$DEST"

# A make above us (make check) must not leak its flags or jobserver here.
unset MAKEFLAGS MFLAGS MAKELEVEL
log "make install DESTDIR=$DEST"
timeout 150 make -C "$REPO_ROOT" install DESTDIR="$DEST" >"$T/make.log" 2>&1 ||
    { tail -30 "$T/make.log"; fail "make install failed"; }

# Where the Makefile's defaults put things.
vars=$(make -C "$REPO_ROOT" -s -f Makefile -f - print-dirs <<'EOF' 2>/dev/null
print-dirs:
	@echo "SBINDIR=$(SBINDIR) BINDIR=$(BINDIR) MANDIR=$(MANDIR) UNITDIR=$(UNITDIR) SYSCONFDIR=$(SYSCONFDIR)"
EOF
)
[ -n "$vars" ] || fail "cannot read the install directories from the Makefile"
eval "$vars"
log "$vars"

# expect MODE PATH: a regular file with exactly this mode.
nbad=0
expect() {
	local mode=$1 f=$DEST$2 got
	if [ ! -f "$f" ]; then
		echo "missing: $2"; nbad=$((nbad + 1)); return
	fi
	got=$(stat -c %a "$f")
	if [ "$got" != "$mode" ]; then
		echo "mode $got, expected $mode: $2"; nbad=$((nbad + 1))
	fi
}
expect 755 "$SBINDIR/simtun-relay"
expect 755 "$SBINDIR/simtun-agent"
expect 755 "$BINDIR/simtunctl"
expect 644 "$UNITDIR/simtun-relay.service"
expect 644 "$UNITDIR/simtun-agent.service"
expect 644 "$SYSCONFDIR/simtun/relay.conf.example"
expect 644 "$SYSCONFDIR/simtun/agent.conf.example"
expect 644 "$SYSCONFDIR/simtun/authorized_keys.example"
expect 644 "$MANDIR/man8/simtun-relay.8"
expect 644 "$MANDIR/man8/simtun-agent.8"
expect 644 "$MANDIR/man8/simtunctl.8"
expect 644 "$MANDIR/man5/simtun.conf.5"

# Nothing writable by group or others, nothing setuid, no stray temp files.
find "$DEST" -mindepth 1 \( -perm /022 -o -perm /6000 \) -printf '%m %P\n' \
    >"$T/badperm"
[ -s "$T/badperm" ] && { sed 's/^/bad permissions: /' "$T/badperm"; nbad=$((nbad + 1)); }
find "$DEST" -name '*.tmp' -printf 'stray file: %P\n' | grep . && nbad=$((nbad + 1))
log "installed:"
(cd "$DEST" && find . -type f -printf '  %m %P\n' | sort -k2)

# The units must start what was installed.
for u in relay agent; do
	exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$DEST$UNITDIR/simtun-$u.service")
	if [ "$exe" != "$SBINDIR/simtun-$u" ] || [ ! -x "$DEST$exe" ]; then
		echo "simtun-$u.service: ExecStart=$exe is not the installed binary"
		nbad=$((nbad + 1))
	fi
done
[ $nbad = 0 ] || fail "$nbad problem(s) with the installed files"

# Installed binaries run and say who they are.
for b in "$SBINDIR/simtun-relay" "$SBINDIR/simtun-agent" "$BINDIR/simtunctl"; do
	"$DEST$b" -V | grep -q "^${b##*/} " || fail "$b -V: unexpected output"
done

# The example relay.conf, moved to temp paths, passes -n.
mkdir -p "$T/etc" "$T/state" "$T/run"
cp "$DEST$SYSCONFDIR/simtun/authorized_keys.example" "$T/etc/authorized_keys"
if command -v ssh-keygen >/dev/null 2>&1; then
	ssh-keygen -q -t ed25519 -N "" -C pi-01 -f "$T/etc/id_ed25519" ||
	    fail "ssh-keygen failed"
	printf 'restrict,permitlisten="4649" %s\n' "$(cat "$T/etc/id_ed25519.pub")" \
	    >>"$T/etc/authorized_keys"
fi
sed -e "s|^host_key *=.*|host_key = $T/state/ssh_host_ed25519_key|" \
    -e "s|^authorized_keys *=.*|authorized_keys = $T/etc/authorized_keys|" \
    -e "s|^control_socket *=.*|control_socket = $T/run/relay.sock|" \
    -e "s|^state_db *=.*|state_db = $T/state/state.db|" \
    "$DEST$SYSCONFDIR/simtun/relay.conf.example" >"$T/etc/relay.conf"
grep -q "^host_key = $T/" "$T/etc/relay.conf" ||
    fail "relay.conf.example has no host_key line to adjust"
out=$(timeout 20 "$DEST$SBINDIR/simtun-relay" -n -c "$T/etc/relay.conf" 2>&1)
rc=$?
echo "$out" | sed 's/^/  relay -n: /'
[ $rc = 0 ] || fail "simtun-relay -n exit $rc"
echo "$out" | grep -qx "configuration OK" || fail "simtun-relay -n did not say configuration OK"
echo "$out" | grep -q "line ignored" && fail "simtun-relay -n ignored an authorized_keys line"
# and it really checks: a bad key is reported as file:line
printf '[relay]\nlisten = 127.0.0.1:2222\nbogus = 1\n' >"$T/etc/bad.conf"
out=$("$DEST$SBINDIR/simtun-relay" -n -c "$T/etc/bad.conf" 2>&1) &&
    fail "simtun-relay -n accepted an unknown key"
echo "$out" | grep -q "^$T/etc/bad.conf:3: " || fail "no file:line in: $out"
log "simtun-relay -n: configuration OK (and bad.conf:3 refused)"

# The example agent.conf too, when we can make it an identity.
if [ -f "$T/etc/id_ed25519" ]; then
	sed -e "s|^identity *=.*|identity = $T/etc/id_ed25519|" \
	    "$DEST$SYSCONFDIR/simtun/agent.conf.example" >"$T/etc/agent.conf"
	out=$(timeout 20 "$DEST$SBINDIR/simtun-agent" -n -c "$T/etc/agent.conf" 2>&1)
	rc=$?
	echo "$out" | sed 's/^/  agent -n: /'
	[ $rc = 0 ] && echo "$out" | grep -qx "configuration OK" ||
	    fail "simtun-agent -n on agent.conf.example: exit $rc"
	log "simtun-agent -n: configuration OK"
else
	log "no ssh-keygen: agent.conf.example not checked"
fi

# The installed man pages format without a warning.
if command -v groff >/dev/null 2>&1; then
	for p in "$DEST$MANDIR"/man[58]/*; do
		w=$(groff -ww -man -z "$p" 2>&1)
		[ -z "$w" ] || fail "groff warnings in ${p#$DEST}: $w"
	done
	log "man pages: groff -ww clean"
fi
exit 0
