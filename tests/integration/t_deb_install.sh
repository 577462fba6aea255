#!/bin/bash
# The Debian packages for this machine (amd64 here; make deb): dpkg -i on this machine, then
# simtun-relay -n and simtun-agent -n from /usr/sbin against the shipped
# /etc/simtun examples (as shipped, and adjusted as the README tells a user:
# a device key, the relay's fingerprint), the simtun system user exists, no
# unit was enabled or started, man pages and conffiles are in place; then
# dpkg --purge leaves nothing behind.  Skips when simtun is already installed
# here (packages or make install into /usr): it would be clobbered.
. "$(dirname "$0")/lib.sh"

PKGS="simtun-agent simtun-relay simtun-common"
require_cmds dpkg dpkg-deb make ssh-keygen getent

for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'installed' &&
	    skip "package $p is installed on this machine; not touching it"
done
for f in /usr/sbin/simtun-relay /usr/sbin/simtun-agent /usr/bin/simtunctl \
    /etc/simtun/relay.conf /etc/simtun/agent.conf /etc/simtun/authorized_keys \
    /lib/systemd/system/simtun-relay.service /lib/systemd/system/simtun-agent.service; do
	[ -e "$f" ] && skip "$f exists (make install PREFIX=/usr?); the packages would clobber it"
done
user_existed=
getent passwd simtun >/dev/null && user_existed=1
installed=
ARCH=$(dpkg --print-architecture)

# dpkg_wait ARGS...: dpkg, waiting (bounded) while another process holds its lock.
dpkg_wait() { bash "$REPO_ROOT/tests/lockwait.sh" dpkg "$@"; }

# cleanup wrapper: purge what the test installed if it stops half-way, and
# remove the simtun user if the test created it (packages leave it on purge).
eval "lib_cleanup() $(declare -f cleanup | tail -n +2)"
cleanup() {
	if [ -n "$installed" ]; then
		dpkg_wait --purge $PKGS >>"$T/dpkg.log" 2>&1
	fi
	if [ -z "$user_existed" ] && getent passwd simtun >/dev/null; then
		userdel simtun 2>/dev/null
		getent group simtun >/dev/null && groupdel simtun 2>/dev/null
	fi
	lib_cleanup
}

# --- build ----------------------------------------------------------------
make -C "$REPO_ROOT" --no-print-directory deb DEB_ARCHES="$ARCH" >"$T/make-deb.log" 2>&1 ||
    fail "make deb failed: $(grep -iE 'error|mkdeb:' "$T/make-deb.log" | head -3)"
ver=$(dpkg-parsechangelog -l "$REPO_ROOT/conf/debian/changelog" -S Version)
debs=()
for p in $PKGS; do
	d=$REPO_ROOT/build-deb/${p}_${ver}_$ARCH.deb
	[ -f "$d" ] || fail "make deb did not produce $d"
	debs+=("$d")
done
log "built: $(cd "$REPO_ROOT/build-deb" && ls -s *_"$ARCH".deb | tr '\n' ' ')"
# --- every program the units and maintainer scripts run is declared -------
# A program's package (dpkg -S on this machine) must be Essential or named
# in Depends.  Exempt: systemctl, which the scripts run only under
# [ -d /run/systemd/system ], i.e. when systemd is the running init.
# owner_of PROG: the package that ships PROG here (PATH lookup, /usr-merge aware).
owner_of() {
	local f o
	f=$(command -v "$1" 2>/dev/null) || return 1
	[ -f "$f" ] || return 1
	for f in "$f" "$(readlink -f "$f")" "${f#/usr}" "/usr$f"; do
		o=$(dpkg -S "$f" 2>/dev/null | head -1 | cut -d: -f1) && [ -n "$o" ] &&
		    { echo "$o"; return 0; }
	done
	return 1
}
ndecl=0
for d in "${debs[@]}"; do
	p=$(dpkg-deb -f "$d" Package)
	deps=" $(dpkg-deb -f "$d" Depends | sed 's/([^)]*)//g; s/[,|]/ /g') "
	x=$T/ctl-$p
	rm -rf "$x"; mkdir -p "$x"
	dpkg-deb -e "$d" "$x/DEBIAN"
	dpkg-deb -x "$d" "$x/root"
	progs=$(
		# units: the first word of every Exec*= line
		find "$x/root" -name '*.service' -exec sed -n 's/^Exec[A-Za-z]*=[-@:+!]*\([^ ]*\).*/\1/p' {} +
		# maintainer scripts: every word in command position that is a program here
		for s in "$x"/DEBIAN/{preinst,postinst,prerm,postrm}; do
			[ -f "$s" ] || continue
			perl -ne 'next if /^\s*#/; for (split /;|&&|\|\||\||\$\(|`|\b(?:then|do|else|if|elif|while|until)\b|!/) {
				print "$1\n" if /^\s*([A-Za-z\/][\w.\/-]*)/ }' "$s" |
			    while read -r w; do
				[ "$(type -t "$w")" = file ] && echo "$w"
			    done
		done | sort -u)
	for prog in $progs; do
		case ${prog##*/} in systemctl) continue;; esac
		# the package's own binaries
		[ -e "$x/root$prog" ] && continue
		o=$(owner_of "$prog") || fail "$p: $prog: no package on this machine ships it"
		[ "$(dpkg-query -W -f='${Essential}' "$o" 2>/dev/null)" = yes ] && continue
		case $deps in *" $o "*) ndecl=$((ndecl + 1)); continue;; esac
		fail "$p runs $prog (package $o) but does not declare it: Depends:$deps"
	done
