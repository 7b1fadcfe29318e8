// Autoregressive decoding: greedy, sampled and beam search, re-feeding the prefix or with a KV cache.
#include <xgrad/models/decoding.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <xgrad/autograd/error.hpp>
#include <xgrad/autograd/ops/elementwise.hpp>
#include <xgrad/autograd/shape.hpp>
#include <xgrad/autograd/tape.hpp>

namespace xgrad::models {

namespace {

Shape shape_of_ids(const Indices& ids) { return Shape(ids.shape().begin(), ids.shape().end()); }

void check_inputs(const char* op, const Transformer& model, const Indices& src, std::int64_t bos_id,
                  std::int64_t eos_id, std::size_t max_len) {
  const TransformerConfig& c = model.config();
  if (src.dimension() != 2) throw Error(fmt::format("{}: src must be (B, S), got {}", op, shape_str(shape_of_ids(src))));
  if (src.shape()[0] == 0 || src.shape()[1] == 0) {
    throw Error(fmt::format("{}: src {} is empty: need B >= 1 and S >= 1", op, shape_str(shape_of_ids(src))));
  }
  if (src.shape()[1] > c.max_len) {
    throw Error(fmt::format("{}: source length {} exceeds the model's max_len {}", op, src.shape()[1], c.max_len));
  }
  const auto src_vocab = static_cast<std::int64_t>(c.src_vocab), tgt_vocab = static_cast<std::int64_t>(c.tgt_vocab);
  for (std::size_t i = 0; i < src.size(); ++i) {
    const std::int64_t id = src.data()[i];
    if (id < 0 || id >= src_vocab) {
      throw Error(fmt::format("{}: source id {} at flat index {} is outside the vocabulary [0, {})", op, id, i, src_vocab));
    }
  }
  for (const std::int64_t id : {bos_id, eos_id}) {
    if (id < 0 || id >= tgt_vocab) {
      throw Error(fmt::format("{}: bos/eos id {} is outside the target vocabulary [0, {})", op, id, tgt_vocab));
    }
  }
  if (max_len == 0 || max_len > c.max_len) {
    throw Error(fmt::format("{}: max_len {} must be in [1, {}] (the model's max_len)", op, max_len, c.max_len));
  }
}

/// Chooses the next token of one row from its logits (V).
using Picker = std::function<std::int64_t(const float* logits, std::size_t vocab)>;

std::int64_t argmax(const float* logits, std::size_t vocab) {
  return static_cast<std::int64_t>(std::max_element(logits, logits + vocab) - logits);
}

/// The textbook step: the whole prefix goes through the decoder again, and only its last position
/// is projected to logits.
class RefeedStepper {
 public:
  RefeedStepper(const Transformer& model, const Tensor& memory, const Mask& src_padding)
      : model_(model), memory_(memory), src_padding_(src_padding) {}

  Array step(const Indices& tokens) {  // (B) -> logits (B, V)
    const std::size_t batch = tokens.size(), d = model_.config().d_model;
    const std::size_t t = prefix_.size() / batch + 1;  // positions after this one
    Indices prefix = Indices::from_shape({batch, t});  // (B, t)
    for (std::size_t b = 0; b < batch; ++b) {
      for (std::size_t j = 0; j + 1 < t; ++j) prefix(b, j) = prefix_[b * (t - 1) + j];
      prefix(b, t - 1) = tokens(b);
    }
    prefix_.assign(prefix.data(), prefix.data() + prefix.size());
    const Tensor decoded = model_.decode(prefix, memory_, src_padding_);
    const Array& hidden = decoded.value();          // (B, t, D)
    Array last = Array::from_shape({batch, 1, d});  // (B, 1, D)
    for (std::size_t b = 0; b < batch; ++b) std::copy_n(hidden.data() + (b * t + t - 1) * d, d, last.data() + b * d);
    Array logits = model_.generator->forward(Tensor(std::move(last))).value();  // (B, 1, V)
    logits.reshape({batch, model_.config().tgt_vocab});                            // (B, V)
    return logits;
  }

