// Op benchmarks, one line per measurement (the median of several repetitions after warm-up):
// - matmul forward and forward+backward in GFLOP/s, beside the plain GEMM (kernels::gemm) on the
//   same shapes (into preallocated buffers) and the ratio;
// - softmax, layer_norm, cross_entropy and dropout forward and forward+backward in effective GB/s, beside
//   a copy of the same bytes (memcpy into a preallocated buffer). Bytes: every array the maths
//   reads or writes, once per pass: softmax and layer norm read x and write y forward (2 arrays),
//   read y or x and dy and write dx backward (3 more); cross-entropy reads the logits forward
//   (1), reads them and writes their gradient backward (2 more); dropout (p 0.1) reads x and
//   writes y and a byte mask forward (2.25), reads dy and the mask and writes dx backward (2.25 more).
// - a decoding step's attention (one query per row, no gradient) over S keys and values held
//   (B, S, d) as the cross-attention's are, and gathered from a KV cache's per-position blocks as
//   the self-attention's are, in effective GB/s of the keys and values read (each once), beside a
//   copy of as many bytes.
// - first, what a parallel region costs on this machine (the figure the kernels weigh a loop's
//   work against): an empty region on every thread, and a region whose `if` clause is false.
// Every op allocates its output. xgrad's caching allocator hands it the block the previous run
// freed (a warm cache, as in training from the second step on); with the cache emptied before
// every run, each output is a fresh block from the system whose pages fault in on first touch
// (a cold cache, as glibc's malloc alone would give). The suite runs cold, then warm.
//
//   bench_ops [--threads N] [--reps R] [--cache cold|warm|both]
//
// Threads: --threads, else OMP_NUM_THREADS, else every core.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <omp.h>

#include <xgrad/kernels/gemm.hpp>
#include <xgrad/kernels/runtime_info.hpp>
#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

int min_reps = 10;                  // repetitions measured at least
constexpr int kWarmup = 3;          // unmeasured runs first
constexpr double kBudget = 0.5;     // seconds per measurement beyond the minimum repetitions
constexpr int kMaxReps = 200;
bool cold_cache = false;            // empty xgrad's allocator cache before every run