done
log "units and maintainer scripts: every program they run is essential or declared ($ndecl in Depends)"
if command -v lintian >/dev/null; then
	lintian "${debs[@]}" >"$T/lintian.log" 2>&1
	grep -q '^E: ' "$T/lintian.log" && fail "lintian errors: $(grep '^E: ' "$T/lintian.log" | head -5)"
	log "lintian: $(grep -c '^E: ' "$T/lintian.log") errors, $(grep -c '^W: ' "$T/lintian.log") warnings"
fi

# --- install --------------------------------------------------------------
installed=1
DEBIAN_FRONTEND=noninteractive dpkg_wait -i "${debs[@]}" >"$T/dpkg.log" 2>&1 ||
    fail "dpkg -i failed: $(tail -5 "$T/dpkg.log")"
for p in $PKGS; do
	s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)
	[ "$s" = "install ok installed" ] || fail "$p: dpkg status '$s'"
done
log "installed: $(dpkg-query -W -f='${Package} ${Version} ${Architecture}\n' $PKGS | tr '\n' ';')"

for b in /usr/sbin/simtun-relay /usr/sbin/simtun-agent /usr/bin/simtunctl; do
	[ -x "$b" ] || fail "$b not installed"
done
v=$(/usr/sbin/simtun-relay -V) && [ "$v" = "simtun-relay ${ver%-*}" ] || fail "simtun-relay -V: '$v'"
v=$(/usr/sbin/simtun-agent -V) && [ "$v" = "simtun-agent ${ver%-*}" ] || fail "simtun-agent -V: '$v'"
/usr/bin/simtunctl -h >/dev/null 2>&1 || [ $? = 1 ] || [ $? = 2 ] || fail "simtunctl does not run"
for f in /lib/systemd/system/simtun-relay.service /lib/systemd/system/simtun-agent.service \
    /usr/share/man/man8/simtun-relay.8.gz /usr/share/man/man8/simtun-agent.8.gz \
    /usr/share/doc/simtun-relay/copyright /usr/share/doc/simtun-agent/copyright; do
	[ -f "$f" ] || fail "$f not installed"
done
for f in relay:/etc/simtun/relay.conf relay:/etc/simtun/authorized_keys agent:/etc/simtun/agent.conf; do
	dpkg-query -W -f='${Conffiles}\n' "simtun-${f%%:*}" | grep -q " ${f#*:} " ||
	    fail "${f#*:} is not a conffile of simtun-${f%%:*}"
done

# the system user, for the units (User=simtun)
pw=$(getent passwd simtun) || fail "postinst did not create the simtun user"
uid=$(echo "$pw" | cut -d: -f3)
shell=$(echo "$pw" | cut -d: -f7)
[ "$uid" -lt 1000 ] || fail "simtun is not a system user (uid $uid)"
case $shell in */nologin|/bin/false) ;; *) fail "simtun has a login shell: $shell";; esac
log "simtun user: $pw"

# nothing enabled or started behind the user's back
links=$(find /etc/systemd -name 'simtun-*' 2>/dev/null)
[ -z "$links" ] || fail "unit enabled by the package: $links"
if command -v systemctl >/dev/null; then
	for u in simtun-relay simtun-agent; do
		e=$(systemctl is-enabled "$u.service" 2>/dev/null)
		[ "$e" = enabled ] && fail "$u.service is enabled"
		if [ -d /run/systemd/system ]; then
			systemctl is-active -q "$u.service" && fail "$u.service was started"
		fi
	done
fi
for p in /proc/[0-9]*; do
	case $(readlink "$p/exe" 2>/dev/null) in
	/usr/sbin/simtun-relay|/usr/sbin/simtun-agent)
		fail "a simtun daemon runs after install: pid ${p#/proc/}";;
	esac
