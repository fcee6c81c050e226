#!/usr/bin/env bash
# run-git-push.sh: `git push` of a SIZE_MB MiB repository (incompressible files) to a git
# smart-HTTP server over TLS on loopback (tests/tools/git_http.py: git http-backend behind a
# python HTTPS server that requires a token), three ways (issue 15's "Measured"):
#   direct   git talks TLS to the server itself
#   opaque   through `sluice serve` as an opaque CONNECT tunnel (git's own TLS inside)
#   gateway  through `sluice serve` inspecting the host with a git: rule: sluice terminates TLS,
#            holds the push until its command section is read and judged, then streams the pack
#            to a verified upstream TLS connection
# Each push goes to a fresh bare repository, so every run sends the whole pack. Wall time of the
# push and the proxy's CPU time (utime + stime from /proc/PID/stat, before and after) per push;
# interleaved repeats, medians. git presents the real token itself in all three (the credential
# swap is a header edit per request, not measured here: `sluice serve` issues no stand-ins).
#
#   bench/run-git-push.sh                    # REPEATS=3 SIZE_MB=50
#   QUICK=1 bench/run-git-push.sh            # one repeat, 8 MiB; prints the section, writes nothing
#   NOTE="..." bench/run-git-push.sh         # NOTE: a sentence for the Machine list
# Writes the `git-push` section of bench/RESULTS.md (bench/update-results.py). Loopback only; every
# push is bounded by `timeout`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
source bench/lib.sh  # bench_ca, bench_leaf (this script keeps its own prelude: it stops what it started)
SLUICE_SRC=${SLUICE:-$ROOT/build/sluice}
[ -x "$SLUICE_SRC" ] || { echo "build sluice first: scripts/setup.sh" >&2; exit 1; }
QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then REPEATS=${REPEATS:-1} SIZE_MB=${SIZE_MB:-8}; else REPEATS=${REPEATS:-3} SIZE_MB=${SIZE_MB:-50}; fi
NOTE=${NOTE:-}
TOKEN=bench-token-not-a-secret

log() { printf '[run-git-push] %s\n' "$*" >&2; }

