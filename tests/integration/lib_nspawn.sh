# tests/integration/lib_nspawn.sh: boot a minimal Debian 12 under a real
# systemd (systemd-nspawn --boot) for t_systemd*.  Source it after lib.sh.
#
# The root file system is built once with mmdebstrap --variant=minbase from
# the Debian mirror this machine's apt uses, and cached as a tarball under
# $NSPAWN_CACHE (default build/nspawn/), keyed by the package list, the suite
# and the apt sources: later runs only unpack it.  It holds what simtun needs
# at run time and nothing more: the shared libraries of the three binaries,
# systemd as PID 1, dbus, openssh-server (the device's sshd), iproute2 (ss),
# procps and adduser (the .deb maintainer scripts).  Deliberately not
# libnss-systemd (Priority: standard, absent from minimal images): a
# DynamicUser= service must work without a passwd entry.  NSPAWN_PKGS_EXTRA
# adds packages (another cached image), e.g. libnss-systemd to see how far
# the rest gets while the agent still needs it.
#
# ct_boot boots it in its own network namespace (loopback only) with
# --register=no --keep-unit, so no machined or host D-Bus is needed; cx runs
# a command inside with nsenter, in a clean environment.

NSPAWN_SUITE=bookworm
NSPAWN_PKGS="systemd systemd-sysv dbus libssh-4 libevent-core-2.1-7
libevent-extra-2.1-7 libsodium23 libsqlite3-0 libhiredis0.14 libinih1 libsystemd0 openssh-server
iproute2 procps adduser ${NSPAWN_PKGS_EXTRA:-}"
: "${NSPAWN_CACHE:=$REPO_ROOT/build/nspawn}"
CT_PID=			# systemd-nspawn
CT_LEADER=		# the container's PID 1, seen from here
CT_ROOT=		# unpacked root file system (removed at exit)
CT_NAME=

# nspawn_require: root, systemd-nspawn and mmdebstrap (installed when
# missing and we can), else skip.
nspawn_require() {
	local need=
	[ "$(id -u)" = 0 ] || skip "needs root (systemd-nspawn)"
	command -v systemd-nspawn >/dev/null || need="$need systemd-container"
	command -v mmdebstrap >/dev/null || need="$need mmdebstrap"
	if [ -n "$need" ] && command -v apt-get >/dev/null; then
		log "installing$need"
		DEBIAN_FRONTEND=noninteractive timeout 300 bash "$REPO_ROOT/tests/lockwait.sh" \
		    apt-get -o DPkg::Lock::Timeout=120 install -y -q \
		    --no-install-recommends $need >"$T/apt.log" 2>&1 ||
		    log "apt-get install$need failed: $(tail -2 "$T/apt.log")"
	fi
	command -v systemd-nspawn >/dev/null ||
	    skip "systemd-nspawn not available (apt-get install systemd-container)"
	command -v mmdebstrap >/dev/null ||
	    skip "mmdebstrap not available (apt-get install mmdebstrap)"
	command -v nsenter >/dev/null || skip "nsenter not available"
}

