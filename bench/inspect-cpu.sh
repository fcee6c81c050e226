#!/usr/bin/env bash
# inspect-cpu.sh: where the CPU of an inspected download goes, per process (issue 14's
# "throughput >= 0.6x direct TLS"). Each round runs two 1 GiB TLS downloads AT THE SAME TIME,
# so both meet the same machine (other load moves both alike):
#
#   accounting (default):  one direct to a TLS upstream, one through `sluice serve` inspecting
#                          another upstream process; CPU-s per GiB of each client, each upstream
#                          and sluice (/proc/PID/stat, /usr/bin/time for the clients)
#   MODE=ab:               one through $SLUICE_BASE and one through $SLUICE, each with its own
#                          upstream; sluice's CPU-s per GiB of each (paired A/B)
#
#   bench/inspect-cpu.sh                                       # ROUNDS=7 SIZE=1G
#   MODE=ab SLUICE_BASE=/path/old/sluice bench/inspect-cpu.sh
#   CLIENT_CONF=FILE ...  # OPENSSL_CONF for the clients (e.g. Ciphersuites = TLS_AES_128_GCM_SHA256:
#                         # the client leg's cipher; sluice's upstream leg keeps its defaults)
# Prints one tab-separated line per round and the medians. Loopback only; every download is
# bounded by --duration and `timeout`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
source bench/lib.sh  # bench_ca, bench_leaf (this script keeps its own prelude: it stops what it started)
SLUICE_SRC=${SLUICE:-$ROOT/build/sluice}
[ -x "$SLUICE_SRC" ] || { echo "build sluice first: scripts/setup.sh" >&2; exit 1; }
MODE=${MODE:-accounting}
ROUNDS=${ROUNDS:-7} SIZE=${SIZE:-1G}
[[ $MODE == ab && ! -x ${SLUICE_BASE:-} ]] && { echo "MODE=ab needs SLUICE_BASE=/path/to/sluice" >&2; exit 1; }

