#!/usr/bin/env bash
# Memory stays flat over a long run: trains the seq2seq program (the built-in copy task, a small
# model, one thread, validation and a checkpoint every 500 steps) for 5,000 steps and prints the
# process's
# peak resident memory after 500 and after 5,000 steps, from the peak_rss_mib that every train
# line of metrics.jsonl carries, and their ratio (the target: within 5%).
#   bench/memory_flat.sh [--steps N] [--task NAME] [-- MORE TRAIN FLAGS]
#   (environment: BUILD_DIR, default <repo>/build)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
steps=5000
task=copy
while [[ $# -gt 0 ]]; do
  case $1 in
    --steps) steps=$2; shift 2 ;;
    --task) task=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "usage: bench/memory_flat.sh [--steps N] [--task NAME] [-- MORE TRAIN FLAGS]" >&2; exit 2 ;;
  esac
done
early=$((steps / 10))
cmake --build "$build" --target seq2seq -j "$(nproc)" > /dev/null
run=$(mktemp -d "${TMPDIR:-/tmp}/xgrad_memory_flat_XXXXXX")
trap 'rm -rf "$run"' EXIT
"$build/bin/seq2seq" train --task "$task" --model tiny --steps "$steps" --valid-every 500 --valid-decode 100 \
  --warmup 400 --threads 1 --d-model 32 --heads 2 --layers 1 --ff 64 --train-size 2000 --run-dir "$run/run" "$@" \
  2>&1 | tr '\r' '\n' | grep -E '^seq2seq: (kernels|stopped)' || true
# Each train line: {...,"kind":"train",...,"peak_rss_mib":X,"step":N,...}
sed -n 's/.*"kind":"train".*"peak_rss_mib":\([0-9.e+]*\),"step":\([0-9]*\).*/\2 \1/p' "$run/run/metrics.jsonl" |
  awk -v early="$early" '$1 == early { a = $2 } { b = $2; last = $1 }
    END { if (a == "") { print "memory_flat: no train line at step " early; exit 1 }
          printf "peak RSS after %d steps: %.1f MiB; after %d steps: %.1f MiB; ratio %.3f (target <= 1.05): %s\n",
                 early, a, last, b, b / a, (b <= 1.05 * a) ? "met" : "NOT met" }'
