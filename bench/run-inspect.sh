#!/usr/bin/env bash
# run-inspect.sh: TLS inspection, side by side on loopback (issue 14's "Measured"). The built-in
# upstream serves over TLS (a private upstream CA made here with openssl); the same TLS load runs
# straight at it (direct), through sluice inspecting it (its leaf from `sluice ca init`, the
# upstream CA given as tls: upstream_ca), through sluice as an opaque tunnel (the reference for
# what inspection adds), through mitmproxy (mitmdump, trusting the upstream CA) and through squid
# with ssl-bump (Debian squid-openssl). Every client trusts only the CA of what it talks to.
#
# Rates: new TLS connections/s with one request each (connect-storm --ca), keep-alive requests/s
# inside one TLS connection per worker (http-forward --ca), MB/s of a SIZE download through TLS
# (tunnel-throughput --ca); proxy CPU-s per 10k operations and per GiB (--pid); and the
# first-contact leaf cost: one TLS connection to a name (here: an IP) the proxy has not seen
# against a second one to it, on extra upstreams at 127.0.0.2... Interleaved repeats, medians.
#
#   bench/run-inspect.sh                 # REPEATS=3 DUR=3 SIZE=1G (~6 minutes on 2 cores)
#   QUICK=1 bench/run-inspect.sh         # one short repeat; prints the section, writes nothing
#   REPEATS=2 DUR=2 NOTE="..." bench/run-inspect.sh   # NOTE: a sentence for the Machine list
#   TICKETS=0 bench/run-inspect.sh       # the upstream sends no session tickets (default 2)
#   RAW_OUT=/tmp/raw.jsonl QUICK=1 bench/run-inspect.sh   # also keep every run's JSON there
# Installs mitmproxy and squid-openssl with apt when missing (a peer that cannot be installed is
# left out). Writes the `inspect` section of bench/RESULTS.md (bench/update-results.py) and
# bench/results/inspect.jsonl. Loopback only; every `sluice bench` call is bounded by --duration
# (and --size or --requests), and by `timeout`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
source bench/lib.sh  # bench_squid_private_conf, bench_ca, bench_leaf (this script keeps its own prelude: it stops peers)
SLUICE_SRC=${SLUICE:-$ROOT/build/sluice}
[ -x "$SLUICE_SRC" ] || { echo "build sluice first: scripts/setup.sh" >&2; exit 1; }
QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
  REPEATS=${REPEATS:-1} DUR=${DUR:-1} SIZE=${SIZE:-64M} MINTS=${MINTS:-2}
else
  REPEATS=${REPEATS:-3} DUR=${DUR:-3} SIZE=${SIZE:-1G} MINTS=${MINTS:-5}
fi
PEERS=${PEERS:-"sluice sluice-opaque mitmproxy squid"}
NOTE=${NOTE:-}
TICKETS=${TICKETS:-2}

log() { printf '[run-inspect] %s\n' "$*" >&2; }

WORK=$(mktemp -d /tmp/sluice-inspect.XXXXXX)
chmod 755 "$WORK"
STARTED=()
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

cp "$SLUICE_SRC" "$WORK/sluice"  # a private copy: a rebuild during the run cannot mix versions
SLUICE=$WORK/sluice

