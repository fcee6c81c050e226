#!/usr/bin/env bash
# System calls per operation of one proxy process, counted with `strace -c -f` while a bounded
# `sluice bench` load runs through it (issue 18: the cost left is system calls). Prints one
# markdown row per system call: calls per operation and errors per operation.
#   bench/syscalls.sh SLUICE [SCENARIO (connect-storm|http-forward|socks-storm)] [OPS (default 2000)]
#   PEER=haproxy bench/syscalls.sh SLUICE SCENARIO [OPS]   # HAProxy instead (TCP relay / HTTP mode)
# SLUICE serves with one worker (`serve --workers 1`) and also provides the load and the upstream.
# Loopback only; the load is bounded by --requests and --duration, strace by the load's end.
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
SLUICE=$(realpath "$1") SCENARIO=${2:-connect-storm} OPS=${3:-2000} PEER=${PEER:-sluice}
command -v strace >/dev/null || { echo "syscalls.sh: needs strace" >&2; exit 1; }
source "$(dirname "$0")/lib.sh"
bench_work
bench_upstream "$SLUICE" 600
if [ "$PEER" = haproxy ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mode=tcp
  [ "$SCENARIO" = http-forward ] && mode=http
  cat >"$work/haproxy.cfg" <<EOF
global
    maxconn 4000
    nbthread 1
defaults
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend front
    mode $mode
    bind 127.0.0.1:$port
    default_backend up
backend up
    mode $mode
    $([ $mode = tcp ] && echo "option splice-auto" || echo "http-reuse always")
    server upstream 127.0.0.1:$UP
EOF
  haproxy -db -f "$work/haproxy.cfg" 2>"$work/haproxy.err" &
  PROXY_PID=$!
  pids+=($PROXY_PID)
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
  TARGET=127.0.0.1:$port
  LOAD=(--direct)
else
  "$SLUICE" serve --workers 1 --listen 127.0.0.1:0 --allow 127.0.0.1 --log /dev/null 2>"$work/serve.err" &
  PROXY_PID=$!
  pids+=($PROXY_PID)
  proxy=$(bench_listener "$work/serve.err")
  TARGET=127.0.0.1:$UP
  scheme=http
  [ "$SCENARIO" = socks-storm ] && scheme=socks5h
  LOAD=(--proxy "$scheme://$proxy")
fi
# A short warm-up outside the count (first connections, the loop's buffers).
timeout 60 "$SLUICE" bench "$SCENARIO" "${LOAD[@]}" --target "$TARGET" --requests 200 --duration 10 --json >/dev/null
strace -c -f -qq -o "$work/strace.txt" -p "$PROXY_PID" &
STRACE=$!
sleep 1
timeout 120 "$SLUICE" bench "$SCENARIO" "${LOAD[@]}" --target "$TARGET" --requests "$OPS" --duration 60 --json \
  >"$work/load.json"
sleep 0.5
kill -INT "$STRACE"
wait "$STRACE" 2>/dev/null || true
python3 - "$work/strace.txt" "$work/load.json" "$PEER" "$SCENARIO" <<'PY'
import json, sys
text, load, peer, scenario = sys.argv[1:5]
r = json.load(open(load))
ops = r.get("ops") or r.get("operations") or r.get("requests")
errors = sum(r.get("errors", {}).values()) if isinstance(r.get("errors"), dict) else r.get("errors", 0)
rows = []
for line in open(text):
    f = line.split()
    if len(f) < 5 or not f[0][0].isdigit():
        continue
    calls, name = int(f[3]), f[-1]
    if name == "total":
        continue
    errs = int(f[4]) if len(f) == 6 else 0
    rows.append((calls / ops, errs / ops, name))
rows.sort(reverse=True)
print("%s, %s: %d operations (%d errors); system calls per operation" % (peer, scenario, ops, errors))
print("| system call | calls | of them failed |")
print("|---|---|---|")
for c, e, n in rows:
    print("| %s | %.2f | %s |" % (n, c, "%.2f" % e if e else ""))
print("| total | %.2f | |" % sum(c for c, _, _ in rows))
PY
