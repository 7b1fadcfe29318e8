#!/usr/bin/env bash
# The kernels' vector paths that the native build does not compile (kernels/vec.hpp: 16 floats
# with AVX-512, 8 with AVX, 4 otherwise), in build-other-width/, whatever CPU builds them:
# - on a CPU with AVX-512, the library and the tests of the kernels, ops, layers and optimizers
#   built for x86-64-v3 (AVX2, 8 floats) and run: the paths most CPUs without AVX-512 take,
#   checked against the same references and finite differences;
# - on a CPU without it, the library compiled for x86-64-v4 (AVX-512): its 16-float paths keep
#   compiling where no CPU here could run them.
# Installs what is missing first, as scripts/test.sh does.
#
#   scripts/test_other_width.sh [CTEST ARGS...]
#   (environment: XGRAD_OTHER_WIDTH_BUILD_DIR, default <repo>/build-other-width; XGRAD_JOBS)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${XGRAD_OTHER_WIDTH_BUILD_DIR:-$root/build-other-width}"
jobs="${XGRAD_JOBS:-$(nproc)}"

XGRAD_SETUP_INSTALL_ONLY=1 "$root/scripts/setup.sh"
# The compiler's macros for this CPU, read whole: a `grep -q` in a pipe could stop reading early,
# and under pipefail the compiler's broken pipe would then read as "no AVX-512".
macros="$("${CXX:-c++}" -march=native -dM -E -x c++ /dev/null)"
if [[ $macros == *__AVX512F__* ]]; then
  arch=x86-64-v3
else
  arch=x86-64-v4
fi
# GCC 12's own AVX-512 intrinsics (the row kernels' lane reductions, masked loads, vscalefps)
# warn of an uninitialized '__Y' inside the header, about a hundred times: its false positive,
# silenced here so that a real warning shows.
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DXGRAD_NATIVE=OFF \
  -DCMAKE_CXX_FLAGS="-march=$arch -Wno-uninitialized -Wno-maybe-uninitialized" \
  -DXGRAD_BUILD_TESTS="$([[ $arch == x86-64-v3 ]] && echo ON || echo OFF)" \
  -DXGRAD_BUILD_EXAMPLES=OFF -DXGRAD_BUILD_BENCH=OFF
if [[ $arch == x86-64-v4 ]]; then
  cmake --build "$build_dir" -j "$jobs" --target xgrad
  echo "test_other_width: the library compiles for x86-64-v4 (AVX-512); no CPU here runs it"
  exit 0
fi

# The suites that reach the vector paths: each test directory's executables, named <dir>_test_*.
areas=(kernels autograd nn optim)
# One target per area (tests_<area>), so that the area's tests compile side by side.
cmake --build "$build_dir" -j "$jobs" --target "${areas[@]/#/tests_}"
cd "$build_dir"
ctest --output-on-failure -j "$jobs" -R "^($(IFS='|'; echo "${areas[*]}"))\\.test_" "$@"
echo "test_other_width: the kernels' 8-float paths (x86-64-v3) pass the tests of ${areas[*]}"
