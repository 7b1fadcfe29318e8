// models::GPT: the decoder-only language model, its cached forward, generation and checkpoints.
#include <xgrad/models/gpt.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <xgrad/core/error.hpp>
#include <xgrad/autograd/ops/elementwise.hpp>
#include <xgrad/autograd/ops/loss.hpp>
#include <xgrad/autograd/ops/shape_ops.hpp>
#include <xgrad/core/shape.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/nn/checkpoint.hpp>
#include <xgrad/nn/functional.hpp>

namespace xgrad::models {

void GPTConfig::validate() const {
  auto fail = [](const std::string& what) { throw Error("GPTConfig: " + what); };
  if (vocab == 0) fail("vocab must be positive");
  if (nhead == 0 || d_model == 0 || d_model % nhead != 0) fail(fmt::format("d_model {} must be a positive multiple of nhead {}", d_model, nhead));
  if (num_layers == 0 || dim_feedforward == 0 || max_len == 0) fail("num_layers, dim_feedforward and max_len must be positive");
  if (positional != "learned" && positional != "rotary") fail(fmt::format("positional must be \"learned\" or \"rotary\", got \"{}\"", positional));
  if (positional == "rotary" && (d_model / nhead) % 2 != 0) fail(fmt::format("rotary needs an even head width, got {}", d_model / nhead));
  if (!(dropout >= 0.f && dropout < 1.f)) fail(fmt::format("dropout must be in [0, 1), got {}", dropout));
}

using json = nlohmann::json;

std::string GPTConfig::to_json() const {
  return json{{"vocab", vocab},
              {"d_model", d_model},
              {"nhead", nhead},
              {"num_layers", num_layers},
              {"dim_feedforward", dim_feedforward},
              {"max_len", max_len},
              {"positional", positional},
              {"dropout", json::parse(fmt::format("{}", dropout))}}  // 0.1, not 0.10000000149
      .dump();
}

GPTConfig GPTConfig::from_json(const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(fmt::format("GPTConfig::from_json: not valid JSON: {}", e.what()));
  }
  if (!j.is_object()) throw Error("GPTConfig::from_json: expected a JSON object, got " + j.dump());
  GPTConfig c;
  for (const auto& [key, value] : j.items()) {
    auto bad = [&](const char* expected) {
      return Error(fmt::format("GPTConfig::from_json: \"{}\" must be {}, got {}", key, expected, value.dump()));
    };
    auto size = [&](std::size_t& field) {
      if (!value.is_number_integer() || value.get<std::int64_t>() < 0) throw bad("a non-negative integer");
      field = value.get<std::size_t>();
    };
    if (key == "vocab") size(c.vocab);
    else if (key == "d_model") size(c.d_model);
    else if (key == "nhead") size(c.nhead);
    else if (key == "num_layers") size(c.num_layers);
    else if (key == "dim_feedforward") size(c.dim_feedforward);
    else if (key == "max_len") size(c.max_len);
    else if (key == "positional") {
      if (!value.is_string()) throw bad("a string");
      c.positional = value.get<std::string>();
    } else if (key == "dropout") {
      if (!value.is_number()) throw bad("a number");
      c.dropout = value.get<float>();
    } else {
      throw Error(fmt::format("GPTConfig::from_json: unknown key \"{}\"", key));
    }
  }
  c.validate();
  return c;
}

// --- block --------------------------------------------------------------------------------------

GPTBlock::GPTBlock(const GPTConfig& c, Generator& generator) : Module("GPTBlock") {
  ln1 = register_module("ln1", std::make_shared<nn::LayerNorm>(c.d_model));
  nn::MultiheadAttentionOptions options(c.d_model, c.nhead);
  options.rotary = c.positional == "rotary";
  options.rotary_max_len = c.max_len;
  options.dropout = c.dropout;
  attn = register_module("attn", std::make_shared<nn::MultiheadAttention>(options, generator));
  ln2 = register_module("ln2", std::make_shared<nn::LayerNorm>(c.d_model));
  fc1 = register_module("fc1", std::make_shared<nn::Linear>(c.d_model, c.dim_feedforward, true, generator));
  fc2 = register_module("fc2", std::make_shared<nn::Linear>(c.dim_feedforward, c.d_model, true, generator));
  dropout1 = register_module("dropout1", std::make_shared<nn::Dropout>(c.dropout, generator));
  dropout2 = register_module("dropout2", std::make_shared<nn::Dropout>(c.dropout, generator));
}

namespace {

/// The (T, P + T) causal mask of T new queries at positions P.. against P cached and T new keys:
/// query i sees key j iff j <= P + i.
Array causal_mask(std::size_t t, std::size_t p) {
  Array mask = Array::from_shape({t, p + t});
  const float blocked = -std::numeric_limits<float>::infinity();
  for (std::size_t i = 0; i < t; ++i) {
    for (std::size_t j = 0; j < p + t; ++j) mask(i, j) = j <= p + i ? 0.f : blocked;
  }
  return mask;
}

}  // namespace

