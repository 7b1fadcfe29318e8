// The Transformer benchmark, on the shape of the libtorch peer (bench/libtorch_peer): V = 1000
// source and target, a TransformerConfig preset ("small": d 256, 8 heads, 3+3 layers, d_ff 1024),
// dropout 0.1, batch 32, source and target length 32.
//   bench_transformer [--threads N] [--steps N] [--model small|base] [--profile] [--precision fp32|bf16]
//                     [--length N]                                     one training step
//     (--length: source and target length N instead of 32, for attention's share and memory)
//     (--profile: also the time per op, forward and backward, on stderr)
//   bench_transformer --decode [--threads N] [--model small|base] [--precision fp32|int8|bf16]
//                                                                      greedy and beam decoding
//   bench_transformer --sgemm [--threads N] [--model small|base]       the ceiling: the GEMMs alone
// One JSON line per measurement, each with the peak resident memory of the process so far; in
// decoding, the peak while that mode ran, the model built (and quantized) before it counted.
//
// Training: forward, backward and Adam on one fixed batch (3 warm-up steps, then the mean of
// --steps), in target tokens per second and in achieved GFLOP/s, with the minor page faults per
// step (fresh pages the step's arrays faulted in: 0 once the allocator reuses its blocks).
// The FLOPs are those of every matrix product of the step (step_gemms below), forward and backward; elementwise and row-wise
// work (softmax, layer norm, dropout, Adam) is not counted.
// Decoding: 64 new tokens from a source of 32, greedy with the KV cache and by re-feeding the
// prefix, at batch 1 and 32, and beam search with 4 beams. Tokens/s counts every position
// decoded (batch x steps), as the peer does.
// sgemm: the step's matrix products (the same list, shapes and transposes) run back to back with
// kernels::gemm into preallocated buffers, at 1 and up to N threads, the fastest of 10 runs: the
// rate a step made only of GEMMs would reach. Per-head products run one per thread
// (single-threaded GEMMs in an OpenMP loop), larger ones use the library's threads. Also the
// machine's GEMM peak with the same library: 1024 x 1024 x 256 (peak_gflop_per_s) and 1024^3.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <omp.h>

#include <xgrad/kernels/gemm.hpp>
#include <xgrad/kernels/runtime_info.hpp>
#include <xgrad/models/decoding.hpp>
#include <xgrad/xgrad.hpp>

#include "step_gemms.hpp"

#include <xtensor/xview.hpp>

using namespace xgrad;
using bench::Gemm;
using bench::step_gemms;
using bench::total_flops;

