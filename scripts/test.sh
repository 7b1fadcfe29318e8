#!/usr/bin/env bash
# Installs what is missing, builds Release, and runs the whole test suite through ctest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
cd "${XGRAD_BUILD_DIR:-$root/build}"
ctest --output-on-failure -j "${XGRAD_JOBS:-$(nproc)}" "$@"