# ---- installs, only when missing (Debian packages) ----
squid_bin() { command -v squid 2>/dev/null || echo /usr/sbin/squid; }
squid_has_ssl() { [[ -x $(squid_bin) ]] && "$(squid_bin)" -v 2>/dev/null | grep -q -- '--with-openssl'; }
install_apt() {
  local need=()
  command -v mitmdump >/dev/null || need+=(mitmproxy)
  squid_has_ssl || need+=(squid-openssl)
  ((${#need[@]})) || return 0
  log "installing ${need[*]} (apt)"
  # Debian starts a package's service on install (squid on *:3128): keep it from starting.
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
install_apt || log "apt install failed; peers that are missing will be left out"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {  # wait_port PORT PID: until something accepts on 127.0.0.1:PORT (20 s at most)
  for _ in $(seq 200); do
    kill -0 "$2" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
ulimit -n 65536 2>/dev/null || true

# ---- certificates (openssl): the upstream CA and its leaf; squid's CA; sluice's CA ----
C=$WORK/certs
mkdir -p "$C"
EXTRA_IPS=()
for i in $(seq 2 $((MINTS + 1))); do EXTRA_IPS+=("127.0.0.$i"); done
san="DNS:upstream.bench.test,IP:127.0.0.1"
for ip in "${EXTRA_IPS[@]}"; do san+=",IP:$ip,DNS:h${ip##*.}.bench.test"; done
bench_ca "$C" upca "sluice bench upstream CA"
bench_leaf "$C" upca up upstream.bench.test "$san"
bench_ca "$C" squidca "sluice bench squid CA"
cat "$C/squidca.crt" "$C/squidca.key" >"$C/squidca.pem"
"$SLUICE" ca init "$C/sluice-ca" >/dev/null
UPCA=$C/upca.crt

# ---- the TLS upstreams: the main one, and one per first-contact sample ----
# The main upstream sends TICKETS session tickets per full handshake (2, OpenSSL's default, as
# most servers do; a proxy may resume with them); the first-contact ones none, so their second
# connection differs from the first by the leaf alone.
start_upstream() {  # start_upstream IP FILE TICKETS
  "$SLUICE" bench upstream --listen "$1:0" --lifetime 3600 --tls-cert "$C/up.crt" --tls-key "$C/up.key" \
    --tls-tickets "$3" >"$2" 2>"$2.err" &
  STARTED+=($!)
  for _ in $(seq 100); do [[ -s $2 ]] && break; sleep 0.05; done
  [[ -s $2 ]] || { log "the upstream on $1 did not start: $(cat "$2.err")"; exit 1; }
}
start_upstream 127.0.0.1 "$WORK/up.port" "$TICKETS"
UP_PID=${STARTED[-1]}
UP=127.0.0.1:$(head -1 "$WORK/up.port")
# Squid names its leaves with a DNS SAN even for an IP literal (DNS:127.0.0.1), which clients
# checking an IP reject; so squid is asked for names (--sni: CONNECT NAME:PORT, SNI, Host), which
# its hosts_file maps to the upstreams. The others get the IP literal (their leaves carry IP SANs).
declare -A NAME_OF=()
NAME_OF[$UP]=upstream.bench.test
HOSTS="127.0.0.1 upstream.bench.test"$'\n'
MINT_TARGETS=()
for ip in "${EXTRA_IPS[@]}"; do
  start_upstream "$ip" "$WORK/up-$ip.port" 0
  t="$ip:$(head -1 "$WORK/up-$ip.port")"
  MINT_TARGETS+=("$t")
  NAME_OF[$t]=h${ip##*.}.bench.test
  HOSTS+="$ip h${ip##*.}.bench.test"$'\n'
done
log "TLS upstream on $UP (pid $UP_PID); first-contact upstreams: ${MINT_TARGETS[*]}"

declare -A PORT=() PID=() CA=() CMD=() VERSION=() SKIPPED=()
sluice_version="$("$SLUICE" --version 2>&1 | head -1) ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo ' + uncommitted changes' || true))"

start_sluice() {  # start_sluice NAME INSPECT(0|1)
  local name=$1 p; p=$(free_port)
  local hosts='"127.0.0.1"'
  for ip in "${EXTRA_IPS[@]}"; do hosts+=", \"$ip\""; done
  {
    printf 'listeners:\n  - {name: p, tcp: 127.0.0.1:%s, policy: bench}\npolicies:\n  bench:\n    allow: [%s]\n' "$p" "$hosts"
    (($2)) && printf '    inspect: [%s]\n' "$hosts"
    printf 'tls:\n  ca_cert: %s\n  ca_key: %s\n  upstream_ca: [%s]\nlog:\n  path: /dev/null\n' \
      "$C/sluice-ca/ca.crt" "$C/sluice-ca/ca.key" "$UPCA"
  } >"$WORK/$name.yaml"
  "$SLUICE" serve --config "$WORK/$name.yaml" 2>"$WORK/$name.err" &
  PID[$name]=$!; STARTED+=("${PID[$name]}"); PORT[$name]=$p
  CMD[$name]="sluice serve --config $name.yaml"
  VERSION[$name]=$sluice_version
  if (($2)); then CA[$name]=$C/sluice-ca/ca.crt; else CA[$name]=$UPCA; fi
}

start_mitmproxy() {
  command -v mitmdump >/dev/null || { SKIPPED[mitmproxy]="not installed"; return 1; }
  local p; p=$(free_port)
  mkdir -p "$WORK/mitm"
  # stream_large_bodies: without it mitmproxy holds a whole response (1 GiB) in memory.
  local args=(--listen-host 127.0.0.1 --listen-port "$p" --set "confdir=$WORK/mitm"
    --set "ssl_verify_upstream_trusted_ca=$UPCA" --set stream_large_bodies=1m --set flow_detail=0 -q)
  mitmdump "${args[@]}" >"$WORK/mitmproxy.err" 2>&1 &
  PID[mitmproxy]=$!; STARTED+=("${PID[mitmproxy]}"); PORT[mitmproxy]=$p
  CMD[mitmproxy]="mitmdump ${args[*]}"
  CMD[mitmproxy]=${CMD[mitmproxy]//$WORK/\$WORK}
  VERSION[mitmproxy]=$(mitmdump --version 2>/dev/null | head -1)
  CA[mitmproxy]=$WORK/mitm/mitmproxy-ca-cert.pem
}

start_squid() {
  squid_has_ssl || { SKIPPED[squid]="squid-openssl not installed"; return 1; }
  local bin; bin=$(squid_bin)
  local d=$WORK/squid p; p=$(free_port)
  local certgen=/usr/lib/squid/security_file_certgen
  mkdir -p "$d"
  "$certgen" -c -s "$d/ssl_db" -M 16MB >/dev/null
  printf '%s' "$HOSTS" >"$d/hosts"
  cat >"$d/squid.conf" <<EOF
http_port 127.0.0.1:$p ssl-bump tls-cert=$C/squidca.pem generate-host-certificates=on dynamic_cert_mem_cache_size=16MB
sslcrtd_program $certgen -s $d/ssl_db -M 16MB
sslcrtd_children 4 startup=1 idle=1
acl step1 at_step SslBump1
ssl_bump peek step1
ssl_bump bump all
tls_outgoing_options cafile=$UPCA
hosts_file $d/hosts
acl localhost src 127.0.0.1/32
http_access allow localhost
http_access deny all
EOF
  bench_squid_private_conf "$d" >>"$d/squid.conf"
  if id proxy >/dev/null 2>&1; then echo "cache_effective_user proxy" >>"$d/squid.conf"; chown -R proxy "$d"; chmod 644 "$C/squidca.pem"; fi
  "$bin" -N -f "$d/squid.conf" 2>"$WORK/squid.err" &
  PID[squid]=$!; STARTED+=("${PID[squid]}"); PORT[squid]=$p
  CMD[squid]="squid -N -f squid.conf (http_port ssl-bump, generate-host-certificates=on; ssl_bump peek step1, bump all; tls_outgoing_options cafile=upstream CA; hosts_file for the names)"
  VERSION[squid]=$("$bin" -v 2>&1 | head -1)
  CA[squid]=$C/squidca.crt
}

ACTIVE=()
for peer in $PEERS; do
  case $peer in
    sluice) start_sluice sluice 1 ;;
    sluice-opaque) start_sluice sluice-opaque 0 ;;
    mitmproxy) start_mitmproxy || continue ;;
    squid) start_squid || continue ;;
    *) log "unknown peer $peer"; continue ;;
  esac
  if wait_port "${PORT[$peer]}" "${PID[$peer]}"; then
    ACTIVE+=("$peer")
  else
    SKIPPED[$peer]="did not start: $(tail -3 "$WORK/$peer.err" 2>/dev/null | tr '\n' ' ')"
    log "$peer ${SKIPPED[$peer]}"
  fi
done
[[ " ${ACTIVE[*]} " == *" mitmproxy "* ]] && for _ in $(seq 50); do [[ -s ${CA[mitmproxy]} ]] && break; sleep 0.1; done
log "peers: ${ACTIVE[*]}"

RAW=$WORK/raw.jsonl
bench() {  # bench TAG TARGET_NAME TARGET ARGS...: one run; its JSON appended under TAG and TARGET_NAME
  local tag=$1 name=$2 target=$3; shift 3
  local via=(--direct --ca "$UPCA" --pid "$UP_PID")  # direct: the upstream's CPU, TLS's own cost
  [[ $name != direct ]] && via=(--proxy "http://127.0.0.1:${PORT[$name]}" --pid "${PID[$name]}" --ca "${CA[$name]}")
  [[ $name == squid ]] && via+=(--sni "${NAME_OF[$target]}")
  local out
  out=$(timeout 150 "$SLUICE" bench "$@" "${via[@]}" --target "$target" --json 2>>"$WORK/bench.err") || true
  printf '{"tag":"%s","target":"%s","result":%s}\n' "$tag" "$name" "${out:-null}" >>"$RAW"
}

# A warm-up connection through each proxy (mitmproxy and squid set up lazily).
for name in "${ACTIVE[@]}"; do bench warmup "$name" "$UP" connect-storm --requests 4 --concurrency 1 --duration 5; done

for i in $(seq "$REPEATS"); do
  log "repeat $i of $REPEATS"
  for name in direct "${ACTIVE[@]}"; do bench new-tls "$name" "$UP" connect-storm --concurrency 16 --duration "$DUR"; done
  for name in direct "${ACTIVE[@]}"; do bench keepalive "$name" "$UP" http-forward --concurrency 16 --duration "$DUR"; done
  for name in direct "${ACTIVE[@]}"; do bench download "$name" "$UP" tunnel-throughput --size "$SIZE" --duration 60; done
done

# First contact: each extra upstream's IP is new to every proxy; a first connection (the proxy
# mints or fetches a leaf for it) and then a second one (cached), one at a time. Each upstream is
# a fresh process whose first handshakes cost it 1.5-3.5 ms more (OpenSSL's first use): two
# direct connections warm it first, or the first proxy in the order would pay for that.
for t in "${MINT_TARGETS[@]}"; do
  bench mint-warm direct "$t" connect-storm --requests 2 --concurrency 1 --duration 5
  for name in "${ACTIVE[@]}"; do
    [[ $name == sluice-opaque ]] && continue
    bench mint-first "$name" "$t" connect-storm --requests 1 --concurrency 1 --duration 5
    bench mint-cached "$name" "$t" connect-storm --requests 1 --concurrency 1 --duration 5
  done
done

# What TLS itself costs on this machine (what a proxy that terminates and re-originates TLS
# cannot avoid): the key exchange group and the cipher sluice's handshakes agree on (read from
# a connection through it), and ECDSA P-256 (the leaves' and the upstream's keys).
handshake_info() {  # handshake_info [s_client args]: "CIPHER GROUP" of one connection
  local out
  out=$(echo | timeout 5 openssl s_client -connect "$UP" "$@" 2>/dev/null)
  echo "$(sed -n 's/^New, .*Cipher is //p' <<<"$out" | head -1) $(sed -n 's/^Server Temp Key: \([^,]*\),.*/\1/p' <<<"$out" | head -1)"
}
read -r cipher group <<<"$(handshake_info -CAfile "$UPCA")"
read -r sluice_cipher sluice_group <<<"$(handshake_info -proxy "127.0.0.1:${PORT[sluice]:-0}" -CAfile "${CA[sluice]:-$UPCA}")"
case ${sluice_group:-$group} in X25519) ecdh_alg=ecdhx25519 ;; *) ecdh_alg=ecdhp256 ;; esac
case ${sluice_cipher:-$cipher} in *AES_128_GCM*) aes_alg=aes-128-gcm ;; *) aes_alg=aes-256-gcm ;; esac
openssl speed -seconds 1 "$ecdh_alg" ecdsap256 >"$WORK/speed-ec.txt" 2>/dev/null || true
openssl speed -seconds 1 -bytes 16384 -evp "$aes_alg" >"$WORK/speed-aes.txt" 2>/dev/null || true

