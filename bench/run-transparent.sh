#!/usr/bin/env bash
# Transparent mode (issue 16) against the explicit-proxy jail path: the same load from inside
# `sluice run`, once through the proxy (HTTP_PROXY's 127.0.0.1:3128, the hand-over bridge) and
# once transparently (`sluice run --transparent`, the load dialing the name's fake address
# directly, captured by the jail's rules), plus the transparent path with `--bridge relay`
# (the bridge relaying every byte, as before the hand-over) for reference. Tunnel setup rate
# (connect-storm: new connection, GET /, close) and throughput (one SIZE download); medians of
# REPEATS interleaved repeats; ratio transparent / explicit (target: at least 0.90).
#   bench/run-transparent.sh            # the full run (~3 minutes; REPEATS, DUR, SIZE, CONC override)
#   QUICK=1 bench/run-transparent.sh    # one short repeat, prints the section, writes nothing
#   NOTE="..." bench/run-transparent.sh # NOTE: a sentence for the Machine list (what else ran)
# Writes: the transparent section of bench/RESULTS.md and bench/results/transparent.jsonl.
# Loopback only: the upstream and a DNS server of this script's own (tests/tools/dns_server.py,
# which gives up.test 127.0.0.1 to sluice's resolver) listen on 127.0.0.1; inside the jail the
# name resolves to a fake address of the stub's. Every run is bounded by --duration/--size and
# `timeout`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SLUICE=${SLUICE:-$ROOT/build/sluice}
[ -x "$SLUICE" ] || { echo "build sluice first: scripts/setup.sh" >&2; exit 1; }
QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then REPEATS=${REPEATS:-1} DUR=${DUR:-1} SIZE=${SIZE:-256M}; else
  REPEATS=${REPEATS:-6} DUR=${DUR:-3} SIZE=${SIZE:-2G}; fi
CONC=${CONC:-16}

source bench/lib.sh
bench_work
bench_upstream "$SLUICE" 1800
python3 "$ROOT/tests/tools/dns_server.py" --listen 127.0.0.1:0 --ttl 3600 --record up.test=127.0.0.1 \
  --port-file "$work/dns.port" >/dev/null &
pids+=($!)
bench_wait_file "$work/dns.port" || { echo "the DNS server did not start" >&2; exit 1; }
DNS=$(head -1 "$work/dns.port")

run_args=(--quiet --dns-server "127.0.0.1:$DNS" --allow up.test --allow 127.0.0.1)
# Inside the transparent jail the load dials up.test's fake address (the stub's answer).
direct_load='ip=$(getent ahosts up.test | awk '"'"'index($1, ".") { print $1; exit }'"'"'); exec "$0" bench "$@" --direct --target "$ip:'$UP'"'

# bench TAG MODE SCENARIO ARGS...: one `sluice run` with the load inside; its JSON and the CPU
# seconds of the whole run (client, bridge, proxy: every process of the run, reaped) go to raw.jsonl.
bench() {
  local tag=$1 mode=$2; shift 2
  local argv=("$SLUICE" run "${run_args[@]}")
  case $mode in
    explicit) argv+=(-- "$SLUICE" bench "$@" --proxy http://127.0.0.1:3128 --target "127.0.0.1:$UP") ;;
    transparent) argv+=(--transparent -- sh -c "$direct_load" "$SLUICE" "$@") ;;
    relay) argv+=(--transparent --bridge relay -- sh -c "$direct_load" "$SLUICE" "$@") ;;
  esac
  python3 - "$tag" "$work/raw.jsonl" "${argv[@]}" <<'PY' || true
import json, resource, subprocess, sys
tag, raw, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
try:
    r = subprocess.run(["timeout", "120"] + argv, capture_output=True, text=True)
    out = json.loads(r.stdout) if r.stdout.strip() else None
except ValueError:
    out = None
if out is None:
    sys.stderr.write("[run-transparent] %s failed: %s\n" % (tag, r.stderr.strip()[-400:]))
