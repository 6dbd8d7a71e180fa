#!/usr/bin/env bash
# `make sanitize`: the whole test suite against the AddressSanitizer + UBSan build (BUILD_DIR's
# test binaries, BIN_DIR's tools). Every process halts at its first report (halt_on_error; UBSan
# built with -fno-sanitize-recover). Reports go to files under BUILD_DIR/logs, not to stderr,
# because the CLI tests check that an error is exactly one line; a memory error or UB report in
# any process fails the run, and is printed here. Leak reports are counted, not failed: an error
# exit (fatal) frees nothing by design, and leak-checking exit codes would turn every expected
# error into a different one.
set -u
cd "$(dirname "$0")/.."
build=${1:-build-san} bin=${2:-bin-san}
logs=$PWD/$build/logs
rm -rf "$logs"; mkdir -p "$logs"
export CLTKIT_BIN=$PWD/$bin CLTKIT_TEST_MATRIX=0
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:log_path=$logs/asan:strict_string_checks=1"
export LSAN_OPTIONS="exitcode=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan"
tests=$(ls "$build"/tests/test_* | grep -v '\.[od]$')
bash tests/run.sh $tests
rc=$?
bad=$(grep -l -E "ERROR: AddressSanitizer|runtime error:" "$logs"/* 2>/dev/null)
leaks=$(grep -l "ERROR: LeakSanitizer" "$logs"/* 2>/dev/null | wc -l)
for f in $bad; do echo "== sanitizer report $f"; head -40 "$f"; done
echo "sanitize: $(echo $bad | wc -w) sanitizer reports, $leaks processes with leak reports (not failures; $logs)"
[ $rc -eq 0 ] && [ -z "$bad" ]
