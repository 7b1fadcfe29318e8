#!/usr/bin/env bash
# One fuzz target for as long as you like, under AddressSanitizer and UBSan: safetensors (and a
# checkpoint's state), tsv, tokenizer or args. By default with the project's seeded mutation
# driver in build-sanitize/ (the build scripts/test_sanitized.sh makes); with --libfuzzer, with
# Clang's libFuzzer (coverage-guided) in build-libfuzzer/, when clang++ is installed. A crash
# leaves its input in the current folder (fuzz-crash-*.bin, or libFuzzer's crash-*), and
#   build-sanitize/tests/fuzz_<target> --replay FILE     runs it again.
#
#   scripts/fuzz.sh TARGET [SECONDS] [--seed N] [--libfuzzer]    e.g. scripts/fuzz.sh safetensors 3600
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() { echo "usage: scripts/fuzz.sh safetensors|tsv|tokenizer|args [SECONDS] [--seed N] [--libfuzzer]" >&2; exit 2; }
[ $# -ge 1 ] || usage
target=$1; shift
case $target in safetensors|tsv|tokenizer|args) ;; *) usage ;; esac
seconds=600 seed=1 libfuzzer=0
while [ $# -gt 0 ]; do
  case $1 in
    --seed) seed=$2; shift 2 ;;
    --libfuzzer) libfuzzer=1; shift ;;
    [0-9]*) seconds=$1; shift ;;
    *) usage ;;
  esac
done
jobs="${XGRAD_JOBS:-$(nproc)}"
XGRAD_SETUP_INSTALL_ONLY=1 "$root/scripts/setup.sh"
export LSAN_OPTIONS="suppressions=$root/scripts/sanitizers/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
if [ $libfuzzer = 1 ]; then
  command -v clang++ > /dev/null || { echo "scripts/fuzz.sh: --libfuzzer needs clang++ (Debian: clang)" >&2; exit 1; }
  build="$root/build-libfuzzer"
  CXX=clang++ cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE=-O1 \
    -DXGRAD_SANITIZE=ON -DXGRAD_LIBFUZZER=ON -DXGRAD_BUILD_BENCH=OFF -DXGRAD_FUZZ_SECONDS="$seconds" > /dev/null
else
  build="${XGRAD_SANITIZE_BUILD_DIR:-$root/build-sanitize}"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE=-O1 -DXGRAD_SANITIZE=ON \
    -DXGRAD_BUILD_BENCH=OFF > /dev/null
fi
cmake --build "$build" -j "$jobs" --target "fuzz_$target"
if [ $libfuzzer = 1 ]; then
  mkdir -p "$build/fuzz/corpus/$target"
  exec "$build/tests/fuzz_$target" -max_total_time="$seconds" -seed="$seed" -dict="$root/tests/fuzz/$target.dict" \
    "$build/fuzz/corpus/$target" "$build/fuzz/seeds/$target"
fi
exec "$build/tests/fuzz_$target" --seconds "$seconds" --seed "$seed" --dict "$root/tests/fuzz/$target.dict" \
  "$build/fuzz/seeds/$target"
