#!/usr/bin/env bash
# Installs what sluice needs from Debian packages (only those missing), then
# configures and builds a Release binary into build/. Safe to run again.
#   scripts/setup.sh            install + build build/
#   scripts/setup.sh --asan     also build build-asan/ (AddressSanitizer + UBSan)
#   scripts/setup.sh --tsan     also build the unit tests in build-tsan/ (ThreadSanitizer)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config
  libuv1-dev libc-ares-dev libyaml-cpp-dev liblua5.4-dev doctest-dev node-llhttp libseccomp-dev libidn2-dev
  libcli11-dev nlohmann-json3-dev  # the command line (CLI11) and the JSON parser (issue 13)
  bubblewrap curl python3 git openssh-client openssh-server
  nftables  # the nft program: `sluice run --transparent` programs the jail's namespace with it
  libssl-dev  # tls/: the inspection CA, leaves and TLS engines (issue 14)
  liburing-dev  # only bench/floor/relay_floor.cpp (sluice-relay-floor, a measuring tool; issue 18)
  clang-format  # the style check (tests: style.clang_format)
  ccache  # only speeds up rebuilds (the three builds of scripts/test.sh share nothing else)
  microsocks  # a SOCKS5 parent proxy for tests/e2e/test_parent_proxy.py
  gdb  # only for diagnosis: an e2e run that times out prints the stacks of its sluice processes
  # scripts/package.sh and tests/e2e/test_package.py: man pages from --help (help2man), the
  # package's checks (lintian, man -l, systemd-analyze verify/security), dpkg-shlibdeps
  help2man lintian man-db systemd dpkg-dev
  # promtool (in Debian's prometheus package; ~96 MB installed, the only packaged promtool)
  # checks packaging/prometheus/sluice-alerts.yml in tests/e2e/test_fleet.py
  prometheus
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  # openssh-server is only for the tests, which start their own sshd: keep Debian from starting
  # (and enabling) the system one, with a policy-rc.d of our own unless one is already there.
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  rc=0
  { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; } || rc=$?
  if [ "$own_policy" = 1 ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi
  [ "$rc" = 0 ] || exit "$rc"
fi

jobs=$(nproc 2>/dev/null || echo 2)
# ccache keyed on paths relative to this checkout, so another clone of the tree (CI's) reuses it.
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_BASEDIR="$(pwd)" CCACHE_NOHASHDIR=1
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
# Unity batches halve a cold build's CPU time (10.1 -> 5.0 CPU-min for build/, measured):
# CI builds four trees from nothing. cmake/unity.cmake lists the files compiled alone.
launcher+=(-DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=16)
build() {  # build DIR [cmake args...]
  local dir=$1 started=$SECONDS; shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  echo "setup: $dir built in $((SECONDS - started))s"
}
build build
for flag in "$@"; do
  case "$flag" in
    # -O1 -g1: sanitizer reports keep line numbers, and the builds stay quick on 2 cores.
    --asan)
      build build-asan -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1" "-DCMAKE_C_FLAGS_DEBUG=-O1 -g1" \
        -DSLUICE_SANITIZE=ON ;;
    # ThreadSanitizer: the unit tests only (the threads that share state meet there; the e2e
    # suite would add minutes to CI for the same code).
    --tsan)
      cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1" \
        "-DCMAKE_C_FLAGS_DEBUG=-O1 -g1" -DSLUICE_TSAN=ON "${launcher[@]}" >/dev/null
      started=$SECONDS
      cmake --build build-tsan -j "$jobs" --target unit_tests
      echo "setup: build-tsan built in $((SECONDS - started))s" ;;
    *) echo "setup: unknown flag $flag (use --asan, --tsan)" >&2; exit 2 ;;
  esac
done
echo "setup: built $(pwd)/build/sluice"
