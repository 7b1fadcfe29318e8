#!/usr/bin/env bash
# xgrad against libtorch on the Transformer benchmark, measured in one run: builds
# build/bin/bench_transformer (Release) and, when libtorch-dev is installed, the peer
# bench/libtorch_peer (into build/libtorch_peer, reused when up to date), runs both at 1 and 2
# threads (training, then decoding), measures cblas_sgemm on the step's GEMMs, and prints a table
# of xgrad's numbers beside libtorch's best. Every JSON line goes to build/compare.jsonl.
#   bench/compare.sh [--steps N]     (environment: BUILD_DIR, default <repo>/build)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
steps=10
while [[ $# -gt 0 ]]; do
  case $1 in
    --steps) steps=$2; shift 2 ;;
    *) echo "usage: bench/compare.sh [--steps N]" >&2; exit 2 ;;
  esac
done

echo "building xgrad's bench_transformer (Release) in $build" >&2
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j1 --target bench_transformer >/dev/null

peer=""
if cmake -S "$root/bench/libtorch_peer" -B "$build/libtorch_peer" -DCMAKE_BUILD_TYPE=Release \
    >"$build/libtorch_peer.log" 2>&1; then
  echo "building the libtorch peer in $build/libtorch_peer" >&2
  cmake --build "$build/libtorch_peer" -j1 >>"$build/libtorch_peer.log" 2>&1
  peer="$build/libtorch_peer/libtorch_peer"
else
  echo "libtorch-dev is missing (find_package(Torch) failed, see $build/libtorch_peer.log):" \
       "xgrad's numbers only" >&2
fi

results="$build/compare.jsonl"
: >"$results"
xgrad="$build/bin/bench_transformer"
# Each program runs alone; xgrad's and libtorch's runs alternate so both see the same machine.
# libtorch gets one BLAS thread and its own intra-op threads (its thread pools oversubscribe the
# cores otherwise); xgrad shares one OpenMP pool with OpenBLAS' OpenMP build.
run() { echo "  $*" >&2; "$@" | tee -a "$results" >&2; }
echo "sgemm ceiling:" >&2
run "$xgrad" --sgemm --threads 2
for threads in 1 2; do
  echo "training, $threads thread(s):" >&2
  run env OMP_NUM_THREADS="$threads" "$xgrad" --threads "$threads" --steps "$steps"
  if [[ -n $peer ]]; then run env OPENBLAS_NUM_THREADS=1 "$peer" --threads "$threads" --steps "$steps"; fi
done
for threads in 1 2; do
  echo "decoding, $threads thread(s):" >&2
  run env OMP_NUM_THREADS="$threads" "$xgrad" --decode --threads "$threads"
  if [[ -n $peer ]]; then run env OPENBLAS_NUM_THREADS=1 "$peer" --decode --threads "$threads"; fi
done

python3 - "$results" <<'EOF'
import json, sys

lines = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
def pick(**want):
    return [l for l in lines if all(l.get(k) == v for k, v in want.items())]
def best(rows, key="tokens_per_s"):
    return max(rows, key=lambda l: l[key]) if rows else None
def fmt(value, spec=".0f"):
    return "-" if value is None else format(value, spec)
def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b

sgemm = {l["threads"]: l for l in pick(impl="sgemm")}
gflop = pick(impl="xgrad", mode="train")[0]["gflop_per_step"]
rows = []
def row(name, *cells):
    rows.append((name,) + tuple(cells))

def training(impl):
    runs = {l["threads"]: l for l in pick(impl=impl, mode="train")}
    return runs, best(list(runs.values()))
xg, xg_best = training("xgrad")
lt, lt_best = training("libtorch")
def cell(runs, threads, key, spec=".0f"):
    return fmt(runs[threads][key] if threads in runs else None, spec)
def of_sgemm(run):
    if run is None: return None
    return 100 * (gflop / run["step_ms"] * 1e3) / sgemm[run["threads"]]["gflop_per_s"]

header = ("", "xgrad 1t", "xgrad 2t", "libtorch 1t", "libtorch 2t", "xgrad best / libtorch best")
row("training tokens/s", cell(xg, 1, "tokens_per_s"), cell(xg, 2, "tokens_per_s"), cell(lt, 1, "tokens_per_s"),
    cell(lt, 2, "tokens_per_s"), fmt(ratio(xg_best and xg_best["tokens_per_s"], lt_best and lt_best["tokens_per_s"]), ".2f"))
