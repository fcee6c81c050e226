#!/usr/bin/env bash
# Two sluice binaries side by side on the hot paths, for "no regression beyond noise" after a
# refactor: each serves its own listener; tunnel setup (CONNECT and SOCKS5), keep-alive forwarding
# and one-tunnel throughput are measured against both, interleaved, REPEATS times; medians and the
# after/before ratio are printed as a markdown table (paste it into bench/RESULTS.md).
#   bench/run-ab.sh BEFORE_BINARY AFTER_BINARY [REPEATS (default 3)]
# RAW=FILE keeps every run's JSON report (one line per run) for the per-repeat spread.
# Loopback only; every `sluice bench` call is bounded by --duration/--size and `timeout`.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
BEFORE=$(realpath "$1") AFTER=$(realpath "$2") REPEATS=${3:-3}
source "$(dirname "$0")/lib.sh"
bench_work
bench_upstream "$AFTER" 1800
declare -A PROXY PID
for side in before after; do
  bin=$BEFORE; [ $side = after ] && bin=$AFTER
  "$bin" serve --listen 127.0.0.1:0 --allow 127.0.0.1 --log /dev/null 2>"$work/$side.err" &
  PID[$side]=$!
  pids+=(${PID[$side]})
  PROXY[$side]=$(bench_listener "$work/$side.err")
done

bench() {  # bench SIDE TAG ARGS...
  local side=$1 tag=$2; shift 2
  local out
  out=$(timeout 120 "$AFTER" bench "$@" --pid "${PID[$side]}" --target "127.0.0.1:$UP" --json) || true
  printf '{"side":"%s","tag":"%s","result":%s}\n' "$side" "$tag" "${out:-null}" >>"$work/raw.jsonl"
}
# The side that runs second in a repeat came out up to 14% cheaper in an A/A run of one binary
# against itself (RESULTS.md, "SO_INCOMING_CPU"): the order alternates, so the bias cancels.
for i in $(seq "$REPEATS"); do
  echo "[run-ab] repeat $i of $REPEATS" >&2
  order="before after"
  [ $((i % 2)) -eq 0 ] && order="after before"
  for side in $order; do
    p=${PROXY[$side]}
    bench $side connect connect-storm --proxy "http://$p" --concurrency 16 --duration 3
    bench $side socks socks-storm --proxy "socks5h://$p" --concurrency 16 --duration 3
    bench $side forward http-forward --proxy "http://$p" --concurrency 16 --duration 3
    bench $side tput tunnel-throughput --proxy "http://$p" --size 1G --duration 20
  done
done
[ -z "${RAW:-}" ] || cp "$work/raw.jsonl" "$RAW"
python3 - "$work/raw.jsonl" "$BEFORE" "$AFTER" "$REPEATS" <<'PY'
import json, statistics, sys
raw, before, after, repeats = sys.argv[1:5]
runs = {}
for line in open(raw):
    r = json.loads(line)
    if r["result"] is None:
        sys.exit("a bench run failed to report: %s %s" % (r["side"], r["tag"]))
    runs.setdefault((r["side"], r["tag"]), []).append(r["result"])
def med(side, tag, key):
    return statistics.median(r[key] for r in runs[(side, tag)])
print("Medians of %s interleaved repeats (the order alternating); before = `%s`, after = `%s`.\n" % (repeats, before, after))
print("| measure | before | after | after/before | each repeat: before; after |")
print("|---|---|---|---|---|")
rows = [("connect", "ops_per_s", "CONNECT tunnels/s", "%.0f"),
        ("connect", "proxy_cpu_s_per_10k_ops", "CONNECT proxy CPU-s per 10k", "%.3f"),
        ("socks", "ops_per_s", "SOCKS5 tunnels/s", "%.0f"),
        ("socks", "proxy_cpu_s_per_10k_ops", "SOCKS5 proxy CPU-s per 10k", "%.3f"),
        ("forward", "ops_per_s", "forwarded requests/s (keep-alive)", "%.0f"),
        ("forward", "proxy_cpu_s_per_10k_ops", "forwarding proxy CPU-s per 10k", "%.3f"),
        ("tput", "mb_per_s", "1 GiB tunnel MB/s", "%.0f"),
        ("tput", "proxy_cpu_s_per_gib", "tunnel proxy CPU-s per GiB", "%.3f")]
for tag, key, name, spec in rows:
    b, a = med("before", tag, key), med("after", tag, key)
    each = "; ".join(", ".join(spec % r[key] for r in runs[(side, tag)]) for side in ("before", "after"))
    print("| %s | %s | %s | %.2f | %s |" % (name, spec % b, spec % a, a / b if b else float("nan"), each))
errs = {k: sum(sum(r["errors"].values()) for r in v) for k, v in runs.items()}
print("\nerrors: %s" % (", ".join("%s/%s %d" % (k[0], k[1], n) for k, n in sorted(errs.items())) or "none"))
PY
