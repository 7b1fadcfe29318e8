// Speed of the row-wise kernels (softmax, log-softmax, layer norm) through the tape, in effective
// GB/s: bytes = every array read or written once per pass. A forward reads x and writes y (2
// arrays); a backward reads y (softmax) or x (layer norm) and dy and writes dx (3 arrays).
// backward(dy) itself first copies dy into the tape (one more read and write, not counted).
// Each op allocates its output. With xgrad's allocator cache emptied before every run, each is a
// fresh block from the system whose pages fault in on first touch (page faults per run), which
// can cost as much as the kernel; with the cache warm, the block the previous run freed is
// reused (--cache cold|warm|both, default both).
//
//   bench_rowwise [--rows 8192] [--cols 512] [--reps 20] [--threads N] [--cache both]
//
// Threads: OMP_NUM_THREADS, or --threads, or every core. Columns: wall time (median and best
// run) and GB/s from each, CPU time of the process (summed over threads; on a machine shared with
// other jobs it shows the cost of a run without the waits), minor page faults per run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <time.h>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

struct Options {
  std::size_t rows = 8192, cols = 512;
  int reps = 20;
  int threads = 0;  // 0: leave the default
  std::string cache_mode = "both";
};

[[noreturn]] void usage(const char* program) {
  std::fprintf(stderr, "usage: %s [--rows R] [--cols C] [--reps N] [--threads T] [--cache cold|warm|both]\n",
               program);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) usage(argv[0]);
    const std::string text = argv[++i];
    if (flag == "--cache") {
      if (text != "cold" && text != "warm" && text != "both") usage(argv[0]);
      o.cache_mode = text;
      continue;
    }
    const long value = std::strtol(text.c_str(), nullptr, 10);
    if (value <= 0) usage(argv[0]);
    if (flag == "--rows") o.rows = static_cast<std::size_t>(value);
    else if (flag == "--cols") o.cols = static_cast<std::size_t>(value);
    else if (flag == "--reps") o.reps = static_cast<int>(value);
    else if (flag == "--threads") o.threads = static_cast<int>(value);
    else usage(argv[0]);
  }
  return o;
}

long minor_page_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

/// CPU time of the whole process (all threads), in seconds.
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Timing {
  double median = 0, best = 0;  // wall seconds
  double cpu = 0;               // median CPU seconds
  double faults = 0;            // minor page faults per run
};

bool cold_cache = false;  // empty xgrad's allocator cache before every run

/// Wall time of `body` over `reps` runs, after two warm-up runs.
Timing time_runs(int reps, const std::function<void()>& body) {
  body();
  body();
  std::vector<double> times, cpu;
  const long faults_before = minor_page_faults();
  for (int r = 0; r < reps; ++r) {
    if (cold_cache) empty_cache();
    const double cpu_start = cpu_seconds();
    const auto start = std::chrono::steady_clock::now();
    body();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    cpu.push_back(cpu_seconds() - cpu_start);
  }
  Timing t;
  t.faults = static_cast<double>(minor_page_faults() - faults_before) / reps;
  std::sort(cpu.begin(), cpu.end());
  t.cpu = cpu[cpu.size() / 2];
  std::sort(times.begin(), times.end());
  t.median = times[times.size() / 2];
  t.best = times.front();
  return t;
}

void report(const char* what, double arrays, std::size_t elements, const Timing& t) {
  const double gb = arrays * static_cast<double>(elements) * sizeof(float) / 1e9;
  std::printf("  %-30s %9.3f %9.3f %9.2f %9.2f %9.3f %9.0f\n", what, t.median * 1e3, t.best * 1e3, gb / t.median,
              gb / t.best, t.cpu * 1e3, t.faults);
}

void run_suite(const Options& o) {
  const std::size_t n = o.rows * o.cols;
  std::printf("  %-30s %9s %9s %9s %9s %9s %9s\n", "", "median ms", "best ms", "GB/s med", "GB/s best", "cpu ms",
              "faults");
  const Tensor x = randn({o.rows, o.cols});
  const Tensor dy = randn({o.rows, o.cols});
  Tensor xg = x.detach().set_requires_grad(true);
  auto fwd_bwd = [&](const std::function<Tensor(const Tensor&)>& op) {
    return [&, op] {
      op(xg).backward(dy);
      xg.zero_grad();
    };
  };

  report("copy y = x (for scale)", 2, n, time_runs(o.reps, [&] { Array y = x.value(); }));
  for (std::int64_t axis : {-1, 0}) {
    const std::string along = axis == -1 ? "" : " (axis 0)";
    auto soft = [axis](const Tensor& t) { return softmax(t, axis); };
    auto log_soft = [axis](const Tensor& t) { return log_softmax(t, axis); };
    report(("softmax fwd" + along).c_str(), 2, n, time_runs(o.reps, [&] { soft(x); }));
    report(("softmax fwd+bwd" + along).c_str(), 5, n, time_runs(o.reps, fwd_bwd(soft)));
    report(("log_softmax fwd" + along).c_str(), 2, n, time_runs(o.reps, [&] { log_soft(x); }));
    report(("log_softmax fwd+bwd" + along).c_str(), 5, n, time_runs(o.reps, fwd_bwd(log_soft)));
  }

  const Tensor weight = ones({o.cols}).set_requires_grad(true);
  const Tensor bias = zeros({o.cols}).set_requires_grad(true);
  auto norm = [&](const Tensor& t) { return layer_norm(t, weight, bias); };
  report("layer_norm fwd", 2, n, time_runs(o.reps, [&] { norm(x); }));
  report("layer_norm fwd+bwd", 5, n, time_runs(o.reps, [&] {
           norm(xg).backward(dy);
           xg.zero_grad();
           weight.zero_grad();
           bias.zero_grad();
         }));
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  if (o.threads > 0) set_num_threads(o.threads);
  std::cout << runtime_info() << std::endl;
  std::printf("row-wise kernels on [%zu, %zu], %d thread(s), %d runs each\n", o.rows, o.cols, get_num_threads(),
              o.reps);
  if (o.cache_mode != "warm") {
    cold_cache = true;
    std::printf("cold allocator cache (emptied before every run: fresh blocks from the system):\n");
    run_suite(o);
  }
  if (o.cache_mode != "cold") {
    cold_cache = false;
    std::printf("warm allocator cache (each run reuses the blocks the previous one freed):\n");
    run_suite(o);
  }
  return 0;
}
