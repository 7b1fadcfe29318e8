// Attention per (batch, head): scores, masks, softmax and dropout in one (T, S) block of the
// thread's, products by small_gemm on the heads in place (a head's K or V transposed into a
// scratch block where the product wants it so); the backward makes the block again from the
// forward's row statistics. Up to four queries without a backward (a decoding step) go by dot
// products and row updates, which read K and V once.
#include <xgrad/kernels/attention.hpp>

#include <algorithm>
#include <limits>
#include <vector>

#include <xgrad/kernels/dropout.hpp>
#include <xgrad/kernels/parallel.hpp>
#include <xgrad/kernels/row_sums.hpp>
#include <xgrad/kernels/simd.hpp>
#include <xgrad/kernels/small_gemm.hpp>
#include <xgrad/kernels/softmax.hpp>
#include <xgrad/kernels/vec.hpp>

namespace xgrad::kernels {

namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

/// Queries up to this many per (batch, head) take the dot-product loops: transposing K for so few
/// rows would cost more than the product.
constexpr std::size_t kFewQueries = 4;

/// out = a o b over n elements: the softmax weights times dropout's multipliers.
void multiply(const float* a, const float* b, float* out, std::size_t n) {
#pragma omp simd
  for (std::size_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}

/// y += w x over n elements.
void axpy(float w, const float* x, float* y, std::size_t n) {
#pragma omp simd
  for (std::size_t j = 0; j < n; ++j) y[j] += w * x[j];
}

/// Whether a block of this many multiply-adds per head, over this many heads, wakes the threads.
bool parallel_heads(const AttentionShape& d) {
  return d.B * d.H > 1 && d.B * d.H * d.T * d.S * (d.dk + d.dv) >= kParallelWork;
}

/// P[h * ld + s] = scale q_h . k_h of key row s = key_row(s) for every head h (-inf for a null,
/// masked, row), q and the key rows H*dk floats with the heads side by side. Each key row is read
/// once, whole; its heads go W at a time, one vector of partial sums each, and the W vectors are
/// summed across their lanes together (a transposing tree of adds), not one by one.
template <class KeyRow>
void key_scores(const float* q, KeyRow key_row, std::size_t S, std::size_t H, std::size_t dk, float scale, float* P,
                std::size_t ld) {
  using vec::load;
  using vec::Vec;
  using vec::W;
  for (std::size_t s = 0; s < S; ++s) {
    const float* k = key_row(s);
    if (!k) {
      for (std::size_t h = 0; h < H; ++h) P[h * ld + s] = kMinusInf;
    } else if (dk % W != 0) {
      for (std::size_t h = 0; h < H; ++h) P[h * ld + s] = scale * row_dot(q + h * dk, k + h * dk, dk);
    } else {
      for (std::size_t h0 = 0; h0 < H; h0 += W) {
        const std::size_t heads = std::min(W, H - h0);
        Vec acc[W];
        for (std::size_t i = 0; i < heads; ++i) {
          const float* qh = q + (h0 + i) * dk;
          const float* kh = k + (h0 + i) * dk;
          Vec even = load(qh) * load(kh), odd = {};  // two chains of multiply-adds, in registers
          std::size_t c = W;
          for (; c + 2 * W <= dk; c += 2 * W) {
            odd += load(qh + c) * load(kh + c);
            even += load(qh + c + W) * load(kh + c + W);
          }
          if (c < dk) odd += load(qh + c) * load(kh + c);
          acc[i] = even + odd;
        }
        for (std::size_t i = heads; i < W; ++i) acc[i] = Vec{};
        const Vec sums = vec::lanes_sums(acc) * scale;  // lane i: head h0 + i
        for (std::size_t i = 0; i < heads; ++i) P[(h0 + i) * ld + s] = sums[i];
      }
    }
  }
}

/// O (H*dv) = sum_s w_hs value_row(s) per head h, w_hs = Wt[h * ld + s]: value rows four at a
/// time, in order, so that O is read and written once per four rows rather than once per row.
template <class ValueRow>
void weighted_values(const float* Wt, std::size_t ld, ValueRow value_row, std::size_t S, std::size_t H, std::size_t dv,
                     float* O) {
  using vec::load;
  using vec::Vec;
  using vec::W;
  std::fill(O, O + H * dv, 0.f);
  std::size_t s = 0;
  if (dv % W == 0) {
    for (; s + 4 <= S; s += 4) {
      const float* v0 = value_row(s);
      const float* v1 = value_row(s + 1);
      const float* v2 = value_row(s + 2);
      const float* v3 = value_row(s + 3);
      for (std::size_t h = 0; h < H; ++h) {
        const float* w = Wt + h * ld + s;
        const float w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3];
        for (std::size_t j = h * dv; j < (h + 1) * dv; j += W) {
          Vec o = load(O + j);
          o += w0 * load(v0 + j);
          o += w1 * load(v1 + j);
          o += w2 * load(v2 + j);
          o += w3 * load(v3 + j);
          vec::store(O + j, o);
        }
      }
    }
  }
  for (; s < S; ++s) {
    const float* value = value_row(s);
    for (std::size_t h = 0; h < H; ++h) axpy(Wt[h * ld + s], value + h * dv, O + h * dv, dv);
  }
}

/// Up to kFewQueries queries of one batch row against its S keys, every head at once: P (H, T, S)
/// = scale q_h . k_h per key, the masks, softmax per (head, query), then O (T, H*dv) = P V. Each
/// key and value row (all heads side by side) is read once per query, whole, in order, where a
/// loop over heads outside would read them a column block at a time. key_row(s) is null for a
/// masked key; attn(h) is the (T, S) additive mask of head h or null; keep (H, T, S) dropout's
/// multipliers or null, applied into `weights` (H, T, S) of scratch.
template <class KeyRow, class ValueRow, class AttnMask>
void attend_few_queries(std::size_t T, std::size_t S, std::size_t H, std::size_t dk, std::size_t dv, float scale,
                        const float* Q, std::size_t q_ld, KeyRow key_row, ValueRow value_row, AttnMask attn,
                        const float* keep, float* P, float* weights, float* O, std::size_t o_ld) {
  for (std::size_t t = 0; t < T; ++t) key_scores(Q + t * q_ld, key_row, S, H, dk, scale, P + t * S, T * S);
  for (std::size_t h = 0; h < H; ++h) {
    const float* A = attn(h);
    for (std::size_t t = 0; t < T; ++t) {
      float* row = P + (h * T + t) * S;
      if (A) {
#pragma omp simd
        for (std::size_t s = 0; s < S; ++s) row[s] += A[t * S + s];
      }
      masked_softmax_row(row, S);
    }
  }
  const float* Wt = P;
  if (keep) {
    multiply(P, keep, weights, H * T * S);
    Wt = weights;
  }
  for (std::size_t t = 0; t < T; ++t) weighted_values(Wt + t * S, T * S, value_row, S, H, dv, O + t * o_ld);
}

/// Per-thread scratch of one (batch, head): a transposed K or V (max(dk, dv), S), and (T, S)
/// blocks for the weights, dropout's multipliers, the weights after dropout and dP.
struct Scratch {
  std::vector<float> transposed, probs, keep, weights, grad;
  Scratch(const AttentionShape& d, bool dropout, bool backward)
      : transposed(std::max(d.dk, d.dv) * d.S),
        probs(d.T * d.S),
        keep(dropout ? d.T * d.S : 0),
        weights(dropout ? d.T * d.S : 0),
        grad(backward ? d.T * d.S : 0) {}
};

/// The softmax's input of (batch, head) bh into P (T, S): scale Q K^T plus the masks, a masked key
/// -inf. The forward and the backward both make it here, so that the backward's is the forward's.
void score_block(const AttentionShape& d, float scale, const float* q, const float* k, const AttentionMasks& masks,
                 std::size_t bh, float* KT, float* P) {
  const std::size_t b = bh / d.H, h = bh % d.H;
  const float* Q = q + b * d.T * d.q_ld() + h * d.dk;         // (T, dk), row stride H*dk
  const float* K = k + b * d.S_stored * d.q_ld() + h * d.dk;  // (S, dk), row stride H*dk
  transpose(K, d.S, d.dk, d.q_ld(), KT);                      // KT (dk, S)
  small_gemm(d.T, d.S, d.dk, scale, Q, d.q_ld(), 1, KT, d.S, false, P, d.S);
  const float* A = masks.attn ? masks.attn + (masks.attn_per_head ? bh * d.T * d.S : 0) : nullptr;
  const bool* padding = masks.key_padding ? masks.key_padding + b * d.S : nullptr;
  if (!A && !padding) return;
  for (std::size_t t = 0; t < d.T; ++t) {
    float* row = P + t * d.S;
    if (A) {
      const float* a = A + t * d.S;
#pragma omp simd
      for (std::size_t s = 0; s < d.S; ++s) row[s] += a[s];
    }
    if (padding) {
#pragma omp simd
      for (std::size_t s = 0; s < d.S; ++s) row[s] = select(padding[s], kMinusInf, row[s]);
    }
  }
}

/// W = P o keep for (batch, head) bh, keep drawn into `keep`; returns W, or P without dropout.
const float* dropped_weights(const AttentionShape& d, const AttentionDropout* dropout, std::size_t bh, const float* P,
                             Scratch& scratch) {
  if (!dropout) return P;
  const std::size_t block = d.T * d.S;
  dropout_multipliers(dropout->stream, bh * block, block, dropout->drop_below, dropout->kept, scratch.keep.data());
  multiply(P, scratch.keep.data(), scratch.weights.data(), block);
  return scratch.weights.data();
}

}  // namespace

