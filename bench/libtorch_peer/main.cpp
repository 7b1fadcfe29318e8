// The same Transformer as build/bin/bench_transformer, trained and decoded with libtorch's
// torch::nn::Transformer: V = 1000 source and target, the `small` config (d 256, 8 heads, 3+3
// layers, d_ff 1024) or `base` (d 512, 8 heads, 6+6, d_ff 2048), dropout 0.1, batch 32, source
// and target length 32, Adam, cross-entropy. Decoding, 64 new tokens at batch 1 and 32, two ways:
// - greedy re-feed (what torch::nn::Transformer offers): the whole prefix through the decoder at
//   every step;
// - greedy with a KV cache, the way Hugging Face's generate() does it: each step runs only the new
//   position through the decoder layers' own modules, self-attention keys and values appended to
//   a per-layer cache, cross-attention keys and values projected once (median of 9 runs at batch
//   1, of 3 at batch 32).
//   libtorch_peer [--threads N] [--steps N] [--model small|base] [--length N] [--decode]
//   (--length: training's source and target length, 32 by default, below 512)
// The first line says what runs (libtorch's version, its BLAS and its core, threads); then one
// JSON line per measurement, in bench_transformer's shape, each with the peak resident memory of
// the process so far.
#include <torch/torch.h>
#include <torch/version.h>

#include <dlfcn.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr int64_t kVocab = 1000, kHeads = 8, kMaxLen = 512;
constexpr double kDropout = 0.1;
// The config: `small` unless --model base.
int64_t kModel = 256, kLayers = 3, kFeedForward = 1024;

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

  /// (L, B) -> (L, B, d), the first position being `start`.
  torch::Tensor embed(torch::nn::Embedding& table, const torch::Tensor& tokens, int64_t start = 0) {
    auto scaled = table->forward(tokens) * std::sqrt(static_cast<double>(kModel));
    return dropout->forward(scaled + positions.narrow(0, start, tokens.size(0)));
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

void train(int threads, int steps, int64_t length) {
  const int64_t batch = 32;
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
  std::printf("{\"impl\":\"libtorch\",\"mode\":\"train\",\"model\":\"%s\",\"threads\":%d,\"V\":%lld,\"D\":%lld,\"H\":%lld,\"L\":%lld,"
              "\"FF\":%lld,\"B\":%lld,\"S\":%lld,\"steps\":%d,\"step_ms\":%.1f,\"tokens_per_s\":%.0f,\"loss\":%.4f,"
              "\"peak_rss_mb\":%.1f}\n",
              kModel == 256 ? "small" : "base", threads, (long long)kVocab, (long long)kModel, (long long)kHeads, (long long)kLayers,
              (long long)kFeedForward, (long long)batch, (long long)length, steps, seconds * 1e3, batch * length / seconds,
              loss, peak_rss_mb());
}

/// (T, B, H*dh) -> (B, H, T, dh)
torch::Tensor heads(const torch::Tensor& x) {
  return x.view({x.size(0), x.size(1), kHeads, kModel / kHeads}).permute({1, 2, 0, 3});
}

/// (B, H, T, dh) -> (T, B, H*dh)
torch::Tensor merge_heads(const torch::Tensor& x) {
  return x.permute({2, 0, 1, 3}).reshape({x.size(2), x.size(0), kModel});
}

/// Greedy decoding of `new_tokens` with a KV cache, through the decoder layers' own modules.
torch::Tensor greedy_kv(Seq2Seq& model, const torch::Tensor& src, int64_t new_tokens, int64_t bos) {
  namespace F = torch::nn::functional;
  const int64_t batch = src.size(1), d = kModel;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d / kHeads));
  auto memory = model->encode(src);  // (S, B, d)
  auto* decoder = model->transformer->decoder.ptr<torch::nn::TransformerDecoderImpl>().get();
  std::vector<torch::nn::TransformerDecoderLayerImpl*> layers;
  std::vector<torch::Tensor> cross_k, cross_v, self_k, self_v;
  for (const auto& layer : *decoder->layers) {
    auto* l = layer->as<torch::nn::TransformerDecoderLayerImpl>();
    layers.push_back(l);
    const auto& w = l->multihead_attn->in_proj_weight;
    const auto& b = l->multihead_attn->in_proj_bias;
    cross_k.push_back(heads(F::linear(memory, w.narrow(0, d, d), b.narrow(0, d, d))));  // (B, H, S, dh)
    cross_v.push_back(heads(F::linear(memory, w.narrow(0, 2 * d, d), b.narrow(0, 2 * d, d))));
  }
  self_k.resize(layers.size());
  self_v.resize(layers.size());
  auto token = torch::full({1, batch}, bos, torch::kLong);
  std::vector<torch::Tensor> out;
  for (int64_t t = 0; t < new_tokens; ++t) {
    auto x = model->embed(model->tgt_embed, token, t);  // (1, B, d)
    for (std::size_t i = 0; i < layers.size(); ++i) {
      auto* l = layers[i];
      auto qkv = F::linear(x, l->self_attn->in_proj_weight, l->self_attn->in_proj_bias).chunk(3, -1);
      auto q = heads(qkv[0]), k = heads(qkv[1]), v = heads(qkv[2]);  // (B, H, 1, dh)
      self_k[i] = t == 0 ? k : torch::cat({self_k[i], k}, 2);
      self_v[i] = t == 0 ? v : torch::cat({self_v[i], v}, 2);
      auto a = torch::softmax(torch::matmul(q, self_k[i].transpose(-1, -2)) * scale, -1).matmul(self_v[i]);
      x = l->norm1(x + l->self_attn->out_proj(merge_heads(a)));
      const auto& w = l->multihead_attn->in_proj_weight;
      const auto& b = l->multihead_attn->in_proj_bias;
      q = heads(F::linear(x, w.narrow(0, 0, d), b.narrow(0, 0, d)));
      a = torch::softmax(torch::matmul(q, cross_k[i].transpose(-1, -2)) * scale, -1).matmul(cross_v[i]);
      x = l->norm2(x + l->multihead_attn->out_proj(merge_heads(a)));
      x = l->norm3(x + l->linear2(torch::relu(l->linear1(x))));
    }
    x = decoder->norm.forward(x);
    token = model->generator->forward(x[-1]).argmax(-1).view({1, batch});
    out.push_back(token);
  }
  return torch::cat(out, 0);
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
    auto print = [&](const char* mode, double seconds) {
      std::printf("{\"impl\":\"libtorch\",\"mode\":\"%s\",\"threads\":%d,\"batch\":%lld,\"new_tokens\":%lld,"
                  "\"ms\":%.1f,\"tokens_per_s\":%.0f,\"peak_rss_mb\":%.1f}\n",
                  mode, threads, (long long)batch, (long long)new_tokens, seconds * 1e3, batch * new_tokens / seconds,
                  peak_rss_mb());
      std::fflush(stdout);
    };
    // The KV cache gives the re-feed's tokens (same model, same greedy choice).
    const auto refeed_tokens = greedy().narrow(0, 1, new_tokens);
    const auto kv_tokens = greedy_kv(model, src, new_tokens, bos);
    if (!torch::equal(refeed_tokens, kv_tokens)) {
      std::fprintf(stderr, "libtorch_peer: the KV-cached decoding disagrees with re-feeding\n");
      std::exit(1);
    }
    // The median of nine runs at batch 1, where a run takes tens of milliseconds and the machine's
    // noise is a large part, of three at larger batches (as bench_transformer's).
    std::vector<double> times;
    const int runs = batch == 1 ? 9 : 3;
    for (int run = 0; run < runs; ++run) {
      const auto start = std::chrono::steady_clock::now();
      greedy_kv(model, src, new_tokens, bos);
      times.push_back(seconds_since(start));
    }
    std::sort(times.begin(), times.end());
    print("greedy_kv", times[times.size() / 2]);
    const auto start = std::chrono::steady_clock::now();
    greedy();
    print("greedy_refeed", seconds_since(start));
  }
}

}  // namespace