meta=$WORK/meta.txt
{
  echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
  echo "nproc=$(nproc)"
  echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
  echo "mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel=$(uname -sr)"
  echo "repeats=$REPEATS"
  echo "tickets=$TICKETS"
  echo "dur=$DUR"
  echo "size=$SIZE"
  echo "quick=$QUICK"
  echo "note=$NOTE"
  echo "cipher=$cipher"
  echo "group=$group"
  echo "sluice_cipher=$sluice_cipher"
  echo "sluice_group=$sluice_group"
  echo "aes_alg=$aes_alg"
  echo "openssl=$(openssl version)"
  for name in "${ACTIVE[@]}"; do
    echo "version.$name=${VERSION[$name]}"
    echo "cmd.$name=${CMD[$name]}"
  done
  for name in "${!SKIPPED[@]}"; do echo "skipped.$name=${SKIPPED[$name]}"; done
  echo "active=${ACTIVE[*]}"
} >"$meta"

python3 - "$RAW" "$meta" "$WORK/speed-ec.txt" "$WORK/speed-aes.txt" "$WORK/section.md" <<'PY'
import json, re, statistics, sys
from collections import defaultdict

raw, meta_path, speed_ec_path, speed_aes_path, out = sys.argv[1:6]
runs = defaultdict(list)
for line in open(raw):
    r = json.loads(line)
    if r["result"] is not None:
        runs[(r["tag"], r["target"])].append(r["result"])
