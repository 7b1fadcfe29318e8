// The same Transformer as build/bin/bench_transformer, trained and decoded with libtorch's
// torch::nn::Transformer: V = 1000 source and target, d 256, 8 heads, 3+3 layers, d_ff 1024,
// dropout 0.1, batch 32, source and target length 32, Adam, cross-entropy. Decoding is greedy
// re-feed (torch::nn::Transformer has no KV cache): the whole prefix goes through the decoder at
// each of the 64 steps, at batch 1 and 32.
//   libtorch_peer [--threads N] [--steps N] [--decode]
// One JSON line per measurement, in bench_transformer's shape, each with the peak resident
// memory of the process so far.
#include <torch/torch.h>

#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

constexpr int64_t kVocab = 1000, kModel = 256, kHeads = 8, kLayers = 3, kFeedForward = 1024, kMaxLen = 512;
constexpr double kDropout = 0.1;

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // Linux reports kilobytes
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Token embeddings scaled by sqrt(d), plus the sinusoidal table, then dropout; torch::nn::Transformer
/// in the middle; a linear layer to target logits. Tensors are sequence-first: (L, B).
struct Seq2SeqImpl : torch::nn::Module {
  Seq2SeqImpl() {
    src_embed = register_module("src_embed", torch::nn::Embedding(kVocab, kModel));
    tgt_embed = register_module("tgt_embed", torch::nn::Embedding(kVocab, kModel));
    auto options = torch::nn::TransformerOptions(kModel, kHeads)
                       .num_encoder_layers(kLayers)
                       .num_decoder_layers(kLayers)
                       .dim_feedforward(kFeedForward)
                       .dropout(kDropout);
    transformer = register_module("transformer", torch::nn::Transformer(options));
    generator = register_module("generator", torch::nn::Linear(kModel, kVocab));
    dropout = register_module("dropout", torch::nn::Dropout(kDropout));
    // PE(p, 2i) = sin(p / 10000^(2i/d)), PE(p, 2i+1) = cos(the same angle).
    auto position = torch::arange(kMaxLen, torch::kFloat).unsqueeze(1);                         // (P, 1)
    auto frequency = torch::pow(10000.0, -torch::arange(0, kModel, 2, torch::kFloat) / kModel);  // (d/2)
    auto angle = position * frequency;                                                            // (P, d/2)
    positions = torch::stack({torch::sin(angle), torch::cos(angle)}, 2).reshape({kMaxLen, 1, kModel});
  }

  torch::Tensor embed(torch::nn::Embedding& table, const torch::Tensor& tokens) {  // (L, B) -> (L, B, d)
    auto scaled = table->forward(tokens) * std::sqrt(static_cast<double>(kModel));
    return dropout->forward(scaled + positions.narrow(0, 0, tokens.size(0)));
  }

  torch::Tensor encode(const torch::Tensor& src) { return transformer->encoder.forward(embed(src_embed, src)); }

  torch::Tensor decode(const torch::Tensor& tgt, const torch::Tensor& memory) {  // -> (T, B, d)
    auto causal = torch::nn::TransformerImpl::generate_square_subsequent_mask(tgt.size(0));
    return transformer->decoder.forward(embed(tgt_embed, tgt), memory, causal);
  }

  torch::Tensor forward(const torch::Tensor& src, const torch::Tensor& tgt) {  // -> logits (T, B, V)
    return generator->forward(decode(tgt, encode(src)));
  }

  torch::nn::Embedding src_embed{nullptr}, tgt_embed{nullptr};
  torch::nn::Transformer transformer{nullptr};
  torch::nn::Linear generator{nullptr};
  torch::nn::Dropout dropout{nullptr};
  torch::Tensor positions;  // (P, 1, d), a constant
};
TORCH_MODULE(Seq2Seq);

void train(int threads, int steps) {
  const int64_t batch = 32, length = 32;
  Seq2Seq model;
  model->train();
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(1e-4));
  // Ids in [1, V): no padding. tgt holds length + 1 ids: input is [0, length), target [1, length].
  auto src = torch::randint(1, kVocab, {length, batch}, torch::kLong);
  auto tgt = torch::randint(1, kVocab, {length + 1, batch}, torch::kLong);
  auto tgt_in = tgt.narrow(0, 0, length), tgt_out = tgt.narrow(0, 1, length);
  auto step = [&] {
    adam.zero_grad();
    auto logits = model->forward(src, tgt_in);
    auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, kVocab}), tgt_out.reshape({-1}));
    loss.backward();
    adam.step();
    return loss.item<float>();
  };
  for (int i = 0; i < 3; ++i) step();  // warm-up: allocator, thread pools
  const auto start = std::chrono::steady_clock::now();
  float loss = 0;
  for (int i = 0; i < steps; ++i) loss = step();
  const double seconds = seconds_since(start) / steps;
  std::printf("{\"impl\":\"libtorch\",\"mode\":\"train\",\"threads\":%d,\"V\":%lld,\"D\":%lld,\"H\":%lld,\"L\":%lld,"
              "\"FF\":%lld,\"B\":%lld,\"S\":%lld,\"steps\":%d,\"step_ms\":%.1f,\"tokens_per_s\":%.0f,\"loss\":%.4f,"
              "\"peak_rss_mb\":%.1f}\n",
              threads, (long long)kVocab, (long long)kModel, (long long)kHeads, (long long)kLayers,
              (long long)kFeedForward, (long long)batch, (long long)length, steps, seconds * 1e3, batch * length / seconds,
              loss, peak_rss_mb());
}

void decode(int threads) {
  const int64_t src_len = 32, new_tokens = 64, bos = 1;
  Seq2Seq model;
  model->eval();
  torch::NoGradGuard no_grad;
  for (const int64_t batch : {int64_t{1}, int64_t{32}}) {
    auto src = torch::randint(1, kVocab, {src_len, batch}, torch::kLong);
    // Greedy, every step re-feeding the prefix; only the last position is projected to logits.
    auto greedy = [&] {
      auto memory = model->encode(src);
      auto prefix = torch::full({1, batch}, bos, torch::kLong);
      for (int64_t t = 0; t < new_tokens; ++t) {
        auto hidden = model->decode(prefix, memory);                             // (t+1, B, d)
        auto next = model->generator->forward(hidden[-1]).argmax(-1).view({1, batch});  // (1, B)
        prefix = torch::cat({prefix, next}, 0);
      }
      return prefix;
    };
    greedy();  // warm-up
    const auto start = std::chrono::steady_clock::now();
    greedy();
    const double seconds = seconds_since(start);
    std::printf("{\"impl\":\"libtorch\",\"mode\":\"greedy_refeed\",\"threads\":%d,\"batch\":%lld,\"new_tokens\":%lld,"
                "\"ms\":%.1f,\"tokens_per_s\":%.0f,\"peak_rss_mb\":%.1f}\n",
                threads, (long long)batch, (long long)new_tokens, seconds * 1e3, batch * new_tokens / seconds,
                peak_rss_mb());
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, steps = 10;
  bool decoding = false;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (!std::strcmp(argv[i], "--threads") && has_value) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--steps") && has_value) steps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--decode")) decoding = true;
    else {
      std::fprintf(stderr, "usage: libtorch_peer [--threads N] [--steps N] [--decode]\n");
      return 2;
    }
  }
  if (threads < 1 || steps < 1) {
    std::fprintf(stderr, "libtorch_peer: --threads and --steps must be >= 1\n");
    return 2;
  }
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  if (decoding) decode(threads);
  else train(threads, steps);
}
