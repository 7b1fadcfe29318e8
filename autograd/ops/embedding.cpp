// Embedding lookup: a gather of table rows forward, a scatter-add of gradient rows backward.
#include <xgrad/autograd/ops/embedding.hpp>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include <xgrad/autograd/error.hpp>
#include <xgrad/autograd/tape.hpp>

namespace xgrad {

namespace {
constexpr std::size_t kParallelThreshold = 32768;  // elements copied before rows go to threads
}  // namespace

// Legend: V = table rows (vocabulary), D = embedding width, L = number of looked-up ids.
Tensor embedding(const Indices& indices, const Tensor& weight, std::optional<std::int64_t> padding_idx) {
  if (!weight.defined()) throw Error("embedding: the weight tensor is undefined");
  if (weight.dim() != 2) {
    throw Error(fmt::format("embedding: expected a weight of shape [V, D], got shape {}", shape_str(weight.shape())));
  }
  const std::size_t V = weight.size(0), D = weight.size(1);
  const auto rows = static_cast<std::int64_t>(V);

  std::int64_t padding = -1;  // no padding row
  if (padding_idx) {
    if (*padding_idx < -rows || *padding_idx >= rows) {
      throw Error(fmt::format("embedding: padding_idx {} is out of range for a table of {} rows (expected {} to {})",
                              *padding_idx, V, -rows, rows - 1));
    }
    padding = *padding_idx < 0 ? *padding_idx + rows : *padding_idx;
  }

  const Shape index_shape(indices.shape().begin(), indices.shape().end());
  const std::size_t L = indices.size();
  const std::int64_t* ids = indices.data();
  for (std::size_t i = 0; i < L; ++i) {
    if (ids[i] < 0 || ids[i] >= rows) {
      throw Error(fmt::format("embedding: index {} at position {} of the indices (shape {}) is out of range for a "
                              "table of {} rows (expected 0 to {})",
                              ids[i], index_str(i, index_shape), shape_str(index_shape), V, rows - 1));
    }
  }

  Shape out_shape = index_shape;
  out_shape.push_back(D);
  Array out = Array::from_shape(out_shape);  // (..., D)
  const float* table = weight.value().data();  // (V, D)
  float* dst = out.data();
  const auto count = static_cast<std::ptrdiff_t>(L);
#pragma omp parallel for schedule(static) if (L * D > kParallelThreshold)
  for (std::ptrdiff_t i = 0; i < count; ++i) {
    std::memcpy(dst + i * D, table + ids[i] * D, D * sizeof(float));
  }

  // d out[i, :] / d weight[ids[i], :] = I: each gradient row is added to its table row, so
  // repeated ids accumulate. Serial: two positions may name the same row.
  auto saved_ids = std::make_shared<const Indices>(indices);
  return record("embedding", std::move(out), {weight}, [saved_ids, padding, D](BackwardContext& ctx) {
    if (!ctx.needs_grad(0)) return;
    Array& grad_weight = ctx.grad_buffer(0);  // (V, D)
    const float* g = ctx.grad_output().data();  // (L, D)
    float* gw = grad_weight.data();
    const std::int64_t* ids = saved_ids->data();
    const std::size_t L = saved_ids->size();
    for (std::size_t i = 0; i < L; ++i) {
      if (ids[i] == padding) continue;
      float* row = gw + ids[i] * D;
      const float* g_row = g + i * D;
#pragma omp simd
      for (std::size_t d = 0; d < D; ++d) row[d] += g_row[d];
    }
  });
}

}  // namespace xgrad
