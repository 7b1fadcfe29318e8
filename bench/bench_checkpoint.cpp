// The memory of checkpoints: the peak resident memory of building a Transformer, saving it (fp32
// and int8) and loading it back, each in a process of its own (fork; the child's peak from wait4),
// beside the size of the files and of the model's fp32 weights; and loading either file for int8
// decoding (models::load_int8).
//   bench_checkpoint [--model small|base|big] [--vocab N] [--dir D]
// One JSON line per measurement. A step that copied the model, or widened its int8 values to
// int64, would show here as a peak well above the model's own bytes.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>

#include <xgrad/models/checkpoint.hpp>
#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

struct Options {
  std::string model = "base";
  std::size_t vocab = 16000;
  std::string dir;
};

[[noreturn]] void usage(const char* problem) {
  std::fprintf(stderr, "bench_checkpoint: %s\nusage: bench_checkpoint [--model small|base|big] [--vocab N] [--dir D]\n",
               problem);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) usage(("missing value after " + arg).c_str());
    const std::string value = argv[++i];
    if (arg == "--model") o.model = value;
    else if (arg == "--vocab") o.vocab = std::strtoul(value.c_str(), nullptr, 10);
    else if (arg == "--dir") o.dir = value;
    else usage(("unknown option " + arg).c_str());
  }
  if (o.vocab < 2) usage("--vocab must be at least 2");
  return o;
}

/// Runs `work` in a child process and returns the child's peak resident memory in MB (-1 if it
/// failed: its error is on stderr).
double child_peak_mb(const std::function<void()>& work) {
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) {
    std::perror("bench_checkpoint: fork");
    std::exit(1);
  }
  if (pid == 0) {
    try {
      work();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench_checkpoint: %s\n", e.what());
      std::_Exit(1);
    }
    std::fflush(stdout);
    std::_Exit(0);
  }
  int status = 0;
  rusage usage{};
  if (wait4(pid, &status, 0, &usage) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports kilobytes
}

double file_mb(const std::string& path) {
  std::error_code error;
  const auto bytes = std::filesystem::file_size(path, error);
  return error ? -1 : static_cast<double>(bytes) / 1048576.0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const models::TransformerConfig config = models::TransformerConfig::preset(o.model, o.vocab, o.vocab);
  std::string dir = o.dir;
  char scratch[] = "/tmp/xgrad_bench_checkpoint_XXXXXX";
  if (dir.empty()) {
    if (!mkdtemp(scratch)) {
      std::perror("bench_checkpoint: mkdtemp");
      return 1;
    }
    dir = scratch;
  }
  const std::string fp32_path = dir + "/fp32.safetensors", int8_path = dir + "/int8.safetensors";
  const auto build = [&] {
    Generator generator(1);
    return std::make_shared<models::Transformer>(config, generator);
  };
  const auto print = [&](const char* mode, const char* precision, double peak, double file) {
    std::printf("{\"impl\":\"xgrad\",\"mode\":\"%s\",\"precision\":\"%s\",\"model\":\"%s\",\"vocab\":%zu,"
                "\"file_mb\":%.1f,\"peak_rss_mb\":%.1f}\n",
                mode, precision, o.model.c_str(), o.vocab, file, peak);
  };

  const double built = child_peak_mb([&] {
    const auto model = build();
    double floats = 0;
    for (const Tensor& p : model->parameters()) floats += static_cast<double>(p.numel());
    std::printf("{\"impl\":\"xgrad\",\"mode\":\"model\",\"model\":\"%s\",\"vocab\":%zu,\"weights_mb\":%.1f}\n",
                o.model.c_str(), o.vocab, floats * 4 / 1048576.0);
  });
  print("build", "fp32", built, 0);
  // Each peak before the file's size: the child writes the file.
  double peak = child_peak_mb([&] { models::save(*build(), fp32_path); });
  print("build and save", "fp32", peak, file_mb(fp32_path));
  peak = child_peak_mb([&] {
    const auto model = build();
    nn::quantize_dynamic(*model);
    models::save(*model, int8_path);
  });
  print("build, quantize and save", "int8", peak, file_mb(int8_path));
  print("load", "fp32", child_peak_mb([&] { models::load<models::Transformer>(fp32_path); }), file_mb(fp32_path));
  print("load", "int8", child_peak_mb([&] { models::load<models::Transformer>(int8_path); }), file_mb(int8_path));
  peak = child_peak_mb([&] {
    const auto model = models::load<models::Transformer>(int8_path);
    nn::quantize_dynamic(*model, nn::Fp32Weights::release);
  });
  print("load, release fp32", "int8", peak, file_mb(int8_path));
  // For decoding only: no fp32 weight made for the int8 layers (models::load_int8), from either file.
  print("load_int8", "int8", child_peak_mb([&] { models::load_int8<models::Transformer>(int8_path); }),
        file_mb(int8_path));
  print("load_int8", "fp32", child_peak_mb([&] { models::load_int8<models::Transformer>(fp32_path); }),
        file_mb(fp32_path));
  std::filesystem::remove(fp32_path);
  std::filesystem::remove(int8_path);
  if (o.dir.empty()) std::filesystem::remove(dir);
  return 0;
}
