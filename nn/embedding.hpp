// nn::Embedding: a table of vectors looked up by integer id.
#pragma once

#include <cstdint>
#include <optional>

#include <xgrad/core/generator.hpp>
#include <xgrad/nn/module.hpp>

namespace xgrad::nn {

/// Shape: indices (...) int64 -> (..., embedding_dim).
/// Parameter: weight (num_embeddings, embedding_dim) ~ N(0, 1), as PyTorch; the padding_idx row is
/// zero and receives no gradient.
class Embedding : public Module {
 public:
  Embedding(std::size_t num_embeddings, std::size_t embedding_dim, std::optional<std::int64_t> padding_idx = std::nullopt,
            Generator& generator = default_generator());
  Tensor forward(const Indices& indices) const;

  std::size_t num_embeddings() const { return num_embeddings_; }
  std::size_t embedding_dim() const { return embedding_dim_; }

  Tensor weight;

 protected:
  std::string extra_repr() const override;

 private:
  std::size_t num_embeddings_, embedding_dim_;
  std::optional<std::int64_t> padding_idx_;
};

}  // namespace xgrad::nn