 private:
  const Transformer& model_;
  Tensor memory_;
  Mask src_padding_;
  std::vector<std::int64_t> prefix_;  // (B, t) row-major
};

}  // namespace

// --- the KV cache ------------------------------------------------------------------------------

namespace {

/// Writes x (B, 1, D) at position t of cache (B, capacity, D), whose first t positions are
/// filled. A full cache doubles its capacity (a copy); otherwise nothing is copied, where growing
/// by one position at each step copied the whole cache every time.
void append_step(Tensor& cache, const Array& x, std::size_t t) {
  const std::size_t batch = x.shape()[0], d = x.shape()[2];
  const std::size_t capacity = cache.defined() ? cache.size(1) : 0;
  if (t == capacity) {
    const std::size_t grown = std::max<std::size_t>(16, 2 * capacity);
    Array bigger = Array::from_shape({batch, grown, d});  // (B, grown, D)
    for (std::size_t b = 0; b < batch && t > 0; ++b) {
      std::copy_n(cache.value().data() + b * capacity * d, t * d, bigger.data() + b * grown * d);
    }
    cache = Tensor(std::move(bigger));
  }
  Array& c = cache.mutable_value();
  const std::size_t stride = c.shape()[1] * d;
  for (std::size_t b = 0; b < batch; ++b) std::copy_n(x.data() + b * d, d, c.data() + b * stride + t * d);
}

/// Rows `rows` of x along axis 0 (rows may repeat), of which only the first `used` elements are
/// copied (all when used is npos: a cache's unfilled room is not).
template <class A>
A gather_rows(const A& x, const std::vector<std::size_t>& rows, std::size_t used = std::string::npos) {
  auto shape = x.shape();
  const std::size_t row = x.shape()[0] == 0 ? 0 : x.size() / x.shape()[0];
  const std::size_t copied = std::min(row, used);
  shape[0] = rows.size();
  A out = A::from_shape(shape);
  for (std::size_t i = 0; i < rows.size(); ++i) std::copy_n(x.data() + rows[i] * row, copied, out.data() + i * row);
  return out;
}

}  // namespace

struct IncrementalDecoder::LayerCache {
  Tensor self_k, self_v;    // (B, capacity, D), projected (keys rotated with RoPE); the first t positions filled
  Tensor cross_k, cross_v;  // (B, S, D), projected once from the memory
};

IncrementalDecoder::IncrementalDecoder(const Transformer& model, const Tensor& memory, const Mask& src_padding)
    : model_(model), src_padding_(src_padding) {
  NoGradGuard no_grad;
  for (const auto& layer : *model.transformer->decoder->layers) {
    auto cache = std::make_shared<LayerCache>();
    cache->cross_k = layer->multihead_attn->project_key(memory);
    cache->cross_v = layer->multihead_attn->project_value(memory);
    layers_.push_back(std::move(cache));
  }
  memory_rows_.resize(src_padding.shape()[0]);
  std::iota(memory_rows_.begin(), memory_rows_.end(), std::size_t{0});
}

IncrementalDecoder::~IncrementalDecoder() = default;

Array IncrementalDecoder::step(const Indices& tokens) {
  NoGradGuard no_grad;
  const TransformerConfig& c = model_.config();
  const std::size_t batch = tokens.size();
  if (batch != src_padding_.shape()[0]) {
    throw Error(fmt::format("IncrementalDecoder::step: {} tokens for a batch of {}", batch, src_padding_.shape()[0]));
  }
  if (length_ >= c.max_len) {
    throw Error(fmt::format("IncrementalDecoder::step: position {} is past the model's max_len {}", length_, c.max_len));
  }
  for (std::size_t b = 0; b < batch; ++b) {
    if (tokens.data()[b] < 0 || tokens.data()[b] >= static_cast<std::int64_t>(c.tgt_vocab)) {
      throw Error(fmt::format("IncrementalDecoder::step: token {} of row {} is outside the target vocabulary [0, {})",
                              tokens.data()[b], b, c.tgt_vocab));
    }
  }
  Indices column = Indices::from_shape({batch, 1});  // (B, 1)
  std::copy_n(tokens.data(), batch, column.data());
  // Keys equal to pad_id are masked, as the full decoder's target padding mask does.
  Mask fed = model_.padding_mask(column);  // (B, 1)
  Mask grown = Mask::from_shape({batch, length_ + 1});
  for (std::size_t b = 0; b < batch; ++b) {
    for (std::size_t j = 0; j < length_; ++j) grown(b, j) = self_padding_(b, j);
    grown(b, length_) = fed(b, 0);
  }
  self_padding_ = std::move(grown);  // (B, t+1)

  Tensor x = model_.embed_target(column, length_);  // (B, 1, D), at position t
  const auto& layers = *model_.transformer->decoder->layers;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const DecoderLayer& layer = layers[l];
    LayerCache& cache = *layers_[l];
    // Self-attention of the new position over every position so far (no causal mask needed).
    // With RoPE the new query and key are rotated at their absolute position t, and the cache
    // keeps rotated keys: q_t.k_j then depends on t - j only, as in the full decoder.
    auto self_attention = [&](const Tensor& y) {
      const nn::MultiheadAttention& attn = *layer.self_attn;
      append_step(cache.self_k, attn.rotate(attn.project_key(y), length_).value(), length_);
      append_step(cache.self_v, attn.project_value(y).value(), length_);
      const Tensor q = attn.rotate(attn.project_query(y), length_);  // (B, 1, D)
      return attn.attend(q, cache.self_k, cache.self_v, self_padding_, {}, false, length_ + 1).output;
    };
    auto cross_attention = [&](const Tensor& y) {
      return layer.multihead_attn
          ->attend(layer.multihead_attn->project_query(y), cache.cross_k, cache.cross_v, src_padding_, {}, false)
          .output;
    };
    auto feed_forward = [&](const Tensor& y) {
      const Tensor hidden = layer.linear1->forward(y);  // (B, 1, F)
      return layer.linear2->forward(c.activation == "relu" ? relu(hidden) : gelu(hidden));
    };
    // post-LN: norm(x + f(x)); pre-LN: x + f(norm(x)).
    auto residual = [&](const nn::LayerNorm& norm, const Tensor& h, const auto& f) {
      return c.norm_first ? h + f(norm.forward(h)) : norm.forward(h + f(h));
    };
    x = residual(*layer.norm1, x, self_attention);
    x = residual(*layer.norm2, x, cross_attention);
    x = residual(*layer.norm3, x, feed_forward);  // (B, 1, D)
  }
  ++length_;
  Array logits = model_.generator->forward(model_.transformer->decoder->norm->forward(x)).value();  // (B, 1, V)
  logits.reshape({batch, c.tgt_vocab});
  return logits;
}

