#!/bin/bash
# Malformed configurations: simtun-relay -n and simtun-agent -n answer each
# with "file:line: message" (or "file: message" for rules that span keys),
# exit 1, and never crash or trip a sanitizer. A valid file gives
# "configuration OK" and exit 0.
. "$(dirname "$0")/lib.sh"

[ -x "$SIMTUN_BIN/simtun-relay" ] || skip "$SIMTUN_BIN/simtun-relay not built"
[ -x "$SIMTUN_BIN/simtun-agent" ] || skip "$SIMTUN_BIN/simtun-agent not built"
require_cmds ssh-keygen
mkdir -p "$T/c"
make_key dev1
make_key relay_host
chmod 600 "$T/keys/dev1"
FP=$(ssh-keygen -lf "$T/keys/relay_host.pub" | awk '{print $2}')
AK=$T/c/authorized_keys
echo "restrict,permitlisten=\"4649\" $(cut -d' ' -f1,2 "$T/keys/dev1.pub") dev1" >"$AK"
NCASES=0

# check BIN NAME LINE TEXT: write TEXT (printf %b) to a config, run BIN -n on it;
# want exit 1 and output starting "file:LINE: message" (LINE "-": "file[:N]: message").
# junk N SEED: N bytes of fixed pseudo-random garbage (no NUL, newline, CR,
# backslash or %; starts with 'x' so it is never a comment or a header).
junk() {
	python3 -c 'import random,sys; r=random.Random(int(sys.argv[2])); b=bytes(c for c in (r.randrange(1,256) for _ in range(int(sys.argv[1]))) if c not in b"\n\r\\%"); sys.stdout.buffer.write(b"x"+b)' "$1" "$2"
}

check() {
	local bin=$1 name=$2 line=$3 f=$T/c/$2.conf out rc want
	printf '%b' "$4" >"$f"
	out=$("$SIMTUN_BIN/$bin" -n -c "$f" 2>&1)
	rc=$?
	NCASES=$((NCASES + 1))
	if echo "$out" | grep -qE 'Sanitizer|runtime error:|Segmentation|Aborted|core dumped'; then
		echo "$out" | head -30; fail "$bin -n on $name: crash or sanitizer report"
	fi
	[ "$rc" = 1 ] || fail "$bin -n on $name: exit $rc, want 1 (output: $out)"
	if [ "$line" = - ]; then	# file: or file:N:
		want="$f: "
		case $(echo "$out" | head -1) in
		"$f: "?*|"$f:"[0-9]*": "?*) ;;
		*) fail "$bin -n on $name: want '$f[:N]: <message>', got: $out";;
		esac
	else
		want="$f:$line: "
		case $(echo "$out" | head -1) in
		"$want"?*) ;;
		*) fail "$bin -n on $name: want '$want<message>', got: $out";;
		esac
	fi
	[ "$(echo "$out" | wc -l)" -le 2 ] || fail "$bin -n on $name: more than a message: $out"
	printf '  %-13s %-22s %s\n' "$bin" "$name" "$(echo "$out" | head -1 | sed "s|$T/c/||g" | tr -cd '[:print:]' | cut -c1-110)"
}

# --- relay.conf ------------------------------------------------------------
R="[relay]\nlisten = 127.0.0.1:2222\nhost_key = $T/c/hostkey\nauthorized_keys = $AK\n"
printf '%b' "$R" >"$T/c/relay_ok.conf"
out=$("$SIMTUN_BIN/simtun-relay" -n -c "$T/c/relay_ok.conf" 2>&1) ||
    fail "valid relay.conf rejected: $out"
