#!/usr/bin/env bash
# The kernels' vector paths that the native build does not compile (kernels/vec.hpp: 16 floats
# with AVX-512, 8 with AVX, 4 otherwise), each in build-other-width/<arch>/, whatever CPU builds
# them:
# - plain x86-64 (SSE2, 4 floats: the scalar and SSE fallbacks any x86-64 CPU can run), x86-64-v3
#   (AVX2, 8 floats) and x86-64-v4 (AVX-512, 16 floats), but for the native build's width;
# - each one this CPU can run: the library and the tests of the kernels, ops, layers and
#   optimizers built for it and run, against the same references and finite differences;
# - one it cannot (AVX-512 on a CPU without it): the library compiled, so that those paths keep
#   compiling where no CPU here runs them.
# Installs what is missing first, as scripts/test.sh does.
#
#   scripts/test_other_width.sh [CTEST ARGS...]
#   (environment: XGRAD_OTHER_WIDTH_BUILD_DIR, default <repo>/build-other-width; XGRAD_JOBS)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_root="${XGRAD_OTHER_WIDTH_BUILD_DIR:-$root/build-other-width}"
jobs="${XGRAD_JOBS:-$(nproc)}"

XGRAD_SETUP_INSTALL_ONLY=1 "$root/scripts/setup.sh"
# The compiler's macros for this CPU, read whole: a `grep -q` in a pipe could stop reading early,
# and under pipefail the compiler's broken pipe would then read as "no AVX-512".
macros="$("${CXX:-c++}" -march=native -dM -E -x c++ /dev/null)"
has() { [[ $macros == *"#define $1 "* ]]; }
if has __AVX512F__; then native=16
elif has __AVX__; then native=8
else native=4; fi
runs_v3=false
if has __AVX2__ && has __FMA__ && has __BMI2__ && has __F16C__; then runs_v3=true; fi

# The suites that reach the vector paths: each test directory's executables, named <dir>_test_*.
areas=(kernels autograd nn optim)
checked=()
for width in 4 8 16; do
  [[ $width == "$native" ]] && continue
  case $width in
    4) arch=x86-64; runs=true ;;
    8) arch=x86-64-v3; runs=$runs_v3 ;;
    16) arch=x86-64-v4; runs=false ;;  # below the native width only when the CPU lacks AVX-512
  esac
  build_dir="$build_root/$arch"
  # GCC 12's own AVX-512 intrinsics (the row kernels' lane reductions, masked loads, vscalefps)
  # warn of an uninitialized '__Y' inside the header, about a hundred times: its false positive,
  # silenced here so that a real warning shows.
  cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DXGRAD_NATIVE=OFF \
    -DCMAKE_CXX_FLAGS="-march=$arch -Wno-uninitialized -Wno-maybe-uninitialized" \
    -DXGRAD_BUILD_TESTS="$($runs && echo ON || echo OFF)" \
    -DXGRAD_BUILD_EXAMPLES=OFF -DXGRAD_BUILD_BENCH=OFF
  if ! $runs; then
    cmake --build "$build_dir" -j "$jobs" --target xgrad
    checked+=("$arch ($width floats) compiles; no CPU here runs it")
    continue
  fi
  # One target per area (tests_<area>), so that the area's tests compile side by side.
  cmake --build "$build_dir" -j "$jobs" --target "${areas[@]/#/tests_}"
  (cd "$build_dir" && ctest --output-on-failure -j "$jobs" -R "^($(IFS='|'; echo "${areas[*]}"))\\.test_" "$@")
  checked+=("$arch ($width floats) passes the tests of ${areas[*]}")
done
for line in "${checked[@]}"; do echo "test_other_width: $line"; done
