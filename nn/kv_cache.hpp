// nn::KVCache: one attention layer's keys and values for the positions seen so far, for decoding
// that feeds a sequence a few tokens at a time. The buffers grow in place (doubling), so
// generating T tokens copies O(T) rows, where concatenating at every step copies O(T^2).
//
// Dimension legend: B = batch, T = new positions, P = positions held, D = key (or value) width.
#pragma once

#include <cstddef>
#include <vector>

#include <xgrad/autograd/tensor.hpp>

namespace xgrad::nn {

class KVCache {
 public:
  /// Appends the keys and values of T new positions: k (B, T, D), v (B, T, Dv), the same B as
  /// before. They enter the cache as values: no gradient flows back through it.
  void append(const Tensor& k, const Tensor& v);
  /// (B, capacity, D) and (B, capacity, Dv): positions [0, length()) hold the keys and values, the
  /// rest is room to grow (give attention num_keys = length()).
  const Tensor& keys() const { return keys_; }
  const Tensor& values() const { return values_; }
  std::size_t length() const { return length_; }  ///< P
  std::size_t capacity() const { return keys_.defined() ? keys_.shape()[1] : 0; }
  /// B, or 0 before the first append.
  std::size_t batch() const { return keys_.defined() ? keys_.shape()[0] : 0; }
  /// Row i becomes row rows[i] (rows may repeat, as beams that share a prefix): copies them.
  void select_rows(const std::vector<std::size_t>& rows);

 private:
  Tensor keys_, values_;
  std::size_t length_ = 0;
};

}  // namespace xgrad::nn