/// Median wall times in seconds of `ours` and `baseline`, after warm-up. Their runs alternate,
/// so that both see the same machine load.
struct Timings {
  double ours, baseline;
};
template <class Ours, class Baseline>
Timings median_seconds(Ours&& ours, Baseline&& baseline) {
  using clock = std::chrono::steady_clock;
  auto timed = [](auto& run) {
    if (cold_cache) empty_cache();
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
  std::printf("%-30s %-26s xgrad %7.1f GFLOP/s   %-22s %7.1f GFLOP/s   ratio %.2f\n", what, shapes.c_str(), ours,
              baseline, theirs, ours / theirs);
}

void print_gbps(const char* what, const std::string& shape, double bytes, double xgrad_s, double copy_bytes,
                double copy_s) {
  const double ours = bytes / xgrad_s * 1e-9, copy = copy_bytes / copy_s * 1e-9;
  std::printf("%-30s %-26s xgrad %7.1f GB/s      %-22s %7.1f GB/s      ratio %.2f\n", what, shape.c_str(), ours,
              "copy", copy, ours / copy);
}

/// C = op(A) op(B) + beta C on contiguous row-major blocks (M, N) = (M, K) (K, N).
void sgemm(bool ta, bool tb, int M, int N, int K, const float* A, const float* B, float beta, float* C) {
  kernels::gemm(ta, tb, M, N, K, 1.f, A, B, beta, C);
}

/// A stack of `batch` products (n, k) x (k, m) (2-D operands when batch is 1): xgrad's matmul,
/// then the plain GEMM on the same shapes into preallocated buffers.
void bench_matmul(std::size_t batch, std::size_t n, std::size_t k, std::size_t m) {
  const bool batched = batch > 1;
  auto stack = [&](std::size_t rows, std::size_t cols) {
    return batched ? Shape{batch, rows, cols} : Shape{rows, cols};
  };
  const Shape a_shape = stack(n, k), b_shape = stack(k, m), c_shape = stack(n, m);
  const std::string shapes = shape_str(a_shape) + "x" + shape_str(b_shape);
  const double flops = 2.0 * batch * n * k * m;
  const char* plain = batched ? "gemm loop" : "gemm";

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

  if (batched) {  // the same loops shared out over threads by hand: the best the plain GEMM does here
    const auto count = static_cast<std::ptrdiff_t>(batch);
    t = median_seconds(ours_forward, [&] {
#pragma omp parallel for schedule(static)
      for (std::ptrdiff_t p = 0; p < count; ++p) blas_forward(p);
    });
    print_gflops("matmul forward", shapes, flops, t.ours, "gemm omp loop", t.baseline);
    t = median_seconds(ours_both, [&] {
#pragma omp parallel for schedule(static)
      for (std::ptrdiff_t p = 0; p < count; ++p) blas_both(p);
    });
    print_gflops("matmul forward+backward", shapes, 3 * flops, t.ours, "gemm omp loop", t.baseline);
  }
}

/// A row-wise op forward, and forward+backward from a random output gradient, in GB/s (`arrays`
/// arrays of x's size moved by each), beside a copy of x into a preallocated buffer.
void bench_rowwise(const char* name, const Shape& shape, const std::function<Tensor(const Tensor&)>& op,
                   double forward_arrays, double both_arrays, const std::vector<Tensor>& other_leaves = {}) {
  Tensor x = randn(shape);
  Tensor leaf = x.detach().set_requires_grad();
  const Tensor y = op(x);
  const Tensor dy = randn(y.shape());
  const double array_bytes = static_cast<double>(x.numel()) * sizeof(float);
  std::vector<float> copy(x.numel());
  auto copy_x = [&] { std::memcpy(copy.data(), x.value().data(), copy.size() * sizeof(float)); };

  Timings t = median_seconds([&] { op(x); }, copy_x);
  print_gbps((std::string(name) + " forward").c_str(), shape_str(shape), forward_arrays * array_bytes, t.ours,
             2 * array_bytes, t.baseline);
  t = median_seconds(
      [&] {
        leaf.zero_grad();
        for (const Tensor& other : other_leaves) other.zero_grad();
        op(leaf).backward(dy);
      },
      copy_x);
  print_gbps((std::string(name) + " forward+backward").c_str(), shape_str(shape), both_arrays * array_bytes, t.ours,
             2 * array_bytes, t.baseline);
}

/// A decoding step's attention: B rows, one query each, over S keys and values of d = 256 (8
/// heads), no gradient; contiguous (B, S, d) and gathered from a KV cache's per-position blocks.
void bench_attention_step(std::size_t B, std::size_t S) {
  constexpr std::size_t d = 256;
  constexpr std::int64_t heads = 8;
  NoGradGuard no_grad;
  const Tensor q = randn({B, 1, d}), k = randn({B, S, d}), v = randn({B, S, d});
  nn::KVCache cache;
  for (std::size_t s = 0; s < S; ++s) cache.append(randn({B, 1, d}), randn({B, 1, d}));
  const nn::functional::GatheredKeyValues gathered = cache.gathered();
  const double bytes = 2.0 * B * S * d * sizeof(float);  // keys and values, once
  std::vector<float> from(B * S * d * 2), to(from.size());
  auto copy = [&] { std::memcpy(to.data(), from.data(), to.size() * sizeof(float)); };
  const std::string shape = fmt::format("B {} S {} d {} H {}", B, S, d, heads);
  Timings t = median_seconds([&] { nn::functional::scaled_dot_product_attention(q, k, v, heads); }, copy);
  print_gbps("attention step (B, S, d)", shape, bytes, t.ours, bytes, t.baseline);
  t = median_seconds([&] { nn::functional::gathered_attention(q, gathered, heads); }, copy);
  print_gbps("attention step, KV cache", shape, bytes, t.ours, bytes, t.baseline);
}

void run_suite() {
  bench_matmul(1, 1024, 256, 256);
  bench_matmul(1, 1024, 256, 1024);
  bench_matmul(256, 32, 32, 32);

  // Shapes of the benchmark Transformer: batch 32 x 32 tokens, d 256, 8 heads, vocabulary 1000.
  bench_rowwise("softmax", {32, 8, 32, 32}, [](const Tensor& x) { return softmax(x, -1); }, 2, 5);
  bench_rowwise("softmax", {1024, 1000}, [](const Tensor& x) { return softmax(x, -1); }, 2, 5);
  const Tensor weight = ones({256}).set_requires_grad(), bias = zeros({256}).set_requires_grad();
  bench_rowwise("layer_norm", {1024, 256}, [&](const Tensor& x) { return layer_norm(x, weight, bias); }, 2, 5,
                {weight, bias});
  Generator generator(0);
  Indices targets = Indices::from_shape({1024});
  for (auto& target : targets) target = static_cast<std::int64_t>(generator.integer(1000));
  bench_rowwise("cross_entropy", {1024, 1000}, [&](const Tensor& x) { return cross_entropy(x, targets); }, 1, 3);
  // The feed-forward layer's dropout: x read, y and a byte mask written; dy and the mask read, dx written.
  bench_rowwise("dropout", {1024, 1024}, [&](const Tensor& x) { return dropout(x, 0.1f, true, generator); }, 2.25, 4.5);
  // Batch 4: keys and values in L2 (the kernel's own speed); greedy decoding at batch 32 (the
  // source's 32 keys; the cache half and wholly full), and the beams of batch 32 (128 rows).
  bench_attention_step(4, 32);
  bench_attention_step(32, 32);
  bench_attention_step(32, 64);
  bench_attention_step(128, 32);
}

}  // namespace

