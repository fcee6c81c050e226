#!/usr/bin/env bash
# Sets up, then runs the whole suite (doctest units + end-to-end) twice: on the Release
# build and on the AddressSanitizer+UBSan build (the .deb check on Release only), the unit
# tests a third time under ThreadSanitizer, then each libFuzzer target for a short bounded
# time (SLUICE_FUZZ_SECONDS, default 10; 0 skips). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each phase prints its wall time, so a slow CI run says where the minutes went.
phase_start=$SECONDS
phase() { echo "== [$((SECONDS - phase_start))s] $*"; phase_start=$SECONDS; }
scripts/setup.sh --asan --tsan
phase "setup and builds done"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
jobs=$(nproc 2>/dev/null || echo 2)

status=0
ctest --test-dir build --output-on-failure -j "$jobs" --timeout 300 || status=1
phase "tests on build done"
# e2e.test_package checks the .deb (file list, unit, man pages, lintian, dpkg into a throwaway
# root): packaging tools, no sluice code path an ASan run would add anything to, and half a
# minute of the budget. It runs on the Release build above.
ctest --test-dir build-asan --output-on-failure -j "$jobs" --timeout 300 -E '^e2e\.test_package$' || status=1
phase "tests on build-asan done"
TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1} \
  ctest --test-dir build-tsan --output-on-failure -j "$jobs" --timeout 300 -R '^unit\.' || status=1
phase "unit tests on build-tsan (ThreadSanitizer) done"
fuzz_seconds=${SLUICE_FUZZ_SECONDS:-10}
if [ "$fuzz_seconds" -gt 0 ]; then
  scripts/fuzz.sh "$fuzz_seconds" || status=1
  phase "fuzzing each target for ${fuzz_seconds}s done"
fi
exit $status