meta = {}
for line in open(meta_path):
    k, _, v = line.rstrip("\n").partition("=")
    meta[k] = v
active = meta.get("active", "").split()
targets = ["direct"] + active
peers = [t for t in active if t in ("mitmproxy", "squid")]

def med(tag, t, f):
    vals = [v for v in (f(r) for r in runs.get((tag, t), [])) if v is not None]
    return statistics.median(vals) if vals else None

def errs(tag, t):
    total = defaultdict(int)
    for r in runs.get((tag, t), []):
        for k, n in r["errors"].items():
            total[k] += n
        if r.get("aborted"):
            total["cut off"] += r["aborted"]
    return ", ".join(f"{k} {n}" for k, n in sorted(total.items())) or "0"

def fmt(v, spec="{:.0f}"):
    return "–" if v is None else spec.format(v)

def ratio(a, b):
    return None if a is None or not b else a / b

ops = lambda r: r["ops_per_s"]
mbs = lambda r: r["mb_per_s"]
cpu10k = lambda r: r.get("proxy_cpu_s_per_10k_ops")
cpugib = lambda r: r.get("proxy_cpu_s_per_gib")
peak = lambda r: r["proxy_peak_rss_kib"] / 1024 if "proxy_peak_rss_kib" in r else None
p50 = lambda r: r["latency_us"]["p50"] / 1000 if r["latency_us"]["count"] else None
p99 = lambda r: r["latency_us"]["p99"] / 1000 if r["latency_us"]["count"] else None
lat = lambda r: r["latency_us"]["p50"] / 1000 if r["latency_us"]["count"] else None