void attention_forward(const AttentionShape& d, float scale, const float* q, const float* k, const float* v,
                       const AttentionMasks& masks, const AttentionDropout* dropout, SoftmaxRowStats* stats,
                       float* probs, float* out) {
  const std::size_t heads = d.B * d.H, block = d.T * d.S;
  if (d.T <= kFewQueries && !stats) {  // a decoding step: one batch row, all heads, at a time
#pragma omp parallel if (d.B > 1 && parallel_heads(d))
    {
      std::vector<float> P(probs ? 0 : d.H * block), keep(dropout ? d.H * block : 0), weights(keep.size());
#pragma omp for schedule(static)
      for (std::size_t b = 0; b < d.B; ++b) {
        const float* K = k + b * d.S_stored * d.q_ld();
        const float* V = v + b * d.S_stored * d.v_ld();
        const bool* padding = masks.key_padding ? masks.key_padding + b * d.S : nullptr;
        if (dropout) {
          dropout_multipliers(dropout->stream, b * d.H * block, d.H * block, dropout->drop_below, dropout->kept,
                              keep.data());
        }
        attend_few_queries(
            d.T, d.S, d.H, d.dk, d.dv, scale, q + b * d.T * d.q_ld(), d.q_ld(),
            [&](std::size_t s) { return padding && padding[s] ? nullptr : K + s * d.q_ld(); },
            [&](std::size_t s) { return V + s * d.v_ld(); },
            [&](std::size_t h) -> const float* {
              return masks.attn ? masks.attn + (masks.attn_per_head ? (b * d.H + h) * block : 0) : nullptr;
            },
            dropout ? keep.data() : nullptr, probs ? probs + b * d.H * block : P.data(), weights.data(),
            out + b * d.T * d.v_ld(), d.v_ld());
      }
    }
    return;
  }
#pragma omp parallel if (parallel_heads(d))
  {
    Scratch scratch(d, dropout != nullptr, false);
#pragma omp for schedule(static)
    for (std::size_t bh = 0; bh < heads; ++bh) {
      const std::size_t b = bh / d.H, h = bh % d.H;
      const float* V = v + b * d.S_stored * d.v_ld() + h * d.dv;  // (S, dv), row stride H*dv
      float* O = out + b * d.T * d.v_ld() + h * d.dv;             // (T, dv), row stride H*dv
      float* P = probs ? probs + bh * block : scratch.probs.data();  // (T, S)
      score_block(d, scale, q, k, masks, bh, scratch.transposed.data(), P);
      for (std::size_t t = 0; t < d.T; ++t) {
        const SoftmaxRowStats row = masked_softmax_row(P + t * d.S, d.S);
        if (stats) stats[bh * d.T + t] = row;
      }
      // O = (P o keep) V
      const float* W = dropped_weights(d, dropout, bh, P, scratch);
      small_gemm(d.T, d.dv, d.S, 1.f, W, d.S, 1, V, d.v_ld(), false, O, d.v_ld());
    }
  }
}

