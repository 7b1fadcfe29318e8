// The few largest values of a row, for beam search: each beam's next-token logits give up their
// best candidates without sorting the vocabulary.
#pragma once

#include <cstddef>
#include <vector>

namespace xgrad::kernels {

/// best = the indices of the n largest of x (size), largest first, ties to the lower index; a NaN
/// ranks after every number (-inf included), so NaNs are among the best only in a row of fewer
/// than n numbers. Two passes over the row when n <= vec::W: each lane's maximum, whose n-th
/// largest t bounds the n-th largest value, then the values >= t, sorted (for 1000 values in
/// random order and n = 8, about 11 of them). Otherwise one pass of insertions of each value that
/// beats the n-th held so far (about n ln(size / n) in random order, each a mispredicted branch).
/// best is cleared first; its capacity is kept between calls.
void top_n(const float* x, std::size_t size, std::size_t n, std::vector<std::size_t>& best);

}  // namespace xgrad::kernels
