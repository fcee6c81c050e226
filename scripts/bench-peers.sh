#!/usr/bin/env bash
# bench-peers.sh: sluice and its peers, side by side, on this machine's loopback only.
#
# Installs what is missing (apt: haproxy, squid, tinyproxy, gnuplot-nox; npm:
# @anthropic-ai/sandbox-runtime into a private prefix), starts each proxy with a private config in
# a temp dir, listening on
# 127.0.0.1 only, starts the built-in upstream (`sluice bench upstream`), then runs every
# scenario against direct loopback and each proxy, interleaved, three repeats, and writes
# bench/RESULTS.md plus plots in bench/results/. Everything it started is stopped on exit.
#
#   scripts/bench-peers.sh                 # the full run (~10 minutes)
#   QUICK=1 scripts/bench-peers.sh         # one repeat, short runs: checks the script itself
#   SLUICE=/path/to/sluice PEERS="sluice squid" scripts/bench-peers.sh
#   REPORT_ONLY=1 scripts/bench-peers.sh   # rewrite RESULTS.md and plots from bench/results/
#   PEERS="sluice haproxy" PHASES="closed race" SECTION=relay-limit NOTE="..." scripts/bench-peers.sh
#       # sluice against the relay limit only, into its own section (results/relay-limit.jsonl)
#
# HAProxy is the relay limit, not a forward proxy: the load reaches it as it would the origin
# (`--direct --target HAPROXY`), TCP mode for tunnel setup and throughput, HTTP mode (a reverse
# proxy) for forwarded requests. It does less work than sluice: no CONNECT exchange, no target
# parsing, no policy, no resolved-address check. It has no idle-tunnels run (no tunnels to hold).
#
# PHASES (default all): closed (setup, forwarding, throughput), rates (open loop), idle,
# variants (the jail path, a 100,000-entry allow list), race (byte-exactness under a closing race).
#
# Every run is bounded: each `sluice bench` call has a --duration and a request or size limit,
# and `timeout` on top.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/lib.sh"  # bench_squid_private_conf (the prelude here is its own: it stops peers)
SLUICE=${SLUICE:-$ROOT/build/sluice}
OUT=${OUT:-$ROOT/bench}
QUICK=${QUICK:-0}
PEERS=${PEERS:-"sluice haproxy squid tinyproxy srt"}
PHASES=${PHASES:-"closed rates idle variants race"}
SECTION=${SECTION:-peers}
NOTE=${NOTE:-}
[[ $SECTION =~ ^[a-z0-9-]+$ ]] || { echo "bench-peers: bad SECTION '$SECTION'" >&2; exit 2; }
phase() { [[ " $PHASES " == *" $1 "* ]]; }
SRT_PREFIX=${SRT_PREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice-bench/srt}

if [[ $QUICK == 1 ]]; then
  REPEATS=1 DUR=1 TPUT_SIZE=128M RATES="500 2000" IDLE_N=500 RACE_RUNS=3 RACE_SIZE=32M
else
  REPEATS=3 DUR=3 TPUT_SIZE=1G RATES="250 500 1000 2000 4000" IDLE_N=4000 RACE_RUNS=12 RACE_SIZE=256M
fi
RATE_DUR=2

