// The largest values of a row, in order: beam search's candidates of each beam and top-k
// sampling's tokens, without sorting the vocabulary.
#pragma once

#include <cstddef>
#include <vector>

namespace xgrad::kernels {

/// best = the indices of the n largest of x (size), largest first, ties to the lower index; a NaN
/// ranks after every number (-inf included), so NaNs are among the best only in a row of fewer
/// than n numbers. Three ways, by n:
/// - n <= vec::W: two passes over the row: each lane's maximum, whose n-th largest t bounds the
///   n-th largest value, then the values >= t, sorted (for 1000 values in random order and n = 8,
///   about 11 of them);
/// - n * n <= 4 size: one pass of insertions of each value that beats the n-th held so far (about
///   n ln(size / n) in random order, each a mispredicted branch and a move of up to n indices);
/// - larger n: a selection of the n best of all the indices, then a sort of those.
/// The first way also falls back on the others when -inf is among the n largest. best is cleared
/// first; its capacity is kept between calls.
void top_n(const float* x, std::size_t size, std::size_t n, std::vector<std::size_t>& best);

}  // namespace xgrad::kernels
