// The GEMM library, chosen by measurement: every distinct matrix product of a training step
// (bench/step_gemms.hpp) and of a decoding step, timed in kernels::gemm (oneDNN) and, when the
// build found it, in OpenBLAS' cblas_sgemm, on this CPU, in one run. Per-head products run as
// the step runs them: one single-threaded GEMM per thread in an OpenMP loop.
//   bench_gemm [--threads N] [--model small|base]
//   bench_gemm --skinny [--threads N]: y += x W^T for 1 to 128 rows of x (decoding steps), in the
//     GEMM library, in kernels::skinny_linear and in kernels::packed_linear (W packed once, the
//     packing's time in products), W cycling through 16 MB of weights so that it comes from
//     memory as in a decoding step (where every layer's weights go by once per step); ratios to
//     the library.
// One line per shape: the count per step, GFLOP/s in each library and the ratio, then the totals
// over the step (time-weighted, as the step would see them).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include <omp.h>

#include <xgrad/kernels/gemm.hpp>
#include <xgrad/kernels/linear.hpp>
#include <xgrad/kernels/packed_linear.hpp>
#include <xgrad/kernels/runtime_info.hpp>
#include <xgrad/xgrad.hpp>

#include "step_gemms.hpp"

#ifdef XGRAD_BENCH_OPENBLAS
#include <cblas.h>
extern "C" char* openblas_get_corename(void);
extern "C" void openblas_set_num_threads(int);
#endif

using namespace xgrad;