void attention_backward(const AttentionShape& d, float scale, const float* q, const float* k, const float* v,
                        const AttentionMasks& masks, const AttentionDropout* dropout, const SoftmaxRowStats* stats,
                        const float* probs, const float* dout, float* dq, float* dk, float* dv) {
  const std::size_t heads = d.B * d.H, block = d.T * d.S;
#pragma omp parallel if (parallel_heads(d))
  {
    Scratch scratch(d, dropout != nullptr, true);
#pragma omp for schedule(static)
    for (std::size_t bh = 0; bh < heads; ++bh) {
      const std::size_t b = bh / d.H, h = bh % d.H;
      const std::size_t q_off = b * d.T * d.q_ld() + h * d.dk, k_off = b * d.S_stored * d.q_ld() + h * d.dk;
      const std::size_t v_off = b * d.S_stored * d.v_ld() + h * d.dv, o_off = b * d.T * d.v_ld() + h * d.dv;
      // P (T, S): the forward's, or made again from the scores and the forward's statistics
      const float* P = probs ? probs + bh * block : scratch.probs.data();
      if (!probs) {
        score_block(d, scale, q, k, masks, bh, scratch.transposed.data(), scratch.probs.data());
        for (std::size_t t = 0; t < d.T; ++t) {
          softmax_row_from_stats(scratch.probs.data() + t * d.S, d.S, stats[bh * d.T + t]);
        }
      }
      const float* W = dropped_weights(d, dropout, bh, P, scratch);
      const float* M = dropout ? scratch.keep.data() : nullptr;
      const float* dO = dout + o_off;  // (T, dv), row stride H*dv
      if (dv) small_gemm(d.S, d.dv, d.T, 1.f, W, 1, d.S, dO, d.v_ld(), true, dv + v_off, d.v_ld());  // dV += W^T dO
      if (!dq && !dk) continue;
      // dP (T, S) = dO V^T
      float* dP = scratch.grad.data();
      float* VT = scratch.transposed.data();  // (dv, S)
      transpose(v + v_off, d.S, d.dv, d.v_ld(), VT);
      small_gemm(d.T, d.S, d.dv, 1.f, dO, d.v_ld(), 1, VT, d.S, false, dP, d.S);
      // dS = P o (dP o keep - rowsum(dP o keep o P)), in place of dP
      for (std::size_t t = 0; t < d.T; ++t) {
        float* g = dP + t * d.S;
        const float* p = P + t * d.S;
        if (M) {
          const float* m = M + t * d.S;
#pragma omp simd
          for (std::size_t s = 0; s < d.S; ++s) g[s] *= m[s];
        }
        const float total = row_dot(g, p, d.S);
#pragma omp simd
        for (std::size_t s = 0; s < d.S; ++s) g[s] = p[s] * (g[s] - total);
      }
      if (dq) small_gemm(d.T, d.dk, d.S, scale, dP, d.S, 1, k + k_off, d.q_ld(), true, dq + q_off, d.q_ld());  // dQ += dS K
      if (dk) small_gemm(d.S, d.dk, d.T, scale, dP, 1, d.S, q + q_off, d.q_ld(), true, dk + k_off, d.q_ld());  // dK += dS^T Q
    }
  }
}

void gathered_attention_row(const float* query, const float* const* keys, const float* const* values, std::size_t S,
                            std::size_t H, std::size_t dk, std::size_t dv, float scale, float* scores, float* out) {
  attend_few_queries(
      1, S, H, dk, dv, scale, query, H * dk, [&](std::size_t s) { return keys[s]; },
      [&](std::size_t s) { return values[s]; }, [](std::size_t) -> const float* { return nullptr; }, nullptr, scores,
      nullptr, out, H * dv);
}

}  // namespace xgrad::kernels
