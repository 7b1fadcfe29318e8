#include <xgrad/nn/embedding.hpp>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/autograd/ops/embedding.hpp>
#include <xgrad/nn/init.hpp>

namespace xgrad::nn {

Embedding::Embedding(std::size_t num_embeddings, std::size_t embedding_dim, std::optional<std::int64_t> padding_idx,
                     Generator& generator)
    : Module("Embedding"), num_embeddings_(num_embeddings), embedding_dim_(embedding_dim) {
  if (padding_idx) {
    const auto n = static_cast<std::int64_t>(num_embeddings);
    if (*padding_idx < -n || *padding_idx >= n) {
      throw Error(fmt::format("Embedding: padding_idx {} is out of range for {} embeddings", *padding_idx, n));
    }
    padding_idx_ = *padding_idx < 0 ? *padding_idx + n : *padding_idx;
  }
  weight = register_parameter("weight", zeros({num_embeddings, embedding_dim}));
  init::normal_(weight, 0.0, 1.0, generator);
  if (padding_idx_) {
    float* row = weight.mutable_value().data() + *padding_idx_ * embedding_dim;
    std::fill(row, row + embedding_dim, 0.f);
  }
}

Tensor Embedding::forward(const Indices& indices) const {
  return run_hooks(embedding(indices, weight, padding_idx_));
}

std::string Embedding::extra_repr() const {
  return fmt::format("{}, {}{}", num_embeddings_, embedding_dim_,
                     padding_idx_ ? fmt::format(", padding_idx={}", *padding_idx_) : "");
}

}  // namespace xgrad::nn
