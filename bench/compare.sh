#!/usr/bin/env bash
# xgrad against libtorch on the Transformer benchmark, measured in one run: builds
# build/bin/bench_transformer (Release) and, when libtorch-dev is installed, the peer
# bench/libtorch_peer (into build/libtorch_peer, reused when up to date), then runs, xgrad's and
# libtorch's runs alternating so that both see the same machine:
#   - the GEMM ceiling (the step's GEMMs alone, and the 1024 x 1024 x 256 peak) with xgrad's library;
#   - training, `small` config, at 1 and 2 threads: xgrad; libtorch as installed; libtorch with its
#     OpenBLAS core type set by hand (OPENBLAS_CORETYPE: SkylakeX on AVX-512, Haswell on AVX2, or
#     --coretype), so that the comparison is not only against a BLAS that misreads the CPU;
#   - training, `base` config (d 512, 6+6 layers), at 1 and 2 threads: tokens/s and peak memory;
#   - decoding at 1 and 2 threads: xgrad's KV cache, re-feed and beam search; libtorch's re-feed
#     and its KV-cached greedy decoding (the honest peer of a cached decoder);
#   - with --torch-kv FILE, also that Python script (PyTorch greedy with a KV cache, arguments
#     THREADS BATCH, one JSON line) under python3.
# Prints the kernel line of every program, the table and the targets; every line goes to
# build/compare.jsonl.
#   bench/compare.sh [--steps N] [--base-steps N] [--coretype NAME] [--torch-kv FILE]
#   (environment: BUILD_DIR, default <repo>/build)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
steps=10
base_steps=3
coretype=""
torch_kv=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --steps) steps=$2; shift 2 ;;
    --base-steps) base_steps=$2; shift 2 ;;
    --coretype) coretype=$2; shift 2 ;;
    --torch-kv) torch_kv=$2; shift 2 ;;
    *) echo "usage: bench/compare.sh [--steps N] [--base-steps N] [--coretype NAME] [--torch-kv FILE]" >&2; exit 2 ;;
  esac
done
# "As installed" means what a user gets: OpenBLAS reads OPENBLAS_CORETYPE (and its other
# OPENBLAS_* settings) when it loads, and one inherited from the caller's environment would change
# libtorch's and PyTorch's kernels unseen. Every run starts without them; the core-type runs set
# theirs below.
while IFS= read -r var; do
  echo "compare.sh: $var=${!var} from the environment is not passed on" >&2
  unset "$var"
done < <(compgen -e | grep '^OPENBLAS_' || true)

if [[ -z $coretype ]]; then
  if grep -qw avx512f /proc/cpuinfo; then coretype=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo; then coretype=Haswell
  else coretype=Prescott; fi
fi

torch_python=""
if [[ -n $torch_kv ]]; then  # a Python that has torch (Debian's python3-torch is for /usr/bin/python3)
  for candidate in python3 /usr/bin/python3; do
    if "$candidate" -c "import torch" 2>/dev/null; then torch_python=$candidate; break; fi
  done
  [[ -n $torch_python ]] || { echo "--torch-kv: no python3 with torch (apt-get install python3-torch)" >&2; exit 2; }
fi