void IncrementalDecoder::reorder(const std::vector<std::size_t>& rows) {
  const std::size_t batch = src_padding_.shape()[0];
  for (const std::size_t r : rows) {
    if (r >= batch) throw Error(fmt::format("IncrementalDecoder::reorder: row {} of a batch of {}", r, batch));
  }
  // Beam search reorders beams within their source: the cross-attention caches, computed from
  // the memory alone, then already hold the right rows and are not copied.
  bool identity = rows.size() == batch;  // every row stays where it is: nothing to do
  for (std::size_t i = 0; i < rows.size() && identity; ++i) identity = rows[i] == i;
  if (identity) return;
  std::vector<std::size_t> memory_rows(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) memory_rows[i] = memory_rows_[rows[i]];
  const bool same_memory = memory_rows == memory_rows_;
  const std::size_t filled = length_ * model_.config().d_model;  // of each self-attention cache row
  for (auto& cache : layers_) {
    if (length_ > 0) {
      cache->self_k = Tensor(gather_rows(cache->self_k.value(), rows, filled));
      cache->self_v = Tensor(gather_rows(cache->self_v.value(), rows, filled));
    }
    if (same_memory) continue;
    cache->cross_k = Tensor(gather_rows(cache->cross_k.value(), rows));
    cache->cross_v = Tensor(gather_rows(cache->cross_v.value(), rows));
  }
  if (length_ > 0) self_padding_ = gather_rows(self_padding_, rows);
  if (!same_memory) src_padding_ = gather_rows(src_padding_, rows);
  memory_rows_ = std::move(memory_rows);
}

