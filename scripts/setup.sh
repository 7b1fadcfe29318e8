#!/usr/bin/env bash
# Shared by demo.sh and test.sh: installs the Debian packages in scripts/packages.txt that are
# missing (as root, or through sudo), then configures and builds xgrad (Release) in build/: the
# targets given as arguments (with what they need), or everything.
#
#   scripts/setup.sh [TARGET...]        e.g. scripts/setup.sh seq2seq
#   XGRAD_SETUP_INSTALL_ONLY=1 scripts/setup.sh    installs the packages, builds nothing
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${XGRAD_BUILD_DIR:-$root/build}"
jobs="${XGRAD_JOBS:-$(nproc)}"

install_packages() {
  local wanted missing=()
  mapfile -t wanted < <(grep -v '^\s*#' "$root/scripts/packages.txt" | grep -v '^\s*$')
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "xgrad: installing Debian packages: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "xgrad: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

install_packages
[ "${XGRAD_SETUP_INSTALL_ONLY:-0}" = 1 ] && exit 0
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release
targets=()
for target in "$@"; do targets+=(--target "$target"); done
cmake --build "$build_dir" -j "$jobs" "${targets[@]}"