/// libtorch's version, the BLAS it calls and, for OpenBLAS, the core it chose.
std::string kernel_line(int threads) {
  std::string blas = "BLAS unknown";
  using Name = char* (*)();
  if (auto core = reinterpret_cast<Name>(dlsym(RTLD_DEFAULT, "openblas_get_corename"))) {
    blas = std::string("OpenBLAS core ") + core();
    if (const char* forced = std::getenv("OPENBLAS_CORETYPE")) blas += std::string(" (OPENBLAS_CORETYPE=") + forced + ")";
  }
  return "kernels: libtorch " + std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." + std::to_string(TORCH_VERSION_PATCH) + ", " + blas + ", " + std::to_string(threads) + " thread" +
         (threads == 1 ? "" : "s");
}

int main(int argc, char** argv) {
  int threads = 1, steps = 10, length = 32;
  bool decoding = false;
  std::string model = "small";
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (!std::strcmp(argv[i], "--threads") && has_value) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--steps") && has_value) steps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--model") && has_value) model = argv[++i];
    else if (!std::strcmp(argv[i], "--length") && has_value) length = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--decode")) decoding = true;
    else {
      std::fprintf(stderr, "usage: libtorch_peer [--threads N] [--steps N] [--model small|base] [--length N] [--decode]\n");
      return 2;
    }
  }
  if (threads < 1 || steps < 1 || length < 1 || length >= kMaxLen || (model != "small" && model != "base")) {
    std::fprintf(stderr, "libtorch_peer: --threads and --steps must be >= 1, --length in [1, %lld), --model small or base\n",
                 (long long)kMaxLen);
    return 2;
  }
  if (model == "base") kModel = 512, kLayers = 6, kFeedForward = 2048;
  torch::set_num_threads(threads);
  std::printf("%s\n", kernel_line(threads).c_str());
  torch::manual_seed(0);
  if (decoding) decode(threads);
  else train(threads, steps, length);
}