md = []
w = md.append
w("## TLS inspection against mitmproxy and squid ssl-bump (bench/run-inspect.sh)")
w("")
w("Written by `bench/run-inspect.sh` (do not edit by hand; run it again). Every number is the median")
w(f"of {meta['repeats']} interleaved repeats, measured in one run on one machine.")
if meta.get("quick") == "1":
    w("")
    w("**QUICK=1 run: one short repeat; a check of the script, not a measurement.**")
w("")
w("### Machine")
w("")
w(f"- {meta['nproc']} CPUs: {meta['cpu']}; {meta['mem']}; {meta['kernel']}; {meta['openssl']}")
w(f"- date: {meta['date']}")
w("- client, proxies and upstream share these CPUs." + (" " + meta["note"] if meta.get("note") else ""))
w("")
w("### Setup")
w("")
w("The upstream is the built-in one over TLS (`sluice bench upstream --tls-cert up.crt --tls-key up.key`:")
w("an ECDSA P-256 leaf for `IP:127.0.0.1` from a private upstream CA made with `openssl`), cipher")
w(f"`{meta.get('cipher') or '?'}` direct (sluice's two legs: `{meta.get('sluice_cipher') or '?'}`, it puts AES-128-GCM first).")
w("Clients connect to the IP literal (no SNI), trust only the CA of what")
w("they talk to, and make a full handshake per new connection (no resumption). The upstream sends")
w(f"{meta.get('tickets', '?')} TLS 1.3 session tickets after each full handshake (`--tls-tickets`), as most servers do: a")
w("proxy may resume its own connections to it (sluice does). Every proxy verifies")
w("the upstream against the upstream CA; each runs its default process model. Squid is the exception")
w("to the IP literal: its generated leaves name an IP as `DNS:127.0.0.1`, which clients checking an IP")
w("reject, so it is asked for `upstream.bench.test` (`--sni`: CONNECT, SNI and Host carry the name;")
w("its `hosts_file` maps the name to 127.0.0.1; the upstream's leaf carries the name too).")
w("")
w("| target | version | command |")
w("|---|---|---|")
w("| direct | – | `sluice bench ... --direct --ca upca.crt` |")
for t in active:
    w(f"| {t} | {meta.get('version.' + t, '?')} | `{meta.get('cmd.' + t, '?')}` |")