namespace {

using Clock = std::chrono::steady_clock;

/// One library's GEMM: C (M, N) = op(A) op(B), dense row-major operands.
using GemmFn = void (*)(const bench::Gemm&, const float*, const float*, float*);

void onednn(const bench::Gemm& g, const float* A, const float* B, float* C) {
  kernels::gemm(g.trans_a, g.trans_b, g.M, g.N, g.K, 1.f, A, B, 0.f, C);
}

#ifdef XGRAD_BENCH_OPENBLAS
void openblas(const bench::Gemm& g, const float* A, const float* B, float* C) {
  const int m = static_cast<int>(g.M), n = static_cast<int>(g.N), k = static_cast<int>(g.K);
  cblas_sgemm(CblasRowMajor, g.trans_a ? CblasTrans : CblasNoTrans, g.trans_b ? CblasTrans : CblasNoTrans, m, n, k,
              1.f, A, g.trans_a ? m : k, B, g.trans_b ? k : n, 0.f, C, n);
}
#endif

/// Seconds for `count` products of g (per-head ones spread over the threads, each on its own
/// buffers), the fastest of several runs: the machine's noise only slows.
double time_gemm(GemmFn fn, const bench::Gemm& g, std::vector<std::vector<float>>& buffers) {
  const auto count = static_cast<std::ptrdiff_t>(g.count);
  auto run = [&] {
    if (g.per_head) {
#pragma omp parallel for schedule(static)
      for (std::ptrdiff_t i = 0; i < count; ++i) {
        const int slot = omp_get_thread_num();
        fn(g, buffers[3 * slot].data(), buffers[3 * slot + 1].data(), buffers[3 * slot + 2].data());
      }
    } else {
      for (std::ptrdiff_t i = 0; i < count; ++i) fn(g, buffers[0].data(), buffers[1].data(), buffers[2].data());
    }
  };
  run();  // warm-up
  double best = 1e30;
  const int reps = std::max(3, static_cast<int>(2e8 / std::max(g.flops(), 1.0)));
  for (int rep = 0; rep < std::min(reps, 20); ++rep) {
    const auto start = Clock::now();
    run();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
  }
  return best;
}

/// kernels::gemm against kernels::skinny_linear and kernels::packed_linear (on W packed once,
/// kernels::pack_weight) on decoding shapes; the packing's own time, in products of that many rows.
void skinny() {
  std::printf("%-5s %-5s %-5s %14s %14s %14s %7s %7s %9s\n", "rows", "in", "out", "GEMM library", "skinny_linear",
              "packed_linear", "skinny", "packed", "packing");
  for (const auto& shape : {std::pair<std::size_t, std::size_t>{256, 256}, {256, 1024}, {1024, 256}, {256, 1000},
                            {512, 512}, {512, 2048}, {2048, 512}}) {
    const std::size_t in = shape.first, out = shape.second;  // (lambdas below capture them: no structured binding)
    const std::size_t copies = std::max<std::size_t>(2, (16u << 20) / (in * out * sizeof(float)));
    std::vector<std::vector<float>> weights(copies, std::vector<float>(in * out, 0.01f));
    std::vector<std::vector<float>> packed(copies, std::vector<float>(kernels::packed_weight_size(out, in)));
    for (const std::size_t rows : {1, 2, 4, 8, 9, 16, 32, 64, 128}) {
      std::vector<float> x(rows * in, 0.02f), y(rows * out, 0.f);
      auto seconds = [&](auto&& body) {  // the fastest of 5 passes over every copy of W
        double best = 1e30;
        for (int rep = 0; rep < 5; ++rep) {
          const auto start = Clock::now();
          for (std::size_t c = 0; c < copies; ++c) body(c);
          best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
        }
        return best;
      };
      const double flops = 2.0 * rows * in * out * copies * 1e-9;
      const double library = flops / seconds([&](std::size_t c) {
        kernels::gemm(false, true, rows, out, in, 1.f, x.data(), weights[c].data(), 1.f, y.data());
      });
      const double skinny = flops / seconds([&](std::size_t c) {
        kernels::skinny_linear(x.data(), rows, in, weights[c].data(), out, y.data());
      });
      const double packing = seconds([&](std::size_t c) {
        kernels::pack_weight(weights[c].data(), out, in, packed[c].data());
      });
      const double product = seconds([&](std::size_t c) {
        kernels::packed_linear(x.data(), rows, in, packed[c].data(), out, y.data());
      });
      std::printf("%-5zu %-5zu %-5zu %9.1f GF/s %9.1f GF/s %9.1f GF/s %7.2f %7.2f %9.1f\n", rows, in, out, library,
                  skinny, flops / product, skinny / library, flops / product / library, packing / product);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  int threads = get_num_threads();
  std::string model = "small";
  bool skinny_only = false;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (!std::strcmp(argv[i], "--threads") && has_value) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--model") && has_value) model = argv[++i];
    else if (!std::strcmp(argv[i], "--skinny")) skinny_only = true;
    else {
      std::fprintf(stderr, "usage: bench_gemm [--threads N] [--model small|base] [--skinny]\n");
      return 2;
    }
  }
  set_num_threads(threads);
#ifdef XGRAD_BENCH_OPENBLAS
  openblas_set_num_threads(threads);
#endif
  std::cout << runtime_info() << std::endl;
#ifdef XGRAD_BENCH_OPENBLAS
  std::printf("OpenBLAS core: %s\n", openblas_get_corename());
#else
  std::printf("OpenBLAS: not found at build time (libopenblas-dev): oneDNN only\n");
#endif
  if (skinny_only) {
    skinny();
    return 0;
  }

  const auto config = models::TransformerConfig::preset(model, 1000, 1000);
  std::vector<bench::Gemm> gemms = bench::step_gemms(config, 32, 32, 32);
  // A decoding step at batch 1 and 32: the projections of one position per row.
  const std::size_t D = config.d_model, F = config.dim_feedforward;
  for (const std::size_t rows : {std::size_t{1}, std::size_t{32}}) {
    gemms.push_back({rows, D, D, false, true, 1, false});
    gemms.push_back({rows, F, D, false, true, 1, false});
    gemms.push_back({rows, D, F, false, true, 1, false});
    gemms.push_back({rows, 1000, D, false, true, 1, false});
  }
  std::size_t largest = 0;
  for (const auto& g : gemms) largest = std::max({largest, g.M * g.K, g.K * g.N, g.M * g.N});
  std::vector<std::vector<float>> buffers(3 * threads, std::vector<float>(largest, 0.01f));

  double total[2] = {0, 0}, train_total[2] = {0, 0};
  std::printf("%-6s %-6s %-6s %-3s %-3s %6s %12s %12s %7s\n", "M", "N", "K", "tA", "tB", "count", "oneDNN", "OpenBLAS",
              "ratio");
  for (std::size_t i = 0; i < gemms.size(); ++i) {
    const bench::Gemm& g = gemms[i];
    const double ours = time_gemm(onednn, g, buffers);
    double theirs = 0;
#ifdef XGRAD_BENCH_OPENBLAS
    theirs = time_gemm(openblas, g, buffers);
#endif
    total[0] += ours, total[1] += theirs;
    if (i < gemms.size() - 8) train_total[0] += ours, train_total[1] += theirs;
    std::printf("%-6zu %-6zu %-6zu %-3s %-3s %6zu %8.1f GF/s %8.1f GF/s %7.2f\n", g.M, g.N, g.K, g.trans_a ? "T" : "N",
                g.trans_b ? "T" : "N", g.count, g.flops() / ours * 1e-9, theirs > 0 ? g.flops() / theirs * 1e-9 : 0.0,
                theirs > 0 ? theirs / ours : 0.0);
  }
  const double step_flops = bench::total_flops(std::vector<bench::Gemm>(gemms.begin(), gemms.end() - 8));
  std::printf("training step's GEMMs: oneDNN %.1f ms (%.1f GFLOP/s)", train_total[0] * 1e3,
              step_flops / train_total[0] * 1e-9);
  if (train_total[1] > 0) {
    std::printf(", OpenBLAS %.1f ms (%.1f GFLOP/s), oneDNN / OpenBLAS speed %.2f", train_total[1] * 1e3,
                step_flops / train_total[1] * 1e-9, train_total[1] / train_total[0]);
  }
  std::printf("\n");
}
