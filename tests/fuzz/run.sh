#!/bin/bash
# tests/fuzz/run.sh [TARGET...]: run each libFuzzer target (all by default)
# for FUZZ_SECONDS (default 20) on a scratch copy of its seed corpus
# (tests/fuzz/corpus/TARGET, never written to) and print one line per target
# with its exec count and rate. Exit 1 if any target crashed, leaked, hung
# (FUZZ_TIMEOUT, default 10 s per input) or did not run; the reproducer is
# kept in $FUZZ_BUILD/artifacts/ and the log's tail is printed.
# FUZZ_BUILD: directory of the built targets (default build-fuzz; `make fuzz`).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD:-$top/build-fuzz}
secs=${FUZZ_SECONDS:-20}
tmo=${FUZZ_TIMEOUT:-10}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$top/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	for d in "$top"/tests/fuzz/corpus/*/; do
		targets+=("$(basename "$d")")
	done
fi

work=$(mktemp -d /tmp/simtun-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$build/artifacts"
failed=()
total=0
for t in "${targets[@]}"; do
	bin=$build/$t
	if [ ! -x "$bin" ]; then
		echo "FAIL $t: $bin not built (make fuzz)"
		failed+=("$t")
		continue
	fi
	mkdir -p "$work/$t"
	log=$work/$t.log
	# stderr of the target itself (its log lines) is closed; libFuzzer's
	# own output and sanitizer reports still reach the log
	"$bin" -max_total_time="$secs" -timeout="$tmo" -print_final_stats=1 \
	    -close_fd_mask=2 -artifact_prefix="$build/artifacts/$t-" \
	    "$work/$t" "$top/tests/fuzz/corpus/$t" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
	units=$(find "$work/$t" "$top/tests/fuzz/corpus/$t" -type f | wc -l)
	if [ $rc -ne 0 ] || [ -z "$execs" ]; then
		echo "FAIL $t (exit $rc) after ${execs:-?} execs:"
		grep -E 'ERROR|SUMMARY|invariant|Test unit written|artifact_prefix' "$log" | head -5 | sed 's/^/    /'
		tail -n 40 "$log" | sed 's/^/    /'
		failed+=("$t")
		continue
	fi
	total=$((total + execs))
	printf '%-20s %10s execs in %ss, %7s execs/s, %s, %s corpus units\n' \
	    "$t" "$execs" "$secs" "$rate" "${cov:-cov: ?}" "$units"
done
echo "fuzz: ${#targets[@]} targets, $total execs, ${#failed[@]} failed${failed:+: ${failed[*]}}"
[ ${#failed[@]} -eq 0 ]
