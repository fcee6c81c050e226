#!/usr/bin/env bash
# 10,000 sandboxes on one host (issue 18): `sluice bench sandboxes` against a fresh
# `sluice serve --config` with a control socket, REPEATS times (a fresh serve each time, so
# the RSS per sandbox is not hidden by memory a warm process freed earlier). Each run:
# requests through one sandbox's listener, N sandboxes created through POST /v1/sandboxes
# (each with an overlay that is the only thing allowing the target), the same requests over
# a sample of the N listeners, one policy push (PUT of the allow list) with keep-alive
# connections busy across it, all but the first removed, the one listener measured again, the
# first removed. Appends each run's JSON to
# bench/results/sandboxes.jsonl and prints a table for bench/RESULTS.md.
#   bench/run-sandboxes.sh                 # 3 runs of 10,000
#   N=2000 REPEATS=1 bench/run-sandboxes.sh
# Loopback and unix sockets only; every process is bounded (--lifetime, --duration) and
# killed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SLUICE=${SLUICE:-$ROOT/build/sluice}
[ -x "$SLUICE" ] || { echo "build sluice first: scripts/setup.sh" >&2; exit 1; }
N=${N:-10000}
REPEATS=${REPEATS:-3}
REQUESTS=${REQUESTS:-4000}
WORKERS=${WORKERS:-2}
OUT=${OUT:-$ROOT/bench/results/sandboxes.jsonl}

source bench/lib.sh
bench_work
# N sandbox sockets plus the connections: the process needs more than N descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
bench_upstream "$SLUICE" 900

# The base policy does not allow the target: each sandbox's overlay does.
cat >"$work/sluice.yaml" <<EOF
listeners:
  - {name: main, tcp: "127.0.0.1:0"}
policies:
  default: {default: deny, allow: [only.example]}
control: {unix: "$work/control.sock"}
log: {path: ""}
EOF

echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD) N=$N workers=$WORKERS load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for r in $(seq "$REPEATS"); do
  rm -rf "$work/control.sock" "$work/control.sock.sandboxes"
  "$SLUICE" serve --config "$work/sluice.yaml" --workers "$WORKERS" 2>"$work/serve.err" &
  SP=$!
  pids+=($SP)
  bench_ready "$work/serve.err" || { echo "sluice did not start: $(cat "$work/serve.err")" >&2; exit 1; }
  load=$(cut -d' ' -f1 /proc/loadavg)
  "$SLUICE" bench sandboxes --control "$work/control.sock" --pid "$SP" --target "127.0.0.1:$UP" \
    --sandboxes "$N" --requests "$REQUESTS" --duration 120 --json >"$work/run.json" || true
  python3 - "$work/run.json" "$load" "$WORKERS" "$(git rev-parse --short HEAD)" >>"$OUT" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r.update({"load_1m": float(sys.argv[2]), "workers": int(sys.argv[3]), "commit": sys.argv[4]})
print(json.dumps(r))
PY
  kill "$SP"
  wait "$SP" 2>/dev/null || true
done

tail -n "$REPEATS" "$OUT" | python3 -c '
import json, sys
print("| run | load 1m | created | create s | RSS KiB per sandbox | 1 listener p50 / p99 us | sample of N p50 / p99 us | 1 listener again p50 / p99 us | push ms | requests across the push | dropped | removed, s |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for i, line in enumerate(sys.stdin, 1):
    r = json.loads(line)
    o, m, a = r["latency_one"], r["latency_many"], r["latency_one_after"]
    print("| %d | %.1f | %d | %.2f | %.2f | %d / %d | %d / %d | %d / %d | %.1f | %d | %d | %d, %.2f |" % (
        i, r["load_1m"], r["created"], r["create_s"], r["rss_per_sandbox_kib"], o["p50_us"], o["p99_us"],
        m["p50_us"], m["p99_us"], a["p50_us"], a["p99_us"], r["push_ms"], r["push_requests"], r["push_dropped"], r["removed"], r["remove_s"]))
'
