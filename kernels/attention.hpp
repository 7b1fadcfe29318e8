// Multi-head scaled dot-product attention over (batch, head) blocks: the kernels behind
// nn::functional::scaled_dot_product_attention and gathered_attention. Heads sit side by side in
// the rows of q, k, v and out (head h in columns [h*d, (h+1)*d)) and are read in place.
//
// Legend: B batch, T queries, S keys, H heads, dk and dv the widths of a head's keys and values.
#pragma once

#include <cstddef>
#include <cstdint>

#include <xgrad/core/philox.hpp>
#include <xgrad/kernels/grad_out.hpp>
#include <xgrad/kernels/softmax.hpp>

namespace xgrad::kernels {

struct AttentionShape {
  std::size_t B, T, S, H, dk, dv;
  std::size_t S_stored;  // key rows stored per batch row in k and v (the first S are used)
  std::size_t q_ld() const { return H * dk; }  // row stride of q and k
  std::size_t v_ld() const { return H * dv; }  // row stride of v and out
};

struct AttentionMasks {
  const float* attn = nullptr;        // added to the scores: (T, S), or (B*H, T, S) when per_head
  bool attn_per_head = false;
  const bool* key_padding = nullptr;  // (B, S): true ignores the key
};

/// Dropout of the attention weights: weight (b, h, t, s) is dropped when draw ((b H + h) T + t) S
/// + s of `stream` is below drop_below, and the others are scaled by kept = 1/(1-p). The backward
/// draws the same multipliers again, block by block.
struct AttentionDropout {
  PhiloxStream stream;
  std::uint32_t drop_below;
  float kept;
};

/// out (B, T, H*dv) = (P o keep) V per (batch, head), P = softmax(scale Q K^T + masks) (a row whose
/// keys are all masked getting zeros) and keep dropout's multipliers (dropout may be null). One
/// (T, S) score block per (batch, head) exists at a time, on its thread. When not null, stats
/// (B, H, T) receives each row's softmax statistics for attention_backward, and probs (B, H, T, S)
/// the weights themselves.
void attention_forward(const AttentionShape& d, float scale, const float* q, const float* k, const float* v,
                       const AttentionMasks& masks, const AttentionDropout* dropout, SoftmaxRowStats* stats,
                       float* probs, float* out);

/// The gradients wanted of q, k and v, with the same inputs, masks and dropout as the forward and
/// its stats: with W = P o keep and dO = dout (B, T, H*dv),
///   dS = P o (dP o keep - rowsum(dP o keep o P)) where dP = dO V^T,
///   dQ = scale dS K,  dK = scale dS^T Q,  dV = W^T dO,
/// each written or added to (GradOut), block by block in that order on the thread that made it:
/// gradients that are one array (q, k or v the same tensor) take the first as written and the
/// others as added. Key rows past S (of S_stored) get nothing: an array written must be zeroed
/// there first. P is read from probs (B, H, T, S) when not null, else made again one (batch, head)
/// block at a time from the scores and the stats, bit for bit the forward's; keep is drawn again
/// per block.
void attention_backward(const AttentionShape& d, float scale, const float* q, const float* k, const float* v,
                        const AttentionMasks& masks, const AttentionDropout* dropout, const SoftmaxRowStats* stats,
                        const float* probs, const float* dout, GradOut dq, GradOut dk, GradOut dv);

/// One query row (H heads side by side) over keys gathered row by row (a decoder's cache):
/// out (H*dv) = sum_s w_hs v_s per head, w_h = softmax(scale q_h . k_hs), with k_s = keys[s]
/// (H*dk floats, null masks key s) and v_s = values[s] (H*dv floats).
void gathered_attention_row(const float* query, const float* const* keys, const float* const* values, std::size_t S,
                            std::size_t H, std::size_t dk, std::size_t dv, float scale, float* out);

}  // namespace xgrad::kernels