[ "$out" = "configuration OK" ] || fail "valid relay.conf: '$out'"
log "simtun-relay -n:"
check simtun-relay unknown_key 5 "${R}bogus = 1\n"
check simtun-relay unknown_section 5 "${R}[other]\nx = 1\n"
check simtun-relay empty_unknown_section 5 "${R}[relai]\n"
check simtun-relay key_before_section 1 "listen = 0.0.0.0:2222\n${R}"
check simtun-relay outside_section 1 "listen = 127.0.0.1:2222\n[relay]\n"
check simtun-relay no_equals 5 "${R}just some words\n"
check simtun-relay open_section 5 "${R}[relay\nlisten = 127.0.0.1:1\n"
check simtun-relay not_a_number 5 "${R}keepalive_interval = abc\n"
check simtun-relay zero 5 "${R}keepalive_interval = 0\n"
check simtun-relay negative 5 "${R}max_auth_tries = -1\n"
check simtun-relay overflow 5 "${R}login_grace_time = 999999999999999999999999\n"
check simtun-relay trailing_junk 5 "${R}keepalive_count_max = 3x\n"
check simtun-relay empty_value 5 "${R}host_key =\n"
check simtun-relay listen_port 2 "[relay]\nlisten = 0.0.0.0:70000\n"
check simtun-relay listen_noport 2 "[relay]\nlisten = 0.0.0.0\n"
check simtun-relay listen_junk 2 "[relay]\nlisten = :::::\n"
check simtun-relay listen_commas 2 "[relay]\nlisten = ,,\n"
check simtun-relay listen_badv6 2 "[relay]\nlisten = [::1:2222\n"
check simtun-relay forward_addr 5 "${R}forward_address = not-an-address\n"
check simtun-relay startups_rate 5 "${R}max_startups = 10:200:50\n"
check simtun-relay startups_order 5 "${R}max_startups = 50:30:10\n"
check simtun-relay startups_short 5 "${R}max_startups = 10:30\n"
check simtun-relay startups_zero 5 "${R}max_startups = 0\n"
check simtun-relay metrics_junk 5 "${R}metrics_listen = nonsense\n"
check simtun-relay metrics_port 5 "${R}metrics_listen = 127.0.0.1:0\n"
check simtun-relay exempt_cidr 5 "${R}penalty_exempt = 10.0.0.0/99\n"
check simtun-relay exempt_net 5 "${R}penalty_exempt = 10.0.0.300/8\n"
check simtun-relay max_forwards 5 "${R}max_forwards = 0\n"
check simtun-relay binary 5 "${R}$(junk 150 1)\n"
check simtun-relay nul_byte 5 "${R}keepalive\x00_interval = 5\n"
check simtun-relay long_line 5 "${R}host_key = $(printf '%*s' 20000 '' | tr ' ' x)\nbogus = 1\n"
check simtun-relay binary_long 5 "${R}$(junk 3000 2)\n"
check simtun-relay long_key 5 "${R}$(printf '%*s' 5000 '' | tr ' ' k) = 1\n"
rm -f "$T/c/missing_file.conf"
out=$("$SIMTUN_BIN/simtun-relay" -n -c "$T/c/missing_file.conf" 2>&1); rc=$?
[ "$rc" = 1 ] && echo "$out" | grep -q "^$T/c/missing_file.conf: " ||
    fail "missing relay.conf: exit $rc, '$out'"
# authorized_keys: a bad line is refused (the others still count) with
# file:line in the message; -n shows it; never a crash.
pub=$(cut -d' ' -f1,2 "$T/keys/dev1.pub")
for junk in "bogus-option $pub dev2" 'ssh-ed25519 AAAAnotbase64!!! dev3' 'ssh-ed25519' \
    "permitlisten=\"4649 $pub x" "from=\"10.0.0.0/33\" $pub x" "permitlisten=\"99999\" $pub x" \
    "$(junk 150 4)"; do
	printf 'restrict %s dev1\n%s\n' "$pub" "$junk" >"$T/c/ak_junk"
	printf '%b' "[relay]\nauthorized_keys = $T/c/ak_junk\n" >"$T/c/relay_akj.conf"
	out=$("$SIMTUN_BIN/simtun-relay" -n -c "$T/c/relay_akj.conf" 2>&1); rc=$?
	NCASES=$((NCASES + 1))
	echo "$out" | grep -qE 'Sanitizer|runtime error:|Segmentation' &&
	    { echo "$out"; fail "relay -n on authorized_keys line '$junk': crash"; }
	[ "$rc" = 0 ] || [ "$rc" = 1 ] || fail "relay -n on authorized_keys line '$junk': exit $rc"
	echo "$out" | grep -q "$T/c/ak_junk:2: " ||
	    fail "authorized_keys line '$junk': no '$T/c/ak_junk:2: ' in '$out'"
	printf '  %-13s %-22s exit %s: %s\n' simtun-relay "authorized_keys" "$rc" \
	    "$(echo "$out" | grep -o "ak_junk:2: .*" | head -1 | tr -cd "[:print:]" | cut -c1-90)"
done

# --- agent.conf ------------------------------------------------------------
A="[agent]\nidentity = $T/keys/dev1\n\n[relay]\nhost = 127.0.0.1\nport = 2222\nhost_key = $FP\n\n[forward ssh]\nremote = 4649\nlocal = 127.0.0.1:22\n"
printf '%b' "$A" >"$T/c/agent_ok.conf"
out=$("$SIMTUN_BIN/simtun-agent" -n -c "$T/c/agent_ok.conf" 2>&1) ||
    fail "valid agent.conf rejected: $out"
