// models::GPT: the decoder-only language model, its cached forward, generation and checkpoints.
#include <xgrad/models/gpt.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/autograd/ops/elementwise.hpp>
#include <xgrad/autograd/ops/loss.hpp>
#include <xgrad/autograd/ops/shape_ops.hpp>
#include <xgrad/core/shape.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/nn/functional.hpp>
#include <xgrad/models/checkpoint.hpp>
#include <xgrad/models/config_json.hpp>
#include <xgrad/models/sampling.hpp>
#include <xgrad/kernels/linear.hpp>

namespace xgrad::models {

void GPTConfig::validate() const {
  auto fail = [](const std::string& what) { throw Error("GPTConfig: " + what); };
  if (vocab == 0) fail("vocab must be positive");
  if (nhead == 0 || d_model == 0 || d_model % nhead != 0) fail(fmt::format("d_model {} must be a positive multiple of nhead {}", d_model, nhead));
  if (num_layers == 0 || dim_feedforward == 0 || max_len == 0) fail("num_layers, dim_feedforward and max_len must be positive");
  if (positional != "learned" && positional != "rope") fail(fmt::format("positional must be \"learned\" or \"rope\", got \"{}\"", positional));
  if (positional == "rope" && (d_model / nhead) % 2 != 0) fail(fmt::format("rope needs an even head width, got {}", d_model / nhead));
  if (!(dropout >= 0.f && dropout < 1.f)) fail(fmt::format("dropout must be in [0, 1), got {}", dropout));
}

std::string GPTConfig::to_json() const {
  return ConfigWriter()
      .write("vocab", vocab)
      .write("d_model", d_model)
      .write("nhead", nhead)
      .write("num_layers", num_layers)
      .write("dim_feedforward", dim_feedforward)
      .write("max_len", max_len)
      .write("positional", positional)
      .write("dropout", dropout)
      .dump();
}

GPTConfig GPTConfig::from_json(const std::string& text) {
  ConfigReader j("GPTConfig", text);
  GPTConfig c;
  j.read("vocab", c.vocab);
  j.read("d_model", c.d_model);
  j.read("nhead", c.nhead);
  j.read("num_layers", c.num_layers);
  j.read("dim_feedforward", c.dim_feedforward);
  j.read("max_len", c.max_len);
  j.read("positional", c.positional);
  j.read("dropout", c.dropout);
  j.finish();
  if (c.positional == "rotary") c.positional = "rope";  // the spelling of checkpoints written before
  c.validate();
  return c;
}

// --- block --------------------------------------------------------------------------------------

GPTBlock::GPTBlock(const GPTConfig& c, Generator& generator) : Module("GPTBlock") {
  ln1 = register_module("ln1", std::make_shared<nn::LayerNorm>(c.d_model));
  nn::MultiheadAttentionOptions options(c.d_model, c.nhead);
  options.rotary = c.positional == "rope";
  options.rotary_max_len = c.max_len;
  options.dropout = c.dropout;
  attn = register_module("attn", std::make_shared<nn::MultiheadAttention>(options, generator));
  ln2 = register_module("ln2", std::make_shared<nn::LayerNorm>(c.d_model));
  feed_forward = std::make_shared<nn::FeedForward>(c.d_model, c.dim_feedforward, 0.f, nn::functional::Activation::gelu,
                                                   generator);
  fc1 = register_module("fc1", feed_forward->linear1);
  fc2 = register_module("fc2", feed_forward->linear2);
  dropout1 = register_module("dropout1", std::make_shared<nn::Dropout>(c.dropout, generator));
  dropout2 = register_module("dropout2", std::make_shared<nn::Dropout>(c.dropout, generator));
}

Tensor GPTBlock::forward(const Tensor& x, nn::KVCache* cache) const {
  const std::size_t t = x.shape()[1], past = cache ? cache->length() : 0;
  const Tensor h = ln1->forward(x);                              // (B, T, D)
  const Tensor q = attn->rotate(attn->project_query(h), past);  // (B, T, D)
  Tensor k = attn->rotate(attn->project_key(h), past);          // (B, T, D)
  Tensor v = attn->project_value(h);                             // (B, T, D)
  Tensor a;                                                      // (B, T, D)
  if (cache) cache->append(k, v);
  if (past > 0 && t == 1) {
    // One new token per row: it attends to every position along its row's path, in place.
    a = attn->attend_gathered(q, cache->gathered());
  } else {
    if (past > 0) {  // several new tokens after cached ones: each row's keys and values gathered
      k = cache->keys();    // (B, P + T, D)
      v = cache->values();
    }
    const nn::AttnMask causal(nn::functional::causal_mask(t, past));  // (T, P + T)
    a = attn->attend(q, k, v, std::nullopt, causal, false).output;
  }
  const Tensor y = x + dropout1->forward(a);
  return y + dropout2->forward(feed_forward->forward(ln2->forward(y)));
}

// --- model --------------------------------------------------------------------------------------

GPT::GPT(const GPTConfig& c, Generator& generator) : Module("GPT"), config_(c) {
  config_.validate();
  // GPT-2's initialisation: embeddings ~ N(0, 0.02^2).
  wte = register_module("wte", std::make_shared<nn::Embedding>(c.vocab, c.d_model, std::nullopt, generator));
  wte->weight.mutable_value() *= 0.02f;
  if (c.positional == "learned") {
    wpe = register_module("wpe", std::make_shared<nn::LearnedPositionalEmbedding>(c.max_len, c.d_model, generator));
    wpe->weight.mutable_value() *= 0.02f;
  }
  blocks = register_module("blocks", std::make_shared<nn::ModuleList<GPTBlock>>());
  for (std::size_t i = 0; i < c.num_layers; ++i) blocks->push_back(std::make_shared<GPTBlock>(c, generator));
  ln_f = register_module("ln_f", std::make_shared<nn::LayerNorm>(c.d_model));
  drop = register_module("drop", std::make_shared<nn::Dropout>(c.dropout, generator));
}

Tensor GPT::run(const Indices& ids, KVCache* cache) const {
  const std::size_t past = cache ? cache->length : 0;
  if (ids.dimension() != 2 || ids.shape()[1] == 0) {
    throw Error(fmt::format("GPT: token ids must be (B, T) with T >= 1, got {}", shape_str(Shape(ids.shape().begin(), ids.shape().end()))));
  }
  const std::size_t t = ids.shape()[1];
  if (past + t > config_.max_len) {
    throw Error(fmt::format("GPT: {} cached + {} new tokens exceed max_len {}", past, t, config_.max_len));
  }
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::int64_t id = ids.data()[i];
    if (id < 0 || id >= static_cast<std::int64_t>(config_.vocab)) {
      throw Error(fmt::format("GPT: token id {} at flat index {} is outside the vocabulary [0, {})", id, i, config_.vocab));
    }
  }
  if (cache && cache->length > 0 && cache->layers.at(0).batch() != ids.shape()[0]) {
    throw Error(fmt::format("GPT: batch {} differs from the cache's batch {}", ids.shape()[0], cache->layers[0].batch()));
  }
  if (cache && cache->layers.empty()) cache->layers.resize(blocks->size());

