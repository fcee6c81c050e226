#!/usr/bin/env bash
# Where sluice's CPU goes in each scenario: `perf record` (software clock, call graphs)
# on a `sluice serve` while `sluice bench` loads it over loopback, then the shares of
# kernel and user space, of each system call (with the network processing it triggers),
# and the hottest user-space functions. Written to the `profiles` section of
# bench/RESULTS.md. Needs perf (Debian linux-perf; installed when missing).
#
#   bench/profile.sh [SECONDS]      default 4 s per scenario
#   SLUICE=/path/to/sluice SECTION=profiles-before bench/profile.sh   # another binary, another section
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
secs=${1:-4}
sluice=${SLUICE:-$root/build/sluice}
section=${SECTION:-profiles}
[[ $section =~ ^[a-z0-9-]+$ ]] || { echo "bad SECTION '$section'" >&2; exit 2; }
[ -x "$sluice" ] || { echo "build sluice first: scripts/setup.sh" >&2; exit 1; }
if ! command -v perf >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null
fi
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$sluice" bench upstream --listen 127.0.0.1:0 --lifetime 600 >"$work/up.port" &
pids+=($!)
for _ in $(seq 50); do [ -s "$work/up.port" ] && break; sleep 0.1; done
target=127.0.0.1:$(head -1 "$work/up.port")

profile() {  # profile NAME SCENARIO ARGS...
  local name=$1 scenario=$2; shift 2
  "$sluice" serve --listen 127.0.0.1:0 --allow 127.0.0.1 --log /dev/null 2>"$work/$name.err" &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 50); do grep -q "sluice: ready" "$work/$name.err" && break; sleep 0.1; done
  local port
  port=$(sed -n 's/^sluice: listening listener1 on tcp:127.0.0.1:\([0-9]*\)$/\1/p' "$work/$name.err")
  perf record -F 4000 -g -p "$pid" -o "$work/$name.data" -- sleep "$secs" >/dev/null 2>&1 &
  local rec=$!
  sleep 0.2
  "$sluice" bench "$scenario" --proxy "http://127.0.0.1:$port" --pid "$pid" --target "$target" \
    --duration "$secs" --json "$@" >"$work/$name.json" 2>/dev/null || true
  wait "$rec" || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
  perf report -i "$work/$name.data" --children --sort sym -g none --percent-limit 0.3 2>/dev/null >"$work/$name.children" || true
  perf report -i "$work/$name.data" --no-children --sort dso -g none 2>/dev/null >"$work/$name.dso" || true
  perf report -i "$work/$name.data" --no-children --sort dso,sym -g none 2>/dev/null >"$work/$name.self" || true
}

profile connect-storm connect-storm --concurrency 16
profile http-forward http-forward --concurrency 16
profile tunnel-throughput tunnel-throughput --size 4G

python3 - "$work" "$secs" "$section" "$sluice" >"$work/section.md" <<'EOF'
import json, os, platform, re, sys, time
work, secs, section, binary = sys.argv[1:5]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")

def rows(path):
    out = []
    for line in open(path, errors="replace"):
        m = re.match(r"\s+([\d.]+)%\s+(?:([\d.]+)%\s+)?(.*)$", line)
        if m:
            out.append((float(m.group(1)), m.group(3).strip()))
    return out

print("## Where the time goes (bench/profile.sh)" if section == "profiles" else f"## Where the time goes: {section} (bench/profile.sh)")
print()
print(f"Machine: {os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}; {time.strftime('%Y-%m-%d')}. "
      f"Command: `{'' if section == 'profiles' else f'SECTION={section} '}bench/profile.sh {secs}` "
      f"(binary `{os.path.relpath(binary)}`): `perf record -F 4000 -g` on a `sluice serve` (default workers) while "
      "`sluice bench` loads it from the same machine. Shares are of the proxy's own samples; a system call's share "
      "includes the loopback network processing it runs in sluice's context (on loopback the receiving socket's "
      "TCP work happens in the sender's system call).")
print()
for name in ("connect-storm", "http-forward", "tunnel-throughput"):
    try:
        r = json.load(open(os.path.join(work, name + ".json")))
    except Exception:
        continue
    per = r.get("proxy_cpu_s_per_gib") if name == "tunnel-throughput" else r.get("proxy_cpu_s_per_10k_ops")
    unit = "CPU-s per GiB" if name == "tunnel-throughput" else "CPU-s per 10k ops"
    dso = rows(os.path.join(work, name + ".dso"))
    kernel = sum(p for p, s in dso if "kernel" in s)
    children = rows(os.path.join(work, name + ".children"))
    # write and read reach the kernel through ksys_write/ksys_read (their __x64_sys_ wrappers inline).
    calls = sorted(((p, re.sub(r"^\[k\] (__x64_sys_|ksys_)", "", s)) for p, s in children
                    if re.match(r"\[k\] (__x64_sys_\w+|ksys_(read|write|writev|readv))$", s)), reverse=True)
    user = [(p, s) for p, s in rows(os.path.join(work, name + ".self")) if "kernel" not in s][:6]
    print(f"### {name}: {per} {unit}, {kernel:.0f}% in the kernel")
    print()
    print("| system call (with what it triggers) | share |")
    print("|---|---|")
    for p, s in calls[:8]:
        print(f"| {s} | {p:.1f}% |")
    print()
    print("Hottest user-space code: " + "; ".join(f"{s.split('] ', 1)[-1]} {p:.1f}%" for p, s in user) + ".")
    print()
EOF
cat "$work/section.md"
python3 "$root/bench/update-results.py" "$section" "$work/section.md" "$root/bench/RESULTS.md"