row("training step ms", cell(xg, 1, "step_ms", ".1f"), cell(xg, 2, "step_ms", ".1f"), cell(lt, 1, "step_ms", ".1f"),
    cell(lt, 2, "step_ms", ".1f"), "")
def gflops(runs, threads):
    return fmt(gflop / runs[threads]["step_ms"] * 1e3 if threads in runs else None, ".1f")
row("GFLOP/s (%.1f GFLOP of GEMMs per step)" % gflop, gflops(xg, 1), gflops(xg, 2), gflops(lt, 1), gflops(lt, 2), "")
def pct(runs, threads):
    return fmt(of_sgemm(runs.get(threads)), ".0f") + ("%" if threads in runs else "")
row("  % of sgemm on the step's GEMMs", pct(xg, 1), pct(xg, 2), pct(lt, 1), pct(lt, 2), "")
row("sgemm on the step's GEMMs, GFLOP/s", fmt(sgemm.get(1, {}).get("gflop_per_s"), ".1f"),
    fmt(sgemm.get(2, {}).get("gflop_per_s"), ".1f"), "", "", "")
def scaling(runs):
    return fmt(ratio(runs[2]["tokens_per_s"], runs[1]["tokens_per_s"]) if 1 in runs and 2 in runs else None, ".2f")
row("2 threads / 1 thread", "", scaling(xg), "", scaling(lt), "")
row("training peak RSS MB", cell(xg, 1, "peak_rss_mb"), cell(xg, 2, "peak_rss_mb"), cell(lt, 1, "peak_rss_mb"),
    cell(lt, 2, "peak_rss_mb"), fmt(ratio(xg_best and xg_best["peak_rss_mb"], lt_best and lt_best["peak_rss_mb"]), ".2f"))

for batch in (1, 32):
    lt_refeed = best(pick(impl="libtorch", mode="greedy_refeed", batch=batch))
    for mode, label in (("greedy_kv", "KV cache"), ("greedy_refeed", "re-feed"), ("beam4", "beam 4")):
        runs = {l["threads"]: l for l in pick(impl="xgrad", mode=mode, batch=batch)}
        mine = best(list(runs.values()))
        peer = {l["threads"]: l for l in pick(impl="libtorch", mode="greedy_refeed", batch=batch)} if mode == "greedy_refeed" else {}
        row("decode b%d %s tokens/s" % (batch, label), cell(runs, 1, "tokens_per_s"), cell(runs, 2, "tokens_per_s"),
            cell(peer, 1, "tokens_per_s"), cell(peer, 2, "tokens_per_s"),
            fmt(ratio(mine and mine["tokens_per_s"], lt_refeed and lt_refeed["tokens_per_s"]), ".2f") + (" (vs re-feed)" if lt_refeed else ""))
    greedy = {l["threads"]: l for l in pick(impl="xgrad", mode="greedy_kv", batch=batch)}
    beam = {l["threads"]: l for l in pick(impl="xgrad", mode="beam4", batch=batch)}
    def beam_ratio(threads):
        return fmt(ratio(beam[threads]["ms"], greedy[threads]["ms"]) if threads in beam and threads in greedy else None, ".2f")
    best_greedy, best_beam = best(list(greedy.values())), best(list(beam.values()))
    row("decode b%d beam 4 time / greedy KV time" % batch, beam_ratio(1), beam_ratio(2), "", "",
        fmt(ratio(best_beam and best_beam["ms"], best_greedy and best_greedy["ms"]), ".2f") + " (best / best)")
def peak(impl):
    runs = pick(impl=impl, mode="greedy_refeed") + pick(impl=impl, mode="greedy_kv") + pick(impl=impl, mode="beam4")
    return max((l["peak_rss_mb"] for l in runs), default=None)
row("decoding peak RSS MB", fmt(peak("xgrad")), "", fmt(peak("libtorch")), "", fmt(ratio(peak("xgrad"), peak("libtorch")), ".2f"))

widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
print("-|-".join("-" * w for w in widths))
for r in rows:
    print(" | ".join(str(c).ljust(w) for c, w in zip(r, widths)))
if not pick(impl="libtorch"):
    print("\nlibtorch-dev is missing: install it (apt-get install libtorch-dev) for the comparison.")
EOF