ru = resource.getrusage(resource.RUSAGE_CHILDREN)  # this helper ran only that one run
with open(raw, "a") as f:
    f.write(json.dumps({"tag": tag, "cpu_s": ru.ru_utime + ru.ru_stime, "result": out}) + "\n")
PY
}

load=(--name up.test --json)
orders=("explicit transparent relay" "transparent relay explicit" "relay explicit transparent")
for i in $(seq "$REPEATS"); do
  echo "[run-transparent] repeat $i of $REPEATS" >&2
  order=${orders[$(((i - 1) % 3))]}  # each path goes first, second and third in turn
  for mode in $order; do
    bench "setup.$mode" "$mode" connect-storm "${load[@]}" --concurrency "$CONC" --duration "$DUR"
  done
  for mode in $order; do
    bench "tput.$mode" "$mode" tunnel-throughput "${load[@]}" --size "$SIZE" --duration 30
  done
done

version=$("$SLUICE" --version)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
dirty=$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo " + uncommitted changes" || true)
python3 - "$work/raw.jsonl" "$work/section.md" "$version ($commit$dirty)" "$DUR" "$SIZE" "$REPEATS" "$CONC" \
  "$(cut -d' ' -f1-3 /proc/loadavg)" "${NOTE:-}" <<'PY'
import json, os, platform, statistics, sys, time
raw, out, version, dur, size, repeats, conc, load_end, note = sys.argv[1:10]
runs = {}
for line in open(raw):
    r = json.loads(line)
    if r["result"] is None:
        sys.exit("a bench run failed to report: %s" % r["tag"])
    runs.setdefault(r["tag"], []).append(r)

def med(tag, key, sub=None):
    vals = [(r["result"][key][sub] if sub else r["result"].get(key)) for r in runs[tag]]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None

def cpu_per(tag, unit):  # CPU seconds of the whole run per `unit` of work, median over repeats
    vals = []
    for r in runs[tag]:
        n = (r["result"]["ops"] - r["result"]["failed"]) / 10000.0 if unit == "ops" else r["result"]["bytes"] / float(1 << 30)
        if n > 0:
            vals.append(r["cpu_s"] / n)
    return statistics.median(vals) if vals else None

def errors(tag):
    total = {}
    for r in runs[tag]:
        for k, n in r["result"]["errors"].items():
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
names = (("explicit", "`sluice run`, explicit proxy (HTTP_PROXY, hand-over bridge)"),
         ("transparent", "`sluice run --transparent`, direct to the fake address (hand-over)"),
         ("relay", "`sluice run --transparent --bridge relay` (the bridge relays every byte)"))
lines = []
w = lines.append
w("## Transparent mode against the explicit-proxy jail path (bench/run-transparent.sh)")
w("")
w("Written by `bench/run-transparent.sh` (do not edit by hand; run it again). Every number is the")
w("median of %s interleaved repeats (the three paths take turns going first), all measured in the" % repeats)
w("same run on the same machine.")
w("")
w("### Machine")
w("")
w("- %d CPUs: %s; %.1f GiB; Linux %s" % (os.cpu_count(), cpu, mem_kib / 1048576, platform.release()))
w("- date: %s; load average at the end: %s (this run's own processes count in it)"
  % (time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()), load_end))
if note:
    w("- " + note)
