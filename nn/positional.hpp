// Positional information for attention, which by itself ignores order: the paper's sinusoidal
// table, a learned table, and rotary embeddings (RoPE) applied to queries and keys.
//
// Dimension legend: B = batch, T = length, D = model width, H = heads, dh = D / H.
#pragma once

#include <cstdint>

#include <xgrad/core/generator.hpp>
#include <xgrad/nn/module.hpp>

namespace xgrad::nn {

/// The paper's table (3.5): PE[pos, 2i] = sin(pos / 10000^(2i/D)), PE[pos, 2i+1] = cos(pos / 10000^(2i/D)),
/// computed in float32 the way the reference PyTorch model computes it.
Array sinusoidal_table(std::size_t max_len, std::size_t d_model);

/// Adds the sinusoidal table: (B, T, D) -> x + PE[offset : offset + T]. No parameters; the table is
/// a non-persistent buffer "pe" (not in state_dict, as in the reference model).
class SinusoidalPositionalEncoding : public Module {
 public:
  SinusoidalPositionalEncoding(std::size_t d_model, std::size_t max_len = 5000);
  Tensor forward(const Tensor& x, std::size_t offset = 0) const;
  std::size_t max_len() const { return max_len_; }

 private:
  std::size_t max_len_;
  Tensor pe_;  // (max_len, D)
};

/// Adds a learned table: (B, T, D) -> x + weight[offset : offset + T]. Parameter weight (max_len, D) ~ N(0, 1).
class LearnedPositionalEmbedding : public Module {
 public:
  LearnedPositionalEmbedding(std::size_t max_len, std::size_t d_model, Generator& generator = default_generator());
  Tensor forward(const Tensor& x, std::size_t offset = 0) const;
  std::size_t max_len() const { return max_len_; }

  Tensor weight;

 private:
  std::size_t max_len_;
};

/// Rotary position embedding (Su et al., RoFormer), in the "rotate half" pairing: within each
/// head, element i and element i + dh/2 are rotated by the angle pos * base^(-2i/dh). Applied to
/// queries and keys, it makes q.k depend on positions only through their difference.
/// Shape: (B, T, H*dh) -> same, for positions offset .. offset + T - 1. No parameters.
class RotaryEmbedding : public Module {
 public:
  RotaryEmbedding(std::size_t head_dim, std::size_t max_len = 4096, float base = 10000.f);
  Tensor forward(const Tensor& x, std::size_t num_heads, std::size_t offset = 0) const;
  std::size_t head_dim() const { return head_dim_; }
  std::size_t max_len() const { return max_len_; }

 private:
  std::size_t head_dim_, max_len_;
  std::shared_ptr<const Array> cos_, sin_;  // (max_len, dh/2)
};

}  // namespace xgrad::nn
