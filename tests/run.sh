#!/usr/bin/env bash
# Run the unit tests, then the integration suite; ends with "N passed, N failed".
# SIMTUN_UNIT: directory of built unit test binaries (default build/tests/unit)
# SIMTUN_BIN: directory of the daemons for the integration tests (default build)
# --unit-only: skip the integration suite. Extra args: integration test names.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
unitdir=${SIMTUN_UNIT:-$top/build/tests/unit}
export SIMTUN_BIN=${SIMTUN_BIN:-$top/build}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$top/tests/lsan.supp:print_suppressions=0}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
pass=0 fail=0 skip=0 failed=()
unit_only=0
[ "${1:-}" = --unit-only ] && { unit_only=1; shift; }

for t in "$unitdir"/test_*; do
	[ -x "$t" ] || continue
	name=unit/$(basename "$t")
	if out=$(timeout 120 "$t" 2>&1); then
		echo "PASS $name"; pass=$((pass + 1))
	else
		echo "FAIL $name"; echo "$out" | tail -20 | sed 's/^/    /'
		fail=$((fail + 1)); failed+=("$name")
	fi
done

if [ $unit_only = 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "SKIP integration: needs root (network namespaces)"
		skip=$((skip + 1))
	else
		res=$(mktemp)
		SIMTUN_RESULTS=$res bash "$top/tests/integration/run.sh" "$@"
		while read -r kind name; do
			case $kind in
			PASS) pass=$((pass + 1));;
			FAIL) fail=$((fail + 1)); failed+=("$name");;
			SKIP) skip=$((skip + 1));;
			esac
		done < "$res"
		rm -f "$res"
	fi
fi
[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail = 0 ]
