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

#include <xgrad/core/error.hpp>
#include <xgrad/autograd/ops/elementwise.hpp>
#include <xgrad/autograd/ops/shape_ops.hpp>
#include <xgrad/core/shape.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/kernels/linear.hpp>
#include <xgrad/kernels/parallel.hpp>
#include <xgrad/kernels/softmax.hpp>
#include <xgrad/kernels/team.hpp>
#include <xgrad/kernels/top_n.hpp>
#include <xgrad/models/sampling.hpp>
#include <xgrad/nn/functional.hpp>

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

}  // namespace

// --- the KV cache ------------------------------------------------------------------------------

namespace {

/// Rows `rows` of x along axis 0 (rows may repeat).
template <class A>
A gather_rows(const A& x, const std::vector<std::size_t>& rows) {
  auto shape = x.shape();
  const std::size_t row = x.shape()[0] == 0 ? 0 : x.size() / x.shape()[0];
  shape[0] = rows.size();
  A out = A::from_shape(shape);
  for (std::size_t i = 0; i < rows.size(); ++i) std::copy_n(x.data() + rows[i] * row, row, out.data() + i * row);
  return out;
}

}  // namespace

IncrementalDecoder::IncrementalDecoder(const Transformer& model, const Tensor& memory, const Mask& src_padding)
    : model_(model), src_padding_(src_padding), group_padding_(src_padding) {
  NoGradGuard no_grad;
  for (const auto& layer : *model.transformer->decoder->layers) {
    auto cache = std::make_shared<DecoderLayerCache>();
    cache->cross_k = layer->multihead_attn->project_key(memory);
    cache->cross_v = layer->multihead_attn->project_value(memory);
    layers_.push_back(std::move(cache));
  }
  memory_rows_.resize(src_padding.shape()[0]);
  std::iota(memory_rows_.begin(), memory_rows_.end(), std::size_t{0});
  group_memory_ = memory_rows_;
}

IncrementalDecoder::~IncrementalDecoder() = default;

