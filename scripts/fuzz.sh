#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang in build-fuzz and runs each
# one for a bounded time on a temporary copy of its seed corpus.
#
#   scripts/fuzz.sh [--keep] [-j N] [SECONDS] [TARGET...]
#
#   SECONDS   per target (default 60)
#   TARGET    fuzz_request_head ... fuzz_pkt_line fuzz_first_bytes (default: all)
#   --keep    merge inputs that add coverage back into tests/fuzz/corpus/<target>/
#   -j N      targets run side by side (default: the number of CPUs)
#
# Prints the executions of each target (from libFuzzer's final "#N DONE" line) and
# exits non-zero if any target crashed, leaked, timed out or ran out of memory; the
# input that did it is kept under build-fuzz/fuzz-artifacts/<target>/ and its path
# printed. Reproduce with: build-fuzz/tests/fuzz/<target> <input>
# Environment: SLUICE_FUZZ_BUILD (build dir, default build-fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

all_targets=(fuzz_request_head fuzz_response fuzz_host fuzz_pattern fuzz_config fuzz_socks5 fuzz_json fuzz_dns fuzz_path fuzz_pkt_line fuzz_first_bytes)
seconds=60
keep=0
jobs=$(nproc 2>/dev/null || echo 2)
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) keep=1 ;;
    -j) shift; jobs=$1 ;;
    -j*) jobs=${1#-j} ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    fuzz_*) targets+=("$1") ;;
    *[!0-9]*|'') echo "fuzz.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    *) seconds=$1 ;;
  esac
  shift
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
[ "$seconds" -gt 0 ] || { echo "fuzz.sh: SECONDS must be positive" >&2; exit 2; }
[ "$jobs" -gt 0 ] 2>/dev/null || jobs=1

build=${SLUICE_FUZZ_BUILD:-$root/build-fuzz}
case "$build" in /*) ;; *) build=$root/$build ;; esac

# clang (Debian's has libFuzzer built in).
if ! command -v clang++ >/dev/null 2>&1; then
  echo "== installing clang"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clang >/dev/null
fi

started=$(date +%s)
echo "== building fuzz targets in $build"
launcher=()
if command -v ccache >/dev/null; then  # as in setup.sh: rebuilds of any clone share the cache
  export CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=1
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
launcher+=(-DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=16)  # as in setup.sh
if [ ! -f "$build/CMakeCache.txt" ]; then
  # -O1 -g and no NDEBUG: the usual fuzzing build, with asserts and readable stacks.
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DSLUICE_FUZZ=ON "${launcher[@]}" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" >/dev/null
fi
cmake --build "$build" --target fuzz_targets -j "$(nproc 2>/dev/null || echo 2)" >"$build/fuzz-build.log" 2>&1 || {
  tail -40 "$build/fuzz-build.log"
  echo "fuzz.sh: build failed (full log: $build/fuzz-build.log)" >&2
  exit 1
}
echo "   built in $(( $(date +%s) - started ))s"

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-fuzz.XXXXXX")
artifacts=$build/fuzz-artifacts
mkdir -p "$artifacts"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

dict_for() {
  case "$1" in
    fuzz_request_head|fuzz_response|fuzz_first_bytes) echo "$root/tests/fuzz/http.dict" ;;
    fuzz_host|fuzz_pattern) echo "$root/tests/fuzz/host.dict" ;;
    fuzz_config) echo "$root/tests/fuzz/yaml.dict" ;;
    fuzz_json) echo "$root/tests/fuzz/json.dict" ;;
  esac
}

run_one() {
  local t=$1
  local corpus=$work/$t/corpus
  mkdir -p "$corpus" "$artifacts/$t"
  cp "$root/tests/fuzz/corpus/$t/"* "$corpus/" 2>/dev/null || true
  local args=(-max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
              -artifact_prefix="$artifacts/$t/")
  local dict
  dict=$(dict_for "$t")
  [ -n "$dict" ] && [ -f "$dict" ] && args+=(-dict="$dict")
  set +e
  "$build/tests/fuzz/$t" "${args[@]}" "$corpus" >"$work/$t/log" 2>&1
  echo $? >"$work/$t/rc"
  set -e
}

echo "== fuzzing ${#targets[@]} target(s), ${seconds}s each, $jobs at a time (work dir $work)"
running=0
for t in "${targets[@]}"; do
  [ -x "$build/tests/fuzz/$t" ] || { echo "fuzz.sh: no target $t" >&2; exit 2; }
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

status=0
printf '%-20s %12s %10s %8s  %s\n' target executions exec/s corpus result
for t in "${targets[@]}"; do
  log=$work/$t/log
  rc=$(cat "$work/$t/rc" 2>/dev/null || echo 1)
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
  if [ -n "$done_line" ]; then
    execs=$(sed -E 's/^#([0-9]+).*/\1/' <<<"$done_line")
    rate=$(sed -nE 's/.*exec\/s: ([0-9]+).*/\1/p' <<<"$done_line")
  else  # a crash ends the run before DONE: count what ran
    execs=$(sed -nE 's/^stat::number_of_executed_units: ([0-9]+)/\1/p' "$log" | tail -1)
    rate=$(sed -nE 's/^stat::average_exec_per_sec: +([0-9]+)/\1/p' "$log" | tail -1)
  fi
  ncorpus=$(ls "$work/$t/corpus" | wc -l)
  if [ "$rc" -eq 0 ] && [ -n "$done_line" ]; then
    printf '%-20s %12s %10s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$ncorpus" ok
  else
    status=1
    crash=$(sed -nE 's/.*Test unit written to (.*)$/\1/p' "$log" | tail -1)
    printf '%-20s %12s %10s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$ncorpus" "FAILED (exit $rc)"
    {
      echo "---- $t: exit $rc; log $log"
      grep -E '==[0-9]+==ERROR|runtime error|==FUZZ INVARIANT==|  detail:|SUMMARY|deadly signal|ERROR: libFuzzer' "$log" | head -8
      grep -E '^ +#[0-9]+ 0x' "$log" | head -14
      if [ -n "$crash" ]; then
        echo "crashing input: $crash"
        echo "reproduce:      $build/tests/fuzz/$t $crash"
      fi
    } >&2
  fi
done

if [ "$keep" -eq 1 ]; then
  echo "== merging new inputs into tests/fuzz/corpus (--keep)"
  for t in "${targets[@]}"; do
    before=$(ls "$root/tests/fuzz/corpus/$t" | wc -l)
    "$build/tests/fuzz/$t" -merge=1 -rss_limit_mb=2048 -timeout=10 \
      "$root/tests/fuzz/corpus/$t" "$work/$t/corpus" >"$work/$t/merge.log" 2>&1 || {
      echo "fuzz.sh: merge failed for $t (see $work/$t/merge.log)" >&2
      status=1
      continue
    }
    after=$(ls "$root/tests/fuzz/corpus/$t" | wc -l)
    echo "   $t: $before -> $after files"
  done
fi

echo "== done in $(( $(date +%s) - started ))s"
if [ "$status" -eq 0 ]; then
  rm -rf "$work"
else
  echo "fuzz.sh: failures above; logs kept in $work" >&2
fi
exit $status
