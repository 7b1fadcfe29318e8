// Batches by token budget over length buckets: pairs of similar length are padded together, so
// little compute goes to padding; the batch order is reshuffled every epoch from the seed, and
// the sampler's position can be saved and restored for exact resume.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <xgrad/core/array.hpp>

namespace xgrad::data {

/// One tokenized pair, without BOS or EOS.
struct EncodedPair {
  std::vector<std::int64_t> source;
  std::vector<std::int64_t> target;
};

/// A padded batch of R pairs (teacher forcing):
///   src     (R, S): source ids, then EOS, then pad_id
///   tgt_in  (R, T): BOS, target ids, then pad_id
///   tgt_out (R, T): target ids, EOS, then pad_id   (tgt_in shifted left by one)
struct Batch {
  Indices src;
  Indices tgt_in;
  Indices tgt_out;
  std::vector<std::size_t> rows;  ///< index of each row's pair in the dataset
  std::size_t source_tokens = 0;  ///< non-pad ids in src
  std::size_t target_tokens = 0;  ///< non-pad ids in tgt_out (what the loss averages over)
};

/// Pads the pairs `rows` (indices into `data`) into a Batch with the ids above, S = longest
/// source + 1, T = longest target + 1. Throws xgrad::Error on no rows, an index out of range or a
/// pair with an empty side.
Batch make_batch(const std::vector<EncodedPair>& data, const std::vector<std::size_t>& rows, std::int64_t pad_id,
                 std::int64_t bos_id, std::int64_t eos_id);

struct BatchSamplerOptions {
  /// Upper bound on rows x max(S, T) per batch (padding included). A pair longer than the budget
  /// gets a batch of its own.
  std::size_t batch_tokens = 4096;
  bool shuffle = true;       ///< shuffle pairs within buckets and the batch order each epoch
  std::uint64_t seed = 0;
  std::int64_t pad_id = 0, bos_id = 1, eos_id = 2;
  /// Data-parallel training: the sampler of rank `rank` of `world_size` takes every
  /// world_size-th batch of the one sequence all ranks plan from the seed (its rank-th of each
  /// world_size consecutive ones), so each epoch every pair is seen once across the ranks.
  std::size_t rank = 0, world_size = 1;
};

/// Epoch after epoch of batches. Each epoch: pairs are sorted by length (shuffled first when
/// shuffle is on, seeded by seed and epoch), cut into batches within the budget, and the batch
/// order is shuffled. The epoch's batch list depends only on (data, options, epoch).
class BatchSampler {
 public:
  /// Keeps a reference to `data`, which must outlive the sampler. Throws xgrad::Error on empty
  /// data, a zero budget or a pair with an empty source or target.
  BatchSampler(const std::vector<EncodedPair>& data, const BatchSamplerOptions& options);

  /// The next batch; after the last batch of an epoch comes the first of the next. With
  /// world_size > 1, this rank's batch of the next world_size (which may straddle two epochs).
  Batch next();
  std::size_t epoch() const { return epoch_; }
  /// Batches already taken from the current epoch (by all ranks: the same on each).
  std::size_t position() const { return position_; }
  /// Batches in the current epoch.
  std::size_t batches_in_epoch() const { return batches_.size(); }
  /// Moves to batch `position` of `epoch`, as if next() had been called that many times: with
  /// the epoch() and position() of a sampler, a new one continues exactly where it stopped.
  /// Every epoch has the same number of batches; a position past it throws xgrad::Error.
  void seek(std::size_t epoch, std::size_t position);

  /// Every pair exactly once, for evaluation: pairs sorted by length (shortest first, equal
  /// lengths in data order), cut within the budget, never shuffled. Batch::rows tells where each
  /// row's pair is in `data`, to put outputs back in data order.
  static std::vector<Batch> sequential(const std::vector<EncodedPair>& data, const BatchSamplerOptions& options);

 private:
  void plan_epoch();
  const std::vector<EncodedPair>& data_;
  BatchSamplerOptions options_;
  std::vector<std::vector<std::size_t>> batches_;  // row indices of each batch of this epoch
  std::size_t epoch_ = 0;
  std::size_t position_ = 0;
};

}  // namespace xgrad::data
