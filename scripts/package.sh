#!/usr/bin/env bash
# Builds the Debian package from this tree: build/packages/sluice_VERSION_ARCH.deb.
#   scripts/package.sh [BUILD_DIR]     (default build/, the Release build setup.sh makes)
# It reuses the build directory (only `sluice` is brought up to date, nothing else is
# compiled), writes the man pages with help2man from the binary's own --help (so they are
# never written twice), a Debian changelog, then runs cpack -G DEB. Prints the .deb's path.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
for tool in cpack help2man dpkg-shlibdeps gzip; do
  command -v "$tool" >/dev/null || { echo "package: $tool is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
[ -f "$build/CMakeCache.txt" ] || { echo "package: $build is not a configured build (run scripts/setup.sh)" >&2; exit 1; }
cmake --build "$build" --target sluice -j "$(nproc 2>/dev/null || echo 2)" >/dev/null

bin="$build/sluice"
version=$("$bin" --version | sed -n 's/^sluice \([0-9][0-9.]*\) .*/\1/p')
[ -n "$version" ] || { echo "package: cannot read the version from $bin --version" >&2; exit 1; }
out="$(cd "$build" && pwd)/packaging"
rm -rf "$out" && mkdir -p "$out/man" "$out/bin"

# help2man runs "PROGRAM --help"; one small wrapper per subcommand makes "sluice run" a program.
# Reproducible: SOURCE_DATE_EPOCH (the last commit's time when in git) dates the pages.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
abs_bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
page() {  # page NAME SUBCOMMAND DESCRIPTION
  local name=$1 sub=$2 what=$3 prog="$out/bin/$1"
  printf '#!/bin/sh\nexec %s %s "$@"\n' "$abs_bin" "$sub" >"$prog"
  chmod 755 "$prog"
  help2man --no-info --section=1 --name="$what" --version-string="$version" --source="sluice $version" \
    --manual="sluice manual" --no-discard-stderr --output="$out/man/$name.1" "$prog"
  # help2man names the page after the wrapper; "sluice-run" in the NAME line is what man -k shows.
  gzip -9n "$out/man/$name.1"
}
page sluice "" "egress proxy for sandboxed processes"
page sluice-run run "run a command in a jail whose only way out is sluice"
page sluice-serve serve "run the sluice proxy daemon"
page sluice-ctl ctl "talk to a running sluice daemon over its control socket"

date_r=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
cat >"$out/changelog" <<EOT
sluice ($version) unstable; urgency=medium

  * Package built by scripts/package.sh from commit $commit.

 -- sluice maintainers <sluice-maintainers@example.org>  $date_r
EOT
gzip -9n "$out/changelog"

# cpack re-runs configure-free install of the build into a staging tree and packs it.
rm -rf "$build/packages"
(cd "$build" && cpack -G DEB --config CPackConfig.cmake >"$out/cpack.log" 2>&1) ||
  { cat "$out/cpack.log" >&2; exit 1; }
deb=$(ls "$build"/packages/sluice_"$version"_*.deb)
echo "$deb"
