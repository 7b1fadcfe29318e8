// Autoregressive decoding with a trained models::Transformer: greedy and sampled.
//
// Every function encodes the source once and then extends each row one token at a time, either
// feeding the whole prefix back through the decoder at every step (kv_cache = false, the textbook
// way) or with an IncrementalDecoder that keeps each layer's self-attention keys and values and
// the memory's cross-attention keys and values (kv_cache = true: the same tokens, O(t) per step).
// All run without recording (NoGradGuard) and without dropout: put the model in eval() mode.
// Output: (B, L) target ids with L <= max_len, BOS excluded; a row that emitted EOS keeps it and is
// padded with pad_id after it; L is the number of steps the longest row needed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <xgrad/core/generator.hpp>
#include <xgrad/models/transformer.hpp>

namespace xgrad::models {

/// What every decoding strategy drives (greedy, sampling, beam search, each written once): a
/// model's decoder over a batch of rows, one position at a time. The Transformer's decoder
/// (TransformerDecoding) and GPT (GPTDecoding, gpt.hpp) implement it.
class DecoderState {
 public:
  virtual ~DecoderState() = default;
  /// The logits (B, V) of the first token to choose: after BOS, or after a prompt.
  virtual Array start() = 0;
  /// tokens (B): the token chosen for each row -> logits (B, V) of the next one.
  virtual Array step(const Indices& tokens) = 0;
  /// Row i continues row rows[i] (rows may repeat, be fewer or more): the batch becomes rows.size().
  virtual void reorder(const std::vector<std::size_t>& rows) = 0;
  /// Whether step() on `rows` rows is small work (a few rows through a KV cache, products that
  /// stream the weights in microseconds): the strategies then run the steps after start() in a
  /// team of the threads (kernels::with_team), which splits them without a parallel region each.
  virtual bool small_steps(std::size_t rows) const { return false; }
};

/// The decoder run one position at a time, each layer by its own forward_step. Per layer it
/// keeps a DecoderLayerCache: the self-attention keys (rotated at their positions with RoPE) and
/// values of every position fed so far in an nn::KVCache, and the cross-attention keys and values
/// of the memory (M, S, D), computed once. Works with each of the model's positional encodings.
/// step() gives the logits of the new position, equal to the last position of model.decode() on
/// the whole prefix (dropout aside).
///
/// reorder() lets rows follow other rows (beam search): the caches copy paths, never keys or
/// values, so beams that share a prefix share its rows. Rows that attend to one memory row in
/// consecutive runs of equal length (the beams of a source) are taken together: their queries go
/// through cross-attention as the queries of one sequence, and through self-attention side by
/// side, so what they share is read from cache once per source rather than from memory per beam.
class IncrementalDecoder {
 public:
  /// memory (M, S, D) = model.encode(src), src_padding (M, S) = model.padding_mask(src). The
  /// batch starts as the M memory rows, in order.
  IncrementalDecoder(const Transformer& model, const Tensor& memory, const Mask& src_padding);
  ~IncrementalDecoder();
  /// tokens (B): the token at position t for each row -> logits (B, V) for position t + 1.
  Array step(const Indices& tokens);
  /// Row i continues row rows[i] (rows may repeat and may be fewer or more than B): the batch
  /// becomes rows.size().
  void reorder(const std::vector<std::size_t>& rows);
  std::size_t length() const { return length_; }
  std::size_t batch() const { return memory_rows_.size(); }

 private:
  void regroup();
  const Transformer& model_;
  Mask src_padding_;                // (M, S)
  std::vector<std::shared_ptr<DecoderLayerCache>> layers_;  // one per decoder layer
  std::vector<std::size_t> memory_rows_;  // (B): the memory row each row attends to
  // Cross-attention runs over G = B / group_size_ groups of consecutive rows that share a memory
  // row: group g attends to memory row group_memory_[g].
  std::size_t group_size_ = 1;
  std::vector<std::size_t> group_memory_;  // (G)
  Mask group_padding_;                     // (G, S): src_padding_'s rows group_memory_
  std::size_t length_ = 0;
};

/// The Transformer's decoder as a DecoderState: the source encoded once, then BOS and the chosen
/// tokens fed one position at a time, with the KV cache (IncrementalDecoder) or by re-feeding
/// the whole prefix (kv_cache = false; reorder then copies the prefixes).
class TransformerDecoding : public DecoderState {
 public:
  TransformerDecoding(const Transformer& model, const Indices& src, std::int64_t bos_id, bool kv_cache = true);
  ~TransformerDecoding() override;
  Array start() override;
  Array step(const Indices& tokens) override;
  void reorder(const std::vector<std::size_t>& rows) override;
  bool small_steps(std::size_t rows) const override;  // with the KV cache, up to kernels::kSkinnyRows