[ "$out" = "configuration OK" ] || fail "valid agent.conf: '$out'"
log "simtun-agent -n:"
check simtun-agent unknown_key 12 "${A}bogus = 1\n"
check simtun-agent unknown_section 12 "${A}[bogus]\nx = 1\n"
check simtun-agent outside_section 1 "host = 127.0.0.1\n${A}"
check simtun-agent no_equals 12 "${A}words without equals\n"
check simtun-agent agent_key 3 "[agent]\nidentity = $T/keys/dev1\nfrobnicate = yes\n"
check simtun-agent relay_port_0 6 "${A/port = 2222/port = 0}"
check simtun-agent relay_port_big 6 "${A/port = 2222/port = 99999}"
check simtun-agent relay_port_junk 6 "${A/port = 2222/port = ssh}"
check simtun-agent host_key_junk 7 "${A/host_key = $FP/host_key = notafingerprint}"
check simtun-agent host_empty 5 "${A/host = 127.0.0.1/host = }"
check simtun-agent keepalive_neg 13 "${A}[agent]\nkeepalive_interval = -5\n"
check simtun-agent keepalive_junk 13 "${A}[agent]\nkeepalive_count_max = lots\n"
check simtun-agent backoff_junk 13 "${A}[agent]\nbackoff_max = 1e9\n"
check simtun-agent remote_junk 10 "${A/remote = 4649/remote = abc}"
check simtun-agent remote_big 10 "${A/remote = 4649/remote = 65536}"
check simtun-agent local_junk 11 "${A/local = 127.0.0.1:22/local = nohostport}"
check simtun-agent local_port 11 "${A/local = 127.0.0.1:22/local = 127.0.0.1:0}"
check simtun-agent forward_key 12 "${A}bind = 1\n"
check simtun-agent path_key 13 "${A}[path x]\nwibble = 1\n"
check simtun-agent path_ifname 13 "${A}[path x]\ninterface = $(printf '%*s' 40 '' | tr ' ' w)\n"
check simtun-agent path_source 13 "${A}[path x]\nsource = 999.1.1.1\n"
check simtun-agent binary 12 "${A}$(junk 150 3)\n"
check simtun-agent nul_byte 12 "${A}remote\x00 = 1\n"
check simtun-agent long_line 13 "${A}[agent]\nuser = $(printf '%*s' 20000 '' | tr ' ' u)\n"
check simtun-agent no_remote 12 "${A}[forward two]\nlocal = 127.0.0.1:22\n"
check simtun-agent empty_path 12 "${A}[path x]\n"
check simtun-agent empty_forward 12 "${A}[forward x]\n"
# rules spanning keys: "file: message" is enough, but exit 1 all the same
check simtun-agent no_forward - "[agent]\nidentity = $T/keys/dev1\n[relay]\nhost = 127.0.0.1\nhost_key = $FP\n"
check simtun-agent no_host - "[agent]\nidentity = $T/keys/dev1\n[relay]\nhost_key = $FP\n[forward s]\nremote = 1\nlocal = 127.0.0.1:22\n"
check simtun-agent no_host_key - "${A/host_key = $FP/}"
check simtun-agent backoff_order - "${A}[agent]\nbackoff_initial = 100\nbackoff_max = 10\n"
cp "$T/keys/dev1" "$T/c/id_open"; chmod 644 "$T/c/id_open"
check simtun-agent identity_mode - "${A/identity = $T\/keys\/dev1/identity = $T/c/id_open}"
echo "not a key" >"$T/c/id_junk"; chmod 600 "$T/c/id_junk"
check simtun-agent identity_junk - "${A/identity = $T\/keys\/dev1/identity = $T/c/id_junk}"
check simtun-agent identity_missing - "${A/identity = $T\/keys\/dev1/identity = $T/c/nonexistent}"
rm -f "$T/c/missing.conf"
out=$("$SIMTUN_BIN/simtun-agent" -n -c "$T/c/missing.conf" 2>&1); rc=$?
[ "$rc" = 1 ] && echo "$out" | grep -q "^$T/c/missing.conf: " ||
    fail "missing agent.conf: exit $rc, '$out'"
log "$NCASES malformed configurations: each file:line: message (or file: for cross-key rules), exit 1, no crash"
exit 0