echo "building xgrad's bench_transformer (Release) in $build" >&2
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target bench_transformer >/dev/null

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
# libtorch gets one BLAS thread and its own intra-op threads (its thread pools oversubscribe the
# cores otherwise); xgrad's row kernels and GEMMs share one OpenMP pool. Each JSON line is tagged
# with the run's label (`run`), kernel lines are kept as {"kernels": ...}.
run() {
  local label=$1; shift
  echo "  [$label] $*" >&2
  "$@" | while IFS= read -r line; do
    echo "$line" >&2
    if [[ $line == \{* ]]; then echo "${line%\}},\"run\":\"$label\"}"
    elif [[ $line == kernels:* ]]; then printf '{"kernels":"%s","run":"%s"}\n' "${line//\"/\'}" "$label"; fi
  done >>"$results"
}
torch_runs() {  # threads, then the peer's arguments: libtorch as installed and with its core type set
  local threads=$1; shift
  [[ -n $peer ]] || return 0
  run libtorch env OPENBLAS_NUM_THREADS=1 "$peer" --threads "$threads" "$@"
  run libtorch_coretype env OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE="$coretype" "$peer" --threads "$threads" "$@"
}
echo "GEMM ceiling:" >&2
run xgrad "$xgrad" --sgemm --threads 2
for threads in 1 2; do
  echo "training, small, $threads thread(s):" >&2
  run xgrad env OMP_NUM_THREADS="$threads" "$xgrad" --threads "$threads" --steps "$steps"
  torch_runs "$threads" --steps "$steps"
done
for threads in 1 2; do
  echo "training, base, $threads thread(s):" >&2
  run xgrad env OMP_NUM_THREADS="$threads" "$xgrad" --model base --threads "$threads" --steps "$base_steps"
  [[ -z $peer ]] || run libtorch env OPENBLAS_NUM_THREADS=1 "$peer" --model base --threads "$threads" --steps "$base_steps"
done
for threads in 1 2; do
  echo "decoding, $threads thread(s):" >&2
  run xgrad env OMP_NUM_THREADS="$threads" "$xgrad" --decode --threads "$threads"
  torch_runs "$threads" --decode
  if [[ -n $torch_kv ]]; then
    for batch in 1 32; do run torch_python "$torch_python" "$torch_kv" "$threads" "$batch"; done
  fi
done

python3 - "$results" "$coretype" <<'PYEOF'
import json, sys

lines = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
coretype = sys.argv[2]
def pick(**want):
    return [l for l in lines if all(l.get(k) == v for k, v in want.items())]
def by_threads(rows):
    return {l["threads"]: l for l in rows}
def best(rows, key="tokens_per_s"):
    rows = [r for r in rows if r]
    return max(rows, key=lambda l: l[key]) if rows else None
def fmt(value, spec=".0f"):
    return "-" if value is None else format(value, spec)
def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b
def get(row, key):
    return None if row is None else row.get(key)

print("what ran:")
seen = set()
for l in lines:
    if "kernels" in l and (l["run"], l["kernels"]) not in seen:
        seen.add((l["run"], l["kernels"]))
        print("  %-18s %s" % (l["run"], l["kernels"]))
# Debian's libtorch calls libblas.so.3, which is OpenBLAS only where OpenBLAS is installed: on a
# fresh machine it is the reference BLAS, tens of times slower, not the peer the targets name.
if any(l["run"].startswith("libtorch") and "OpenBLAS" not in l["kernels"] for l in lines if "kernels" in l):
    print("warning: libtorch did not run on OpenBLAS (libblas.so.3 is another BLAS here): its figures are not"
          " libtorch's best as installed; apt-get install libopenblas0-pthread")
print()

sgemm = by_threads(pick(impl="sgemm"))
rows = []
header = ("", "xgrad 1t", "xgrad 2t", "libtorch 1t", "libtorch 2t", "libtorch %s 1t" % coretype,
          "libtorch %s 2t" % coretype)
def row(name, *cells):
    rows.append((name,) + tuple(cells))

def train(run, model="small"):
    impl = "xgrad" if run == "xgrad" else "libtorch"
    return by_threads([l for l in pick(impl=impl, mode="train", run=run) if l.get("model", "small") == model])
xg, lt, lc = train("xgrad"), train("libtorch"), train("libtorch_coretype")
def cells(key, spec=".0f"):
    out = []
    for r in (xg, lt, lc):
        for t in (1, 2):
            out.append(fmt(get(r.get(t), key), spec))
    return out
row("training tokens/s (small)", *cells("tokens_per_s"))
row("training step ms", *cells("step_ms", ".1f"))
gflop = get(xg.get(1) or xg.get(2), "gflop_per_step")
def gflops(runs, t):
    return None if t not in runs or gflop is None else gflop / runs[t]["step_ms"] * 1e3
row("GFLOP/s over the step", *[fmt(gflops(r, t), ".1f") for r in (xg, lt, lc) for t in (1, 2)])
row("  % of the GEMM peak (1024x1024x256)", *[fmt(ratio(gflops(r, t), get(sgemm.get(t), "peak_gflop_per_s")) and 100 * ratio(gflops(r, t), get(sgemm.get(t), "peak_gflop_per_s")), ".0f") for r in (xg, lt, lc) for t in (1, 2)])
row("GEMM peak 1024x1024x256, GFLOP/s", fmt(get(sgemm.get(1), "peak_gflop_per_s"), ".1f"), fmt(get(sgemm.get(2), "peak_gflop_per_s"), ".1f"), "", "", "", "")
row("the step's GEMMs alone, GFLOP/s", fmt(get(sgemm.get(1), "gflop_per_s"), ".1f"), fmt(get(sgemm.get(2), "gflop_per_s"), ".1f"), "", "", "", "")
row("2 threads / 1 thread", "", fmt(ratio(get(xg.get(2), "tokens_per_s"), get(xg.get(1), "tokens_per_s")), ".2f"),
    "", fmt(ratio(get(lt.get(2), "tokens_per_s"), get(lt.get(1), "tokens_per_s")), ".2f"),
    "", fmt(ratio(get(lc.get(2), "tokens_per_s"), get(lc.get(1), "tokens_per_s")), ".2f"))
row("training peak RSS MB", *cells("peak_rss_mb"))
xb, lb = train("xgrad", "base"), train("libtorch", "base")
row("base: training tokens/s", fmt(get(xb.get(1), "tokens_per_s")), fmt(get(xb.get(2), "tokens_per_s")),
    fmt(get(lb.get(1), "tokens_per_s")), fmt(get(lb.get(2), "tokens_per_s")), "", "")
row("base: training peak RSS MB", fmt(get(xb.get(1), "peak_rss_mb")), fmt(get(xb.get(2), "peak_rss_mb")),
    fmt(get(lb.get(1), "peak_rss_mb")), fmt(get(lb.get(2), "peak_rss_mb")), "", "")

def decoding(run, mode, batch):
    impl = "xgrad" if run == "xgrad" else "libtorch"
    return by_threads(pick(impl=impl, run=run, mode=mode, batch=batch))
for batch in (1, 32):
    for mode, label in (("greedy_kv", "greedy, KV cache"), ("greedy_refeed", "greedy, re-feed"), ("beam4", "beam 4")):
        runs = [decoding(r, mode, batch) for r in ("xgrad", "libtorch", "libtorch_coretype")]
        row("decode b%d %s tokens/s" % (batch, label), *[fmt(get(r.get(t), "tokens_per_s")) for r in runs for t in (1, 2)])
row("decoding peak RSS MB (xgrad: the largest of its modes; libtorch: its process)", fmt(max([l["peak_rss_mb"] for l in pick(impl="xgrad") if l.get("mode") in ("greedy_kv", "greedy_refeed", "beam4")], default=None)), "",
    fmt(max([l["peak_rss_mb"] for l in pick(impl="libtorch") if l.get("mode") in ("greedy_kv", "greedy_refeed")], default=None)), "", "", "")

widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
print("-|-".join("-" * w for w in widths))
for r in rows:
    print(" | ".join(str(c).ljust(w) for c, w in zip(r, widths)))

python_kv = pick(peer="torch-kv-cache")
if python_kv:
    print("\nPyTorch (Python) greedy with a KV cache: " + ", ".join(
        "%d thread(s) batch %d: %d tokens/s" % (l["threads"], l["batch"], l["tokens_per_s"]) for l in python_kv))

print("\ntargets (same run):")
def target(name, value, goal):
    status = "-" if value is None else ("met" if value >= goal else "NOT met")
    print("  %-62s %8s  (target >= %s)  %s" % (name, fmt(value, ".2f"), goal, status))
xg_best = best(list(xg.values()))
target("step GFLOP/s / GEMM peak (2 threads)", ratio(gflops(xg, 2), get(sgemm.get(2), "peak_gflop_per_s")), 0.6)
target("training: xgrad best / libtorch best, as installed", ratio(get(xg_best, "tokens_per_s"), get(best(list(lt.values())), "tokens_per_s")), 2.5)
target("training: xgrad best / libtorch best, OPENBLAS_CORETYPE=%s" % coretype, ratio(get(xg_best, "tokens_per_s"), get(best(list(lc.values())), "tokens_per_s")), 1.5)
for batch in (1, 32):
    for t in (1, 2):
        mine = get(decoding("xgrad", "greedy_kv", batch).get(t), "tokens_per_s")
        theirs = get(best([decoding("libtorch", "greedy_kv", batch).get(t), decoding("libtorch_coretype", "greedy_kv", batch).get(t)]), "tokens_per_s")
        target("greedy KV b%d, %d thread(s): xgrad / libtorch KV (its best)" % (batch, t), ratio(mine, theirs), 2)
        for l in python_kv:
            if l["batch"] == batch and l["threads"] == t:
                target("greedy KV b%d, %d thread(s): xgrad / PyTorch KV (Python)" % (batch, t), ratio(mine, l["tokens_per_s"]), 2)
if not pick(impl="libtorch"):
    print("\nlibtorch-dev is missing: install it (apt-get install libtorch-dev) for the comparison.")
PYEOF