namespace {

/// The shared loop: encode once, then per step get the logits of the last position and pick a
/// token per unfinished row (finished rows are fed and given pad_id).
Indices decode_loop(const char* op, const Transformer& model, const Indices& src, std::int64_t bos_id,
                    std::int64_t eos_id, std::size_t max_len, bool kv_cache, const Picker& pick) {
  check_inputs(op, model, src, bos_id, eos_id, max_len);
  NoGradGuard no_grad;
  const std::size_t batch = src.shape()[0], vocab = model.config().tgt_vocab;
  const std::int64_t pad = model.config().pad_id;
  const Mask src_padding = model.padding_mask(src);  // (B, S)
  const Tensor memory = model.encode(src);            // (B, S, D)
  std::optional<IncrementalDecoder> cached;
  std::optional<RefeedStepper> refeed;
  if (kv_cache) cached.emplace(model, memory, src_padding);
  else refeed.emplace(model, memory, src_padding);

  std::vector<std::vector<std::int64_t>> out(batch);
  std::vector<bool> done(batch, false);
  Indices fed = Indices::from_shape({batch});  // (B)
  std::fill(fed.begin(), fed.end(), bos_id);
  std::size_t steps = 0;
  for (; steps < max_len; ++steps) {
    if (std::all_of(done.begin(), done.end(), [](bool b) { return b; })) break;
    const Array logits = kv_cache ? cached->step(fed) : refeed->step(fed);  // (B, V)
    for (std::size_t b = 0; b < batch; ++b) {
      const std::int64_t token = done[b] ? pad : pick(logits.data() + b * vocab, vocab);
      out[b].push_back(token);
      done[b] = done[b] || token == eos_id;
      fed(b) = token;
    }
  }
  Indices result = Indices::from_shape({batch, steps});  // (B, L)
  for (std::size_t b = 0; b < batch; ++b) std::copy_n(out[b].data(), steps, result.data() + b * steps);
  return result;
}

}  // namespace

Indices greedy_decode(const Transformer& model, const Indices& src, std::int64_t bos_id, std::int64_t eos_id,
                      std::size_t max_len, bool kv_cache) {
  return decode_loop("greedy_decode", model, src, bos_id, eos_id, max_len, kv_cache, argmax);
}

Indices sample_decode(const Transformer& model, const Indices& src, std::int64_t bos_id, std::int64_t eos_id,
                      std::size_t max_len, float temperature, std::size_t top_k, Generator& generator, bool kv_cache) {
  if (!(temperature > 0.f) || !std::isfinite(temperature)) {
    throw Error(fmt::format("sample_decode: temperature must be finite and > 0, got {}", temperature));
  }
  std::vector<std::size_t> order;
  std::vector<double> weights;
  // p_v = exp((l_v - l_max) / T) / Z over the k largest logits.
  auto pick = [&](const float* logits, std::size_t vocab) -> std::int64_t {
    const std::size_t k = top_k == 0 ? vocab : std::min(top_k, vocab);
    order.resize(vocab);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](std::size_t a, std::size_t b) {
      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    if (k == 1) return static_cast<std::int64_t>(order[0]);
    weights.resize(k);
    double total = 0;
    for (std::size_t i = 0; i < k; ++i) {
      weights[i] = std::exp((static_cast<double>(logits[order[i]]) - logits[order[0]]) / temperature);
      total += weights[i];
    }
    double u = generator.uniform() * total;
    for (std::size_t i = 0; i < k; ++i) {
      u -= weights[i];
      if (u < 0) return static_cast<std::int64_t>(order[i]);
    }
    return static_cast<std::int64_t>(order[k - 1]);
  };
  return decode_loop("sample_decode", model, src, bos_id, eos_id, max_len, kv_cache, pick);
}

namespace {

/// log softmax of one row of logits (V), in double.
void log_softmax_row(const float* logits, std::size_t vocab, std::vector<double>& out) {
  const double top = *std::max_element(logits, logits + vocab);
  double total = 0;
  for (std::size_t v = 0; v < vocab; ++v) total += std::exp(logits[v] - top);
  const double log_z = top + std::log(total);
  out.resize(vocab);
  for (std::size_t v = 0; v < vocab; ++v) out[v] = logits[v] - log_z;
}

/// GNMT length penalty ((5 + L) / 6)^alpha.
double length_penalty(std::size_t length, double alpha) { return std::pow((5.0 + length) / 6.0, alpha); }

struct Beam {
  std::vector<std::int64_t> tokens;
  double log_prob;
};

}  // namespace

