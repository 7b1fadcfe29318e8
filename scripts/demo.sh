#!/usr/bin/env bash
# Installs what is missing, builds Release, and runs the main job.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
"${XGRAD_BUILD_DIR:-$root/build}/bin/regression" "$@"