Array IncrementalDecoder::step(const Indices& tokens) {
  NoGradGuard no_grad;
  const TransformerConfig& c = model_.config();
  const std::size_t batch = tokens.size();
  if (batch != memory_rows_.size()) {
    throw Error(fmt::format("IncrementalDecoder::step: {} tokens for a batch of {}", batch, memory_rows_.size()));
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
  const Mask fed = model_.padding_mask(column);  // (B, 1)

  DecodeStep context;
  context.position = length_;
  context.fed_padding = &fed;
  context.group_size = group_size_;
  context.group_padding = &group_padding_;
  Tensor x = model_.embed_target(column, length_);  // (B, 1, D), at position t
  const auto& layers = *model_.transformer->decoder->layers;
  for (std::size_t l = 0; l < layers.size(); ++l) x = layers[l].forward_step(x, *layers_[l], context);  // (B, 1, D)
  ++length_;
  Array logits = model_.projection->forward(model_.transformer->decoder->norm->forward(x)).value();  // (B, 1, V)
  logits.reshape({batch, c.tgt_vocab});
  return logits;
}

void IncrementalDecoder::reorder(const std::vector<std::size_t>& rows) {
  const std::size_t batch = memory_rows_.size();
  for (const std::size_t r : rows) {
    if (r >= batch) throw Error(fmt::format("IncrementalDecoder::reorder: row {} of a batch of {}", r, batch));
  }
  bool identity = rows.size() == batch;  // every row stays where it is: nothing to do
  for (std::size_t i = 0; i < rows.size() && identity; ++i) identity = rows[i] == i;
  if (identity) return;
  for (auto& cache : layers_) cache->self_attn.reorder(rows);
  std::vector<std::size_t> memory_rows(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) memory_rows[i] = memory_rows_[rows[i]];
  memory_rows_ = std::move(memory_rows);
  regroup();
}

void IncrementalDecoder::regroup() {
  // The group size: the length of the first run of rows with one memory row, if every row then
  // shares its group's memory row; 1 otherwise.
  const std::size_t batch = memory_rows_.size();
  std::size_t size = 1;
  while (size < batch && memory_rows_[size] == memory_rows_[0]) ++size;
  bool uniform = batch % size == 0;
  for (std::size_t r = 0; r < batch && uniform; ++r) uniform = memory_rows_[r] == memory_rows_[r - r % size];
  if (!uniform) size = 1;
  std::vector<std::size_t> group_memory(batch / size);
  for (std::size_t g = 0; g < group_memory.size(); ++g) group_memory[g] = memory_rows_[g * size];
  group_size_ = size;
  if (group_memory == group_memory_) return;
  group_memory_ = std::move(group_memory);
  group_padding_ = gather_rows(src_padding_, group_memory_);
  bool all_in_order = group_memory_.size() == src_padding_.shape()[0];
  for (std::size_t g = 0; g < group_memory_.size() && all_in_order; ++g) all_in_order = group_memory_[g] == g;
  for (auto& cache : layers_) {
    cache->group_k = all_in_order ? Tensor() : Tensor(gather_rows(cache->cross_k.value(), group_memory_));
    cache->group_v = all_in_order ? Tensor() : Tensor(gather_rows(cache->cross_v.value(), group_memory_));
  }
}

// --- the Transformer's decoder as a DecoderState ---------------------------------------------------

/// The textbook step: the whole prefix goes through the decoder again, and only its last position
/// is projected to logits.
struct TransformerDecoding::Refeed {
  const Transformer& model;
  Tensor memory;                             // (B, S, D)
  Mask src_padding;                          // (B, S)
  std::vector<std::vector<std::int64_t>> prefix;  // per row: the tokens fed so far

  Array step(const Indices& tokens) {  // (B) -> logits (B, V)
    const std::size_t batch = tokens.size(), d = model.config().d_model;
    for (std::size_t b = 0; b < batch; ++b) prefix[b].push_back(tokens(b));
    const std::size_t t = prefix[0].size();
    Indices ids = Indices::from_shape({batch, t});  // (B, t)
    for (std::size_t b = 0; b < batch; ++b) std::copy(prefix[b].begin(), prefix[b].end(), &ids(b, 0));
    const Tensor decoded = model.decode(ids, memory, src_padding);
    const Array& hidden = decoded.value();          // (B, t, D)
    Array last = Array::from_shape({batch, 1, d});  // (B, 1, D)
    for (std::size_t b = 0; b < batch; ++b) std::copy_n(hidden.data() + (b * t + t - 1) * d, d, last.data() + b * d);
    Array logits = model.projection->forward(Tensor(std::move(last))).value();  // (B, 1, V)
    logits.reshape({batch, model.config().tgt_vocab});                          // (B, V)
    return logits;
  }
  void reorder(const std::vector<std::size_t>& rows) {
    std::vector<std::vector<std::int64_t>> kept;
    for (const std::size_t r : rows) kept.push_back(prefix.at(r));
    prefix = std::move(kept);
    memory = Tensor(gather_rows(memory.value(), rows));
    src_padding = gather_rows(src_padding, rows);
  }
};

TransformerDecoding::TransformerDecoding(const Transformer& model, const Indices& src, std::int64_t bos_id,
                                         bool kv_cache)
    : bos_id_(bos_id), batch_(src.shape()[0]) {
  NoGradGuard no_grad;
  const Mask src_padding = model.padding_mask(src);  // (B, S)
  const Tensor memory = model.encode(src);            // (B, S, D)
  if (kv_cache) cached_ = std::make_unique<IncrementalDecoder>(model, memory, src_padding);
  else refeed_.reset(new Refeed{model, memory, src_padding, std::vector<std::vector<std::int64_t>>(batch_)});
}

TransformerDecoding::~TransformerDecoding() = default;

Array TransformerDecoding::start() {
  Indices bos = Indices::from_shape({batch_});
  std::fill(bos.begin(), bos.end(), bos_id_);
  return step(bos);
}

Array TransformerDecoding::step(const Indices& tokens) {
  NoGradGuard no_grad;
  return cached_ ? cached_->step(tokens) : refeed_->step(tokens);
}

void TransformerDecoding::reorder(const std::vector<std::size_t>& rows) {
  batch_ = rows.size();
  if (cached_) cached_->reorder(rows);
  else refeed_->reorder(rows);
}

bool TransformerDecoding::small_steps(std::size_t rows) const { return cached_ && rows <= kernels::kSkinnyRows; }

// --- the strategies, over any DecoderState ---------------------------------------------------------

namespace {

/// Runs a strategy's steps after the first: in a team of the threads (kernels::with_team) when
/// the decoder says they are small, few rows through a cache, whose products then split over the
/// threads without a parallel region each. The first step (a prompt, the memory's keys and
/// values) runs before, on the whole machine.
void in_team(bool small_steps, const std::function<void()>& steps) {
  if (small_steps) kernels::with_team(steps);
  else steps();
}

}  // namespace

Indices decode_tokens(DecoderState& decoder, std::size_t batch, std::size_t vocab, std::int64_t eos_id,
                      std::int64_t pad, std::size_t max_len,
                      const std::function<std::int64_t(const float*, std::size_t)>& pick) {
  NoGradGuard no_grad;
  nn::functional::PackedWeightsGuard packed;  // each step's few-row products on weights packed once
  std::vector<std::vector<std::int64_t>> out(batch);
  std::vector<bool> done(batch, false);
  // Finished rows leave the decoder's batch once they are a quarter of it (dropping rows copies
  // what the decoder keeps per row): decoder row row_of[b] decodes row b, none once it has left.
  constexpr std::size_t kLeft = std::numeric_limits<std::size_t>::max();
  std::vector<std::size_t> row_of(batch);
  std::iota(row_of.begin(), row_of.end(), std::size_t{0});
  Indices fed = Indices::from_shape({batch});  // (rows)
  std::size_t steps = 0;
  const auto advance = [&] {  // one step; false (and none taken) once every row is done
    if (std::all_of(done.begin(), done.end(), [](bool b) { return b; })) return false;
    const Array logits = steps == 0 ? decoder.start() : decoder.step(fed);  // (rows, V)
    std::size_t rows = 0, finished_rows = 0;
    for (std::size_t b = 0; b < batch; ++b) {
      const std::size_t r = row_of[b];
      const std::int64_t token = done[b] ? pad : pick(logits.data() + r * vocab, vocab);
      out[b].push_back(token);
      done[b] = done[b] || (eos_id >= 0 && token == eos_id);
      if (r == kLeft) continue;
      fed(r) = token;
      ++rows;
      finished_rows += done[b];
    }
    if (finished_rows < rows && 4 * finished_rows >= rows) {
      std::vector<std::size_t> kept;
      for (std::size_t b = 0; b < batch; ++b) {
        if (row_of[b] == kLeft) continue;
        if (done[b]) {
          row_of[b] = kLeft;
        } else {
          kept.push_back(row_of[b]);
          row_of[b] = kept.size() - 1;
        }
      }
      decoder.reorder(kept);
      Indices kept_fed = Indices::from_shape({kept.size()});
      for (std::size_t i = 0; i < kept.size(); ++i) kept_fed(i) = fed(kept[i]);
      fed = std::move(kept_fed);
    }
    ++steps;
    return true;
  };
  if (max_len > 0 && advance()) {
    in_team(decoder.small_steps(batch), [&] {
      while (steps < max_len && advance()) {
      }
    });
  }
  Indices result = Indices::from_shape({batch, steps});  // (B, L)
  for (std::size_t b = 0; b < batch; ++b) std::copy_n(out[b].data(), steps, result.data() + b * steps);
  return result;
}

Indices greedy_decode(const Transformer& model, const Indices& src, std::int64_t bos_id, std::int64_t eos_id,
                      std::size_t max_len, bool kv_cache) {
  check_inputs("greedy_decode", model, src, bos_id, eos_id, max_len);
  TransformerDecoding decoder(model, src, bos_id, kv_cache);
  const TransformerConfig& c = model.config();
  return decode_tokens(decoder, src.shape()[0], c.tgt_vocab, eos_id, c.pad_id, max_len, argmax);
}

Indices sample_decode(const Transformer& model, const Indices& src, std::int64_t bos_id, std::int64_t eos_id,
                      std::size_t max_len, float temperature, std::size_t top_k, Generator& generator, bool kv_cache) {
  if (!(temperature > 0.f) || !std::isfinite(temperature)) {
    throw Error(fmt::format("sample_decode: temperature must be finite and > 0, got {}", temperature));
  }
  check_inputs("sample_decode", model, src, bos_id, eos_id, max_len);
  Sampler sampler(temperature, top_k, generator);
  TransformerDecoding decoder(model, src, bos_id, kv_cache);
  const TransformerConfig& c = model.config();
  return decode_tokens(decoder, src.shape()[0], c.tgt_vocab, eos_id, c.pad_id, max_len,
                       [&](const float* logits, std::size_t vocab) { return sampler(logits, vocab); });
}

namespace {

/// GNMT length penalty ((5 + L) / 6)^alpha.
double length_penalty(std::size_t length, double alpha) { return std::pow((5.0 + length) / 6.0, alpha); }

/// A source's beams share their prefixes: each token chosen is a node of the source's tree, which
/// points to the node before it, so that extending a beam costs one node, not a copy of its
/// tokens. A beam is its last node and its log-probability.
struct TokenNode {
  std::int64_t token;
  std::uint32_t parent;  // kNoNode: the first token
  std::uint32_t length;  // tokens up to this one
};
constexpr std::uint32_t kNoNode = std::numeric_limits<std::uint32_t>::max();

struct Beam {
  std::uint32_t node;  // kNoNode: empty
  double log_prob;
};

/// The tokens of the path that ends at `node`, first to last.
std::vector<std::int64_t> path_tokens(const std::vector<TokenNode>& tree, std::uint32_t node) {
  std::vector<std::int64_t> tokens(node == kNoNode ? 0 : tree[node].length);
  for (std::size_t i = tokens.size(); i > 0; node = tree[node].parent) tokens[--i] = tree[node].token;
  return tokens;
}

/// One extension of a live beam: its log-probability and the beam's rank * V + token, which
/// breaks ties (the lower first).
struct Candidate {
  double log_prob;
  std::size_t index;
};

bool ranks_before(const Candidate& a, const Candidate& b) {
  return a.log_prob > b.log_prob || (a.log_prob == b.log_prob && a.index < b.index);
}

/// The n best extensions of every live beam, from the next-token logits (rows, V), row r the
/// beam beams[r] (null: not live) of rank r % width: for each of the row's n largest logits (ties
/// to the lower id), log_prob + log softmax(logits)_v. Only those n can rank among the best n
/// extensions of all a source's beams together. Row r's go to out[r n, r n + counts[r]); the rows
/// are independent, so they are spread over the threads.
void best_extensions(const float* logits, std::size_t vocab, std::size_t n, std::size_t width,
                     const std::vector<const Beam*>& beams, std::vector<Candidate>& out,
                     std::vector<std::size_t>& counts) {
  const std::size_t rows = beams.size();
  out.resize(rows * n);
  counts.assign(rows, 0);
  kernels::parallel_rows(rows, vocab, [&](std::size_t r) {
    if (beams[r] == nullptr) return;
    const float* row = logits + r * vocab;  // (V)
    const double log_z = kernels::log_sum_exp(row, vocab);
    thread_local std::vector<std::size_t> best;
    kernels::top_n(row, vocab, n, best);
    for (std::size_t j = 0; j < best.size(); ++j) {
      out[r * n + j] = {beams[r]->log_prob + row[best[j]] - log_z, (r % width) * vocab + best[j]};
    }
    counts[r] = best.size();
  });
}

}  // namespace

std::vector<std::vector<Hypothesis>> beam_search(const Transformer& model, const Indices& src, std::int64_t bos_id,
                                                 std::int64_t eos_id, std::size_t max_len,
                                                 const BeamSearchOptions& options) {
  check_inputs("beam_search", model, src, bos_id, eos_id, max_len);
  TransformerDecoding decoder(model, src, bos_id);  // the options are checked by the search itself
  return beam_search(decoder, src.shape()[0], model.config().tgt_vocab, eos_id, max_len, options);
}

std::vector<std::vector<Hypothesis>> beam_search(DecoderState& decoder, std::size_t batch, std::size_t vocab,
                                                 std::int64_t eos_id, std::size_t max_len,
                                                 const BeamSearchOptions& options) {
  if (options.beam_size == 0 || options.n_best == 0) {
    throw Error(fmt::format("beam_search: beam_size {} and n_best {} must be >= 1", options.beam_size, options.n_best));
  }
  NoGradGuard no_grad;
  nn::functional::PackedWeightsGuard packed;  // each step's few-row products on weights packed once
  const std::size_t k = options.beam_size;
  const double alpha = options.length_penalty, minus_inf = -std::numeric_limits<double>::infinity();
  // Decoder row a * width + i is beam i (by rank) of source active[a]. Every beam starts from the
  // same first position, so the first step runs one row per source (width 1), then k rows
  // (width k); a source that is done leaves the batch. The Transformer's cache reorders by
  // copying paths, not keys and values, so beams may move freely.
  std::vector<std::size_t> active(batch);
  std::iota(active.begin(), active.end(), std::size_t{0});
  std::size_t width = 1;
  std::vector<std::vector<Beam>> live(batch, std::vector<Beam>{Beam{kNoNode, 0.0}});
  std::vector<std::vector<TokenNode>> trees(batch);
  std::vector<std::vector<Hypothesis>> finished(batch);
  auto finish = [&](std::size_t b, const Beam& beam) {
    if (beam.log_prob == minus_inf) return;
    const std::vector<std::int64_t> tokens = path_tokens(trees[b], beam.node);
    const double score = beam.log_prob / length_penalty(tokens.size(), alpha);
    finished[b].push_back({tokens, static_cast<float>(beam.log_prob), static_cast<float>(score)});
  };

  Indices fed;  // (A * width)
  std::vector<Candidate> candidates, extensions;
  std::vector<std::size_t> counts;
  std::vector<const Beam*> beams;
  std::size_t step = 0;
  const auto advance = [&] {  // one step; false once no source is left
    const Array logits = step == 0 ? decoder.start() : decoder.step(fed);  // (A * width, V)
    std::vector<std::size_t> rows;           // the decoder row each next beam continues
    std::vector<std::int64_t> next_tokens;   // and the token it feeds
    std::vector<std::size_t> still_active;
    beams.clear();
    for (const std::size_t b : active) {
      for (std::size_t i = 0; i < width; ++i) beams.push_back(live[b][i].log_prob == minus_inf ? nullptr : &live[b][i]);
    }
    best_extensions(logits.data(), vocab, 2 * k, width, beams, extensions, counts);
    for (std::size_t a = 0; a < active.size(); ++a) {
      const std::size_t b = active[a];
      candidates.clear();
      for (std::size_t r = a * width; r < (a + 1) * width; ++r) {
        candidates.insert(candidates.end(), extensions.begin() + static_cast<std::ptrdiff_t>(r * 2 * k),
                          extensions.begin() + static_cast<std::ptrdiff_t>(r * 2 * k + counts[r]));
      }
      const std::size_t keep = std::min(candidates.size(), 2 * k);
      std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(keep), candidates.end(),
                        ranks_before);
      std::vector<Beam> next;
      std::vector<std::size_t> parents;
      std::vector<TokenNode>& tree = trees[b];
      for (std::size_t c = 0; c < keep && next.size() < k; ++c) {
        const std::size_t parent = candidates[c].index / vocab;
        const auto token = static_cast<std::int64_t>(candidates[c].index % vocab);
        const std::uint32_t from = live[b][parent].node;
        tree.push_back({token, from, from == kNoNode ? 1 : tree[from].length + 1});
        const Beam beam{static_cast<std::uint32_t>(tree.size() - 1), candidates[c].log_prob};
        if (eos_id >= 0 && token == eos_id) {
          if (c < k) finish(b, beam);  // an EOS outside the top k is dropped
        } else {
          next.push_back(beam);
          parents.push_back(parent);
        }
      }
      if (finished[b].size() >= k) continue;  // done
      if (step + 1 == max_len) {
        for (const Beam& beam : next) finish(b, beam);
        continue;
      }
      for (std::size_t i = 0; i < k; ++i) {  // beams past the live ones stay empty
        rows.push_back(a * width + (i < next.size() ? parents[i] : 0));
        // Beams past the live ones feed EOS (or, with no EOS, the best beam's token): their
        // logits are never read.
        const std::int64_t filler = eos_id >= 0 || next.empty() ? std::max<std::int64_t>(eos_id, 0) : tree[next[0].node].token;
        next_tokens.push_back(i < next.size() ? tree[next[i].node].token : filler);
      }
      next.resize(k, Beam{kNoNode, minus_inf});
      live[b] = std::move(next);
      still_active.push_back(b);
    }
    active = std::move(still_active);
    ++step;
    if (active.empty()) return false;
    decoder.reorder(rows);
    width = k;
    fed = Indices::from_shape({rows.size()});
    std::copy(next_tokens.begin(), next_tokens.end(), fed.begin());
    return true;
  };
  if (max_len > 0 && !active.empty() && advance()) {
    in_team(decoder.small_steps(active.size() * k), [&] {
      while (step < max_len && advance()) {
      }
    });
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