# nspawn_sources: the apt sources of this machine that name a Debian
# archive (one file each, deb822 or one-line), for mmdebstrap.
nspawn_sources() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
	    /etc/apt/sources.list.d/*.list; do
		[ -s "$f" ] || continue
		grep -v '^[[:space:]]*#' "$f" | grep -q '/debian' || continue
		printf '%s\n' "$f"
	done
}

# rootfs_tar: print the path of the cached root file system tarball,
# building it first if needed (times it: the heaviest step of t_systemd).
rootfs_tar() {
	local srcs key tar t0 f
	srcs=$(nspawn_sources)
	[ -n "$srcs" ] || fail "no Debian apt source in /etc/apt (mmdebstrap needs a mirror)"
	key=$( { echo "$NSPAWN_SUITE $NSPAWN_PKGS"; for f in $srcs; do cat "$f"; done; } |
	    sha256sum | cut -c1-16)
	tar=$NSPAWN_CACHE/rootfs-$NSPAWN_SUITE-$key.tar
	if [ -s "$tar" ]; then
		touch "$tar"		# in use: kept by the pruning below
		log "root file system: cached $tar" >&2
		echo "$tar"; return 0
	fi
	mkdir -p "$NSPAWN_CACHE" || fail "mkdir $NSPAWN_CACHE"
	t0=$(now)
	log "building the root file system (mmdebstrap --variant=minbase $NSPAWN_SUITE)" >&2
	# the documentation is of no use in a test image
	timeout 600 mmdebstrap --variant=minbase --mode=root --format=tar \
	    --include="$(echo $NSPAWN_PKGS | tr ' ' ,)" \
	    --aptopt='Acquire::Retries "3"' \
	    --dpkgopt='path-exclude=/usr/share/man/*' \
	    --dpkgopt='path-exclude=/usr/share/locale/*' \
	    --dpkgopt='path-exclude=/usr/share/doc/*' \
	    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
	    "$NSPAWN_SUITE" "$tar.tmp.$$" $srcs >"$T/mmdebstrap.txt" 2>&1 || {
		rm -f "$tar.tmp.$$"
		tail -15 "$T/mmdebstrap.txt" >&2
		fail "mmdebstrap failed (log above)"
	}
	mv -f "$tar.tmp.$$" "$tar"
	# images of other package lists or sources nobody used for a week
	find "$NSPAWN_CACHE" -maxdepth 1 -name 'rootfs-*.tar' -mtime +7 ! -newer "$tar" -delete 2>/dev/null
	log "root file system built in $(elapsed "$t0") s: $(du -h "$tar" | cut -f1) $tar" >&2
	echo "$tar"
}

# ct_unpack DIR: a fresh root file system in DIR (removed when the test ends;
# under the build folder rather than /tmp: 400 MB, and safe from /tmp sweeps).
ct_unpack() {
	local tar t0
	tar=$(rootfs_tar) || exit 1
	t0=$(now)
	CT_ROOT=$1
	# roots left by a test killed outright (12 h: no test runs that long)
	find "$NSPAWN_CACHE" -maxdepth 1 -name 'ct-*' -mmin +720 \
	    -exec rm -rf --one-file-system {} + 2>/dev/null
	mkdir -p "$CT_ROOT"
	tar -C "$CT_ROOT" -xf "$tar" || fail "unpacking $tar"
	log "unpacked in $(elapsed "$t0") s into $CT_ROOT"
}

# cx CMD...: run CMD in the booted container (all its namespaces), as root,
# with a plain environment.
cx() {
	nsenter -t "$CT_LEADER" -a env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	    LANG=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}

# ct_boot: boot $CT_ROOT with systemd as PID 1, private network (lo only);
# wait until systemd says the boot is over.  A container that cannot even
# start its PID 1 means this machine cannot run nspawn: skip.
ct_boot() {
	local t0 st
	CT_NAME=${ST_ID}ct
	t0=$(now)
	systemd-nspawn --quiet -D "$CT_ROOT" --boot --machine="$CT_NAME" \
	    --private-network --register=no --keep-unit --link-journal=no \
	    --resolv-conf=off --timezone=off --console=read-only \
	    </dev/null >"$T/console.txt" 2>&1 &
	CT_PID=$!
	wait_until 20 ct_find_leader || {
		kill -0 "$CT_PID" 2>/dev/null || {
			tail -5 "$T/console.txt"
			skip "systemd-nspawn cannot start a container here: $(grep -v '^$' "$T/console.txt" | tail -1)"
		}
		fail "no PID 1 in the container after 20 s"
	}
	st=$(timeout 60 nsenter -t "$CT_LEADER" -a systemctl is-system-running --wait 2>&1)
	case $st in
	running) ;;
	degraded) log "booted degraded: $(cx systemctl --failed --no-legend --plain | tr '\n' ';')";;
	*) tail -20 "$T/console.txt"; skip "container did not boot (is-system-running: $st)";;
	esac
	log "booted $CT_NAME (leader pid $CT_LEADER, $(cx systemctl --version | head -1)) in $(elapsed "$t0") s"
}

# ct_find_leader: set CT_LEADER to the container's systemd (nspawn's child).
ct_find_leader() {
	local p
	kill -0 "$CT_PID" 2>/dev/null || return 1
	p=$(ps -o pid= --ppid "$CT_PID" 2>/dev/null | head -1 | tr -d ' ')
	[ -n "$p" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd ] || return 1
	# its bus must be up before systemctl can talk to it
	[ -S "/proc/$p/root/run/systemd/private" ] || return 1
	CT_LEADER=$p
}

# ct_stop: power the container off (SIGTERM to nspawn), kill it after 20 s.
ct_stop() {
	[ -n "$CT_PID" ] || return 0
	if kill -0 "$CT_PID" 2>/dev/null; then
		kill -TERM "$CT_PID" 2>/dev/null
		wait_until 20 eval "! kill -0 $CT_PID 2>/dev/null" || {
			echo "container $CT_NAME did not power off in 20 s: killing it"
			kill -KILL "$CT_PID" 2>/dev/null
			wait_until 5 eval "! kill -0 $CT_PID 2>/dev/null"
		}
	fi
	CT_PID=
}

# unit_prop UNIT PROP: one property of UNIT inside the container.
unit_prop() { cx systemctl show -P "$2" "$1"; }

# unit_journal UNIT [N]: the last N lines of UNIT's journal in the container.
unit_journal() { cx journalctl -q --no-pager -o short-monotonic -n "${2:-30}" -u "$1"; }

# Cleanup: the container goes first (its root is removed, never kept: the
# logs that matter are copied into $T by the test), then lib.sh's.
eval "_lib_cleanup() $(declare -f cleanup | tail -n +2)"
cleanup() {
	ct_stop
	[ -n "$CT_ROOT" ] && [ -d "$CT_ROOT" ] && rm -rf --one-file-system "$CT_ROOT"
	_lib_cleanup
}

# --- simtun under systemd -------------------------------------------------

# unit_running UNIT: active (running) with a main process.
unit_running() {
	[ "$(unit_prop "$1" ActiveState)/$(unit_prop "$1" SubState)" = active/running ]
}

# device_on_relay: simtunctl status in the container lists pi-01, connected.
device_on_relay() { cx simtunctl status 2>/dev/null | grep -q '^pi-01 .* connected '; }

# port_free_ct PORT / port_bound_ct PORT: nothing / something listens on PORT.
port_bound_ct() { cx ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; }
port_free_ct() { ! port_bound_ct "$1"; }

# banner_via_relay: the device's sshd answers through the relay's port 4649
# (what a laptop gets from `ssh -p 4649 relay`).
banner_via_relay() {
	local b
	b=$(cx timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/4649 && head -c 8 <&3' 2>/dev/null)
	[ "$b" = SSH-2.0- ]
}

# ct_unit_fail UNIT MSG: fail with UNIT's state and journal.
ct_unit_fail() {
	echo "--- $1: $(cx systemctl show -p ActiveState,SubState,Result,NRestarts,ExecMainStatus,StatusText "$1" | tr '\n' ' ')"
	unit_journal "$1" 40 >"$T/${1%.service}.journal.log"
	grep -q "Couldn't apply options" "$T/${1%.service}.journal.log" &&
	    echo "note: libssh could not set its options: the agent, a DynamicUser= with no passwd entry (no libnss-systemd, no simtun user) and no HOME, still depends on them"
	fail "$2"
}

# ct_simtun_check EXAMPLE_SUFFIX: configure and exercise both units as an
# administrator would, in the booted container.  The configuration comes
# from the shipped files (/etc/simtun/NAME$EXAMPLE_SUFFIX), changed only
# where the README says: the relay's device list, the agent's relay address
# and the relay's fingerprint.
ct_simtun_check() {
	local sfx=$1 E=$CT_ROOT/etc/simtun fp pid_r pid_a wd t0 u k v
	# the device key: root-owned 0600, the agent unit hands it over
	ssh-keygen -q -t ed25519 -N '' -C pi-01 -f "$T/id_ed25519" || fail "ssh-keygen"
	install -m 0600 "$T/id_ed25519" "$E/id_ed25519"
	cp "$E/relay.conf$sfx" "$E/relay.conf.new" && mv "$E/relay.conf.new" "$E/relay.conf"
	cp "$E/authorized_keys$sfx" "$E/authorized_keys.new"
	echo "restrict,permitlisten=\"4649\" $(cut -d' ' -f1,2 "$T/id_ed25519.pub") pi-01" \
	    >>"$E/authorized_keys.new"
	mv "$E/authorized_keys.new" "$E/authorized_keys"
	cx systemctl daemon-reload

	# relay: Type=notify, so start returns once it said READY=1
	t0=$(now)
	cx timeout 60 systemctl start simtun-relay.service ||
	    ct_unit_fail simtun-relay.service "systemctl start simtun-relay failed"
	unit_running simtun-relay.service || ct_unit_fail simtun-relay.service "relay not running"
	[ "$(unit_prop simtun-relay.service Type)" = notify ] || fail "relay unit is not Type=notify"
	v=$(unit_prop simtun-relay.service StatusText)
	[ -n "$v" ] || ct_unit_fail simtun-relay.service "relay sent no STATUS= (sd_notify not reaching systemd)"
	log "relay active in $(elapsed "$t0") s: \"$v\""
	pid_r=$(unit_prop simtun-relay.service MainPID)

	# hardening in force: a dynamic user, no privileges, seccomp
	u=$(cx ps -o user= -p "$pid_r" | tr -d ' ')
	[ -n "$u" ] && [ "$u" != root ] || fail "relay runs as '$u', not a dynamic user"
	cx grep -q '^NoNewPrivs:[[:space:]]*1' "/proc/$pid_r/status" || fail "relay: NoNewPrivs not set"
	cx grep -q '^Seccomp:[[:space:]]*2' "/proc/$pid_r/status" || fail "relay: no seccomp filter"
	cx grep -q '^CapEff:[[:space:]]*0000000000000000' "/proc/$pid_r/status" || fail "relay has capabilities"
	log "relay sandbox: user $u, NoNewPrivs, seccomp, no capabilities"

	# the host key the relay created on first start, as the agent pins it
	fp=$(cx simtun-relay -c /etc/simtun/relay.conf --fingerprint 2>&1 | grep -o 'SHA256:[A-Za-z0-9+/=]*' | head -1)
	[ -n "$fp" ] || fail "no relay fingerprint: $(cx simtun-relay -c /etc/simtun/relay.conf --fingerprint 2>&1)"
	sed -e 's|^host = .*|host = 127.0.0.1|' -e "s|^host_key = .*|host_key = $fp|" \
	    "$E/agent.conf$sfx" >"$E/agent.conf.new"
	mv "$E/agent.conf.new" "$E/agent.conf"
	out=$(cx simtun-agent -n -c /etc/simtun/agent.conf 2>&1) || fail "agent -n: $out"

	t0=$(now)
	cx timeout 60 systemctl start simtun-agent.service ||
	    ct_unit_fail simtun-agent.service "systemctl start simtun-agent failed"
	unit_running simtun-agent.service || ct_unit_fail simtun-agent.service "agent not running"
	[ "$(unit_prop simtun-agent.service Type)" = notify ] || fail "agent unit is not Type=notify"
	log "agent active in $(elapsed "$t0") s: \"$(unit_prop simtun-agent.service StatusText)\""
	pid_a=$(unit_prop simtun-agent.service MainPID)
	u=$(cx ps -o user= -p "$pid_a" | tr -d ' ')
	[ -n "$u" ] && [ "$u" != root ] || fail "agent runs as '$u', not a dynamic user"
	cx grep -q '^NoNewPrivs:[[:space:]]*1' "/proc/$pid_a/status" || fail "agent: NoNewPrivs not set"
	cx grep -q '^Seccomp:[[:space:]]*2' "/proc/$pid_a/status" || fail "agent: no seccomp filter"

	wait_until 20 device_on_relay ||
	    ct_unit_fail simtun-agent.service "the agent's device is not connected on the relay after 20 s (status: $(cx simtunctl status 2>&1 | tail -n +2 | tr '\n' ';'))"
	log "relay status: $(cx simtunctl status | tail -n +2 | tr -s ' ')"
	log "agent status: \"$(unit_prop simtun-agent.service StatusText)\""
	wait_until 10 banner_via_relay || fail "no SSH banner from the device's sshd through the relay's port 4649"
	log "device sshd reached through relay port 4649"

	# reload: both stay active, same process, no restart
	cx timeout 30 systemctl reload simtun-relay.service simtun-agent.service ||
	    fail "systemctl reload failed: $(cx systemctl status --no-pager simtun-relay simtun-agent | tail -20)"
	sleep 1
	for k in relay:$pid_r agent:$pid_a; do
		u=simtun-${k%%:*}.service
		unit_running "$u" || ct_unit_fail "$u" "$u not running after reload"
		[ "$(unit_prop "$u" MainPID)" = "${k#*:}" ] || ct_unit_fail "$u" "$u has a new main process after reload"
	done
	unit_journal simtun-relay.service 50 | grep -q 'reloaded' ||
	    ct_unit_fail simtun-relay.service "relay did not log a reload"
	wait_until 20 device_on_relay || fail "device not connected after the reload"
	log "reload: both active, same main processes, device connected"

	# more than one watchdog period: no watchdog kill, no restart
	wd=$(unit_prop simtun-relay.service WatchdogUSec)
	v=$(unit_prop simtun-agent.service WatchdogUSec)
	[ -n "$wd" ] && [ "$wd" != 0 ] && [ "$wd" != infinity ] || fail "relay unit has no watchdog ($wd)"
	# "30s", "1min 30s", "500ms": whole seconds, rounded up
	wd=$(awk -v a="$(unit_prop simtun-relay.service WatchdogUSec)" 'BEGIN {
		s = 0; n = split(a, p, " ");
		for (i = 1; i <= n; i++) {
			v = p[i] + 0;
			if (p[i] ~ /min$/) s += v * 60; else if (p[i] ~ /ms$/) s += v / 1000;
			else if (p[i] ~ /h$/) s += v * 3600; else s += v;
		}
		print int(s + 0.999) }')
	log "waiting $((wd + 3)) s: more than one watchdog period (relay $(unit_prop simtun-relay.service WatchdogUSec), agent $v)"
	sleep $((wd + 3))
	for u in simtun-relay.service simtun-agent.service; do
		unit_running "$u" || ct_unit_fail "$u" "$u not running after a watchdog period"
		[ "$(unit_prop "$u" NRestarts)" = 0 ] || ct_unit_fail "$u" "$u restarted ($(unit_prop "$u" NRestarts) times)"
		unit_journal "$u" 100 | grep -qi 'watchdog timeout' && ct_unit_fail "$u" "$u: watchdog timeout"
	done
	[ "$(unit_prop simtun-relay.service MainPID)" = "$pid_r" ] || fail "relay main process changed"
	[ "$(unit_prop simtun-agent.service MainPID)" = "$pid_a" ] || fail "agent main process changed"
	device_on_relay || fail "device not connected after a watchdog period"
	log "after ${wd} s + 3 s: both running, NRestarts=0, same main processes"

	# stopping the agent: the device leaves the relay's list at once; its
	# port stays kept for the same key for hold_time (a reboot gets it
	# back at once, connections meanwhile are held)
	port_bound_ct 4649 || fail "relay port 4649 not bound while the device is connected"
	t0=$(now)
	cx timeout 30 systemctl stop simtun-agent.service || fail "systemctl stop simtun-agent failed"
	wait_until 2 eval '! device_on_relay' || fail "relay still lists the device 2 s after the agent stopped"
	port_bound_ct 4649 || fail "port 4649 not kept for the device's next session (hold_time)"
	log "agent stopped: device off the list after $(elapsed "$t0") s, port 4649 kept for hold_time"
	v=$(unit_prop simtun-agent.service Result)
	[ "$v" = success ] || ct_unit_fail simtun-agent.service "agent stop result: $v"
	cx timeout 30 systemctl stop simtun-relay.service || fail "systemctl stop simtun-relay failed"
	v=$(unit_prop simtun-relay.service Result)
	[ "$v" = success ] || ct_unit_fail simtun-relay.service "relay stop result: $v"
	unit_journal simtun-relay.service 200 >"$T/relay.journal"
	unit_journal simtun-agent.service 200 >"$T/agent.journal"
	log "both stopped cleanly"
}
