#!/usr/bin/env bash
# Wall time of starting a jailed no-op: bare `true`, bare bwrap, `sluice run -- true`
# and srt's `srt -c true` (npm @anthropic-ai/sandbox-runtime, installed here into a
# private prefix, never by the test suite). Median of N runs each, interleaved.
#   bench/run-overhead.sh [RUNS]      prints a Markdown table and records it in the
#                                     `run-overhead` section of bench/RESULTS.md
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
sluice=$(pwd)/build/sluice
[ -x "$sluice" ] || { echo "build sluice first: scripts/setup.sh" >&2; exit 1; }

# srt needs socat and ripgrep at run time, and node/npm to install.
need=()
for p in socat ripgrep nodejs npm; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p"); done
command -v npm >/dev/null && need=("${need[@]/nodejs}") && need=("${need[@]/npm}")
if [ -n "$(echo "${need[@]}" | tr -d ' ')" ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${need[@]}
fi
prefix=${SRT_PREFIX:-/tmp/sluice-bench-srt}
if [ ! -x "$prefix/node_modules/.bin/srt" ]; then
  mkdir -p "$prefix"
  npm install --silent --prefix "$prefix" @anthropic-ai/sandbox-runtime >/dev/null
fi
srt="$prefix/node_modules/.bin/srt"
srt_version=$(node -e "console.log(require('$prefix/node_modules/@anthropic-ai/sandbox-runtime/package.json').version)")

root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

python3 - "$runs" "$sluice" "$srt" "$srt_version" >"$work/table.md" <<'PY'
import os, statistics, subprocess, sys, time
runs, sluice, srt, srt_version = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
cases = {
    "true": ["true"],
    "bwrap (minimal jail)": ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-net",
                             "--unshare-pid", "--die-with-parent", "--new-session", "--", "true"],
    "sluice run -- true": [sluice, "run", "--quiet", "--", "true"],
    "srt -c true": [srt, "-c", "true"],
}
times = {k: [] for k in cases}
for _ in range(runs):  # interleaved, so load changes hit every case alike
    for name, argv in cases.items():
        t = time.perf_counter()
        r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times[name].append((time.perf_counter() - t) * 1000)
        if r.returncode != 0:
            sys.exit("%s failed with %d" % (name, r.returncode))
med = {k: statistics.median(v) for k, v in times.items()}
base = med["true"]
import platform
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print("## Jail start-up: `sluice run -- true` against srt (bench/run-overhead.sh)")
print()
print("Machine: %d CPUs (%s), Linux %s; %s. Command: `bench/run-overhead.sh %d` (interleaved runs)."
      % (os.cpu_count(), cpu, platform.release(), time.strftime("%Y-%m-%d"), runs))
print()
print("| command | median ms | p90 ms | added over `true` ms |")
print("|---|---|---|---|")
for k, v in times.items():
    p90 = sorted(v)[int(len(v) * 0.9) - 1]
    print("| %s | %.1f | %.1f | %.1f |" % (k, med[k], p90, med[k] - base))
ours, theirs = med["sluice run -- true"] - base, med["srt -c true"] - base
print()
print("sluice's added overhead is %.2f of srt's (target: at most 0.20); srt %s; %d runs each." %
      (ours / theirs, srt_version, runs))
PY
cat "$work/table.md"
python3 "$root/bench/update-results.py" run-overhead "$work/table.md" "$root/bench/RESULTS.md"