  Tensor h = wte->forward(ids);  // (B, T, D)
  if (wpe) h = wpe->forward(h, past);
  h = drop->forward(h);
  for (std::size_t l = 0; l < blocks->size(); ++l) h = (*blocks)[l].forward(h, cache ? &cache->layers[l] : nullptr);
  if (cache) cache->length = past + t;
  return nn::functional::linear(ln_f->forward(h), wte->weight);  // (B, T, V), tied to the embedding
}

Tensor GPT::forward(const Indices& ids) const { return run_hooks(run(ids, nullptr)); }

Tensor GPT::forward(const Indices& ids, KVCache& cache) const {
  NoGradGuard no_grad;
  return run_hooks(run(ids, &cache));
}

Tensor GPT::loss(const Indices& ids) const {
  if (ids.dimension() != 2 || ids.shape()[1] < 2) {
    throw Error(fmt::format("GPT::loss: token ids must be (B, T) with T >= 2, got {}", shape_str(Shape(ids.shape().begin(), ids.shape().end()))));
  }
  const std::size_t b = ids.shape()[0], t = ids.shape()[1];
  Indices inputs = Indices::from_shape({b, t - 1});  // (B, T-1)
  Indices targets = Indices::from_shape({b * (t - 1)});
  for (std::size_t i = 0; i < b; ++i) {
    for (std::size_t j = 0; j + 1 < t; ++j) {
      inputs(i, j) = ids(i, j);
      targets(i * (t - 1) + j) = ids(i, j + 1);
    }
  }
  const Tensor logits = forward(inputs);  // (B, T-1, V)
  return cross_entropy(reshape(logits, {-1, static_cast<std::int64_t>(config_.vocab)}), targets);
}