std::vector<std::vector<Hypothesis>> beam_search(const Transformer& model, const Indices& src, std::int64_t bos_id,
                                                 std::int64_t eos_id, std::size_t max_len,
                                                 const BeamSearchOptions& options) {
  check_inputs("beam_search", model, src, bos_id, eos_id, max_len);
  if (options.beam_size == 0 || options.n_best == 0) {
    throw Error(fmt::format("beam_search: beam_size {} and n_best {} must be >= 1", options.beam_size, options.n_best));
  }
  NoGradGuard no_grad;
  const std::size_t batch = src.shape()[0], k = options.beam_size, vocab = model.config().tgt_vocab;
  const double alpha = options.length_penalty, minus_inf = -std::numeric_limits<double>::infinity();
  const Mask src_padding = model.padding_mask(src);  // (B, S)
  IncrementalDecoder decoder(model, model.encode(src), src_padding);
  std::vector<std::size_t> rows(batch * k);  // each source repeated k times: row b*k + i is beam i of b
  for (std::size_t r = 0; r < rows.size(); ++r) rows[r] = r / k;
  decoder.reorder(rows);

  // Beam 0 starts alone: the others at -inf so the first step does not pick one token k times.
  std::vector<std::vector<Beam>> live(batch);
  for (auto& beams : live) {
    for (std::size_t i = 0; i < k; ++i) beams.push_back({{}, i == 0 ? 0.0 : minus_inf});
  }
  std::vector<std::vector<Hypothesis>> finished(batch);
  std::vector<bool> done(batch, false);
  auto finish = [&](std::size_t b, const Beam& beam) {
    if (beam.log_prob == minus_inf) return;
    const double score = beam.log_prob / length_penalty(beam.tokens.size(), alpha);
    finished[b].push_back({beam.tokens, static_cast<float>(beam.log_prob), static_cast<float>(score)});
  };

  Indices fed = Indices::from_shape({batch * k});  // (B*k)
  std::fill(fed.begin(), fed.end(), bos_id);
  std::vector<double> log_probs;
  std::vector<std::pair<double, std::size_t>> candidates;  // (log-probability, beam * V + token)
  for (std::size_t step = 0; step < max_len; ++step) {
    if (std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
    const Array logits = decoder.step(fed);  // (B*k, V)
    for (std::size_t b = 0; b < batch; ++b) {
      if (done[b]) {
        for (std::size_t i = 0; i < k; ++i) rows[b * k + i] = b * k, fed(b * k + i) = eos_id;
        continue;
      }
      candidates.clear();
      for (std::size_t i = 0; i < k; ++i) {
        if (live[b][i].log_prob == minus_inf) continue;
        log_softmax_row(logits.data() + (b * k + i) * vocab, vocab, log_probs);
        for (std::size_t v = 0; v < vocab; ++v) candidates.emplace_back(live[b][i].log_prob + log_probs[v], i * vocab + v);
      }
      const std::size_t keep = std::min(candidates.size(), 2 * k);
      std::partial_sort(candidates.begin(), candidates.begin() + keep, candidates.end(),
                        [](const auto& x, const auto& y) { return x.first > y.first || (x.first == y.first && x.second < y.second); });
      std::vector<Beam> next;
      std::vector<std::size_t> parents;
      for (std::size_t c = 0; c < keep && next.size() < k; ++c) {
        const std::size_t parent = candidates[c].second / vocab;
        const auto token = static_cast<std::int64_t>(candidates[c].second % vocab);
        Beam beam{live[b][parent].tokens, candidates[c].first};
        beam.tokens.push_back(token);
        if (token == eos_id) {
          if (c < k) finish(b, beam);  // an EOS outside the top k is dropped
        } else {
          next.push_back(std::move(beam));
          parents.push_back(parent);
        }
      }
      while (next.size() < k) next.push_back({{}, minus_inf}), parents.push_back(0);
      if (finished[b].size() >= k) done[b] = true;
      else if (step + 1 == max_len) {
        for (const Beam& beam : next) finish(b, beam);
        done[b] = true;
      }
      for (std::size_t i = 0; i < k; ++i) {
        rows[b * k + i] = b * k + parents[i];
        fed(b * k + i) = next[i].tokens.empty() ? eos_id : next[i].tokens.back();
      }
      live[b] = std::move(next);
    }
    decoder.reorder(rows);
  }

  const std::size_t n = std::min(k, options.n_best);
  for (auto& hypotheses : finished) {
    std::stable_sort(hypotheses.begin(), hypotheses.end(),
                     [](const Hypothesis& x, const Hypothesis& y) { return x.score > y.score; });
    if (hypotheses.size() > n) hypotheses.resize(n);
  }
  return finished;
}

}  // namespace xgrad::models
