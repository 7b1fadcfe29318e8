// Greedy decoding speed, KV cache against re-feeding the prefix: the "small" preset (D 256,
// 8 heads, 3+3 layers, F 1024) with random weights, vocabulary 8000, source length 32, up to 64
// output tokens (a row stops at EOS: only emitted tokens are counted; "steps" is the length run).
// One JSON line per measurement.
//   build/bin/bench_decode
#include <chrono>
#include <cstdio>

#include <xgrad/models/decoding.hpp>
#include <xgrad/xgrad.hpp>

using namespace xgrad;
using namespace xgrad::models;

int main() {
  const std::size_t vocab = 8000, src_len = 32, out_len = 64;
  TransformerConfig config = TransformerConfig::preset("small", vocab, vocab);
  config.dropout = 0.f;
  Generator generator(1);
  Transformer model(config, generator);
  model.eval();
  for (const std::size_t batch : {std::size_t{1}, std::size_t{32}}) {
    Indices src = Indices::from_shape({batch, src_len});  // (B, S)
    for (std::size_t i = 0; i < src.size(); ++i) src.data()[i] = 1 + static_cast<std::int64_t>(generator.integer(vocab - 1));
    for (const bool kv_cache : {true, false}) {
      greedy_decode(model, src, 1, 2, 4, kv_cache);  // warm-up: thread pool, allocator
      const auto start = std::chrono::steady_clock::now();
      const Indices out = greedy_decode(model, src, 1, 2, out_len, kv_cache);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::size_t tokens = 0;  // emitted, EOS included, padding after it not
      for (std::size_t i = 0; i < out.size(); ++i) tokens += out.data()[i] != config.pad_id;
      std::printf(
          "{\"bench\": \"decode\", \"preset\": \"small\", \"batch\": %zu, \"src_len\": %zu, \"steps\": %zu, "
          "\"kv_cache\": %s, \"seconds\": %.4f, \"tokens_per_s\": %.1f}\n",
          batch, src_len, out.shape()[1], kv_cache ? "true" : "false", seconds, tokens / seconds);
      std::fflush(stdout);
    }
  }
}