WORK=$(mktemp -d /tmp/sluice-git-push.XXXXXX)
STARTED=()
cleanup() {
  local rc=$?
  for p in "${STARTED[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cp "$SLUICE_SRC" "$WORK/sluice"
SLUICE=$WORK/sluice
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {  # wait_port PORT PID
  for _ in $(seq 200); do
    kill -0 "$2" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# ---- certificates: the server's CA and leaf (IP:127.0.0.1); sluice's CA ----
C=$WORK/certs
mkdir -p "$C"
bench_ca "$C" ca "git bench CA"
bench_leaf "$C" ca up 127.0.0.1 IP:127.0.0.1
"$SLUICE" ca init "$C/sluice-ca" >/dev/null

# ---- the repository to push: SIZE_MB files of 1 MiB random bytes, one commit ----
export GIT_CONFIG_NOSYSTEM=1 HOME=$WORK
SRC=$WORK/src
git init -q "$SRC"
for i in $(seq "$SIZE_MB"); do head -c 1048576 /dev/urandom >"$SRC/f$i.bin"; done
git -C "$SRC" add -A
git -C "$SRC" -c user.name=b -c user.email=b@b commit -qm bench
HEAD_ID=$(git -C "$SRC" rev-parse HEAD)

# ---- the server ----
mkdir -p "$WORK/srv/bench"
python3 "$ROOT/tests/tools/git_http.py" --root "$WORK/srv" --cert "$C/up.crt" --key "$C/up.key" --token "$TOKEN" \
  >"$WORK/srv.port" 2>"$WORK/srv.err" &
STARTED+=($!)
for _ in $(seq 100); do [[ -s $WORK/srv.port ]] && break; sleep 0.05; done
SRV_PORT=$(head -1 "$WORK/srv.port")
URL=https://127.0.0.1:$SRV_PORT/bench/repo.git

# ---- the proxies ----
declare -A PORT=() PID=()
start_sluice() {  # start_sluice NAME GATEWAY(0|1)
  local p; p=$(free_port)
  {
    printf 'listeners:\n  - {name: p, tcp: 127.0.0.1:%s, policy: bench}\npolicies:\n  bench:\n    allow: ["127.0.0.1"]\n' "$p"
    if (($2)); then
      printf '    git:\n      - {host: "127.0.0.1:%s", repos: [bench/repo], push: ["refs/heads/**"]}\n' "$SRV_PORT"
      printf 'tls:\n  ca_cert: %s\n  ca_key: %s\n  upstream_ca: [%s]\n' "$C/sluice-ca/ca.crt" "$C/sluice-ca/ca.key" \
        "$C/ca.crt"
    fi
    printf 'log:\n  path: /dev/null\n'
  } >"$WORK/$1.yaml"
  "$SLUICE" serve --config "$WORK/$1.yaml" 2>"$WORK/$1.err" &
  PID[$1]=$!; STARTED+=("${PID[$1]}"); PORT[$1]=$p
  wait_port "$p" "${PID[$1]}" || { log "sluice ($1) did not start: $(cat "$WORK/$1.err")"; exit 1; }
}
start_sluice opaque 0
start_sluice gateway 1

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
CLK=$(getconf CLK_TCK)
BASIC=$(printf 'x-access-token:%s' "$TOKEN" | base64 -w0)

push() {  # push MODE: prints "seconds proxy_cpu_seconds"
  local mode=$1 env=() ca=$C/ca.crt pid="" before=0
  rm -rf "$WORK/srv/bench/repo.git"
  git init -q --bare "$WORK/srv/bench/repo.git"
  if [[ $mode != direct ]]; then
    env=(https_proxy="http://127.0.0.1:${PORT[$mode]}")
    pid=${PID[$mode]}
    before=$(cpu_ticks "$pid")
  fi
  [[ $mode == gateway ]] && ca=$C/sluice-ca/ca.crt
  local t0 t1
  t0=$(date +%s.%N)
  env "${env[@]}" GIT_SSL_CAINFO="$ca" timeout 300 git -C "$SRC" -c "http.extraHeader=Authorization: Basic $BASIC" \
    push -q "$URL" HEAD:refs/heads/agent/bench
  t1=$(date +%s.%N)
  local landed; landed=$(git --git-dir "$WORK/srv/bench/repo.git" rev-parse refs/heads/agent/bench)
  [[ $landed == "$HEAD_ID" ]] || { log "$mode: the push did not land"; exit 1; }
  local cpu=0
  [[ -n $pid ]] && cpu=$(awk -v a="$before" -v b="$(cpu_ticks "$pid")" -v c="$CLK" 'BEGIN{printf "%.2f", (b-a)/c}')
  awk -v a="$t0" -v b="$t1" -v c="$cpu" 'BEGIN{printf "%.3f %s\n", b-a, c}'
}

MODES=(direct opaque gateway)
declare -A TIMES=() CPUS=()
for r in $(seq "$REPEATS"); do
  for m in "${MODES[@]}"; do
    read -r t c < <(push "$m")
    log "repeat $r $m: ${t}s, proxy CPU ${c}s"
    TIMES[$m]+="$t "
    CPUS[$m]+="$c "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

load=$(cut -d' ' -f1 /proc/loadavg)
cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
out=$WORK/section.md
{
  echo "## git push through the git guard, an opaque tunnel and direct (bench/run-git-push.sh)"
  echo
  echo "Written by \`bench/run-git-push.sh\` (do not edit by hand; run it again). Medians of $REPEATS interleaved"
  echo "repeats of \`git push\` of one commit of $SIZE_MB files of 1 MiB random bytes (a ${SIZE_MB} MiB pack) to a fresh"
  echo "bare repository each time."
  echo
  echo "- Machine: $(nproc) CPUs ($cpu_model), Linux $(uname -r); $(date -u +%Y-%m-%dT%H:%MZ); load average $load at the end."
  echo "- git $(git --version | cut -d' ' -f3), server: tests/tools/git_http.py (python3 HTTPS, git http-backend as CGI), token required."
  echo "- Client, proxy and server share the CPUs; the server (python reading the body, then index-pack) and git's"
  echo "  own pack-objects take most of the time in every mode."
  [[ -n $NOTE ]] && echo "- $NOTE"
  echo
  echo "| path | command | push s (median) | proxy CPU s per push | time vs opaque |"
  echo "|---|---|---|---|---|"
  o=$(echo "${TIMES[opaque]}" | median)
  for m in "${MODES[@]}"; do
    t=$(echo "${TIMES[$m]}" | median)
    c=$(echo "${CPUS[$m]}" | median)
    case $m in
      direct) cmd="git push https://127.0.0.1:PORT/bench/repo.git"; c="–" ;;
      opaque) cmd="https_proxy=... git push (sluice serve: allow 127.0.0.1)" ;;
      gateway) cmd="https_proxy=... git push (sluice serve: git: rule, inspected)" ;;
    esac
    ratio=$(awk -v a="$t" -v b="$o" 'BEGIN{printf "%.2f", a/b}')
    echo "| $m | \`$cmd\` | $t | $c | $ratio |"
  done
  echo
  echo "Every run (s, in order): $(for m in "${MODES[@]}"; do printf '%s %s; ' "$m" "$(echo "${TIMES[$m]}" | sed 's/ *$//; s/ /, /g')"; done | sed 's/; $//')."
  echo "Target (issue 15): the gateway within 1.3x the opaque tunnel's time."
} >"$out"
cat "$out"
if [[ $QUICK != 1 ]]; then
  python3 "$ROOT/bench/update-results.py" git-push "$out"
  log "wrote the git-push section of bench/RESULTS.md"
fi