log() { printf '[bench-peers] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

write_report() {  # write_report RAW META OUT
  SLUICE_ROOT=$ROOT python3 - "$@" <<'PYEOF'
# Aggregates raw.jsonl (one line per run) into bench/RESULTS.md and gnuplot plots.
import json, os, statistics, subprocess, sys
from collections import defaultdict

raw_path, meta_path, out = sys.argv[1:4]
res_dir = os.path.join(out, "results")
runs = defaultdict(list)  # (tag, target) -> [result]
order = []
for line in open(raw_path):
    r = json.loads(line)
    key = (r["tag"], r["target"])
    runs[key].append(r["result"])
    if r["target"] not in order:
        order.append(r["target"])
meta, commands = {}, []
for line in open(meta_path):
    k, _, v = line.rstrip("\n").partition("=")
    if k == "command":
        commands.append(v)
    else:
        meta[k] = v

def med(tag, target, f):
    vals = [f(r) for r in runs.get((tag, target), [])]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None

def errs(tag, target):
    total = defaultdict(int)
    for r in runs.get((tag, target), []):
        for k, n in r["errors"].items():
            total[k] += n
        if r.get("unsent"):
            total["unsent"] += r["unsent"]
        if r.get("keepalive_retries"):
            total["resent after a silent keep-alive close"] += r["keepalive_retries"]
    return ", ".join(f"{k} {n}" for k, n in sorted(total.items())) or "0"

def fmt(v, spec="{:.1f}", none="–"):
    return none if v is None else spec.format(v)

def ratio(a, b):
    return None if a is None or not b else a / b

cpu10k = lambda r: r.get("proxy_cpu_s_per_10k_ops")
cpugib = lambda r: r.get("proxy_cpu_s_per_gib")
peak = lambda r: r["proxy_peak_rss_kib"] / 1024 if "proxy_peak_rss_kib" in r else None
p50 = lambda r: r["latency_us"]["p50"] / 1000 if r["latency_us"]["count"] else None
p99 = lambda r: r["latency_us"]["p99"] / 1000 if r["latency_us"]["count"] else None
p999 = lambda r: r["latency_us"]["p99_9"] / 1000 if r["latency_us"]["count"] else None
ops = lambda r: r["ops_per_s"]
mbs = lambda r: r["mb_per_s"]
# Peer tables show the targets of the main scenarios; sluice's variants (its jail path, a
# 100,000-entry allow list) and srt's jail have tables of their own.
main = {t for tag, t in runs if tag in ("connect-storm", "http-forward", "tunnel-throughput")}
known = ("direct", "sluice", "haproxy", "squid", "tinyproxy", "srt")
targets = [t for t in known if t in order and t in main] + [t for t in order if t in main and t not in known]
proxies = [t for t in targets if t != "direct"]
section = meta.get("section", "peers")
# HAProxy is reached as the origin would be: a TCP relay, or an HTTP reverse proxy for forwarding.
HAPROXY_MODE = {"http-forward": "haproxy (HTTP reverse proxy)"}
def label(tag, t):
    return HAPROXY_MODE.get(tag, "haproxy (TCP relay)") if t == "haproxy" else t

md = []
w = md.append
if section == "peers":
    w("## sluice and its peers (scripts/bench-peers.sh)")
else:
    w(f"## sluice against the relay limit, HAProxy (scripts/bench-peers.sh, SECTION={section})")
w("")
w("Written by `scripts/bench-peers.sh` (do not edit by hand; run it again). Every number is the")
w(f"median of {meta.get('repeats', '?')} interleaved repeats, all measured in the same run on the same machine.")
if meta.get("quick") == "1":
    w("")
    w("**QUICK=1 run: one repeat and short runs; a check of the script, not a measurement.**")
w("")
w("### Machine")
w("")
w(f"- {meta.get('nproc')} CPUs: {meta.get('cpu')}; {meta.get('mem')}; {meta.get('kernel')}")
w(f"- date: {meta.get('date')}")
w("- client, proxy and upstream share these CPUs; other work on the machine adds noise, which the")
w("  CPU-seconds-per-operation figures (from /proc/PID/stat) resist better than the rates do.")
if meta.get("note"):
    w(f"- {meta['note']}")
w("")
w("### Peers")
w("")
w("| peer | version | command |")
w("|---|---|---|")
for t in proxies:
    w(f"| {t} | {meta.get('version.' + t, '?')} | `{meta.get('cmd.' + t, '?')}` |")
for k, v in meta.items():
    if k.startswith("skipped."):
        w(f"| {k[8:]} | left out | {v} |")
w("")
w("The private configs, as used, are in `results/configs/`.")
w("")
w("The upstream is the built-in one (`" + meta.get("upstream", "") + "`, one libuv loop); `direct`")
w("is the same load straight at it, the physical limit of this machine for the scenario.")
w("Configs are private and minimal: no cache and no access log for squid, `LogLevel Critical` for")
w("tinyproxy, `--log /dev/null` for sluice; srt's proxy is its package's own `createHttpProxyServer`")
w("with an allow filter for 127.0.0.1, started from a small Node script (no sandbox around it).")
w("Each runs its default process model: sluice one worker loop per core, squid one worker")
w("(`-N`, no kids), tinyproxy a thread per connection, srt one Node event loop.")
if "haproxy" in proxies:
    w("")
    w("HAProxy is the relay limit, and it does less work than sluice: the load reaches it as it")
    w("would the origin (`--direct --target HAPROXY --pid PID`), with no CONNECT exchange, no target")
    w("parsing, no policy and no resolved-address check. TCP mode (`relay_tcp`) carries the tunnel")
    w("setup and throughput runs, HTTP mode (`reverse_http`, a reverse proxy with `http-reuse always`)")
    w("the forwarded requests; one process, its default threads (one per CPU), no logging,")
    w("`option splice-auto` in TCP mode.")
w("")
w("### Commands")
w("")
for c in commands:
    w(f"- `{c}`")
w("")

def rate_table(tag, title, unit_col):
    w(f"### {title}")
    w("")
    d_ops = med(tag, "direct", ops)
    s_ops = med(tag, "sluice", ops)
    w(f"| target | {unit_col} | × direct | × sluice | p50 ms | p99 ms | p99.9 ms | proxy CPU-s per 10k ops | proxy peak RSS MiB | errors |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for t in targets:
        o = med(tag, t, ops)
        if o is None:
            continue
        w(f"| {label(tag, t)} | {fmt(o, '{:.0f}')} | {fmt(ratio(o, d_ops), '{:.2f}')} | {fmt(ratio(o, s_ops), '{:.2f}')} | "
          f"{fmt(med(tag, t, p50), '{:.2f}')} | {fmt(med(tag, t, p99), '{:.2f}')} | {fmt(med(tag, t, p999), '{:.2f}')} | "
          f"{fmt(med(tag, t, cpu10k), '{:.2f}')} | {fmt(med(tag, t, peak))} | {errs(tag, t)} |")
    w("")

rate_table("connect-storm", "Tunnel setup rate (connect-storm, closed loop, 16 connections)", "tunnels/s")
rate_table("http-forward", "Forwarded requests (http-forward, keep-alive, 16 connections)", "requests/s")

def variant_table(tag, title, intro, rows):
    if not any((tag, t) in runs for t, _ in rows):
        return
    w(f"### {title}")
    w("")
    w(intro)
    w("")
    d_ops = med(tag, "direct", ops)
    w("| path | tunnels/s | × direct | p50 ms | p99 ms | p99.9 ms | proxy CPU-s per 10k ops | errors |")
    w("|---|---|---|---|---|---|---|---|")
    for t, label in rows:
        o = med(tag, t, ops)
        if o is None:
            continue
        w(f"| {label} | {fmt(o, '{:.0f}')} | {fmt(ratio(o, d_ops), '{:.2f}')} | {fmt(med(tag, t, p50), '{:.2f}')} | "
          f"{fmt(med(tag, t, p99), '{:.2f}')} | {fmt(med(tag, t, p999), '{:.2f}')} | {fmt(med(tag, t, cpu10k), '{:.2f}')} | "
          f"{errs(tag, t)} |")
    w("")

variant_table("jail-storm", "The jail path (connect-storm run inside the jail, 16 connections)",
              "The load generator runs inside each launcher's jail and reaches its proxy the way a jailed "
              "program does: `sluice run` (its bridge hands each accepted socket to the embedded proxy; "
              "`relay` copies bytes to the unix socket instead) and `srt -c` (socat in the jail, a unix "
              "socket, socat on the host, srt's proxy). `direct` runs on the host, as above. The proxies' "
              "CPU is not sampled here (their pids live in another pid namespace).",
              [("direct", "direct (host, no proxy)"), ("sluice-jail", "sluice run (hand-over)"),
               ("sluice-jail-relay", "sluice run --bridge relay"), ("srt-jail", "srt -c (socat bridge)")])
variant_table("allow-storm", "A 100,000-entry allow list (connect-storm, 16 connections)",
              "The same sluice, once with an allow list of 1 entry and once with 100,000 (100,000 names "
              "`h<N>.allowlist.example` plus the upstream's address), interleaved.",
              [("direct", "direct"), ("sluice-small", "sluice, 1 allow entry"),
               ("sluice-100k", "sluice, 100,000 allow entries")])

w("### Tunnel throughput (tunnel-throughput, one tunnel)")
w("")
d_mb, s_mb = med("tunnel-throughput", "direct", mbs), med("tunnel-throughput", "sluice", mbs)
w("| target | MB/s | × direct | × sluice | proxy CPU-s per GiB | proxy peak RSS MiB | errors |")
w("|---|---|---|---|---|---|---|")
for t in targets:
    m = med("tunnel-throughput", t, mbs)
    if m is None:
        continue
    w(f"| {label('tunnel-throughput', t)} | {fmt(m, '{:.0f}')} | {fmt(ratio(m, d_mb), '{:.2f}')} | {fmt(ratio(m, s_mb), '{:.2f}')} | "
      f"{fmt(med('tunnel-throughput', t, cpugib), '{:.3f}')} | {fmt(med('tunnel-throughput', t, peak))} | {errs('tunnel-throughput', t)} |")
w("")

# Each repeat of the tunnel download on its own: the target holds on every repeat, not the median.
d_runs, s_runs = runs.get(("tunnel-throughput", "direct"), []), runs.get(("tunnel-throughput", "sluice"), [])
if len(s_runs) > 1 and len(d_runs) == len(s_runs):
    w("Each repeat (sluice, against direct in the same repeat): " + "; ".join(
        f"{i + 1}: {fmt(ratio(s['mb_per_s'], d['mb_per_s']), '{:.2f}')}× at {fmt(cpugib(s), '{:.3f}')} CPU-s/GiB"
        for i, (d, s) in enumerate(zip(d_runs, s_runs))) + ".")
    w("")

if "haproxy" in targets:
    w("### sluice against the relay limit (HAProxy)")
    w("")
    w("Rates as ratios (to direct loopback and to HAProxy) and the proxy's CPU per operation, the")
    w("figure that moves least with the machine's other load. HAProxy does less work (see above).")
    w("")
    w("| scenario | direct | sluice | HAProxy | sluice × direct | HAProxy × direct | sluice × HAProxy | sluice CPU-s | HAProxy CPU-s | sluice CPU ÷ HAProxy |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for tag, name, metric, cpu, unit in [("connect-storm", "tunnel setup (tunnels/s; CPU-s per 10k tunnels)", ops, cpu10k, "{:.0f}"),
                                         ("http-forward", "forwarded requests (requests/s; CPU-s per 10k requests)", ops, cpu10k, "{:.0f}"),
                                         ("tunnel-throughput", "tunnel throughput (MB/s; CPU-s per GiB)", mbs, cpugib, "{:.0f}")]:
        d, sl, hp = (med(tag, t, metric) for t in ("direct", "sluice", "haproxy"))
        sc, hc = med(tag, "sluice", cpu), med(tag, "haproxy", cpu)
        w(f"| {name} | {fmt(d, unit)} | {fmt(sl, unit)} | {fmt(hp, unit)} | {fmt(ratio(sl, d), '{:.2f}')} | "
          f"{fmt(ratio(hp, d), '{:.2f}')} | {fmt(ratio(sl, hp), '{:.2f}')} | {fmt(sc, '{:.3f}')} | {fmt(hc, '{:.3f}')} | "
          f"{fmt(ratio(sc, hc), '{:.2f}')} |")
    w("")

rates = sorted({int(tag[5:]) for tag, _ in runs if tag.startswith("rate-")})
half = int(meta.get("half_peak", "0") or 0)
if rates:
    w("### Latency at a fixed offered rate (connect-storm, open loop)")
    w("")
    w("Latency counts from each operation's scheduled start, so a proxy that stalls cannot hide its")
    w("queue (no coordinated omission). Cells: p50 / p99 in ms; `!` marks runs where operations were")
    w("still unsent at the end or failed (the proxy could not keep up with the offered rate).")
    w("")
    w("| offered/s | " + " | ".join(targets) + " |")
    w("|---|" + "---|" * len(targets))
    for r in rates:
        tag = f"rate-{r}"
        cells = []
        for t in targets:
            a, b = med(tag, t, p50), med(tag, t, p99)
            bad = any(x.get("unsent") or x["failed"] for x in runs.get((tag, t), []))
            cells.append("–" if a is None else f"{a:.2f} / {b:.2f}{' !' if bad else ''}")
        rate_label = f"{r} (½ sluice peak)" if r == half else str(r)
        w(f"| {rate_label} | " + " | ".join(cells) + " |")
    w("")
    if half and med(f"rate-{half}", "sluice", p99) is not None and med(f"rate-{half}", "direct", p99) is not None:
        added = med(f"rate-{half}", "sluice", p99) - med(f"rate-{half}", "direct", p99)
        w(f"p99 latency sluice adds at half its peak setup rate ({half}/s): **{added:.2f} ms** (target ≤ 1 ms;")
        w(f"direct loopback's own p99 at that rate is {med(f'rate-{half}', 'direct', p99):.2f} ms on this machine, so")
        w("differences below that are within the noise).")
        w("")

if any(tag == "idle-tunnels" for tag, _ in runs):
    w("### Idle tunnels")
    w("")
    w("RSS growth of the proxy with every tunnel open and idle (after one small exchange each),")
    w("divided by the tunnels held. Each proxy is restarted just before each of these runs: memory a")
    w("warm process freed after earlier load would otherwise be reused and hide the cost (a second run")
    w("against the same sluice measured ~0.2 KiB per tunnel). A garbage-collected proxy (srt on node) can show noise or even a")
    w("negative figure when a collection lands between the two samples; its peak RSS says more.")
    w("")
    w("| proxy | tunnels held | RSS per tunnel KiB | proxy peak RSS MiB | errors |")
    w("|---|---|---|---|---|")
    for t in proxies:
        held = med("idle-tunnels", t, lambda r: r.get("tunnels_held"))
        if held is None:
            continue
        per = med("idle-tunnels", t, lambda r: r["rss_per_tunnel_bytes"] / 1024 if r.get("rss_per_tunnel_bytes") is not None else None)
        w(f"| {t} | {fmt(held, '{:.0f}')} | {fmt(per, '{:.1f}')} | {fmt(med('idle-tunnels', t, peak))} | {errs('idle-tunnels', t)} |")
    w("")

if any(tag == "close-race" for tag, _ in runs):
    w("### Byte-exactness under a closing race")
    w("")
    w("Downloads through a tunnel where the upstream closes its socket right after the last byte")
    w("(`/bytes?n=N&close=1`); each must arrive whole (`short-read` counts a lost tail).")
    w("")
    w("| target | transfers ok | of | errors |")
    w("|---|---|---|---|")
    for t in targets:
        rs = runs.get(("close-race", t), [])
        if not rs:
            continue
        r = rs[0]
        total = r["ops"] + r["failed"] + r["aborted"]
        w(f"| {t} | {r['ops']} | {total} | {errs('close-race', t)} |")
    w("")

# Targets from issue 6, checked where this run measures them.
checks = []
def check(name, value, limit, better, fmtspec):
    if value is None:
        checks.append(f"| {name} | – | {limit} | not measured |")
        return
    ok = value >= limit if better == "higher" else value <= limit
    checks.append(f"| {name} | {fmtspec.format(value)} | {'≥' if better == 'higher' else '≤'} {limit} | {'met' if ok else '**missed**'} |")
check("tunnel throughput × direct", ratio(s_mb, d_mb), 0.9, "higher", "{:.2f}")
check("CPU-s per GiB tunnelled", med("tunnel-throughput", "sluice", cpugib), 0.2, "lower", "{:.3f}")
check("setup rate × direct", ratio(med("connect-storm", "sluice", ops), med("connect-storm", "direct", ops)), 0.8, "higher", "{:.2f}")
check("CPU-s per 10k tunnels", med("connect-storm", "sluice", cpu10k), 0.5, "lower", "{:.2f}")
check("forwarded requests × direct", ratio(med("http-forward", "sluice", ops), med("http-forward", "direct", ops)), 0.5, "higher", "{:.2f}")
check("CPU-s per 10k forwarded requests", med("http-forward", "sluice", cpu10k), 0.25, "lower", "{:.2f}")
if half:
    a, b = med(f"rate-{half}", "sluice", p99), med(f"rate-{half}", "direct", p99)
    if a is not None and b is not None and b > 1:
        # The machine's own p99 (direct, no proxy) is above the goal: the difference is noise.
        checks.append(f"| p99 added latency at ½ peak (ms) | {a - b:.2f} | ≤ 1 | inconclusive: direct's own p99 is {b:.2f} ms here |")
    else:
        check("p99 added latency at ½ peak (ms)", None if a is None or b is None else a - b, 1, "lower", "{:.2f}")
check("jail path setup rate × direct", ratio(med("jail-storm", "sluice-jail", ops), med("jail-storm", "direct", ops)), 0.6, "higher", "{:.2f}")
check("jail path p99 (ms)", med("jail-storm", "sluice-jail", p99), 10, "lower", "{:.2f}")
small, big = med("allow-storm", "sluice-small", ops), med("allow-storm", "sluice-100k", ops)
check("setup rate lost to a 100k allow list (%)", None if not small or big is None else 100 * (1 - big / small), 2, "lower", "{:.1f}")
small_cpu, big_cpu = med("allow-storm", "sluice-small", cpu10k), med("allow-storm", "sluice-100k", cpu10k)
check("CPU per tunnel added by a 100k allow list (%)", None if not small_cpu or big_cpu is None else 100 * (big_cpu / small_cpu - 1), 2, "lower", "{:.1f}")
check("RSS per idle tunnel (KiB)", med("idle-tunnels", "sluice", lambda r: r["rss_per_tunnel_bytes"] / 1024 if r.get("rss_per_tunnel_bytes") is not None else None), 4, "lower", "{:.1f}")
if section == "peers":
    w("### sluice against the targets of issue 6")
    w("")
    w("| target | measured | goal | |")
    w("|---|---|---|---|")
    md.extend(checks)
    w("")

# Targets from issue 18 (the relay limit), where this run measures them.
if "haproxy" in targets:
    checks = []
    hp_cpu, sl_cpu = med("connect-storm", "haproxy", cpu10k), med("connect-storm", "sluice", cpu10k)
    check("tunnel setup CPU-s per 10k ÷ HAProxy TCP", ratio(sl_cpu, hp_cpu), 1.0, "lower", "{:.2f}")
    check("tunnel setup rate × HAProxy TCP", ratio(med("connect-storm", "sluice", ops), med("connect-storm", "haproxy", ops)), 0.85, "higher", "{:.2f}")
    check("forwarded requests × HAProxy HTTP", ratio(med("http-forward", "sluice", ops), med("http-forward", "haproxy", ops)), 1.0, "higher", "{:.2f}")
    check("forwarding CPU-s per 10k ÷ HAProxy HTTP", ratio(med("http-forward", "sluice", cpu10k), med("http-forward", "haproxy", cpu10k)), 1.0, "lower", "{:.2f}")
    worst = [(ratio(s_["mb_per_s"], d["mb_per_s"]), cpugib(s_)) for d, s_ in zip(d_runs, s_runs)] if len(d_runs) == len(s_runs) else []
    check("tunnel throughput × direct, worst repeat", min((r for r, _ in worst if r is not None), default=None), 0.9, "higher", "{:.2f}")
    check("tunnel CPU-s per GiB, worst repeat", max((c for _, c in worst if c is not None), default=None), 0.2, "lower", "{:.3f}")
    w("### sluice against the targets of issue 18")
    w("")
    w("| target | measured | goal | |")
    w("|---|---|---|---|")
    md.extend(checks)
    w("")

if section == "peers":
    w("### Plots")
    w("")
    w("- `results/throughput.svg` / `.png`: each scenario's rate as a ratio to direct loopback")
    w("- `results/latency-vs-rate.svg` / `.png`: p99 setup latency against the offered rate")
    w("- `results/raw.jsonl`: every run's full JSON report; `results/meta.txt`: machine and versions;")
    w("  `results/configs/`: the peers' private configs as used")
else:
    w(f"Files: `results/{section}.jsonl` (every run's full JSON report), `results/{section}-meta.txt`")
    w("(machine and versions), `results/configs/` (the private configs as used).")
w("")
# Only this script's section of RESULTS.md is rewritten; other bench scripts own the others.
subprocess.run([sys.executable, os.path.join(os.environ["SLUICE_ROOT"], "bench", "update-results.py"),
                section, "-", os.path.join(out, "RESULTS.md")], input="\n".join(md) + "\n", text=True, check=True)
if section != "peers":
    sys.exit(0)  # the plots belong to the full peers run

# ---- plots ----
with open(os.path.join(res_dir, "throughput.dat"), "w") as f:
    f.write("scenario " + " ".join(targets) + "\n")
    for tag, label, metric in [("connect-storm", "setup", ops), ("http-forward", "forward", ops),
                               ("tunnel-throughput", "throughput", mbs)]:
        d = med(tag, "direct", metric)
        f.write(label + " " + " ".join(fmt(ratio(med(tag, t, metric), d), "{:.4f}", "NaN") for t in targets) + "\n")
with open(os.path.join(res_dir, "latency-vs-rate.dat"), "w") as f:
    f.write("rate " + " ".join(targets) + "\n")
    for r in rates:
        f.write(str(r) + " " + " ".join(fmt(med(f"rate-{r}", t, p99), "{:.4f}", "NaN") for t in targets) + "\n")

try:
    terms = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True).stderr + \
            subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True).stdout
except FileNotFoundError:
    terms = None
if terms is not None:
    png = "pngcairo size 900,540" if "pngcairo" in terms else "png size 900,540"
    n = len(targets)
    for ext, term in [("svg", "svg size 900,540 dynamic"), ("png", png)]:
        gp = f"""
set terminal {term}
set datafile missing 'NaN'
set key outside right top
set grid ytics
set output '{res_dir}/throughput.{ext}'
set title 'Rate as a ratio to direct loopback (higher is better)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set yrange [0:*]
set ylabel 'x direct'
plot for [i=2:{n + 1}] '{res_dir}/throughput.dat' using i:xtic(1) title columnheader(i)
set output '{res_dir}/latency-vs-rate.{ext}'
set title 'connect-storm p99 latency vs offered rate (open loop)'
set style data linespoints
set logscale y
set yrange [*:*]
set xlabel 'offered tunnels/s'
set ylabel 'p99 ms (log)'
plot for [i=2:{n + 1}] '{res_dir}/latency-vs-rate.dat' using 1:i title columnheader(i)
"""
        subprocess.run(["gnuplot"], input=gp, text=True, check=False)
PYEOF
}

