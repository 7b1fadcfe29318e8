// Multi-head scaled dot-product attention over (batch, head) blocks: the kernels behind
// nn::functional::scaled_dot_product_attention and gathered_attention. Heads sit side by side in
// the rows of q, k, v and out (head h in columns [h*d, (h+1)*d)) and are read in place.
//
// Legend: B batch, T queries, S keys, H heads, dk and dv the widths of a head's keys and values.
#pragma once

#include <cstddef>

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

/// probs (B, H, T, S) = softmax(scale Q K^T + masks) per (batch, head), a row whose keys are all
/// masked getting zeros; out (B, T, H*dv) = (probs o keep) V, keep (B, H, T, S) dropout's 0 or
/// 1/(1-p) per weight, or null. One score block (T, S) per (batch, head), over the threads.
void attention_forward(const AttentionShape& d, float scale, const float* q, const float* k, const float* v,
                       const AttentionMasks& masks, const float* keep, float* probs, float* out);

/// With P = probs o keep and dO = dout (B, T, H*dv), accumulates into each gradient not null:
///   dV += P^T dO,  dS = probs o (dP o keep - rowsum(dP o keep o probs)) where dP = dO V^T,
///   dQ += scale dS K,  dK += scale dS^T Q.
void attention_backward(const AttentionShape& d, float scale, const float* q, const float* k, const float* v,
                        const float* probs, const float* keep, const float* dout, float* dq, float* dk, float* dv);

/// One query row (H heads side by side) over keys gathered row by row (a decoder's cache):
/// out (H*dv) = sum_s w_hs v_s per head, w_h = softmax(scale q_h . k_hs), with k_s = keys[s]
/// (H*dk floats, null masks key s) and v_s = values[s] (H*dv floats). scores: H*S floats of scratch.
void gathered_attention_row(const float* query, const float* const* keys, const float* const* values, std::size_t S,
                            std::size_t H, std::size_t dk, std::size_t dv, float scale, float* scores, float* out);

}  // namespace xgrad::kernels
