// `seq2seq eval` and `seq2seq translate`: using a trained checkpoint.
#include "seq2seq.hpp"

#include <cstdio>
#include <filesystem>
#include <iostream>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/core/precision.hpp>
#include <xgrad/kernels/runtime_info.hpp>
#include <xgrad/data/corpus.hpp>
#include <xgrad/data/metrics.hpp>
#include <xgrad/nn/quantized.hpp>

namespace seq2seq {

namespace fs = std::filesystem;
using xgrad::Error;

namespace {

/// The settings of the run a checkpoint belongs to (RUN/checkpoints/step-N -> RUN/args.json).
std::optional<TrainSettings> run_settings(const std::string& checkpoint_dir) {
  const fs::path dir = fs::canonical(checkpoint_dir);
  for (const fs::path& candidate : {dir, dir.parent_path().parent_path()}) {
    if (std::optional<TrainSettings> settings = TrainSettings::load(candidate.string())) return settings;
  }
  return std::nullopt;
}

}  // namespace

void apply_precision(xgrad::models::Transformer& model, const DecodeSettings& decoding) {
  if (decoding.precision == "fp32") return;
  if (decoding.precision == "bf16") {
    const xgrad::RuntimeInfo kernels = xgrad::runtime_info();
    std::fprintf(stderr, "seq2seq: %sbf16 here is %s\n", kernels.bf16_native ? "" : "warning: ", kernels.bf16.c_str());
    return;
  }
  if (decoding.precision != "int8") {
    throw Error(fmt::format("--precision must be fp32, int8 or bf16, not '{}'", decoding.precision));
  }
  // Decoding only: the quantized layers' fp32 weights are freed (a tied embedding's stay), or
  // were never made (an int8 checkpoint: load_checkpoint).
  const std::size_t layers = xgrad::nn::quantize_dynamic(model, xgrad::nn::Fp32Weights::release);
  std::fprintf(stderr, "seq2seq: int8: %zu linear layers with int8 weights (one scale per output row, fp32 weights "
                       "freed), activations quantized per row; norms, softmax and residuals in fp32\n", layers);
}

int eval_command(const std::string& model_path, const std::string& test_file, const std::string& split,
                 const DecodeSettings& decoding, std::size_t limit) {
  const Checkpoint checkpoint = load_checkpoint(model_path, decoding.precision == "int8");
  apply_precision(*checkpoint.model, decoding);
  xgrad::autocast products(decoding.precision == "bf16" ? xgrad::Precision::bf16 : xgrad::Precision::fp32);
  std::vector<xgrad::data::Example> pairs;
  std::string what;
  if (!test_file.empty()) {
    pairs = xgrad::data::read_tsv(test_file, &std::cerr);
    what = test_file;
  } else {
    const std::optional<TrainSettings> settings = run_settings(checkpoint.dir);
    if (!settings || settings->data.user_corpus()) {
      throw Error(fmt::format("'{}' was not trained on a built-in task: give the pairs to score with --test FILE",
                              model_path));
    }
    const xgrad::data::Splits splits = load_splits(settings->data);
    if (split == "test") pairs = splits.test;
    else if (split == "valid") pairs = splits.valid;
    else if (split == "train") pairs = splits.train;
    else throw Error(fmt::format("--split must be train, valid or test, not '{}'", split));
    what = fmt::format("task {}, {} split", settings->data.task, split);
  }
  if (limit > 0 && pairs.size() > limit) pairs.resize(limit);
  const Scores scores = evaluate(*checkpoint.model, *checkpoint.tokenizer, pairs, pairs.size(), decoding);
  std::printf("%s: %zu pairs, %s decoding, %s\n", what.c_str(), scores.pairs,
              decoding.beam > 1 ? fmt::format("beam {}", decoding.beam).c_str() : "greedy", decoding.precision.c_str());
  std::printf("exact match %.2f%%\nBLEU        %.2f\nchrF        %.2f\nloss        %.4f (perplexity %.3f)\n"
              "token acc.  %.2f%%\n",
              100 * scores.exact_match, scores.bleu, scores.chrf, scores.loss, scores.perplexity,
              100 * scores.token_accuracy);
  return 0;
}

int translate_command(const std::string& model_path, const DecodeSettings& decoding) {
  const Checkpoint checkpoint = load_checkpoint(model_path, decoding.precision == "int8");
  apply_precision(*checkpoint.model, decoding);
  xgrad::autocast products(decoding.precision == "bf16" ? xgrad::Precision::bf16 : xgrad::Precision::fp32);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  bool failed = false;
  std::vector<bool> bad(lines.size(), false);
  // A line that is not text (invalid UTF-8, a NUL byte) gets a message and an empty output line;
  // the others are translated. The exit code is then 1.
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (const char* problem = xgrad::data::not_text(lines[i])) {
      std::fprintf(stderr, "seq2seq translate: line %zu: %s: %s (an empty line is written for it)\n", i + 1, problem,
                   xgrad::printable(lines[i], 60).c_str());
      lines[i].clear();
      bad[i] = true;
      failed = true;
    }
  }
  std::vector<std::string> problems;
  const std::vector<std::string> out = translate(*checkpoint.model, *checkpoint.tokenizer, lines, decoding, &problems);
  for (std::size_t i = 0; i < problems.size(); ++i) {
    if (problems[i].empty() || bad[i]) continue;  // translated, or already reported
    std::fprintf(stderr, "seq2seq translate: line %zu: %s (an empty line is written for it)\n", i + 1,
                 problems[i].c_str());
    if (!lines[i].empty()) failed = true;  // an empty input line gives an empty line, as asked
  }
  for (const std::string& translation : out) std::printf("%s\n", translation.c_str());
  return failed ? 1 : 0;
}

}  // namespace seq2seq