 private:
  struct Refeed;
  std::int64_t bos_id_;
  std::size_t batch_;
  std::unique_ptr<IncrementalDecoder> cached_;
  std::unique_ptr<Refeed> refeed_;
};

/// The strategies over any DecoderState of `batch` rows, vocabulary `vocab`: rows that emit
/// eos_id (< 0: none) stop and are padded with pad_id; at most max_len tokens. Output (B, L).
/// pick chooses a row's token from its logits (V): argmax, or a Sampler.
Indices decode_tokens(DecoderState& decoder, std::size_t batch, std::size_t vocab, std::int64_t eos_id,
                      std::int64_t pad_id, std::size_t max_len,
                      const std::function<std::int64_t(const float*, std::size_t)>& pick);

/// Greedy decoding: y_t = argmax_v p(v | y_<t, x) (ties to the lowest id).
/// src (B, S) with S >= 1 and S <= config.max_len, ids in [0, src_vocab); bos_id and eos_id in
/// [0, tgt_vocab); 1 <= max_len <= config.max_len. Anything else throws xgrad::Error.
Indices greedy_decode(const Transformer& model, const Indices& src, std::int64_t bos_id, std::int64_t eos_id,
                      std::size_t max_len, bool kv_cache = true);

/// Ancestral sampling: y_t ~ softmax(logits / temperature) restricted to the top_k largest logits
/// (top_k = 0: the whole vocabulary). top_k = 1 is greedy decoding. temperature > 0.
Indices sample_decode(const Transformer& model, const Indices& src, std::int64_t bos_id, std::int64_t eos_id,
                      std::size_t max_len, float temperature, std::size_t top_k, Generator& generator,
                      bool kv_cache = true);

/// Beam search settings: beam size k, the GNMT length penalty lp(L) = ((5 + L) / 6)^alpha
/// (alpha = 0: plain log-probability), and how many hypotheses to return per source.
struct BeamSearchOptions {
  std::size_t beam_size = 4;
  float length_penalty = 0.6f;  ///< alpha
  std::size_t n_best = 1;
};

/// One finished hypothesis: its tokens (BOS excluded; EOS included when it ended by it), its
/// log-probability sum_t log p(y_t | y_<t, x), and its score log_prob / lp(len(tokens)).
struct Hypothesis {
  std::vector<std::int64_t> tokens;
  float log_prob = 0.f;
  float score = 0.f;
};

/// Beam search over any DecoderState whose start() gives one row per source (`batch` sources).
std::vector<std::vector<Hypothesis>> beam_search(DecoderState& decoder, std::size_t batch, std::size_t vocab,
                                                 std::int64_t eos_id, std::size_t max_len,
                                                 const BeamSearchOptions& options = {});

/// Beam search over a batch of sources with a KV cache, k beams per source. Each step every live
/// beam is extended by every token; of the best 2k extensions, those ending in EOS become finished
/// hypotheses (while they rank in the top k) and the best k others stay live. A source is done when
/// it has k finished hypotheses; at max_len its live beams are finished as they are. Returns, per
/// source, its min(k, n_best) best hypotheses, by score, best first (fewer only when the vocabulary
/// has fewer than k + 1 tokens). Inputs are checked as greedy_decode's; k >= 1, n_best >= 1.
std::vector<std::vector<Hypothesis>> beam_search(const Transformer& model, const Indices& src, std::int64_t bos_id,
                                                 std::int64_t eos_id, std::size_t max_len,
                                                 const BeamSearchOptions& options = {});

}  // namespace xgrad::models
