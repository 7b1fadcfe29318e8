// Op benchmarks: xgrad's matmul against plain cblas_sgemm on the same shapes (GFLOP/s and their
// ratio). One line per measurement: the median of several repetitions after warm-up.
//
//   bench_ops [--threads N] [--reps R]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <cblas.h>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

int min_reps = 10;                  // repetitions measured at least
constexpr int kWarmup = 3;          // unmeasured runs first
constexpr double kBudget = 0.5;     // seconds per measurement beyond the minimum repetitions
constexpr int kMaxReps = 200;

/// Median wall times in seconds of `ours` and `baseline`, after warm-up. Their runs alternate,
/// so that both see the same machine load.
struct Timings {
  double ours, baseline;
};
template <class Ours, class Baseline>
Timings median_seconds(Ours&& ours, Baseline&& baseline) {
  using clock = std::chrono::steady_clock;
  auto timed = [](auto& run) {
    const auto start = clock::now();
    run();
    return std::chrono::duration<double>(clock::now() - start).count();
  };
  for (int i = 0; i < kWarmup; ++i) {
    ours();
    baseline();
  }
  std::vector<double> ours_times, baseline_times;
  const auto begin = clock::now();
  while (static_cast<int>(ours_times.size()) < min_reps ||
         (std::chrono::duration<double>(clock::now() - begin).count() < kBudget &&
          static_cast<int>(ours_times.size()) < kMaxReps)) {
    ours_times.push_back(timed(ours));
    baseline_times.push_back(timed(baseline));
  }
  auto median = [](std::vector<double>& times) {
    std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
    return times[times.size() / 2];
  };
  return {median(ours_times), median(baseline_times)};
}

void print_gflops(const char* what, const std::string& shapes, double flops, double xgrad_s, const char* baseline,
                  double baseline_s) {
  const double ours = flops / xgrad_s * 1e-9, theirs = flops / baseline_s * 1e-9;
  std::printf("%-24s %-26s xgrad %7.1f GFLOP/s   %-22s %7.1f GFLOP/s   ratio %.2f\n", what, shapes.c_str(), ours,
              baseline, theirs, ours / theirs);
}

/// C = op(A) op(B) + beta C on contiguous row-major blocks (M, N) = (M, K) (K, N).
void sgemm(bool ta, bool tb, int M, int N, int K, const float* A, const float* B, float beta, float* C) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.f, A,
              ta ? M : K, B, tb ? K : N, beta, C, N);
}

/// A stack of `batch` products (n, k) x (k, m) (2-D operands when batch is 1): xgrad's matmul,
/// then cblas_sgemm on the same shapes into preallocated buffers.
void bench_matmul(std::size_t batch, std::size_t n, std::size_t k, std::size_t m) {
  const bool batched = batch > 1;
  auto stack = [&](std::size_t rows, std::size_t cols) { return batched ? Shape{batch, rows, cols} : Shape{rows, cols}; };
  const Shape a_shape = stack(n, k), b_shape = stack(k, m), c_shape = stack(n, m);
  const std::string shapes = shape_str(a_shape) + "x" + shape_str(b_shape);
  const double flops = 2.0 * batch * n * k * m;
  const char* plain = batched ? "cblas_sgemm loop" : "cblas_sgemm";

  Tensor a = randn(a_shape), b = randn(b_shape), dc = randn(c_shape);
  Tensor a_leaf = Tensor(a.value()).set_requires_grad(), b_leaf = Tensor(b.value()).set_requires_grad();
  const float* A = a.value().data();    // (batch, n, k)
  const float* B = b.value().data();    // (batch, k, m)
  const float* dC = dc.value().data();  // (batch, n, m)
  std::vector<float> C(numel_of(c_shape)), dA(numel_of(a_shape)), dB(numel_of(b_shape));
  const std::size_t a_step = n * k, b_step = k * m, c_step = n * m;
  const int N = static_cast<int>(n), K = static_cast<int>(k), M = static_cast<int>(m);

  // Forward: C = A B.
  auto ours_forward = [&] { Tensor c = matmul(a, b); };
  auto blas_forward = [&](std::size_t p) {
    sgemm(false, false, N, M, K, A + p * a_step, B + p * b_step, 0.f, C.data() + p * c_step);
  };
  // Forward and backward: C = A B, dA += dC B^T, dB += A^T dC (three products).
  auto ours_both = [&] {
    a_leaf.zero_grad();
    b_leaf.zero_grad();
    Tensor c = matmul(a_leaf, b_leaf);
    c.backward(dc);
  };
  auto blas_both = [&](std::size_t p) {
    blas_forward(p);
    sgemm(false, true, N, K, M, dC + p * c_step, B + p * b_step, 1.f, dA.data() + p * a_step);
    sgemm(true, false, K, M, N, A + p * a_step, dC + p * c_step, 1.f, dB.data() + p * b_step);
  };

  Timings t = median_seconds(ours_forward, [&] {
    for (std::size_t p = 0; p < batch; ++p) blas_forward(p);
  });
  print_gflops("matmul forward", shapes, flops, t.ours, plain, t.baseline);
  t = median_seconds(ours_both, [&] {
    for (std::size_t p = 0; p < batch; ++p) blas_both(p);
  });
  print_gflops("matmul forward+backward", shapes, 3 * flops, t.ours, plain, t.baseline);

  if (batched) {  // the same loops shared out over threads by hand: the best plain BLAS does here
    const auto count = static_cast<std::ptrdiff_t>(batch);
    t = median_seconds(ours_forward, [&] {
#pragma omp parallel for schedule(static)
      for (std::ptrdiff_t p = 0; p < count; ++p) blas_forward(p);
    });
    print_gflops("matmul forward", shapes, flops, t.ours, "cblas_sgemm omp loop", t.baseline);
    t = median_seconds(ours_both, [&] {
#pragma omp parallel for schedule(static)
      for (std::ptrdiff_t p = 0; p < count; ++p) blas_both(p);
    });
    print_gflops("matmul forward+backward", shapes, 3 * flops, t.ours, "cblas_sgemm omp loop", t.baseline);
  }
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      set_num_threads(std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
      min_reps = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: %s [--threads N] [--reps R]\n", argv[0]);
      return 2;
    }
  }
  std::printf("threads %d, BLAS threading %s, median of >= %d repetitions after %d warm-up runs\n",
              get_num_threads(), blas_threading(), min_reps, kWarmup);

  bench_matmul(1, 1024, 256, 256);
  bench_matmul(1, 1024, 256, 1024);
  bench_matmul(256, 32, 32, 32);
  return 0;
}