/// The median of 2000 timings of region(), in microseconds.
template <class Region>
double median_region_us(Region&& region) {
  std::vector<double> times(2000);
  for (int i = 0; i < kWarmup; ++i) region();
  for (double& t : times) {
    const auto start = std::chrono::steady_clock::now();
    region();
    t = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

/// An empty parallel region on every thread, and one whose `if` clause is false: libgomp makes the
/// second too, on one thread, which is why the kernels branch before any region
/// (kernels::use_threads).
void print_region_costs() {
  std::vector<int> touched(static_cast<std::size_t>(omp_get_max_threads()), 0);
  const double full = median_region_us([&] {
#pragma omp parallel
    touched[static_cast<std::size_t>(omp_get_thread_num())] += 1;
  });
  const bool never = touched[0] < 0;  // false, and not known to the compiler
  const double skipped = median_region_us([&] {
#pragma omp parallel if (never)
    touched[static_cast<std::size_t>(omp_get_thread_num())] += 1;
  });
  const int threads = omp_get_max_threads();
  std::printf("a parallel region: %.2f us on %d thread%s; one whose if clause is false: %.2f us\n", full, threads,
              threads == 1 ? "" : "s", skipped);
}

int main(int argc, char** argv) {
  std::string cache_mode = "both";
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (std::strcmp(argv[i], "--threads") == 0 && has_value && std::atoi(argv[i + 1]) > 0) {
      set_num_threads(std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--reps") == 0 && has_value && std::atoi(argv[i + 1]) > 0) {
      min_reps = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--cache") == 0 && has_value &&
               (std::strcmp(argv[i + 1], "cold") == 0 || std::strcmp(argv[i + 1], "warm") == 0 ||
                std::strcmp(argv[i + 1], "both") == 0)) {
      cache_mode = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--threads N] [--reps R] [--cache cold|warm|both]\n", argv[0]);
      return 2;
    }
  }
  std::cout << runtime_info() << std::endl;
  print_region_costs();
  std::printf("median of >= %d repetitions after %d warm-up runs\n", min_reps, kWarmup);
  if (cache_mode != "warm") {
    cold_cache = true;
    std::printf("cold allocator cache (emptied before every run: fresh blocks from the system):\n");
    run_suite();
  }
  if (cache_mode != "cold") {
    cold_cache = false;
    std::printf("warm allocator cache (each run reuses the blocks the previous one freed):\n");
    run_suite();
  }
  return 0;
}
