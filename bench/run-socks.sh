#!/usr/bin/env bash
# SOCKS5 against HTTP CONNECT through the same sluice listener, and both against direct
# loopback: tunnel setup rate (socks-storm vs connect-storm) and bulk throughput
# (socks-throughput vs tunnel-throughput). Three interleaved repeats, medians; writes the
# `socks` section of bench/RESULTS.md through bench/update-results.py.
#   bench/run-socks.sh                 # the full run (~2 minutes)
#   QUICK=1 bench/run-socks.sh         # one short repeat, prints the section, writes nothing
# Writes: the socks section of bench/RESULTS.md, and bench/results/socks.jsonl (every run's JSON).
# Loopback only; every `sluice bench` call is bounded by --duration (and --size), and `timeout`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SLUICE=${SLUICE:-$ROOT/build/sluice}
[ -x "$SLUICE" ] || { echo "build sluice first: scripts/setup.sh" >&2; exit 1; }
QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then REPEATS=1 DUR=1 SIZE=256M; else REPEATS=3 DUR=3 SIZE=1G; fi

source bench/lib.sh
bench_work
bench_upstream "$SLUICE" 1800
serve_cmd=("$SLUICE" serve --listen 127.0.0.1:0 --allow 127.0.0.1 --log /dev/null)
"${serve_cmd[@]}" 2>"$work/serve.err" &
SP=$!
pids+=($SP)
PROXY=$(bench_listener "$work/serve.err")

bench() {  # bench TAG ARGS...: one run, its JSON appended to raw.jsonl under TAG
  local tag=$1; shift
  local out
  out=$(timeout 120 "$SLUICE" bench "$@" --target "127.0.0.1:$UP" --json) || true
  printf '{"tag":"%s","result":%s}\n' "$tag" "${out:-null}" >>"$work/raw.jsonl"
}
for i in $(seq "$REPEATS"); do
  echo "[run-socks] repeat $i of $REPEATS" >&2
  bench setup.direct connect-storm --direct --concurrency 16 --duration "$DUR"
  bench setup.connect connect-storm --proxy "http://$PROXY" --pid "$SP" --concurrency 16 --duration "$DUR"
  bench setup.socks socks-storm --proxy "socks5h://$PROXY" --pid "$SP" --concurrency 16 --duration "$DUR"
  bench tput.direct tunnel-throughput --direct --size "$SIZE" --duration 20
  bench tput.connect tunnel-throughput --proxy "http://$PROXY" --pid "$SP" --size "$SIZE" --duration 20
  bench tput.socks socks-throughput --proxy "socks5h://$PROXY" --pid "$SP" --size "$SIZE" --duration 20
done

version=$("$SLUICE" --version)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
dirty=$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo " + uncommitted changes" || true)
python3 - "$work/raw.jsonl" "$work/section.md" "$version ($commit$dirty)" "$DUR" "$SIZE" "$REPEATS" \
  "${serve_cmd[*]}" <<'PY'
import json, os, platform, statistics, subprocess, sys, time
raw, out, version, dur, size, repeats, serve = sys.argv[1:8]
runs = {}
for line in open(raw):
    r = json.loads(line)
    if r["result"] is None:
        sys.exit("a bench run failed to report: %s" % r["tag"])
    runs.setdefault(r["tag"], []).append(r["result"])

def med(tag, key, sub=None):
    vals = [(r[key][sub] if sub else r.get(key)) for r in runs[tag]]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None

def errors(tag):
    total = {}
    for r in runs[tag]:
        for k, n in r["errors"].items():
            total[k] = total.get(k, 0) + n
    return ", ".join("%s %d" % kv for kv in sorted(total.items())) or "0"

def f(v, spec):
    return "–" if v is None else spec % v

