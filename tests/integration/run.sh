#!/bin/bash
# tests/integration/run.sh [-v] [TEST...]: run integration tests (all t_*.sh by
# default, or the named ones: t_relay_login, relay_login or t_relay_login.sh),
# each under `timeout 180` (N s for a test with a "# timeout: N" line).
# Prints PASS/FAIL/SKIP per test, the output of failed tests, and a final "N passed, N failed[, N skipped]" line.
# Exit 0 if nothing failed.  If SIMTUN_RESULTS=FILE is set, appends one
# "PASS|FAIL|SKIP name" line per test there (read by tests/run.sh).
cd "$(dirname "$0")" || exit 2
verbose=
[ "${1:-}" = -v ] && { verbose=1; shift; }

tests=()
if [ $# -eq 0 ]; then
	for t in t_*.sh; do [ -e "$t" ] && tests+=("$t"); done
else
	for a in "$@"; do
		a=${a##*/}; a=${a%.sh}; a=t_${a#t_}
		[ -f "$a.sh" ] || { echo "no such test: $a" >&2; exit 2; }
		tests+=("$a.sh")
	done
fi

pass=0 failn=0 skipn=0
out=$(mktemp -d /tmp/simtun-integ.XXXXXX)
for t in "${tests[@]}"; do
	name=${t%.sh}
	t0=$(date +%s.%N)
	limit=$(sed -n 's/^# timeout: \([0-9][0-9]*\)$/\1/p' "$t" | head -1)
	limit=${limit:-180}
	if [ -n "$verbose" ]; then
		timeout "$limit" bash "./$t" 2>&1 | tee "$out/$name.out"
		rc=${PIPESTATUS[0]}
	else
		timeout "$limit" bash "./$t" >"$out/$name.out" 2>&1
		rc=$?
	fi
	dt=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	case $rc in
	0)	echo "PASS $name (${dt}s)"; pass=$((pass + 1)); res=PASS;;
	77)	reason=$(grep '^SKIP: ' "$out/$name.out" | tail -1)
		echo "SKIP $name: ${reason#SKIP: }"; skipn=$((skipn + 1)); res=SKIP;;
	*)	[ "$rc" = 124 ] && echo "TIMEOUT: $name ran over $limit s" >>"$out/$name.out"
		echo "FAIL $name (exit $rc, ${dt}s)"; failn=$((failn + 1)); res=FAIL
		[ -n "$verbose" ] || sed 's/^/    /' "$out/$name.out" | grep -v 'debug1:' | tail -n 60;;
	esac
	[ -n "${SIMTUN_RESULTS:-}" ] && echo "$res integration/$name" >>"$SIMTUN_RESULTS"
done
rm -rf "$out"

line="$pass passed, $failn failed"
[ "$skipn" -gt 0 ] && line="$line, $skipn skipped"
echo "$line"
[ "$failn" -eq 0 ]