Indices GPT::generate(const Indices& prompt, std::size_t max_new_tokens, const GenerateOptions& options) const {
  if (prompt.dimension() != 2 || prompt.shape()[1] == 0) {
    throw Error(fmt::format("GPT::generate: prompt must be (B, T0) with T0 >= 1, got {}", shape_str(Shape(prompt.shape().begin(), prompt.shape().end()))));
  }
  const std::size_t b = prompt.shape()[0], t0 = prompt.shape()[1];
  if (t0 + max_new_tokens > config_.max_len) {
    throw Error(fmt::format("GPT::generate: prompt {} + {} new tokens exceed max_len {}", t0, max_new_tokens, config_.max_len));
  }
  Sampler sample(options.temperature, options.top_k, options.generator ? *options.generator : default_generator());
  GPTDecoding decoder(*this, prompt);
  const Indices tokens = decode_tokens(decoder, b, config_.vocab, /*eos_id=*/-1, /*pad_id=*/0, max_new_tokens,
                                       [&](const float* logits, std::size_t vocab) { return sample(logits, vocab); });
  Indices out = Indices::from_shape({b, t0 + max_new_tokens});  // (B, T0 + N)
  for (std::size_t i = 0; i < b; ++i) {
    std::copy(&prompt(i, 0), &prompt(i, 0) + t0, &out(i, 0));
    if (max_new_tokens > 0) std::copy_n(tokens.data() + i * max_new_tokens, max_new_tokens, &out(i, t0));
  }
  return out;
}

// --- decoding ---------------------------------------------------------------------------------------

GPTDecoding::GPTDecoding(const GPT& model, const Indices& prompt) : model_(model), prompt_(prompt) {}

Array GPTDecoding::last_logits(const Indices& ids) {
  const Tensor logits = model_.forward(ids, cache_);  // (B, T, V)
  const std::size_t batch = logits.shape()[0], t = logits.shape()[1], vocab = logits.shape()[2];
  Array last = Array::from_shape({batch, vocab});
  for (std::size_t b = 0; b < batch; ++b) std::copy_n(logits.value().data() + (b * t + t - 1) * vocab, vocab, &last(b, 0));
  return last;
}

Array GPTDecoding::start() { return last_logits(prompt_); }

Array GPTDecoding::step(const Indices& tokens) {
  Indices column = Indices::from_shape({tokens.size(), 1});  // (B, 1)
  std::copy_n(tokens.data(), tokens.size(), column.data());
  return last_logits(column);
}

void GPTDecoding::reorder(const std::vector<std::size_t>& rows) {
  for (nn::KVCache& layer : cache_.layers) layer.reorder(rows);
}

bool GPTDecoding::small_steps(std::size_t rows) const { return rows <= kernels::kSkinnyRows; }

std::vector<std::vector<Hypothesis>> beam_search(const GPT& model, const Indices& prompt, std::int64_t eos_id,
                                                 std::size_t max_new_tokens, const BeamSearchOptions& options) {
  const GPTConfig& c = model.config();
  if (prompt.dimension() != 2 || prompt.shape()[0] == 0 || prompt.shape()[1] == 0) {
    throw Error(fmt::format("beam_search: the prompt must be (B, T0) with B, T0 >= 1, got {}",
                            shape_str(Shape(prompt.shape().begin(), prompt.shape().end()))));
  }
  if (prompt.shape()[1] + max_new_tokens > c.max_len) {
    throw Error(fmt::format("beam_search: prompt {} + {} new tokens exceed max_len {}", prompt.shape()[1],
                            max_new_tokens, c.max_len));
  }
  if (eos_id >= static_cast<std::int64_t>(c.vocab)) {
    throw Error(fmt::format("beam_search: eos id {} is outside the vocabulary [0, {})", eos_id, c.vocab));
  }
  GPTDecoding decoder(model, prompt);
  return beam_search(decoder, prompt.shape()[0], c.vocab, eos_id, max_new_tokens, options);
}

// --- checkpoints --------------------------------------------------------------------------------

std::shared_ptr<GPT> load_gpt(const std::string& path) { return load<GPT>(path); }

void save_model(const GPT& model, const std::string& path) { save(model, path); }

}  // namespace xgrad::models