for k, v in meta.items():
    if k.startswith("skipped."):
        w(f"| {k[8:]} | left out: {v} | |")
w("")
w("`sluice` inspects `127.0.0.1` (`inspect: [...]`, `tls: {ca_cert, ca_key, upstream_ca}`, from")
w("`sluice ca init`); `sluice-opaque` is the same config without `inspect:`: an opaque CONNECT tunnel")
w("carrying the client's own TLS to the upstream, the reference for what inspection adds.")
w("")
w("Commands (PROXY: `--direct`, or `--proxy URL --pid PID`; CA: the CA the client trusts):")
w("")
w(f"- `sluice bench connect-storm PROXY --ca CA --target 127.0.0.1:PORT --concurrency 16 --duration {meta['dur']}`")
w(f"- `sluice bench http-forward PROXY --ca CA --target 127.0.0.1:PORT --concurrency 16 --duration {meta['dur']}`")
w(f"- `sluice bench tunnel-throughput PROXY --ca CA --target 127.0.0.1:PORT --size {meta['size']} --duration 60`")
w("- first contact: `sluice bench connect-storm PROXY --ca CA --target 127.0.0.N:PORT --requests 1 --concurrency 1`,")
w("  twice per new IP (N = 2, 3, ...: upstreams of their own, the same leaf), one at a time")
w("")

