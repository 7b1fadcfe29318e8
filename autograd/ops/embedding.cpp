// Embedding lookup: a gather of table rows forward, a scatter-add of gradient rows backward (both
// in kernels/embedding); the ids are checked here.
#include <xgrad/autograd/ops/embedding.hpp>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/kernels/embedding.hpp>

namespace xgrad {

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
  kernels::embedding_forward(weight.value().data(), ids, L, D, out.data());

  // d out[i, :] / d weight[ids[i], :] = I: each gradient row is added to its table row, so
  // repeated ids accumulate; the padding row gets none.
  auto saved_ids = std::make_shared<const Indices>(indices);
  return record("embedding", std::move(out), {weight}, [saved_ids, padding, D](BackwardContext& ctx) {
    if (!ctx.needs_grad(0)) return;
    kernels::embedding_backward(ctx.grad_output().data(), saved_ids->data(), saved_ids->size(), D, padding,
                                ctx.grad_buffer(0).data());
  });
}

}  // namespace xgrad
