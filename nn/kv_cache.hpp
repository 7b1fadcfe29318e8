// nn::KVCache: one attention layer's keys and values for the positions fed so far, for decoding
// that feeds sequences a few tokens at a time (a Transformer decoder layer's self-attention, a
// GPT block). Both the step-by-step forward and beam search use this one structure.
//
// Position s keeps one block of keys (N_s, D) and values (N_s, Dv), one row per sequence fed
// there. Each of the B current rows reads its prefix through a path: at position s, the row of
// block s it descends from. So:
// - appending a position never copies the ones before it (a generation of T tokens copies O(T)
//   rows, where concatenating at every step copies O(T^2));
// - reorder(), rows following other rows as beam search makes them, copies paths, never keys or
//   values: beams that share a prefix share its rows.
//
// Dimension legend: B = rows, T = new positions, P = positions held, D = key (or value) width.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <xgrad/autograd/tensor.hpp>
#include <xgrad/nn/functional.hpp>

namespace xgrad::nn {

class KVCache {
 public:
  /// Appends T new positions: k (B, T, D), v (B, T, Dv) and, if given, padding (B, T), true for a
  /// key to ignore. Row b of the new positions continues row b. Once the cache holds anything, B,
  /// D and Dv must stay the cache's. The cache keeps values: no gradient flows back through it.
  void append(const Tensor& k, const Tensor& v, const Mask* padding = nullptr);
  /// Row i continues row rows[i] (rows may repeat, be fewer or more than B): the batch becomes
  /// rows.size(). Copies paths only.
  void reorder(const std::vector<std::size_t>& rows);

  std::size_t length() const { return keys_.size(); }  ///< P
  std::size_t batch() const { return batch_; }         ///< B, or 0 before the first append
  /// What functional::gathered_attention reads: every position's block and each row's path.
  /// group: runs of this many consecutive rows that mostly share their prefix (the beams of one
  /// source), taken together. Valid until the cache changes.
  functional::GatheredKeyValues gathered(std::size_t group = 1) const;
  /// Each row's keys (B, P, D) and values (B, P, Dv) along its path, copied into one tensor: for
  /// attention of several new positions at once over a cache that already held some.
  Tensor keys() const;
  Tensor values() const;

 private:
  std::vector<Array> keys_, values_;  // per position s: (N_s, D), (N_s, Dv)
  std::vector<Mask> padding_;         // per position s: (N_s), or a 0-d mask where none was given
  std::vector<std::uint32_t> paths_;  // (B, P): the row of position s that row b reads
  std::size_t batch_ = 0;
};

}  // namespace xgrad::nn