WORK=$(mktemp -d /tmp/sluice-inspect-cpu.XXXXXX)
STARTED=()
cleanup() {
  for p in "${STARTED[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
cp "$SLUICE_SRC" "$WORK/sluice"
[[ $MODE == ab ]] && cp "$SLUICE_BASE" "$WORK/sluice-base"
CLK=$(getconf CLK_TCK)
cpu() { awk -v t="$CLK" '{print ($14+$15)/t}' "/proc/$1/stat"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

C=$WORK/certs
mkdir -p "$C"
bench_ca "$C" upca "bench upstream CA"
bench_leaf "$C" upca up upstream.bench.test IP:127.0.0.1
"$WORK/sluice" ca init "$C/sluice-ca" >/dev/null

start_upstream() {  # start_upstream NAME: sets UP_PID[NAME], UP[NAME]
  "$WORK/sluice" bench upstream --listen 127.0.0.1:0 --lifetime 3600 --tls-cert "$C/up.crt" \
    --tls-key "$C/up.key" >"$WORK/$1.port" 2>/dev/null &
  STARTED+=($!)
  UP_PID[$1]=$!
  for _ in $(seq 100); do [[ -s $WORK/$1.port ]] && break; sleep 0.05; done
  UP[$1]=127.0.0.1:$(head -1 "$WORK/$1.port")
}
start_sluice() {  # start_sluice NAME BINARY: sets S_PID[NAME], S_PORT[NAME]
  local p; p=$(free_port)
  printf 'listeners:\n  - {name: p, tcp: 127.0.0.1:%s, policy: bench}\npolicies:\n  bench:\n    allow: ["127.0.0.1"]\n    inspect: ["127.0.0.1"]\ntls:\n  ca_cert: %s\n  ca_key: %s\n  upstream_ca: [%s]\nlog:\n  path: /dev/null\n' \
    "$p" "$C/sluice-ca/ca.crt" "$C/sluice-ca/ca.key" "$C/upca.crt" >"$WORK/$1.yaml"
  "$2" serve --config "$WORK/$1.yaml" 2>"$WORK/$1.err" &
  STARTED+=($!)
  S_PID[$1]=$!
  S_PORT[$1]=$p
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && return 0; sleep 0.1; done
  echo "sluice ($1) did not start: $(cat "$WORK/$1.err")" >&2
  exit 1
}
download() {  # download TAG VIA...: in the background; JSON in TAG.json, client CPU in TAG.time
  local tag=$1
  shift
  env ${CLIENT_CONF:+OPENSSL_CONF=$CLIENT_CONF} /usr/bin/time -f '%U %S' -o "$WORK/$tag.time" \
    timeout 150 "$WORK/sluice" bench tunnel-throughput "$@" --size "$SIZE" --duration 120 --json \
    >"$WORK/$tag.json" 2>>"$WORK/bench.err" &
  DL+=($!)
}

declare -A UP_PID UP S_PID S_PORT
start_upstream a
start_upstream b
if [[ $MODE == ab ]]; then
  start_sluice base "$WORK/sluice-base"
  start_sluice new "$WORK/sluice"
  cols="base_MBps base_sluice new_MBps new_sluice"
else
  start_sluice new "$WORK/sluice"
  cols="direct_MBps direct_client direct_upstream insp_MBps insp_client insp_upstream insp_sluice"
fi
printf 'round\t%s\tload1\n' "${cols// /$'\t'}" | tee "$WORK/rows.tsv"
for r in $(seq "$ROUNDS"); do
  declare -A c0=() c1=()
  DL=()
  for p in "${UP_PID[@]}" "${S_PID[@]}"; do c0[$p]=$(cpu "$p"); done
  if [[ $MODE == ab ]]; then
    download x --proxy "http://127.0.0.1:${S_PORT[base]}" --ca "$C/sluice-ca/ca.crt" --target "${UP[a]}"
    download y --proxy "http://127.0.0.1:${S_PORT[new]}" --ca "$C/sluice-ca/ca.crt" --target "${UP[b]}"
  else
    download x --direct --ca "$C/upca.crt" --target "${UP[a]}"
    download y --proxy "http://127.0.0.1:${S_PORT[new]}" --ca "$C/sluice-ca/ca.crt" --target "${UP[b]}"
  fi
  wait "${DL[@]}" || true  # a failed download is reported below
  for p in "${UP_PID[@]}" "${S_PID[@]}"; do c1[$p]=$(cpu "$p"); done
  delta() { python3 -c "print(${c1[$1]} - ${c0[$1]})"; }
  python3 - "$MODE" "$WORK" "$r" "$(delta "${UP_PID[a]}")" "$(delta "${UP_PID[b]}")" \
    "$(delta "${S_PID[new]}")" "$( [[ $MODE == ab ]] && delta "${S_PID[base]}" || echo 0)" <<'PY' | tee -a "$WORK/rows.tsv"
import json, os, sys
mode, work, r, up_a, up_b, s_new, s_base = sys.argv[1:]
def run(tag):
    j = json.load(open(f"{work}/{tag}.json"))
    if j.get("failed") or j.get("aborted"):
        sys.exit(f"round {r}: a download failed: {j.get('errors')}")
    user, system = map(float, open(f"{work}/{tag}.time").read().split()[-2:])
    gib = j["bytes"] / 2**30
    return j["mb_per_s"], (user + system) / gib, gib
xm, xc, xg = run("x")
ym, yc, yg = run("y")
if mode == "ab":
    row = [xm, float(s_base) / xg, ym, float(s_new) / yg]
else:
    row = [xm, xc, float(up_a) / xg, ym, yc, float(up_b) / yg, float(s_new) / yg]
print("\t".join([r] + ["%.0f" % v if i in (0, 2 if mode == "ab" else 3) else "%.3f" % v for i, v in enumerate(row)]
                + ["%.2f" % os.getloadavg()[0]]))
PY
done
python3 - "$WORK/rows.tsv" <<'PY'
import statistics, sys
lines = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
head, rows = lines[0], [list(map(float, l)) for l in lines[1:]]
print("median\t" + "\t".join("%.3g [%.3g-%.3g]" % (statistics.median(c), min(c), max(c))
                             for c in list(zip(*rows))[1:]))
PY