namespace {

constexpr std::size_t kVocab = 1000, kBatch = 32, kSrcLen = 32, kTgtLen = 32, kNewTokens = 64;

double peak_rss_mb() {
  // VmHWM, which reset_peak_rss resets (getrusage's ru_maxrss never goes down).
  if (std::FILE* status = std::fopen("/proc/self/status", "r")) {
    char line[256];
    long kb = -1;
    while (std::fgets(line, sizeof line, status)) {
      if (std::sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
    }
    std::fclose(status);
    if (kb >= 0) return static_cast<double>(kb) / 1024.0;
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // Linux reports kilobytes
}

/// Starts the peak resident memory again from what is resident now (Linux: "5" written to
/// /proc/self/clear_refs resets VmHWM), so that peak_rss_mb() then tells the peak of what runs next.
/// False where the kernel does not allow it: peak_rss_mb() is then the process's whole peak.
bool reset_peak_rss() {
  std::FILE* refs = std::fopen("/proc/self/clear_refs", "w");
  if (!refs) return false;
  const bool written = std::fputs("5", refs) >= 0;
  return std::fclose(refs) == 0 && written;
}

/// Minor page faults of the process so far: a step that allocates fresh pages faults them in.
long minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

/// User plus system CPU time of the process so far: on a busy machine, a measure that waiting for
/// a core does not inflate.
double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec * 1e-6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// --- training -------------------------------------------------------------------------------------

void train(const std::string& model_name, int threads, int steps, bool profile, const std::string& precision,
           std::size_t length) {
  autocast products(precision_from_name(precision));  // bf16: the step's products take bf16 inputs
  models::TransformerConfig config = models::TransformerConfig::preset(model_name, kVocab, kVocab);
  config.dropout = 0.1f;
  config.max_len = std::max(config.max_len, length + 1);
  Generator generator(0);
  models::Transformer model(config, generator);
  model.train();
  optim::Adam adam(model.parameters(), optim::AdamOptions(1e-4));

  // Token ids in [1, V): no padding, as in the peer. tgt (B, T+1): input [0, T), target [1, T].
  Indices src = Indices::from_shape({kBatch, length}), tgt = Indices::from_shape({kBatch, length + 1});
  for (auto& id : src) id = 1 + static_cast<std::int64_t>(generator.integer(kVocab - 1));
  for (auto& id : tgt) id = 1 + static_cast<std::int64_t>(generator.integer(kVocab - 1));
  Indices tgt_in = xt::view(tgt, xt::all(), xt::range(0, length));
  Indices tgt_out = xt::view(tgt, xt::all(), xt::range(1, length + 1));

  std::unique_ptr<Profiler> profiler;
  auto mark = [&](const char* what) {
    if (profiler) profiler->mark(what);
  };
  auto step = [&] {
    adam.zero_grad();
    mark("adam.zero_grad");
    Tensor loss = model.loss(src, tgt_in, tgt_out);
    loss.backward();
    adam.step();
    mark("adam.step");
    return loss.item();
  };
  for (int i = 0; i < 3; ++i) step();  // warm-up: allocator, thread pool
  if (profile) profiler = std::make_unique<Profiler>();
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = cpu_seconds();
  const long faults_start = minor_faults();
  const std::size_t misses_start = memory_cache_misses();
  float loss = 0;
  for (int i = 0; i < steps; ++i) loss = step();
  const double seconds = seconds_since(start) / steps, cpu = (cpu_seconds() - cpu_start) / steps;
  const double faults = static_cast<double>(minor_faults() - faults_start) / steps;
  const double misses = static_cast<double>(memory_cache_misses() - misses_start) / steps;
  const double gflop = total_flops(step_gemms(config, kBatch, length, length)) * 1e-9;
  std::printf("{\"impl\":\"xgrad\",\"mode\":\"train\",\"precision\":\"%s\",\"model\":\"%s\",\"threads\":%d,\"V\":%zu,\"D\":%zu,\"H\":%zu,"
              "\"L\":%zu,\"FF\":%zu,\"B\":%zu,\"S\":%zu,\"steps\":%d,\"step_ms\":%.1f,\"cpu_ms\":%.1f,\"tokens_per_s\":%.0f,"
              "\"gflop_per_step\":%.2f,\"gflop_per_s\":%.1f,\"minor_faults_per_step\":%.0f,"
              "\"cache_misses_per_step\":%.1f,\"loss\":%.4f,\"reserved_mb\":%.1f,\"peak_rss_mb\":%.1f}\n",
              precision.c_str(), model_name.c_str(), threads, kVocab, config.d_model, config.nhead, config.num_encoder_layers,
              config.dim_feedforward, kBatch, length, steps, seconds * 1e3, cpu * 1e3, kBatch * length / seconds, gflop,
              gflop / seconds, faults, misses, loss, memory_reserved() / 1048576.0, peak_rss_mb());
  if (profiler) std::fprintf(stderr, "per step, %d steps:\n%s", steps, profiler->table(steps).c_str());
}

// --- decoding -------------------------------------------------------------------------------------

void print_decode(const char* mode, const std::string& precision, int threads, std::size_t batch, std::size_t steps,
                  double seconds) {
  std::printf("{\"impl\":\"xgrad\",\"mode\":\"%s\",\"precision\":\"%s\",\"threads\":%d,\"batch\":%zu,"
              "\"new_tokens\":%zu,\"ms\":%.1f,\"tokens_per_s\":%.0f,\"peak_rss_mb\":%.1f}\n",
              mode, precision.c_str(), threads, batch, steps, seconds * 1e3, batch * steps / seconds, peak_rss_mb());
  std::fflush(stdout);
}

/// The bytes of the model's weights: fp32 parameters (a released one has no columns left), and
/// the int8 values, scales and row sums of the quantized layers; and the resident memory now.
void print_weights(const nn::Module& model, const std::string& precision) {
  double bytes = 0;
  for (const Tensor& p : model.parameters()) bytes += 4.0 * static_cast<double>(p.numel());
  for (const auto& [name, module] : model.named_modules()) {
    const auto* layer = dynamic_cast<const nn::Quantizable*>(module);
    if (!layer) continue;
    for (const auto& [weight_name, weight] : layer->int8_weights()) {
      const kernels::QuantizedWeight& q = weight->get();
      bytes += static_cast<double>(q.values.size()) + 4.0 * static_cast<double>(q.scales.size() + q.row_sums.size());
    }
  }
  empty_cache();
  long pages = 0, resident = 0;
  if (std::FILE* statm = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(statm, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(statm);
  }
  std::printf("{\"impl\":\"xgrad\",\"mode\":\"weights\",\"precision\":\"%s\",\"weights_mb\":%.2f,\"resident_mb\":%.1f}\n",
              precision.c_str(), bytes / 1048576.0, static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / 1048576.0);
}

/// The median wall time of `runs` calls of f.
template <class F>
double median_seconds(int runs, F&& f) {
  std::vector<double> times;
  for (int r = 0; r < runs; ++r) {
    const auto start = std::chrono::steady_clock::now();
    f();
    times.push_back(seconds_since(start));
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

void decode(const std::string& model_name, int threads, const std::string& precision) {
  models::TransformerConfig config = models::TransformerConfig::preset(model_name, kVocab, kVocab);
  Generator generator(1);
  models::Transformer model(config, generator);
  model.eval();
  if (precision == "int8") nn::quantize_dynamic(model, nn::Fp32Weights::release);
  print_weights(model, precision);
  // From here the peak counts the model as it decodes (a released fp32 weight no longer), not the
  // fp32 model built before quantizing it; each mode below starts the peak again.
  const auto start_peak = [] {
    empty_cache();
    static bool warned = false;
    if (!reset_peak_rss() && !warned) {
      std::fprintf(stderr, "bench_transformer: cannot reset the peak resident memory (/proc/self/clear_refs): "
                           "peak_rss_mb is the whole process's\n");
      warned = true;
    }
  };
  autocast products(precision == "bf16" ? Precision::bf16 : Precision::fp32);
  const std::int64_t bos = 1;
  for (const std::size_t batch : {std::size_t{1}, std::size_t{32}}) {
    Indices src = Indices::from_shape({batch, kSrcLen});  // (B, S)
    for (auto& id : src) id = 1 + static_cast<std::int64_t>(generator.integer(kVocab - 1));
    // The peer decodes 64 tokens whatever they are: take as EOS an id no row emits in 64 steps
    // (greedy output does not depend on which id ends a row, only where it stops).
    std::int64_t eos = 2;
    for (int attempt = 0; attempt < 100; ++attempt) {
      const Indices out = models::greedy_decode(model, src, bos, eos, kNewTokens);
      if (out.shape()[1] == kNewTokens && std::find(out.begin(), out.end(), eos) == out.end()) break;
      do ++eos;
      while (std::find(out.begin(), out.end(), eos) != out.end());
    }
    // The KV cache and beam search take tens of milliseconds at batch 1, where the machine's
    // noise is a large part: their time is the median of nine runs there, of three at batch 32
    // (as the peer's). Re-feeding runs once, as the peer does.
    const int runs = batch == 1 ? 9 : 3;
    for (const bool kv_cache : {true, false}) {
      start_peak();
      models::greedy_decode(model, src, bos, eos, 4, kv_cache);  // warm-up
      std::size_t steps = 0;
      const double seconds = median_seconds(kv_cache ? runs : 1, [&] {
        steps = models::greedy_decode(model, src, bos, eos, kNewTokens, kv_cache).shape()[1];
      });
      print_decode(kv_cache ? "greedy_kv" : "greedy_refeed", precision, threads, batch, steps, seconds);
    }
    models::BeamSearchOptions beam;
    beam.beam_size = 4;
    std::size_t longest = 0;  // a source can finish before max_len: count the steps it ran
    start_peak();
    const double seconds = median_seconds(runs, [&] {
      const auto hypotheses = models::beam_search(model, src, bos, eos, kNewTokens, beam);
      longest = 0;
      for (const auto& best : hypotheses) {
        for (const auto& h : best) longest = std::max(longest, h.tokens.size());
      }
    });
    print_decode("beam4", precision, threads, batch, longest, seconds);
  }
}

// --- the sgemm ceiling ----------------------------------------------------------------------------

void sgemm_ceiling(const std::string& model_name, int max_threads) {
  const models::TransformerConfig config = models::TransformerConfig::preset(model_name, kVocab, kVocab);
  const std::vector<Gemm> gemms = step_gemms(config, kBatch, kSrcLen, kTgtLen);
  std::size_t largest = 0;  // elements of the largest operand
  for (const Gemm& g : gemms) largest = std::max({largest, g.M * g.K, g.K * g.N, g.M * g.N});
  const int slots = std::max(max_threads, 1);
  // Per thread: A, B and C buffers, filled once (their contents do not change GEMM speed).
  std::vector<std::vector<float>> buffers(3 * slots, std::vector<float>(largest, 0.01f));
  auto run = [&](const Gemm& g, int slot) {
    const int m = static_cast<int>(g.M), n = static_cast<int>(g.N), k = static_cast<int>(g.K);
    kernels::gemm(g.trans_a, g.trans_b, m, n, k, 1.f, buffers[3 * slot].data(), buffers[3 * slot + 1].data(), 0.f,
                  buffers[3 * slot + 2].data());
  };
  auto step = [&] {
    for (const Gemm& g : gemms) {
      if (g.per_head) {
        const auto count = static_cast<std::ptrdiff_t>(g.count);
#pragma omp parallel for schedule(static)
        for (std::ptrdiff_t i = 0; i < count; ++i) run(g, omp_get_thread_num());
      } else {
        for (std::size_t i = 0; i < g.count; ++i) run(g, 0);
      }
    }
  };
  const double flops = total_flops(gemms);
  for (int threads = 1; threads <= max_threads; ++threads) {
    set_num_threads(threads);
    step();  // warm-up
    double best = 1e30;
    for (int rep = 0; rep < 10; ++rep) {  // the fastest of 10: the machine's noise only slows
      const auto start = std::chrono::steady_clock::now();
      step();
      best = std::min(best, seconds_since(start));
    }
    // The machine's GEMM peak with this library: 1024 x 1024 x 256, the fastest of 10, and the
    // textbook square 1024^3 for reference.
    auto peak = [&](int m, int n, int k) {
      std::vector<float> a(std::size_t(m) * k, 0.01f), b(std::size_t(k) * n, 0.01f), c(std::size_t(m) * n);
      double fastest = 1e30;
      for (int rep = 0; rep < 10; ++rep) {
        const auto start = std::chrono::steady_clock::now();
        kernels::gemm(false, false, m, n, k, 1.f, a.data(), b.data(), 0.f, c.data());
        fastest = std::min(fastest, seconds_since(start));
      }
      return 2.0 * m * n * k * 1e-9 / fastest;
    };
    std::printf("{\"impl\":\"sgemm\",\"mode\":\"sgemm\",\"model\":\"%s\",\"threads\":%d,\"gemms_per_step\":%zu,"
                "\"gflop_per_step\":%.2f,\"step_ms\":%.1f,\"gflop_per_s\":%.1f,\"peak_gflop_per_s\":%.1f,"
                "\"square1024_gflop_per_s\":%.1f,\"peak_rss_mb\":%.1f}\n",
                model_name.c_str(), threads, gemms.size(), flops * 1e-9, best * 1e3, flops * 1e-9 / best,
                peak(1024, 1024, 256), peak(1024, 1024, 1024), peak_rss_mb());
    std::fflush(stdout);
  }
}

int usage() {
  std::fprintf(stderr, "usage: bench_transformer [--threads N] [--steps N] [--model small|base] [--profile] [--precision fp32|bf16|int8] [--length N] [--decode | --sgemm]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = get_num_threads(), steps = 10, length = static_cast<int>(kSrcLen);
  std::string model = "small", mode = "train", precision = "fp32";
  bool profile = false;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (!std::strcmp(argv[i], "--threads") && has_value) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--steps") && has_value) steps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--model") && has_value) model = argv[++i];
    else if (!std::strcmp(argv[i], "--decode")) mode = "decode";
    else if (!std::strcmp(argv[i], "--precision") && has_value) precision = argv[++i];
    else if (!std::strcmp(argv[i], "--sgemm")) mode = "sgemm";
    else if (!std::strcmp(argv[i], "--profile")) profile = true;
    else if (!std::strcmp(argv[i], "--length") && has_value) length = std::atoi(argv[++i]);
    else return usage();
  }
  if (threads < 1 || steps < 1 || length < 1 || (length != static_cast<int>(kSrcLen) && mode != "train") || (model != "small" && model != "base")) return usage();
  if (precision != "fp32" && precision != "int8" && precision != "bf16") return usage();
  if (precision == "int8" && mode != "decode") return usage();
  set_num_threads(threads);
  std::cout << runtime_info() << std::endl;  // the first line: what runs (compare.sh keeps it)
  if (precision != "fp32") std::cerr << runtime_info().precision_summary() << std::endl;
  if (mode == "train") train(model, threads, steps, profile, precision, static_cast<std::size_t>(length));
  else if (mode == "decode") decode(model, threads, precision);
  else sgemm_ceiling(model, threads);
}
