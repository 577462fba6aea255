#!/bin/bash
# Build the libFuzzer targets (make fuzz) and run each for FUZZ_SECONDS
# (default 10) on its seed corpus: any crash, leak, hang or broken parser
# invariant fails the test. Skipped (77) when clang or libFuzzer is missing
# (Debian: apt-get install clang libclang-rt-14-dev).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)

if ! command -v clang >/dev/null 2>&1; then
	echo "SKIP: clang not installed (apt-get install clang libclang-rt-14-dev)"
	exit 77
fi
probe=$(mktemp -d /tmp/simtun-fuzzprobe.XXXXXX)
trap 'rm -rf "$probe"' EXIT
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
    '{ (void)d; (void)n; return 0; }' >"$probe/p.c"
if ! clang -fsanitize=fuzzer,address,undefined -o "$probe/p" "$probe/p.c" \
    >"$probe/log" 2>&1; then
	echo "SKIP: clang cannot link libFuzzer with ASan/UBSan" \
	    "(apt-get install libclang-rt-14-dev): $(head -1 "$probe/log")"
	exit 77
fi

echo "building fuzz targets"
if ! make -C "$top" -s fuzz >"$probe/build" 2>&1; then
	tail -n 30 "$probe/build"
	echo "FAIL: make fuzz failed"
	exit 1
fi
FUZZ_SECONDS=${FUZZ_SECONDS:-10} bash "$top/tests/fuzz/run.sh"