def table(title, tag, metric, unit, cpu, cpu_unit, spec="{:.0f}"):
    w(f"### {title}")
    w("")
    head = f"| target | {unit} | × direct | × sluice-opaque |" + "".join(f" sluice × {p} |" for p in peers)
    head += f" proxy CPU-s {cpu_unit} | p50 ms | p99 ms | proxy peak RSS MiB | errors |"
    w(head)
    w("|" + "---|" * (head.count("|") - 1))
    d = med(tag, "direct", metric)
    opq = med(tag, "sluice-opaque", metric)
    sl = med(tag, "sluice", metric)
    for t in targets:
        v = med(tag, t, metric)
        row = f"| {t} | {fmt(v, spec)} | {fmt(ratio(v, d), '{:.2f}')} | {fmt(ratio(v, opq), '{:.2f}')} |"
        for p in peers:
            row += f" {fmt(ratio(sl, med(tag, p, metric)), '{:.2f}') if t == 'sluice' else ''} |"
        row += f" {fmt(med(tag, t, cpu), '{:.3f}')} | {fmt(med(tag, t, p50), '{:.2f}')} | {fmt(med(tag, t, p99), '{:.2f}')} |"
        row += f" {fmt(med(tag, t, peak), '{:.1f}')} | {errs(tag, t)} |"
        w(row)
    w("")

w("In the `direct` rows the CPU column is the TLS upstream's (it answers every handshake and")
w("encrypts every byte), what one side of TLS costs with this OpenSSL.")
w("")
table("New TLS connections, one request each (connect-storm --ca, 16 connections)", "new-tls", ops,
      "connections/s", cpu10k, "per 10k conns")
table("Keep-alive requests inside TLS (http-forward --ca, 16 connections)", "keepalive", ops,
      "requests/s", cpu10k, "per 10k reqs")
table(f"Download through TLS ({meta['size']}, tunnel-throughput --ca, one connection)", "download", mbs,
      "MB/s", cpugib, "per GiB")

w("### First contact: the leaf for a new name")
w("")
w("Latency of one TLS connection (CONNECT, both handshakes, GET /, close) to an IP the proxy has")
w("not seen, then of a second one to the same IP; the difference is what minting (or, for squid,")
w("generating through its certgen helper) and caching a leaf costs a first client. Medians over")
w("the new IPs.")
w("")
w("| proxy | first ms | second ms | first − second ms | samples |")
w("|---|---|---|---|---|")
for t in active:
    if t == "sluice-opaque":
        continue
    firsts = [lat(r) for r in runs.get(("mint-first", t), []) if r["ops"] == 1]
    seconds = [lat(r) for r in runs.get(("mint-cached", t), []) if r["ops"] == 1]
    diffs = [a - b for a, b in zip(firsts, seconds)]
    f = statistics.median(firsts) if firsts else None
    s = statistics.median(seconds) if seconds else None
    dd = statistics.median(diffs) if diffs else None
    w(f"| {t} | {fmt(f, '{:.2f}')} | {fmt(s, '{:.2f}')} | {fmt(dd, '{:.2f}')} | {len(diffs)} |")
w("")

# openssl speed: the cost floor of TLS work per connection and per byte.
def speed_ec():
    ecdh = sign = verify = None
    for line in open(speed_ec_path, errors="replace"):
        m = re.match(r"\s*256 bits ecdsa \(nistp256\)\s+[\d.]+s\s+[\d.]+s\s+([\d.]+)\s+([\d.]+)", line)
        if m:
            sign, verify = 1 / float(m.group(1)), 1 / float(m.group(2))
        m = re.match(r"\s*\d+ bits ecdh \((?:nistp256|X25519)\)\s+[\d.]+s\s+([\d.]+)", line)
        if m:
            ecdh = 1 / float(m.group(1))
    return ecdh, sign, verify

def speed_aes():
    for line in open(speed_aes_path, errors="replace"):
        m = re.match(r"(?i)\s*aes-\d+-gcm\s+([\d.]+)k", line)
        if m:
            return float(m.group(1)) * 1000  # bytes/s
    return None

try:
    ecdh, sign, verify = speed_ec()
    aes = speed_aes()
except OSError:
    ecdh = sign = verify = aes = None