w("- %s; `sluice run` with its default one proxy worker; client, bridge, proxy and upstream share these CPUs." % version)
w("")
w("### Commands")
w("")
w("- upstream: `sluice bench upstream --listen 127.0.0.1:0`; DNS for sluice's resolver: `tests/tools/dns_server.py --record up.test=127.0.0.1`")
w("- explicit: `sluice run --dns-server DNS --allow up.test --allow 127.0.0.1 -- sluice bench SCENARIO --proxy http://127.0.0.1:3128 --name up.test --target 127.0.0.1:UP`")
w("- transparent: `sluice run --transparent --dns-server DNS --allow up.test --allow 127.0.0.1 -- sh -c 'sluice bench SCENARIO --direct --name up.test --target $(getent ahosts up.test | first IPv4):UP'` (the stub's fake address, 198.18.0.0/15)")
w("- relay: the transparent command with `--bridge relay`")
w("- SCENARIO: `connect-storm --concurrency %s --duration %s`, `tunnel-throughput --size %s`" % (conc, dur, size))
w("")
w("Both ways sluice judges the name up.test and dials 127.0.0.1 (its resolver caches the answer).")
w("CPU is every process of the run (the load client, the bridge, the proxy), per unit of work.")
w("")
w("### Tunnel setup rate (closed loop, %s connections; each op: connect, [CONNECT, 200,] GET /, close)" % conc)
w("")
w("| path | tunnels/s | × explicit | p50 ms | p99 ms | CPU-s per 10k ops | errors |")
w("|---|---|---|---|---|---|---|")
e = med("setup.explicit", "ops_per_s")
for key, name in names:
    tag = "setup." + key
    v = med(tag, "ops_per_s")
    w("| %s | %s | %s | %s | %s | %s | %s |" % (
        name, f(v, "%.0f"), f(v / e if e and key != "explicit" else None, "%.2f"),
        f(med(tag, "latency_us", "p50") / 1000, "%.2f"), f(med(tag, "latency_us", "p99") / 1000, "%.2f"),
        f(cpu_per(tag, "ops"), "%.2f"), errors(tag)))
w("")
w("### Throughput (one connection, %s downloaded, byte count checked)" % size)
w("")
w("| path | MB/s | × explicit | CPU-s per GiB | errors |")
w("|---|---|---|---|---|")
e = med("tput.explicit", "mb_per_s")
for key, name in names:
    tag = "tput." + key
    v = med(tag, "mb_per_s")
    w("| %s | %s | %s | %s | %s |" % (
        name, f(v, "%.0f"), f(v / e if e and key != "explicit" else None, "%.2f"), f(cpu_per(tag, "gib"), "%.3f"),
        errors(tag)))
w("")
rs, rt = med("setup.transparent", "ops_per_s") / med("setup.explicit", "ops_per_s"), \
    med("tput.transparent", "mb_per_s") / med("tput.explicit", "mb_per_s")
verdict = "met" if rs >= 0.9 and rt >= 0.9 else "missed"
w("Target (issue 16): transparent within 10%% of the explicit jail path: setup %.2f×, throughput %.2f× (%s)."
  % (rs, rt, verdict))
def spread(kind, key):  # transparent / explicit within each repeat (they ran back to back)
    pairs = zip(runs[kind + ".transparent"], runs[kind + ".explicit"])
    ratios = sorted(t["result"][key] / e["result"][key] for t, e in pairs if e["result"][key])
    return "%.2f–%.2f" % (ratios[0], ratios[-1]) if ratios else "–"
w("Within single repeats the ratio ranged %s (setup) and %s (throughput): on this shared"
  % (spread("setup", "ops_per_s"), spread("tput", "mb_per_s")))
w("machine one repeat says little, the medians are the measurement.")
w("The explicit client pays a CONNECT round trip the transparent one does not; the transparent bridge")
w("reads the first bytes (for the SNI/Host check) and passes them with the socket. Raw results:")
w("`bench/results/transparent.jsonl`, one object per run: its tag, the run's CPU seconds and the")
w("`sluice bench --json` result.")
open(out, "w").write("\n".join(lines) + "\n")
PY
if [[ $QUICK == 1 ]]; then
  cat "$work/section.md"
else
  cp "$work/raw.jsonl" "$ROOT/bench/results/transparent.jsonl"
  python3 "$ROOT/bench/update-results.py" transparent "$work/section.md"
  echo "[run-transparent] wrote the transparent section of bench/RESULTS.md" >&2
fi