done
log "units installed, neither enabled nor running"

# --- the shipped configs, as shipped and as a user fills them in ---------
out=$(/usr/sbin/simtun-relay -n -c /etc/simtun/relay.conf 2>&1) ||
    fail "simtun-relay -n on the shipped relay.conf: $out"
log "shipped relay.conf: $out"
out=$(/usr/sbin/simtun-agent -n -c /etc/simtun/agent.conf 2>&1) &&
    fail "shipped agent.conf (placeholder fingerprint, no key) passed -n: $out"
echo "$out" | grep -q '^/etc/simtun/agent.conf:[0-9]*: ' ||
    fail "shipped agent.conf: error without file:line: $out"
log "shipped agent.conf refused until filled in: $(echo "$out" | head -1)"

U=$T/etc
mkdir -p "$U" "$T/var"
# relay: own host key and authorized_keys, a control socket the user may create
sed -e "s|^host_key = .*|host_key = $T/var/ssh_host_ed25519_key|" \
    -e "s|^authorized_keys = .*|authorized_keys = $U/authorized_keys|" \
    -e "s|^control_socket = .*|control_socket = $T/var/relay.sock|" \
    -e "s|^state_db = .*|state_db = $T/var/state.db|" \
    /etc/simtun/relay.conf >"$U/relay.conf"
cp /etc/simtun/authorized_keys "$U/authorized_keys"
ssh-keygen -q -t ed25519 -N '' -C relay -f "$T/var/ssh_host_ed25519_key" || fail "ssh-keygen"
ssh-keygen -q -t ed25519 -N '' -C pi-01 -f "$U/id_ed25519" || fail "ssh-keygen"
echo "restrict,permitlisten=\"4649\" $(cut -d' ' -f1,2 "$U/id_ed25519.pub") pi-01" >>"$U/authorized_keys"
out=$(/usr/sbin/simtun-relay -n -c "$U/relay.conf" 2>&1) || fail "simtun-relay -n (filled in): $out"
[ "$out" = "configuration OK" ] || fail "simtun-relay -n printed '$out'"
fp=$(/usr/sbin/simtun-relay -c "$U/relay.conf" --fingerprint 2>/dev/null | grep -o 'SHA256:[A-Za-z0-9+/=]*' | head -1)
[ -n "$fp" ] || fp=$(ssh-keygen -lf "$T/var/ssh_host_ed25519_key.pub" | awk '{print $2}')
[ "$fp" = "$(ssh-keygen -lf "$T/var/ssh_host_ed25519_key.pub" | awk '{print $2}')" ] ||
    fail "simtun-relay --fingerprint '$fp' differs from ssh-keygen -lf"
# agent: the device key and the relay's fingerprint, nothing else changed
sed -e "s|^identity = .*|identity = $U/id_ed25519|" \
    -e "s|^host_key = .*|host_key = $fp|" \
    /etc/simtun/agent.conf >"$U/agent.conf"
out=$(/usr/sbin/simtun-agent -n -c "$U/agent.conf" 2>&1) || fail "simtun-agent -n (filled in): $out"
[ "$out" = "configuration OK" ] || fail "simtun-agent -n printed '$out'"
log "filled-in relay.conf and agent.conf: configuration OK (fingerprint $fp)"

# --- purge ----------------------------------------------------------------
DEBIAN_FRONTEND=noninteractive dpkg_wait --purge $PKGS >>"$T/dpkg.log" 2>&1 ||
    fail "dpkg --purge failed: $(tail -5 "$T/dpkg.log")"
installed=
for p in $PKGS; do
	s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)
	case $s in ""|"unknown ok not-installed"|"purge ok not-installed") ;;
	*) fail "$p still known to dpkg after purge: '$s'";; esac
done
for f in /usr/sbin/simtun-relay /usr/sbin/simtun-agent /usr/bin/simtunctl \
    /etc/simtun/relay.conf /etc/simtun/agent.conf /etc/simtun/authorized_keys \
    /lib/systemd/system/simtun-relay.service /lib/systemd/system/simtun-agent.service \
    /usr/share/man/man8/simtun-relay.8.gz /usr/share/doc/simtun-relay /etc/simtun; do
	[ -e "$f" ] && fail "$f left after purge"
done
left=$(find /etc/systemd /var/lib/systemd/deb-systemd-helper-enabled \
    /var/lib/systemd/deb-systemd-helper-masked -name '*simtun*' 2>/dev/null)
[ -z "$left" ] || fail "systemd state left after purge: $left"
log "purged: no files, conffiles or unit state left"
exit 0