# The peers section keeps its historical file names; another SECTION has files of its own.
if [[ $SECTION == peers ]]; then RAW_NAME=raw.jsonl META_NAME=meta.txt; else RAW_NAME=$SECTION.jsonl META_NAME=$SECTION-meta.txt; fi

# REPORT_ONLY=1: rewrite RESULTS.md and the plots from the last run's results/ without measuring.
if [[ ${REPORT_ONLY:-0} == 1 ]]; then
  write_report "$OUT/results/$RAW_NAME" "$OUT/results/$META_NAME" "$OUT"
  exit 0
fi

[[ -x $SLUICE ]] || die "no sluice binary at $SLUICE (build it first, or set SLUICE=)"
command -v python3 >/dev/null || die "python3 is needed to aggregate the results"

WORK=$(mktemp -d /tmp/sluice-peers.XXXXXX)
chmod 755 "$WORK"
declare -a STARTED=()
cleanup() {
  local rc=$?
  for p in "${STARTED[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${STARTED[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A private copy, so a rebuild of build/ during the run cannot mix two versions.
SLUICE_SRC=$SLUICE
cp "$SLUICE_SRC" "$WORK/sluice"
SLUICE=$WORK/sluice

# ---- installs, only when missing ----

install_apt() {
  local need=()
  [[ " $PEERS " != *" haproxy "* ]] || command -v haproxy >/dev/null || [[ -x /usr/sbin/haproxy ]] || need+=(haproxy)
  [[ " $PEERS " != *" squid "* ]] || command -v squid >/dev/null || [[ -x /usr/sbin/squid ]] || need+=(squid)
  [[ " $PEERS " != *" tinyproxy "* ]] || command -v tinyproxy >/dev/null || [[ -x /usr/bin/tinyproxy ]] || need+=(tinyproxy)
  command -v gnuplot >/dev/null || need+=(gnuplot-nox)
  ((${#need[@]})) || return 0
  log "installing ${need[*]} (apt)"
  # Debian starts a package's service on install (squid on *:3128, tinyproxy on *:8888): keep
  # them from starting, with a policy-rc.d of our own unless one is already in place.
  local own_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  local rc=0
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"; } >&2 || rc=$?
  ((own_policy)) && rm -f /usr/sbin/policy-rc.d
  return $rc
}

install_srt() {
  [[ -f $SRT_PREFIX/node_modules/@anthropic-ai/sandbox-runtime/dist/sandbox/http-proxy.js ]] && return 0
  command -v npm >/dev/null || return 1
  log "installing @anthropic-ai/sandbox-runtime into $SRT_PREFIX (npm)"
  mkdir -p "$SRT_PREFIX"
  npm install --prefix "$SRT_PREFIX" --no-audit --no-fund --loglevel=error @anthropic-ai/sandbox-runtime >&2
}

install_apt || log "apt install failed; peers that are missing will be left out"
[[ " $PEERS " == *" srt "* ]] && { install_srt || log "npm install failed; srt will be left out"; }

# ---- helpers ----

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {  # wait_port PORT PID: until something accepts on 127.0.0.1:PORT (10 s at most)
  for _ in $(seq 100); do
    kill -0 "$2" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# Enough descriptors for the idle-tunnels scenario (proxy: two per tunnel).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

declare -A PORT=() HTTP_PORT=() PID=() VERSION=() CMD=() SKIPPED=()

# ---- the upstream ----

"$SLUICE" bench upstream --listen 127.0.0.1:0 --lifetime 3600 >"$WORK/upstream.port" 2>"$WORK/upstream.err" &
UP_PID=$!
STARTED+=("$UP_PID")
for _ in $(seq 50); do [[ -s $WORK/upstream.port ]] && break; sleep 0.1; done
UP_PORT=$(head -1 "$WORK/upstream.port")
[[ -n $UP_PORT ]] || die "the upstream did not start: $(cat "$WORK/upstream.err")"
TARGET=127.0.0.1:$UP_PORT
log "upstream on $TARGET (pid $UP_PID)"

# ---- the proxies ----

start_sluice() {
  local p; p=$(free_port)
  CMD[sluice]="$SLUICE_SRC serve --listen 127.0.0.1:$p --allow 127.0.0.1 --log /dev/null"
  "$SLUICE" serve --listen "127.0.0.1:$p" --allow 127.0.0.1 --log /dev/null 2>"$WORK/sluice.err" &
  PID[sluice]=$!; STARTED+=("${PID[sluice]}"); PORT[sluice]=$p
  VERSION[sluice]="$("$SLUICE" --version 2>&1 | head -1) ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- proxy rules cli 2>/dev/null || echo ' + uncommitted changes'))"
}

# HAProxy, the relay limit: one process (its default threads, one per CPU), two frontends. TCP
# mode relays to the upstream for tunnel setup and throughput; HTTP mode is a reverse proxy with
# server-side keep-alive for forwarded requests. No log lines; splice-auto in TCP mode (its best
# relay setting here, as in issue 18's measurement).
start_haproxy() {
  local bin; bin=$(command -v haproxy || echo /usr/sbin/haproxy)
  [[ -x $bin ]] || { SKIPPED[haproxy]="not installed"; return 1; }
  local d=$WORK/haproxy p h; p=$(free_port); h=$(free_port)
  mkdir -p "$d"
  cat >"$d/haproxy.cfg" <<EOF
global
    maxconn 4000
    pidfile $d/haproxy.pid
defaults
    timeout connect 5s
    timeout client 600s
    timeout server 600s
frontend relay_tcp
    mode tcp
    bind 127.0.0.1:$p
    default_backend upstream_tcp
backend upstream_tcp
    mode tcp
    option splice-auto
    server upstream $TARGET
frontend reverse_http
    mode http
    bind 127.0.0.1:$h
    default_backend upstream_http
backend upstream_http
    mode http
    http-reuse always
    server upstream $TARGET
EOF
  CMD[haproxy]="$bin -db -f $d/haproxy.cfg"
  # shellcheck disable=SC2086
  ${CMD[haproxy]} 2>"$WORK/haproxy.err" &
  PID[haproxy]=$!; STARTED+=("${PID[haproxy]}"); PORT[haproxy]=$p; HTTP_PORT[haproxy]=$h
  VERSION[haproxy]=$("$bin" -v 2>&1 | sed -n 1p)  # sed reads it all: no SIGPIPE under pipefail
}

start_squid() {
  local bin; bin=$(command -v squid || echo /usr/sbin/squid)
  [[ -x $bin ]] || { SKIPPED[squid]="not installed"; return 1; }
  local d=$WORK/squid p; p=$(free_port)
  mkdir -p "$d"
  cat >"$d/squid.conf" <<EOF
http_port 127.0.0.1:$p
acl localhost src 127.0.0.1/32
acl CONNECT method CONNECT
acl upstream_port port $UP_PORT
http_access allow localhost CONNECT upstream_port
http_access deny CONNECT
http_access allow localhost
http_access deny all
EOF
  bench_squid_private_conf "$d" >>"$d/squid.conf"
  if id proxy >/dev/null 2>&1; then echo "cache_effective_user proxy" >>"$d/squid.conf"; chown -R proxy "$d"; fi
  CMD[squid]="$bin -N -f $d/squid.conf"
  # shellcheck disable=SC2086
  ${CMD[squid]} 2>"$WORK/squid.err" &
  PID[squid]=$!; STARTED+=("${PID[squid]}"); PORT[squid]=$p
  VERSION[squid]=$("$bin" -v 2>&1 | head -1)
}

start_tinyproxy() {
  local bin; bin=$(command -v tinyproxy || echo /usr/bin/tinyproxy)
  [[ -x $bin ]] || { SKIPPED[tinyproxy]="not installed"; return 1; }
  local d=$WORK/tinyproxy p; p=$(free_port)
  mkdir -p "$d"; chmod 777 "$d"
  cat >"$d/tinyproxy.conf" <<EOF
User nobody
Group nogroup
Port $p
Listen 127.0.0.1
Timeout 600
LogFile "$d/tinyproxy.log"
LogLevel Critical
PidFile "$d/tinyproxy.pid"
MaxClients 20000
Allow 127.0.0.1
ConnectPort $UP_PORT
DisableViaHeader Yes
EOF
  CMD[tinyproxy]="$bin -d -c $d/tinyproxy.conf"
  # shellcheck disable=SC2086
  ${CMD[tinyproxy]} 2>"$WORK/tinyproxy.err" &
  PID[tinyproxy]=$!; STARTED+=("${PID[tinyproxy]}"); PORT[tinyproxy]=$p
  VERSION[tinyproxy]=$("$bin" -v 2>&1 | head -1)
}

start_srt() {
  local mod=$SRT_PREFIX/node_modules/@anthropic-ai/sandbox-runtime
  [[ -f $mod/dist/sandbox/http-proxy.js ]] || { SKIPPED[srt]="npm package not installed"; return 1; }
  command -v node >/dev/null || { SKIPPED[srt]="node not found"; return 1; }
  local p; p=$(free_port)
  # srt's HTTP proxy as its sandbox manager starts it, minus the sandbox: the package's own
  # createHttpProxyServer with an allow filter for the upstream host. No auth token is set.
  cat >"$WORK/srt-proxy.mjs" <<EOF
import { createHttpProxyServer } from '$mod/dist/sandbox/http-proxy.js';
const [port, allowed] = [Number(process.argv[2]), process.argv[3]];
const server = createHttpProxyServer({ filter: (_port, host) => host === allowed });
server.listen(port, '127.0.0.1');
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
EOF
  CMD[srt]="node $WORK/srt-proxy.mjs $p 127.0.0.1"
  # shellcheck disable=SC2086
  ${CMD[srt]} 2>"$WORK/srt.err" &
  PID[srt]=$!; STARTED+=("${PID[srt]}"); PORT[srt]=$p
  VERSION[srt]="@anthropic-ai/sandbox-runtime $(node -p "require('$mod/package.json').version") on node $(node --version)"
}

# A fresh process for a memory measurement: nothing freed by earlier load is there to reuse.
restart_peer() {  # restart_peer NAME
  local t=$1 old=${PID[$1]}
  kill "$old" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$old" 2>/dev/null || true
  wait "$old" 2>/dev/null || true
  "start_$t" && wait_port "${PORT[$t]}" "${PID[$t]}"
}

TARGETS=(direct)
for peer in $PEERS; do
  if "start_$peer" && wait_port "${PORT[$peer]}" "${PID[$peer]}"; then
    TARGETS+=("$peer")
    log "$peer on 127.0.0.1:${PORT[$peer]} (pid ${PID[$peer]}): ${VERSION[$peer]}"
  else
    [[ -n ${SKIPPED[$peer]:-} ]] || SKIPPED[$peer]="did not start: $(tail -c 300 "$WORK/$peer.err" 2>/dev/null | tr '\n' ' ')"
    log "$peer left out: ${SKIPPED[$peer]}"
  fi
done
PROXIES=("${TARGETS[@]:1}")

# ---- the runs ----

RAW=$WORK/raw.jsonl
: >"$RAW"
mkdir -p "$OUT/results"

bench() {  # bench TAG TARGET SCENARIO ARGS...: one bounded run, one JSON line into $RAW
  local tag=$1 t=$2 scen=$3; shift 3
  local via=() target=$TARGET
  if [[ $t == direct ]]; then
    via=(--direct)
  elif [[ $t == haproxy ]]; then
    # The relay limit: the load goes to HAProxy as to the origin (HTTP mode for forwarding).
    via=(--direct --pid "${PID[$t]}")
    target=127.0.0.1:${PORT[$t]}
    [[ $scen == http-forward ]] && target=127.0.0.1:${HTTP_PORT[$t]}
  else
    via=(--proxy "http://127.0.0.1:${PORT[$t]}" --pid "${PID[$t]}")
  fi
  local json
  json=$(timeout 400 "$SLUICE" bench "$scen" "${via[@]}" --target "$target" --json "$@" 2>>"$WORK/bench.err") || true
  if [[ $json != \{* ]]; then
    log "  $tag $t: no result (see the errors below)"; tail -3 "$WORK/bench.err" >&2 || true; return 0
  fi
  printf '{"tag":"%s","target":"%s","rep":%d,"result":%s}\n' "$tag" "$t" "$REP" "$json" >>"$RAW"
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("  %-22s %-10s %10.1f ops/s %9.1f MB/s  p99 %8.0f us  errors %s" % (sys.argv[2], sys.argv[3], r["ops_per_s"], r["mb_per_s"], r["latency_us"]["p99"] or 0, r["errors"]))' "$json" "$tag" "$t" >&2
}

COMMANDS=()
phase closed && COMMANDS+=(
  "sluice bench connect-storm (--direct | --proxy URL --pid PID) --target $TARGET --concurrency 16 --duration $DUR"
  "sluice bench http-forward (--direct | --proxy URL --pid PID) --target $TARGET --concurrency 16 --duration $DUR"
  "sluice bench tunnel-throughput (--direct | --proxy URL --pid PID) --target $TARGET --size $TPUT_SIZE --duration 20"
)
phase rates && COMMANDS+=("sluice bench connect-storm (--direct | --proxy URL --pid PID) --target $TARGET --rate R --concurrency 1000 --duration $RATE_DUR   (R in: $RATES, and half of sluice's peak)")
phase idle && COMMANDS+=("sluice bench idle-tunnels --proxy URL --pid PID --target $TARGET --concurrency $IDLE_N --hold 1")
phase race && COMMANDS+=("sluice bench tunnel-throughput --proxy URL --target $TARGET --size $RACE_SIZE --close --requests $RACE_RUNS --duration 60")
[[ -n ${PID[haproxy]:-} ]] && COMMANDS+=("haproxy: the same commands with --direct --pid PID and --target its relay_tcp port (its reverse_http port for http-forward)")

for ((REP = 1; REP <= REPEATS; REP++)); do
  phase closed || break
  log "repeat $REP/$REPEATS: closed loop"
  for t in "${TARGETS[@]}"; do bench connect-storm "$t" connect-storm --concurrency 16 --duration "$DUR"; done
  for t in "${TARGETS[@]}"; do bench http-forward "$t" http-forward --concurrency 16 --duration "$DUR"; done
  for t in "${TARGETS[@]}"; do bench tunnel-throughput "$t" tunnel-throughput --size "$TPUT_SIZE" --duration 20; done
done

# Half of sluice's peak setup rate (median of the closed-loop runs): the target says p99 added
# latency must stay under 1 ms there.
HALF=0
phase rates && HALF=$(python3 - "$RAW" <<'EOF'
import json, statistics, sys
v = [json.loads(l)["result"]["ops_per_s"] for l in open(sys.argv[1])
     if '"tag":"connect-storm"' in l and '"target":"sluice"' in l]
print(int(statistics.median(v) / 2) if v else 0)
EOF
)
RATE_LIST=$RATES
[[ $HALF -gt 0 ]] && RATE_LIST="$RATES $HALF"
echo "$HALF" >"$WORK/half_peak"

for ((REP = 1; REP <= REPEATS; REP++)); do
  if phase rates; then
    log "repeat $REP/$REPEATS: open loop at $RATE_LIST ops/s"
    for r in $RATE_LIST; do
      for t in "${TARGETS[@]}"; do bench "rate-$r" "$t" connect-storm --rate "$r" --concurrency 1000 --duration "$RATE_DUR"; done
    done
  fi
  phase idle || continue
  log "repeat $REP/$REPEATS: idle tunnels (each proxy restarted first)"
  for t in "${PROXIES[@]}"; do
    [[ $t == haproxy ]] && continue  # a relay holds no tunnels of its own to measure
    if restart_peer "$t"; then
      bench idle-tunnels "$t" idle-tunnels --concurrency "$IDLE_N" --hold 1 --duration 30
    else
      log "  $t did not restart: $(tail -c 300 "$WORK/$t.err" 2>/dev/null | tr '\n' ' ')"
    fi
  done
done

# ---- sluice's variants: its jail path (against srt's), and a 100,000-entry allow list ----

bench_cmd() {  # bench_cmd TAG TARGET CMD...: CMD prints one JSON report; one line into $RAW
  local tag=$1 t=$2; shift 2
  local json
  json=$(timeout 120 "$@" 2>>"$WORK/bench.err") || true
  if [[ $json != \{* ]]; then
    log "  $tag $t: no result"; tail -3 "$WORK/bench.err" >&2 || true; return 0
  fi
  printf '{"tag":"%s","target":"%s","rep":%d,"result":%s}\n' "$tag" "$t" "$REP" "$json" >>"$RAW"
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("  %-22s %-17s %10.1f ops/s  p99 %8.0f us  errors %s" % (sys.argv[2], sys.argv[3], r["ops_per_s"], r["latency_us"]["p99"] or 0, r["errors"]))' "$json" "$tag" "$t" >&2
}

if phase variants; then
# Inside a jail /tmp is private: the binary must be one the jail can see (the repository's).
STORM=(bench connect-storm --target "$TARGET" --json --concurrency 16 --duration "$DUR")
SRT_BIN=$SRT_PREFIX/node_modules/.bin/srt
printf '{"network": {"allowedDomains": ["127.0.0.1"], "deniedDomains": []}, "filesystem": {"denyRead": [], "allowWrite": ["/tmp"], "denyWrite": []}}\n' >"$WORK/srt-settings.json"
python3 - "$WORK/allow-100k.yaml" "$WORK/allow-1.yaml" <<'EOF'
import sys
big, small = sys.argv[1:3]
head = "listeners:\n  - {name: bench, tcp: \"127.0.0.1:0\"}\nlog: {path: \"\"}\npolicies:\n  default:\n    allow:\n"
with open(big, "w") as f:
    f.write(head + "".join(f"      - h{i}.allowlist.example\n" for i in range(99_999)) + "      - 127.0.0.1\n")
with open(small, "w") as f:
    f.write(head + "      - 127.0.0.1\n")
EOF
start_config() {  # start_config NAME FILE: a sluice serve on an ephemeral port from a config
  "$SLUICE" serve --config "$2" 2>"$WORK/$1.err" &
  PID[$1]=$!; STARTED+=("${PID[$1]}")
  for _ in $(seq 100); do grep -q "sluice: ready" "$WORK/$1.err" 2>/dev/null && break; sleep 0.1; done
  PORT[$1]=$(sed -n 's/^sluice: listening bench on tcp:127.0.0.1:\([0-9]*\)$/\1/p' "$WORK/$1.err")
  [[ -n ${PORT[$1]} ]] || log "$1 did not start: $(tail -c 300 "$WORK/$1.err")"
}
start_config sluice-100k "$WORK/allow-100k.yaml"
start_config sluice-small "$WORK/allow-1.yaml"
COMMANDS+=(
  "sluice run --quiet --allow 127.0.0.1 [--bridge relay] -- sluice bench connect-storm --proxy http://127.0.0.1:3128 --target $TARGET --concurrency 16 --duration $DUR"
  "srt -s SETTINGS -c 'sluice bench connect-storm --proxy \$HTTP_PROXY --target $TARGET --concurrency 16 --duration $DUR'   (SETTINGS allows 127.0.0.1)"
  "sluice bench connect-storm --proxy URL --pid PID --target $TARGET --concurrency 16 --duration $DUR   (sluice serve with 1 and with 100,000 allow entries)"
)
for ((REP = 1; REP <= REPEATS; REP++)); do
  log "repeat $REP/$REPEATS: the jail path"
  bench jail-storm direct connect-storm --concurrency 16 --duration "$DUR"
  bench_cmd jail-storm sluice-jail "$SLUICE_SRC" run --quiet --allow 127.0.0.1 -- "$SLUICE_SRC" "${STORM[@]}" --proxy http://127.0.0.1:3128
  bench_cmd jail-storm sluice-jail-relay "$SLUICE_SRC" run --quiet --bridge relay --allow 127.0.0.1 -- "$SLUICE_SRC" "${STORM[@]}" --proxy http://127.0.0.1:3128
  if [[ -x $SRT_BIN ]]; then
    bench_cmd jail-storm srt-jail "$SRT_BIN" -s "$WORK/srt-settings.json" -c "$SLUICE_SRC ${STORM[*]} --proxy \$HTTP_PROXY"
  fi
  log "repeat $REP/$REPEATS: a 100,000-entry allow list"
  bench allow-storm direct connect-storm --concurrency 16 --duration "$DUR"
  for t in sluice-small sluice-100k; do
    [[ -n ${PORT[$t]:-} ]] && bench allow-storm "$t" connect-storm --concurrency 16 --duration "$DUR"
  done
done
fi

if phase race; then
  log "byte-exactness: $RACE_RUNS downloads of $RACE_SIZE each, upstream closing right after the last byte"
  REP=1
  for t in "${TARGETS[@]}"; do
    bench close-race "$t" tunnel-throughput --size "$RACE_SIZE" --close --requests "$RACE_RUNS" --duration 60
  done
fi

# ---- the report ----

{
  echo "nproc=$(nproc)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "kernel=$(uname -sr)"
  echo "mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
  echo "gnuplot=$(gnuplot --version 2>/dev/null || echo none)"
  echo "repeats=$REPEATS"
  echo "quick=$QUICK"
  echo "half_peak=$HALF"
  echo "phases=$PHASES"
  echo "section=$SECTION"
  echo "note=$NOTE"
  for t in "${PROXIES[@]}"; do echo "version.$t=${VERSION[$t]}"; echo "cmd.$t=${CMD[$t]}"; done
  for t in "${!SKIPPED[@]}"; do echo "skipped.$t=${SKIPPED[$t]}"; done
  for c in "${COMMANDS[@]}"; do echo "command=$c"; done
  echo "upstream=sluice bench upstream --listen 127.0.0.1:0"
} >"$OUT/results/$META_NAME"

cp "$RAW" "$OUT/results/$RAW_NAME"
# The peers' private configs, as they were used (ports and temp paths included).
mkdir -p "$OUT/results/configs"
for f in squid/squid.conf tinyproxy/tinyproxy.conf srt-proxy.mjs haproxy/haproxy.cfg; do
  [[ -f $WORK/$f ]] && cp "$WORK/$f" "$OUT/results/configs/"
done
write_report "$OUT/results/$RAW_NAME" "$OUT/results/$META_NAME" "$OUT"
log "wrote $OUT/RESULTS.md and $OUT/results/"