w("### Against the cost of TLS itself")
w("")
if ecdh and sign and verify:
    # An inspecting proxy per new connection: two ECDHE (client side, upstream side), one ECDSA
    # signature (its leaf, in the handshake with the client), two verifications (the upstream's
    # leaf, and its CertificateVerify).
    floor = 2 * ecdh + sign + 2 * verify
    group = meta.get("sluice_group") or meta.get("group") or "P-256"
    w(f"`openssl speed` here: {group} ECDH {ecdh * 1e6:.0f} µs (the group sluice's handshakes use), ECDSA P-256 "
      f"sign {sign * 1e6:.0f} µs, verify {verify * 1e6:.0f} µs;"
      + (f" {meta.get('aes_alg', 'aes-256-gcm').upper()} {aes / 1e6:.0f} MB/s (16 KiB blocks, the cipher of sluice's legs)."
         if aes else ""))
    w(f"An inspecting proxy does at least 2 ECDH + 1 sign + 2 verify per new connection: "
      f"{floor * 1e4:.2f} CPU-s per 10k connections")
    if aes:
        gib_floor = 2 * (1 << 30) / aes
        w(f"and decrypts and re-encrypts every byte: {gib_floor:.3f} CPU-s per GiB.")
    opq = med("new-tls", "sluice-opaque", cpu10k)
    ins = med("new-tls", "sluice", cpu10k)
    # The handshakes as OpenSSL really runs them here: the upstream's CPU per connection (a TLS
    # server) plus the client's (a TLS client), both from the direct runs; an inspecting proxy is
    # one of each.
    up_side = med("new-tls", "direct", cpu10k)
    cl_side = med("new-tls", "direct", lambda r: r["client_cpu_s"] / r["ops"] * 1e4 if r["ops"] else None)
    if opq is not None and ins is not None:
        budget = 2 * (opq + floor * 1e4)
        w("")
        w(f"Issue 14's CPU target, per new connection, with `openssl speed`'s floor: inspected {ins:.3f} CPU-s per 10k "
          f"against 2 × (opaque {opq:.3f} + {floor * 1e4:.3f}) = {budget:.3f}: **{'met' if ins <= budget else 'missed'}**.")
        if up_side is not None and cl_side is not None:
            hs = up_side + cl_side
            budget2 = 2 * (opq + hs)
            w(f"With the handshakes as this OpenSSL runs them (the direct runs: upstream {up_side:.3f} + client "
              f"{cl_side:.3f} = {hs:.3f} CPU-s per 10k, a TLS server and a TLS client, as an inspecting proxy is): "
              f"2 × (opaque {opq:.3f} + {hs:.3f}) = {budget2:.3f}: **{'met' if ins <= budget2 else 'missed'}**. "
              f"`openssl speed`'s primitives are a small part of a full handshake in OpenSSL 3.0.")
else:
    w("(`openssl speed` gave no numbers.)")
w("")

w("### Against issue 14's targets")
w("")
w("| target | measured | |")
w("|---|---|---|")
for tag, name, metric in (("new-tls", "new TLS connections/s", ops), ("keepalive", "keep-alive requests/s", ops),
                          ("download", "download MB/s", mbs)):
    sl = med(tag, "sluice", metric)
    for p, want in (("mitmproxy", 5.0), ("squid", 1.5)):
        if p in peers:
            r = ratio(sl, med(tag, p, metric))
            w(f"| {name}: ≥ {want}× {p} | {fmt(r, '{:.2f}')}× | {'met' if r and r >= want else 'missed'} |")
r = ratio(med("download", "sluice", mbs), med("download", "direct", mbs))
w(f"| download throughput ≥ 0.6× direct TLS | {fmt(r, '{:.2f}')}× | {'met' if r and r >= 0.6 else 'missed'} |")
w("")
open(out, "w").write("\n".join(md) + "\n")
PY

[[ -n ${RAW_OUT:-} ]] && cp "$RAW" "$RAW_OUT"
mkdir -p "$ROOT/bench/results"
if [[ $QUICK == 1 ]]; then
  cat "$WORK/section.md"
else
  cp "$RAW" "$ROOT/bench/results/inspect.jsonl"
  python3 "$ROOT/bench/update-results.py" inspect "$WORK/section.md"
  log "wrote the inspect section of bench/RESULTS.md"
fi
