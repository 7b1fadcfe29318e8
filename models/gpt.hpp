// A decoder-only language model in the GPT-2 layout: token embedding, learned or rotary
// positions, pre-LN causal self-attention blocks, a final layer norm and an output projection
// tied to the token embedding; dropout as GPT-2's; generation with a per-layer key/value cache;
// checkpoints that carry their configuration.
//
// Dimension legend: B = batch, T = new tokens, P = cached tokens, D = d_model, V = vocabulary.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <xgrad/core/generator.hpp>
#include <xgrad/models/decoding.hpp>
#include <xgrad/nn/container.hpp>
#include <xgrad/nn/dropout.hpp>
#include <xgrad/nn/embedding.hpp>
#include <xgrad/nn/feed_forward.hpp>
#include <xgrad/nn/kv_cache.hpp>
#include <xgrad/nn/layer_norm.hpp>
#include <xgrad/nn/linear.hpp>
#include <xgrad/nn/module.hpp>
#include <xgrad/nn/multihead_attention.hpp>
#include <xgrad/nn/positional.hpp>

namespace xgrad::models {

struct GPTConfig {
  std::size_t vocab = 0;
  std::size_t d_model = 64;
  std::size_t nhead = 4;
  std::size_t num_layers = 2;
  std::size_t dim_feedforward = 256;
  std::size_t max_len = 128;
  /// "learned" (added to the embeddings) or "rope" (rotary embeddings on q and k; checkpoints
  /// that spell it "rotary" load too), as TransformerConfig spells them.
  std::string positional = "learned";
  /// In training, GPT-2's three places: the embeddings' sum, the attention weights, and each
  /// residual branch before it is added. 0 turns it off (GPT-2 used 0.1).
  float dropout = 0.f;
  /// Throws xgrad::Error on an inconsistent configuration.
  void validate() const;
  /// Every field as a JSON object (a checkpoint's "config" metadata).
  std::string to_json() const;
  /// Parses that JSON; keys absent keep their defaults, unknown keys and bad values throw.
  static GPTConfig from_json(const std::string& text);
};

/// The keys and values of every layer for the tokens seen so far, each layer's an nn::KVCache
/// (keys rotated with RoPE), the structure the Transformer's decoder layers use too. Empty until
/// the first cached forward.
struct KVCache {
  std::vector<nn::KVCache> layers;
  std::size_t length = 0;  ///< P
};

/// One pre-LN block: x = x + dropout1(SelfAttn(ln1(x))) (causal);  x = x + dropout2(FFN(ln2(x))),
/// FFN(x) = fc2(gelu(fc1(x))), an nn::FeedForward whose linear1 and linear2 the block registers
/// as fc1 and fc2. (B, T, D) -> (B, T, D) for positions offset .. offset + T - 1.
class GPTBlock : public nn::Module {
 public:
  GPTBlock(const GPTConfig& config, Generator& generator = default_generator());
  /// With a cache, the new keys and values join it (at positions offset = cache->length() ..)
  /// and the queries attend to all it holds along each row's path; without, offset is 0.
  Tensor forward(const Tensor& x, nn::KVCache* cache = nullptr) const;

  std::shared_ptr<nn::LayerNorm> ln1, ln2;
  std::shared_ptr<nn::MultiheadAttention> attn;  // with dropout on its weights
  std::shared_ptr<nn::FeedForward> feed_forward;  // fc1, gelu, fc2 (no dropout inside)
  std::shared_ptr<nn::Linear> fc1, fc2;
  std::shared_ptr<nn::Dropout> dropout1, dropout2;
};

struct GenerateOptions {
  float temperature = 0.f;   ///< 0: greedy (argmax); > 0: sample from softmax(logits / temperature)
  std::size_t top_k = 0;     ///< when sampling, keep only the k most likely tokens (0: all)
  Generator* generator = nullptr;  ///< for sampling (the default generator if null)
};

class GPT : public nn::Module {
 public:
  using Config = GPTConfig;
  explicit GPT(const GPTConfig& config, Generator& generator = default_generator());

  /// ids (B, T) -> logits (B, T, V).
  Tensor forward(const Indices& ids) const;
  /// ids (B, T) following the cache's P tokens -> logits (B, T, V); appends their keys and values.
  /// For decoding: records no gradient (the cache holds values).
  Tensor forward(const Indices& ids, KVCache& cache) const;
  /// Mean next-token cross-entropy: logits at positions 0..T-2 against ids at 1..T. Needs T >= 2.
  Tensor loss(const Indices& ids) const;
  /// prompt (B, T0), T0 >= 1 -> (B, T0 + max_new_tokens): the prompt, then tokens chosen one at a
  /// time from the last position's logits, with the key/value cache (no gradient recorded).
  /// Dropout acts in training mode: generate in eval() mode.
  Indices generate(const Indices& prompt, std::size_t max_new_tokens, const GenerateOptions& options = {}) const;

  const GPTConfig& config() const { return config_; }

  std::shared_ptr<nn::Embedding> wte;                      // (V, D), also the output projection
  std::shared_ptr<nn::LearnedPositionalEmbedding> wpe;     // (max_len, D); null with rotary
  std::shared_ptr<nn::Dropout> drop;                       // on the embeddings
  std::shared_ptr<nn::ModuleList<GPTBlock>> blocks;
  std::shared_ptr<nn::LayerNorm> ln_f;

 private:
  Tensor run(const Indices& ids, KVCache* cache) const;
  GPTConfig config_;
};

/// GPT as a DecoderState, for the decoding strategies: start() runs the prompt (B, T0) through
/// the model, filling the cache, and gives its last position's logits; step() feeds one token
/// per row; reorder() makes rows follow rows in every layer's cache (copying paths, never keys).
class GPTDecoding : public DecoderState {
 public:
  GPTDecoding(const GPT& model, const Indices& prompt);
  Array start() override;
  Array step(const Indices& tokens) override;
  void reorder(const std::vector<std::size_t>& rows) override;
  bool small_steps(std::size_t rows) const override;  // up to kernels::kSkinnyRows

 private:
  Array last_logits(const Indices& ids);  // (B, T) -> the last position's logits (B, V)
  const GPT& model_;
  Indices prompt_;
  KVCache cache_;
};

/// Beam search continuing each prompt row (B, T0): the same search as the Transformer's, its
/// hypotheses the new tokens (EOS included when one ended by it; eos_id < 0: none ends early).
/// T0 + max_new_tokens <= max_len.
std::vector<std::vector<Hypothesis>> beam_search(const GPT& model, const Indices& prompt, std::int64_t eos_id,
                                                 std::size_t max_new_tokens, const BeamSearchOptions& options = {});

/// models::load<GPT>(path) and models::save(model, path) (models/checkpoint.hpp), by their
/// earlier names. Dropout draws from the default generator.
std::shared_ptr<GPT> load_gpt(const std::string& path);
void save_model(const GPT& model, const std::string& path);

}  // namespace xgrad::models