Tensor GPTBlock::forward(const Tensor& x, std::size_t offset, Tensor* keys, Tensor* values) const {
  const std::size_t t = x.shape()[1];
  const Tensor h = ln1->forward(x);                         // (B, T, D)
  const Tensor q = attn->rotate(attn->project_query(h), offset);  // (B, T, D)
  Tensor k = attn->rotate(attn->project_key(h), offset);          // (B, T, D)
  Tensor v = attn->project_value(h);                              // (B, T, D)
  if (keys && keys->defined()) {
    k = cat({*keys, k}, 1);  // (B, P + T, D)
    v = cat({*values, v}, 1);
  }
  if (keys) *keys = k, *values = v;
  const std::size_t p = k.shape()[1] - t;
  const Tensor a = attn->attend(q, k, v, std::nullopt, nn::AttnMask(causal_mask(t, p)), false).output;  // (B, T, D)
  const Tensor y = x + dropout1->forward(a);
  return y + dropout2->forward(fc2->forward(gelu(fc1->forward(ln2->forward(y)))));
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
  if (cache && cache->length > 0 && cache->keys.at(0).shape()[0] != ids.shape()[0]) {
    throw Error(fmt::format("GPT: batch {} differs from the cache's batch {}", ids.shape()[0], cache->keys[0].shape()[0]));
  }
  if (cache && cache->keys.empty()) cache->keys.resize(blocks->size()), cache->values.resize(blocks->size());

  Tensor h = wte->forward(ids);  // (B, T, D)
  if (wpe) h = wpe->forward(h, past);
  h = drop->forward(h);
  for (std::size_t l = 0; l < blocks->size(); ++l) {
    h = cache ? (*blocks)[l].forward(h, past, &cache->keys[l], &cache->values[l]) : (*blocks)[l].forward(h, 0);
  }
  if (cache) cache->length = past + t;
  return nn::functional::linear(ln_f->forward(h), wte->weight);  // (B, T, V), tied to the embedding
}

Tensor GPT::forward(const Indices& ids) const { return run_hooks(run(ids, nullptr)); }

Tensor GPT::forward(const Indices& ids, KVCache& cache) const { return run_hooks(run(ids, &cache)); }

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
  if (options.temperature < 0.f || !std::isfinite(options.temperature)) {
    throw Error(fmt::format("GPT::generate: temperature must be finite and >= 0, got {}", options.temperature));
  }
  Generator& generator = options.generator ? *options.generator : default_generator();
  NoGradGuard no_grad;
  const std::size_t v = config_.vocab;
  Indices out = Indices::from_shape({b, t0 + max_new_tokens});  // (B, T0 + N)
  for (std::size_t i = 0; i < b; ++i) std::copy(&prompt(i, 0), &prompt(i, 0) + t0, &out(i, 0));
  KVCache cache;
  Indices step = prompt;
  std::vector<float> probs(v);
  std::vector<std::size_t> order(v);
  for (std::size_t n = 0; n < max_new_tokens; ++n) {
    const Tensor logits = run(step, &cache);  // (B, T, V)
    const std::size_t last = logits.shape()[1] - 1;
    const float* all = logits.value().data();
    Indices next = Indices::from_shape({b, 1});
    for (std::size_t i = 0; i < b; ++i) {
      const float* row = all + (i * logits.shape()[1] + last) * v;  // (V)
      std::size_t choice = std::max_element(row, row + v) - row;
      if (options.temperature > 0.f) {
        // Sample from softmax(row / temperature), restricted to the top k.
        std::iota(order.begin(), order.end(), 0);
        const std::size_t k = options.top_k == 0 ? v : std::min(options.top_k, v);
        std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](std::size_t a, std::size_t c) { return row[a] > row[c]; });
        const float top = row[order[0]];
        double total = 0;
        for (std::size_t r = 0; r < k; ++r) total += probs[r] = std::exp((row[order[r]] - top) / options.temperature);
        double u = generator.uniform() * total;
        choice = order[k - 1];
        for (std::size_t r = 0; r < k; ++r) {
          if ((u -= probs[r]) < 0) {
            choice = order[r];
            break;
          }
        }
      }
      next(i, 0) = static_cast<std::int64_t>(choice);
      out(i, t0 + n) = next(i, 0);
    }
    step = next;
  }
  return out;
}

// --- checkpoints --------------------------------------------------------------------------------

std::shared_ptr<GPT> load_gpt(const std::string& path) { return nn::load_configured<GPT, GPTConfig>("load_gpt", path); }

void save_model(const GPT& model, const std::string& path) {
  nn::save(model, path, {{"format", "pt"}, {"config", model.config().to_json()}});
}

}  // namespace xgrad::models
