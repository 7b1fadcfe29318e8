// The matrix products of one training step of the encoder-decoder Transformer, shapes and
// transposes as the step runs them: the FLOP count of bench_transformer and the list that
// bench_transformer --sgemm and bench_gemm time alone.
#pragma once

#include <cstddef>
#include <vector>

#include <xgrad/models/transformer.hpp>

namespace xgrad::bench {

/// C (M, N) = op(A) (M, K) op(B) (K, N), `count` times per step; `per_head` products are the
/// attention's, one per (batch, head).
struct Gemm {
  std::size_t M, N, K;
  bool trans_a, trans_b;
  std::size_t count;
  bool per_head;
  double flops() const { return 2.0 * M * N * K * count; }
};

/// Every matrix product of one training step of the encoder-decoder (B sequences, source length
/// S, target length T). A linear layer y (R, O) = x (R, I) W^T is one product forward and two
/// backward (dx = dy W, dW = dy^T x); every input of every linear needs its gradient here, since
/// the embeddings are trained. Attention per (batch, head) is two forward (scores Q K^T, then
/// P V) and four backward (dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q).
inline std::vector<Gemm> step_gemms(const models::TransformerConfig& c, std::size_t B, std::size_t S, std::size_t T) {
  std::vector<Gemm> gemms;
  const std::size_t D = c.d_model, F = c.dim_feedforward, H = c.nhead, dk = D / H, V = c.tgt_vocab;
  auto linear = [&](std::size_t rows, std::size_t in, std::size_t out, std::size_t count) {
    gemms.push_back({rows, out, in, false, true, count, false});   // y = x W^T
    gemms.push_back({rows, in, out, false, false, count, false});  // dx = dy W
    gemms.push_back({out, in, rows, true, false, count, false});   // dW = dy^T x
  };
  auto attention = [&](std::size_t queries, std::size_t keys, std::size_t count) {
    const std::size_t n = B * H * count;
    gemms.push_back({queries, keys, dk, false, true, n, true});   // scores = Q K^T
    gemms.push_back({queries, dk, keys, false, false, n, true});  // out = P V
    gemms.push_back({keys, dk, queries, true, false, n, true});   // dV = P^T dO
    gemms.push_back({queries, keys, dk, false, true, n, true});   // dP = dO V^T
    gemms.push_back({queries, dk, keys, false, false, n, true});  // dQ = dS K
    gemms.push_back({keys, dk, queries, true, false, n, true});   // dK = dS^T Q
  };
  const std::size_t enc = c.num_encoder_layers, dec = c.num_decoder_layers;
  // Encoder layer: q, k, v and output projections, self-attention, the feed-forward pair.
  linear(B * S, D, D, 4 * enc);
  attention(S, S, enc);
  linear(B * S, D, F, enc);
  linear(B * S, F, D, enc);
  // Decoder layer: self-attention (4 projections), cross-attention (q and output on the target,
  // k and v on the memory), the feed-forward pair; then the generator.
  linear(B * T, D, D, 6 * dec);
  linear(B * S, D, D, 2 * dec);
  attention(T, T, dec);
  attention(T, S, dec);
  linear(B * T, D, F, dec);
  linear(B * T, F, D, dec);
  linear(B * T, D, V, 1);
  return gemms;
}

inline double total_flops(const std::vector<Gemm>& gemms) {
  double total = 0;
  for (const Gemm& g : gemms) total += g.flops();
  return total;
}

}  // namespace xgrad::bench
