// The few largest values of a row, for beam search: each beam's next-token logits give up their
// best candidates without sorting the vocabulary.
#pragma once

#include <cstddef>
#include <vector>

namespace xgrad::kernels {

/// best = the indices of the n largest of x (size), largest first, ties to the lower index. A
/// value enters by insertion only if it beats the n-th held so far; once n are held, one compare
/// per vector finds the lanes that do (vec::above), and only those are looked at, so a row costs
/// about one compare per vector and one insertion per value that enters. A NaN never beats a
/// number: it enters only while fewer than n are held, at the back. best is cleared first; its
/// capacity is kept between calls.
void top_n(const float* x, std::size_t size, std::size_t n, std::vector<std::size_t>& best);

}  // namespace xgrad::kernels