cpu = "?"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
mem_kib = int(open("/proc/meminfo").readline().split()[1])
lines = []
w = lines.append
w("## SOCKS5 and CONNECT through one sluice listener (bench/run-socks.sh)")
w("")
w("Written by `bench/run-socks.sh` (do not edit by hand; run it again). Every number is the median")
w("of %s interleaved repeats, all measured in the same run on the same machine." % repeats)
w("")
w("### Machine")
w("")
w("- %d CPUs: %s; %.1f GiB; Linux %s" % (os.cpu_count(), cpu, mem_kib / 1048576, platform.release()))
w("- date: %s" % time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()))
w("- %s, one worker loop per core; client, proxy and upstream share these CPUs." % version)
w("")
w("### Commands")
w("")
w("- proxy: `%s`" % serve.replace(os.path.dirname(os.path.dirname(serve.split()[0])) + "/", ""))
w("- upstream: `sluice bench upstream --listen 127.0.0.1:0`")
w("- `sluice bench connect-storm (--direct | --proxy http://PROXY --pid PID) --target UP --concurrency 16 --duration %s`" % dur)
w("- `sluice bench socks-storm --proxy socks5h://PROXY --pid PID --target UP --concurrency 16 --duration %s`" % dur)
w("- `sluice bench tunnel-throughput (--direct | --proxy http://PROXY --pid PID) --target UP --size %s`" % size)
w("- `sluice bench socks-throughput --proxy socks5h://PROXY --pid PID --target UP --size %s`" % size)
w("")
w("socks-storm speaks SOCKS5 the way clients do: the greeting, then (after the method reply) the")
w("CONNECT request, so a SOCKS5 tunnel costs one more round trip than an HTTP CONNECT one.")
w("")
w("### Tunnel setup rate (closed loop, 16 connections; each op: connect, handshake, GET /, close)")
w("")
w("| path | tunnels/s | × direct | × CONNECT | p50 ms | p99 ms | proxy CPU-s per 10k ops | errors |")
w("|---|---|---|---|---|---|---|---|")
d, c = med("setup.direct", "ops_per_s"), med("setup.connect", "ops_per_s")
for tag, name in (("setup.direct", "direct"), ("setup.connect", "sluice, HTTP CONNECT"), ("setup.socks", "sluice, SOCKS5")):
    v = med(tag, "ops_per_s")
    w("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
        name, f(v, "%.0f"), f(v / d if d else None, "%.2f"), f(v / c if c and tag != "setup.direct" else None, "%.2f"),
        f(med(tag, "latency_us", "p50") / 1000, "%.2f"), f(med(tag, "latency_us", "p99") / 1000, "%.2f"),
        f(med(tag, "proxy_cpu_s_per_10k_ops"), "%.2f"), errors(tag)))
w("")
w("### Tunnel throughput (one tunnel, %s downloaded, byte count checked)" % size)
w("")
w("| path | MB/s | × direct | × CONNECT | proxy CPU-s per GiB | errors |")
w("|---|---|---|---|---|---|")
d, c = med("tput.direct", "mb_per_s"), med("tput.connect", "mb_per_s")
for tag, name in (("tput.direct", "direct"), ("tput.connect", "sluice, HTTP CONNECT"), ("tput.socks", "sluice, SOCKS5")):
    v = med(tag, "mb_per_s")
    w("| %s | %s | %s | %s | %s | %s |" % (
        name, f(v, "%.0f"), f(v / d if d else None, "%.2f"), f(v / c if c and tag != "tput.direct" else None, "%.2f"),
        f(med(tag, "proxy_cpu_s_per_gib"), "%.3f"), errors(tag)))
w("")
w("Both kinds share the relay (proxy/relay.hpp), so throughput should match; setup differs by the")
w("SOCKS5 round trip and its parsing. Raw results: `bench/results/socks.jsonl`, one `sluice bench")
w("--json` object per run, tagged with its row.")
open(out, "w").write("\n".join(lines) + "\n")
PY
if [[ $QUICK == 1 ]]; then
  cat "$work/section.md"
else
  cp "$work/raw.jsonl" "$ROOT/bench/results/socks.jsonl"
  python3 "$ROOT/bench/update-results.py" socks "$work/section.md"
  echo "[run-socks] wrote the socks section of bench/RESULTS.md" >&2
fi
