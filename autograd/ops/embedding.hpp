// Embedding lookup: rows of a table selected by integer ids.
#pragma once

#include <cstdint>
#include <optional>

#include <xgrad/autograd/tensor.hpp>

namespace xgrad {

/// out[..., :] = weight[indices[...], :]   indices (...) int64, weight (V, D) -> out (..., D).
/// The backward scatter-adds each output row's gradient into its table row; the row
/// `padding_idx` (negative counts from V) receives no gradient. An index outside [0, V) throws,
/// naming the index, its position and V.
Tensor embedding(const Indices& indices, const Tensor& weight, std::optional<std::int64_t> padding_idx = std::nullopt);

}  // namespace xgrad
