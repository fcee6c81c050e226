#!/usr/bin/env bash
# Every relay method of sluice-relay-floor, interleaved ROUNDS times (one 1 GiB transfer each
# per round), then the accept/connect/close cycle with epoll and io_uring; markdown rows on stdout.
#   bench/floor/sweep.sh [BINARY (default build/sluice-relay-floor)] [ROUNDS (default 3)]
# Loopback only; each transfer is 1 GiB, each cycle run 20,000 cycles, all under alarms.
set -euo pipefail
BIN=${1:-build/sluice-relay-floor} ROUNDS=${2:-3}
methods=(
  "direct"
  "splice --pipe 1M --chunk 1M"
  "splice --pipe 256K --chunk 256K"
  "splice --pipe 64K --chunk 64K"
  "splice --pipe 1M --chunk 64K"
  "splice-block --pipe 1M --chunk 1M"
  "splice --pipe 1M --chunk 1M --rcvlowat 256K"
  "splice --pipe 1M --chunk 1M --sndbuf 4M"
  "splice --pipe 1M --chunk 1M --rcvbuf 4M --sndbuf 4M"
  "rw --buf 256K"
  "rw --buf 1M"
  "uring-splice --pipe 1M --chunk 1M"
  "uring-rw --buf 1M"
)
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BIN" relay direct --size 1M --repeat 1 | head -2
for r in $(seq "$ROUNDS"); do
  for m in "${methods[@]}"; do
    # shellcheck disable=SC2086
    timeout 120 "$BIN" relay $m --repeat 1 | tail -1
  done
done
"$BIN" cycle epoll --count 1000 --repeat 1 | head -2
for r in $(seq "$ROUNDS"); do
  for m in epoll uring; do timeout 120 "$BIN" cycle $m --count 20000 --clients 8 --repeat 1 | tail -1; done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
