#!/usr/bin/env bash
# Installs what is missing, builds Release, then the main job: trains the Transformer on the
# built-in `dates` task (a date written in many human ways -> YYYY-MM-DD) for at most five
# minutes, scores it on the held-out test split, and shows it translating, greedy and with beam
# search. Extra arguments go to `seq2seq train` (e.g. --threads 1, --max-minutes 10).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh" seq2seq  # the program it runs; scripts/test.sh builds the rest
bin="${XGRAD_BUILD_DIR:-$root/build}/bin"
run="${XGRAD_DEMO_RUN:-$root/runs/demo-dates}"

rm -rf "$run"  # the demo's own folder: start afresh each time
# One thread: at this model size a second one gains under 10%, and loses much more whenever
# anything else is running on the machine.
"$bin/seq2seq" train --task dates --run-dir "$run" --max-minutes 5 --stop-at 0.998 \
  --warmup 400 --lr-factor 0.7 --batch-tokens 1500 --valid-every 400 --valid-decode 500 \
  --threads 1 "$@"

echo
echo "== the test split, scored with the best checkpoint (beam 4)"
"$bin/seq2seq" eval --model "$run" --split test --beam 4

samples=(
  "3rd of March 2021"
  "Wed, Mar 3 '21"
  "03/03/2021"
  "March the third, twenty twenty-one"
  "14th of July 1989"
  "Friday, December 31, 1999"
  "1 January 2000"
  "29.2.2024"
  "the twenty-first of June 1975"
  "12NOV99"
)
echo
echo "== translations (greedy | beam 4)"
greedy="$(printf '%s\n' "${samples[@]}" | "$bin/seq2seq" translate --model "$run")"
beam="$(printf '%s\n' "${samples[@]}" | "$bin/seq2seq" translate --model "$run" --beam 4)"
paste -d'|' <(printf '%-40s\n' "${samples[@]}") <(echo "$greedy") <(echo "$beam") | sed 's/|/  ->  /; s/|/  |  /'
echo
echo "Curves: $run/curves.svg   Metrics: $run/metrics.jsonl   Checkpoints: $run/best, $run/last"
