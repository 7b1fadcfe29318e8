#!/usr/bin/env bash
# The library compiled for AVX-512 (x86-64-v4) in build-avx512/, whatever CPU builds it: the
# kernels' 16-float vector paths (kernels/vec.hpp) are compiled only there, so a machine without
# AVX-512 would never notice that they stopped compiling. Compiles; runs nothing. Installs what is
# missing first, as scripts/test.sh does.
#
#   scripts/build_avx512.sh
#   (environment: XGRAD_AVX512_BUILD_DIR, default <repo>/build-avx512; XGRAD_JOBS)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${XGRAD_AVX512_BUILD_DIR:-$root/build-avx512}"
jobs="${XGRAD_JOBS:-$(nproc)}"

XGRAD_SETUP_INSTALL_ONLY=1 "$root/scripts/setup.sh"
# GCC 12's own AVX-512 intrinsics (the row kernels' lane reductions, masked loads, vscalefps) warn
# of an uninitialized '__Y' inside the header, about a hundred times: its false positive, silenced
# here so that a real warning shows.
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DXGRAD_NATIVE=OFF \
  -DCMAKE_CXX_FLAGS="-march=x86-64-v4 -Wno-uninitialized -Wno-maybe-uninitialized" \
  -DXGRAD_BUILD_TESTS=OFF -DXGRAD_BUILD_EXAMPLES=OFF -DXGRAD_BUILD_BENCH=OFF
cmake --build "$build_dir" -j "$jobs" --target xgrad
echo "build_avx512: the library compiles for x86-64-v4 (AVX-512)"
