// Embedding rows: a gather of table rows forward, a scatter-add of gradient rows backward.
//
// Legend: V = table rows (vocabulary), D = embedding width, L = number of looked-up ids.
#pragma once

#include <cstddef>
#include <cstdint>

namespace xgrad::kernels {

/// out[i, :] = table[ids[i], :] for i < L: out (L, D), table (V, D), every id in [0, V).
void embedding_forward(const float* table, const std::int64_t* ids, std::size_t L, std::size_t D, float* out);
/// dtable[ids[i], :] += dout[i, :] for every i < L with ids[i] != padding (repeated ids
/// accumulate): dout (L, D), dtable (V, D).
void embedding_backward(const float* dout, const std::int64_t* ids, std::size_t L, std::size_t D,
                        std::int64_t padding, float* dtable);

}  // namespace xgrad::kernels
