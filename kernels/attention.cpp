// Attention per (batch, head): scores, masks, softmax and dropout in one (T, S) block of the
// thread's, products by small_gemm on the heads in place (a head's K or V transposed into a
// scratch block where the product wants it so); the backward makes the block again from the
// forward's row statistics. Up to four queries without a backward (a decoding step) go by dot
// products over every head at once, which read each key and value row once; one query over
// gathered rows (a cached decoder's self-attention), when its heads divide a vector, key by key
// with every head in one vector.
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

/// Whether a block of this many multiply-adds per head, over this many heads, wakes the threads.
bool parallel_heads(const AttentionShape& d) {
  return d.B * d.H > 1 && d.B * d.H * d.T * d.S * (d.dk + d.dv) >= kParallelWork;
}

// --- a decoding step: up to kFewQueries queries, every head at once ------------------------------
// The scores sit key by key: Pt (S, T, Hp), one vector lane per head (Hp = H rounded up to whole
// vectors, the extra lanes 0). A block of W key rows comes from memory once for all the queries,
// and the heads' dot products are summed across their lanes together; the softmax runs down the
// keys for W heads at once, with no sum across lanes; the values go into a head's outputs held in
// registers.

/// H rounded up to whole vectors.
std::size_t padded_heads(std::size_t H) { return (H + vec::W - 1) / vec::W * vec::W; }

/// acc[j] = the partial sums (one vector) of q . k[j] over columns [begin, end), whole vectors,
/// for W keys: four vectors of q at a time held in registers against every key's.
inline void key_block_dots(const float* q, const float* const* k, std::size_t begin, std::size_t end,
                           vec::Vec (&acc)[vec::W]) {
  using vec::load;
  using vec::Vec;
  using vec::W;
  for (Vec& a : acc) a = Vec{};
  std::size_t c = begin;
  for (; c + 4 * W <= end; c += 4 * W) {
    const Vec q0 = load(q + c), q1 = load(q + c + W), q2 = load(q + c + 2 * W), q3 = load(q + c + 3 * W);
    for (std::size_t j = 0; j < W; ++j) {
      acc[j] += q0 * load(k[j] + c);
      acc[j] += q1 * load(k[j] + c + W);
      acc[j] += q2 * load(k[j] + c + 2 * W);
      acc[j] += q3 * load(k[j] + c + 3 * W);
    }
  }
  for (; c < end; c += W) {
    const Vec qc = load(q + c);
    for (std::size_t j = 0; j < W; ++j) acc[j] += qc * load(k[j] + c);
  }
}

/// Pt (S, T, Hp) = scale q_th . k_sh for every key s = key_row(s) (-inf for a null, masked, row),
/// query t < T (row t of Q, stride q_ld) and head h; q and the key rows H*dk floats, the heads side
/// by side. Keys go W at a time: per head, a slice of the query of up to four vectors stays in
/// registers against the W keys' slices, one vector of partial sums per key; the sums of W heads
/// are added across their lanes (a vector of W keys per head) and transposed to a vector of W
/// heads per key.
template <class KeyRow>
void step_scores(std::size_t T, const float* Q, std::size_t q_ld, KeyRow key_row, std::size_t S, std::size_t H,
                 std::size_t dk, float scale, float* Pt) {
  using vec::Vec;
  using vec::W;
  const std::size_t Hp = padded_heads(H);
  if (dk % W != 0) {
    for (std::size_t s = 0; s < S; ++s) {
      float* row = Pt + s * T * Hp;  // (T, Hp)
      const float* k = key_row(s);
      for (std::size_t t = 0; t < T; ++t) {
        for (std::size_t h = 0; h < Hp; ++h) {
          row[t * Hp + h] = !k ? kMinusInf : h < H ? scale * row_dot(Q + t * q_ld + h * dk, k + h * dk, dk) : 0.f;
        }
      }
    }
    return;
  }
  for (std::size_t s0 = 0; s0 < S; s0 += W) {
    const std::size_t keys = std::min(W, S - s0);
    const float* k[W];  // a masked key or one past S reads the query instead: its scores are not kept
    for (std::size_t j = 0; j < W; ++j) k[j] = j < keys ? key_row(s0 + j) : nullptr;
    for (std::size_t t = 0; t < T; ++t) {
      const float* q = Q + t * q_ld;
      const float* kj[W];
      for (std::size_t j = 0; j < W; ++j) kj[j] = k[j] ? k[j] : q;
      for (std::size_t h0 = 0; h0 < H; h0 += W) {
        Vec sums[W] = {};  // sums[i] lane j: head h0 + i, key s0 + j
        for (std::size_t i = 0; i < W && h0 + i < H; ++i) {
          Vec acc[W];
          key_block_dots(q, kj, (h0 + i) * dk, (h0 + i + 1) * dk, acc);
          sums[i] = vec::lanes_sums(acc) * scale;
        }
        vec::transpose(sums);  // sums[j] lane i: key s0 + j, head h0 + i
        for (std::size_t j = 0; j < keys; ++j) vec::store(Pt + ((s0 + j) * T + t) * Hp + h0, sums[j]);
      }
    }
    for (std::size_t j = 0; j < keys; ++j) {
      if (!k[j]) std::fill(Pt + (s0 + j) * T * Hp, Pt + (s0 + j + 1) * T * Hp, kMinusInf);
    }
  }
}

/// Softmax over the keys of Pt (S, T, Hp) in place, for every query and head: W heads at a time,
/// down the keys, as masked_softmax_row does a row (a masked key exactly 0, a query whose keys are
/// all masked all zeros).
void step_softmax(std::size_t T, std::size_t S, std::size_t Hp, float* Pt) {
  using vec::load;
  using vec::store;
  using vec::Vec;
  using vec::W;
  const std::size_t ld = T * Hp;  // from one key to the next
  for (std::size_t j0 = 0; j0 < T * Hp; j0 += W) {
    Vec max = Vec{} + kMinusInf;
    for (std::size_t s = 0; s < S; ++s) max = vec::max(max, load(Pt + s * ld + j0));
    max = max == kMinusInf ? 0.f : max;  // all masked: exp(-inf) = 0
    Vec sum = {};
    for (std::size_t s = 0; s < S; ++s) {
      float* x = Pt + s * ld + j0;
      const Vec e = vec::exp_nonpositive(load(x) - max);
      store(x, e);
      sum += e;
    }
    const Vec inv = sum == 0.f ? 0.f : 1.f / sum;  // 0: every key masked
    for (std::size_t s = 0; s < S; ++s) {
      float* x = Pt + s * ld + j0;
      store(x, load(x) * inv);
    }
  }
}

/// o (N vectors) = sum_s w[s ld] value_row(s)[col ..]: two sets of sums, even and odd keys, for
/// 2N chains of multiply-adds in flight.
template <std::size_t N, class ValueRow>
inline void weighted_sum(const float* w, std::size_t ld, ValueRow value_row, std::size_t S, std::size_t col, float* o) {
  using vec::load;
  using vec::Vec;
  using vec::W;
  Vec even[N] = {}, odd[N] = {};
  std::size_t s = 0;
  for (; s + 2 <= S; s += 2) {
    const float w0 = w[s * ld], w1 = w[(s + 1) * ld];
    const float* v0 = value_row(s) + col;
    const float* v1 = value_row(s + 1) + col;
    for (std::size_t j = 0; j < N; ++j) even[j] += w0 * load(v0 + j * W);
    for (std::size_t j = 0; j < N; ++j) odd[j] += w1 * load(v1 + j * W);
  }
  if (s < S) {
    const float w0 = w[s * ld];
    const float* v0 = value_row(s) + col;
    for (std::size_t j = 0; j < N; ++j) even[j] += w0 * load(v0 + j * W);
  }
  for (std::size_t j = 0; j < N; ++j) vec::store(o + j * W, even[j] + odd[j]);
}

/// O (T, H*dv), row stride o_ld, = sum_s w_ths value_row(s) per head, w_ths = Wt[(s T + t) Hp + h]:
/// per head, its outputs for up to four vectors of columns held in registers over all the keys,
/// for one query after another while the head's values sit in L1.
template <class ValueRow>
void step_values(std::size_t T, const float* Wt, ValueRow value_row, std::size_t S, std::size_t H, std::size_t dv,
                 float* O, std::size_t o_ld) {
  using vec::W;
  const std::size_t Hp = padded_heads(H), ld = T * Hp;
  for (std::size_t h = 0; h < H; ++h) {
    std::size_t c = 0;
    for (std::size_t n; (n = std::min<std::size_t>(4, (dv - c) / W)) > 0; c += n * W) {  // n whole vectors
      const std::size_t col = h * dv + c;
      for (std::size_t t = 0; t < T; ++t) {
        const float* w = Wt + t * Hp + h;
        float* o = O + t * o_ld + col;
        switch (n) {
          case 1: weighted_sum<1>(w, ld, value_row, S, col, o); break;
          case 2: weighted_sum<2>(w, ld, value_row, S, col, o); break;
          case 3: weighted_sum<3>(w, ld, value_row, S, col, o); break;
          default: weighted_sum<4>(w, ld, value_row, S, col, o); break;
        }
      }
    }
    for (; c < dv; ++c) {  // the columns past whole vectors
      for (std::size_t t = 0; t < T; ++t) {
        float acc = 0.f;
        for (std::size_t s = 0; s < S; ++s) acc += Wt[s * ld + t * Hp + h] * value_row(s)[h * dv + c];
        O[t * o_ld + h * dv + c] = acc;
      }
    }
  }
}

/// Up to kFewQueries queries of one batch row against its S keys, every head at once: scores, the
/// masks, softmax per (head, query), then O (T, H*dv) = P V, in a scratch block of this thread's.
/// key_row(s) is null for a masked key; attn(h) is the (T, S) additive mask of head h or null;
/// keep (H, T, S) dropout's multipliers or null. probs (H, T, S), when not null, receives the
/// weights before dropout.
template <class KeyRow, class ValueRow, class AttnMask>
void attend_few_queries(std::size_t T, std::size_t S, std::size_t H, std::size_t dk, std::size_t dv, float scale,
                        const float* Q, std::size_t q_ld, KeyRow key_row, ValueRow value_row, AttnMask attn,
                        const float* keep, float* probs, float* O, std::size_t o_ld) {
  const std::size_t Hp = padded_heads(H);
  thread_local std::vector<float> scratch;
  if (scratch.size() < S * T * Hp) scratch.resize(S * T * Hp);
  float* Pt = scratch.data();  // (S, T, Hp)
  step_scores(T, Q, q_ld, key_row, S, H, dk, scale, Pt);
  for (std::size_t h = 0; h < H; ++h) {
    if (const float* A = attn(h)) {
      for (std::size_t t = 0; t < T; ++t) {
        for (std::size_t s = 0; s < S; ++s) Pt[(s * T + t) * Hp + h] += A[t * S + s];
      }
    }
  }
  step_softmax(T, S, Hp, Pt);
  if (probs || keep) {
    for (std::size_t h = 0; h < H; ++h) {
      for (std::size_t t = 0; t < T; ++t) {
        for (std::size_t s = 0; s < S; ++s) {
          float& w = Pt[(s * T + t) * Hp + h];
          const std::size_t i = (h * T + t) * S + s;
          if (probs) probs[i] = w;
          if (keep) w *= keep[i];
        }
      }
    }
  }
  step_values(T, Pt, value_row, S, H, dv, O, o_ld);
}

// --- one query over gathered rows, every head in one vector ---------------------------------------
// When W / H = G keys' worth of heads fill a vector (H divides W) and the heads' widths are whole
// vectors, one query goes key by key instead: a key row's heads' partial sums for G keys are
// summed across their lanes together, into lane g H + h for key g and head h, so the scores come
// out in key order with no transpose; and the values are summed key by key into every head's
// columns at once, up to 16 vectors held in registers (16 chains of multiply-adds in flight,
// where a head at a time has 4).

/// out vectors [c0, c0 + N) = sum_s w_sh v_s[c0 ..], head h = c / VV (VV vectors per head), w_s
/// the H weights of key s at P + s H.
template <std::size_t N, std::size_t VV, class ValueRow>
void weighted_rows(const float* P, ValueRow value_row, std::size_t S, std::size_t H, std::size_t c0, float* out) {
  using vec::W;
  vec::Vec o[N] = {};
  const float* w = P + c0 / VV;
  for (std::size_t s = 0; s < S; ++s, w += H) {
    const float* v = value_row(s) + c0 * W;
    for (std::size_t c = 0; c < N; ++c) o[c] += w[c / VV] * vec::load(v + c * W);
  }
  for (std::size_t c = 0; c < N; ++c) vec::store(out + (c0 + c) * W, o[c]);
}

/// out (H VV vectors) = sum_s w_sh v_s for every head, 16 vectors at a time, then 8, 4, 2, 1.
template <std::size_t VV, class ValueRow>
void weighted_rows_all_heads(const float* P, ValueRow value_row, std::size_t S, std::size_t H, float* out) {
  const std::size_t n = H * VV;
  std::size_t c0 = 0;
  for (; c0 + 16 <= n; c0 += 16) weighted_rows<16, VV>(P, value_row, S, H, c0, out);
  if constexpr (VV <= 8) if (c0 + 8 <= n) weighted_rows<8, VV>(P, value_row, S, H, c0, out), c0 += 8;
  if constexpr (VV <= 4) if (c0 + 4 <= n) weighted_rows<4, VV>(P, value_row, S, H, c0, out), c0 += 4;
  if constexpr (VV <= 2) if (c0 + 2 <= n) weighted_rows<2, VV>(P, value_row, S, H, c0, out), c0 += 2;
  if constexpr (VV <= 1) if (c0 + 1 <= n) weighted_rows<1, VV>(P, value_row, S, H, c0, out);
}

/// Query q's heads held in registers: at most this many vectors.
constexpr std::size_t kQueryVectors = vec::kRegisters / 2;

/// P (ceil(S / G) vectors, G = W / H) = scale q_h . k_sh, lane g H + h of vector b for key b G + g
/// and head h (-inf for a null key_row(s), and for keys past S): KV vectors per head, the heads
/// and their widths known to the compiler, so that a key's products are one run of multiplies.
template <std::size_t H, std::size_t KV, class KeyRow>
void one_query_scores(const float* q, KeyRow key_row, std::size_t S, float scale, float* P) {
  using vec::load;
  using vec::Vec;
  using vec::W;
  constexpr std::size_t G = W / H, dk = KV * W;
  Vec qv[H * KV];
  for (std::size_t c = 0; c < H * KV; ++c) qv[c] = load(q + c * W);
  for (std::size_t b = 0, s0 = 0; s0 < S; ++b, s0 += G) {
    Vec acc[W];       // acc[g H + h]: head h's partial sums of key s0 + g
    Vec masked = {};  // 1 in a masked key's lanes, and past S
    for (std::size_t g = 0; g < G; ++g) {
      const float* k = s0 + g < S ? key_row(s0 + g) : nullptr;
      if (!k) {
        for (std::size_t h = 0; h < H; ++h) acc[g * H + h] = Vec{}, masked[g * H + h] = 1.f;
        continue;
      }
      for (std::size_t h = 0; h < H; ++h) {
        Vec a = qv[h * KV] * load(k + h * dk);
        for (std::size_t c = 1; c < KV; ++c) a += qv[h * KV + c] * load(k + h * dk + c * W);
        acc[g * H + h] = a;
      }
    }
    const Vec scores = vec::lanes_sums(acc) * scale;
    vec::store(P + b * W, masked != 0.f ? kMinusInf : scores);
  }
}

/// one_query_scores for H heads (one_query_fits) of KV vectors each.
template <std::size_t KV, class KeyRow>
void one_query_scores_kv(std::size_t H, const float* q, KeyRow key_row, std::size_t S, float scale, float* P) {
  const auto take = [&](auto heads) {
    constexpr std::size_t kHeads = decltype(heads)::value;
    if constexpr (kHeads <= vec::W && kHeads * KV <= kQueryVectors) one_query_scores<kHeads, KV>(q, key_row, S, scale, P);
  };
  switch (H) {  // H divides W, a power of two
    case 1: return take(std::integral_constant<std::size_t, 1>{});
    case 2: return take(std::integral_constant<std::size_t, 2>{});
    case 4: return take(std::integral_constant<std::size_t, 4>{});
    case 8: return take(std::integral_constant<std::size_t, 8>{});
    default: return take(std::integral_constant<std::size_t, 16>{});
  }
}

/// Whether attend_one_query takes these heads: H divides W, a head's keys are 1, 2 or 4 vectors
/// and its values 1, 2, 4 or 8, the query fits in kQueryVectors.
bool one_query_fits(std::size_t H, std::size_t dk, std::size_t dv) {
  using vec::W;
  const std::size_t kv = dk / W, vv = dv / W;
  return H > 0 && W % H == 0 && dk % W == 0 && dv % W == 0 && (kv == 1 || kv == 2 || kv == 4) &&
         H * kv <= kQueryVectors && (vv == 1 || vv == 2 || vv == 4 || vv == 8);
}

/// out (H*dv) = sum_s softmax_s(scale q_h . k_sh) v_sh per head h, k_s = key_row(s) (null: masked),
/// v_s = value_row(s), for one_query_fits heads.
template <class KeyRow, class ValueRow>
void attend_one_query(const float* q, KeyRow key_row, ValueRow value_row, std::size_t S, std::size_t H,
                      std::size_t dk, std::size_t dv, float scale, float* out) {
  using vec::load;
  using vec::Vec;
  using vec::W;
  if (S == 0) {  // no keys: every head attends to nothing
    std::fill(out, out + H * dv, 0.f);
    return;
  }
  const std::size_t blocks = (S + W / H - 1) / (W / H);
  thread_local std::vector<float> scratch;
  if (scratch.size() < blocks * W) scratch.resize(blocks * W);
  float* P = scratch.data();  // (blocks, W / H, H): from key s on, P + s H
  switch (dk / W) {
    case 1: one_query_scores_kv<1>(H, q, key_row, S, scale, P); break;
    case 2: one_query_scores_kv<2>(H, q, key_row, S, scale, P); break;
    default: one_query_scores_kv<4>(H, q, key_row, S, scale, P); break;
  }
  // softmax per head: down the blocks lane by lane, then across a vector's G keys (lanes h mod H)
  Vec max = Vec{} + kMinusInf;
  for (std::size_t b = 0; b < blocks; ++b) max = vec::max(max, load(P + b * W));
  max = vec::lanes_fold(max, H, [](Vec x, Vec y) { return vec::max(x, y); });
  max = max == kMinusInf ? 0.f : max;  // all masked: exp(-inf) = 0
  Vec sum = {};
  for (std::size_t b = 0; b < blocks; ++b) {
    const Vec e = vec::exp_nonpositive(load(P + b * W) - max);
    vec::store(P + b * W, e);
    sum += e;
  }
  sum = vec::lanes_fold(sum, H, [](Vec x, Vec y) { return x + y; });
  const Vec inv = sum == 0.f ? 0.f : 1.f / sum;  // 0: every key masked
  for (std::size_t b = 0; b < blocks; ++b) vec::store(P + b * W, load(P + b * W) * inv);
  switch (dv / W) {
    case 1: weighted_rows_all_heads<1>(P, value_row, S, H, out); break;
    case 2: weighted_rows_all_heads<2>(P, value_row, S, H, out); break;
    case 4: weighted_rows_all_heads<4>(P, value_row, S, H, out); break;
    default: weighted_rows_all_heads<8>(P, value_row, S, H, out); break;
  }
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
    const bool one_query = one_query_fits(d.H, d.dk, d.dv);
    const auto make_keep = [&] { return std::vector<float>(dropout ? d.H * block : 0); };
    parallel_for_with(d.B, parallel_heads(d), make_keep, [&](std::size_t b, std::vector<float>& keep) {
      const float* K = k + b * d.S_stored * d.q_ld();
      const float* V = v + b * d.S_stored * d.v_ld();
      const bool* padding = masks.key_padding ? masks.key_padding + b * d.S : nullptr;
      if (dropout) {
        dropout_multipliers(dropout->stream, b * d.H * block, d.H * block, dropout->drop_below, dropout->kept,
                            keep.data());
      }
      const auto key_row = [&](std::size_t s) { return padding && padding[s] ? nullptr : K + s * d.q_ld(); };
      const auto value_row = [&](std::size_t s) { return V + s * d.v_ld(); };
      if (one_query && !masks.attn && !dropout && !probs) {  // each query by itself: the keys stay in L1
        for (std::size_t t = 0; t < d.T; ++t) {
          attend_one_query(q + (b * d.T + t) * d.q_ld(), key_row, value_row, d.S, d.H, d.dk, d.dv, scale,
                           out + (b * d.T + t) * d.v_ld());
        }
        return;
      }
      attend_few_queries(
          d.T, d.S, d.H, d.dk, d.dv, scale, q + b * d.T * d.q_ld(), d.q_ld(), key_row, value_row,
          [&](std::size_t h) -> const float* {
            return masks.attn ? masks.attn + (masks.attn_per_head ? (b * d.H + h) * block : 0) : nullptr;
          },
          dropout ? keep.data() : nullptr, probs ? probs + b * d.H * block : nullptr, out + b * d.T * d.v_ld(),
          d.v_ld());
    });
    return;
  }
  const auto make_scratch = [&] { return Scratch(d, dropout != nullptr, false); };
  parallel_for_with(heads, parallel_heads(d), make_scratch, [&](std::size_t bh, Scratch& scratch) {
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
  });
}

void attention_backward(const AttentionShape& d, float scale, const float* q, const float* k, const float* v,
                        const AttentionMasks& masks, const AttentionDropout* dropout, const SoftmaxRowStats* stats,
                        const float* probs, const float* dout, GradOut dq, GradOut dk, GradOut dv) {
  const std::size_t heads = d.B * d.H, block = d.T * d.S;
  const auto make_scratch = [&] { return Scratch(d, dropout != nullptr, true); };
  parallel_for_with(heads, parallel_heads(d), make_scratch, [&](std::size_t bh, Scratch& scratch) {
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
    if (dq.data || dk.data) {
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
      if (dq.data) {  // dQ = scale dS K
        small_gemm(d.T, d.dk, d.S, scale, dP, d.S, 1, k + k_off, d.q_ld(), dq.add, dq.data + q_off, d.q_ld());
      }
      if (dk.data) {  // dK = scale dS^T Q
        small_gemm(d.S, d.dk, d.T, scale, dP, 1, d.S, q + q_off, d.q_ld(), dk.add, dk.data + k_off, d.q_ld());
      }
    }
    if (dv.data) small_gemm(d.S, d.dv, d.T, 1.f, W, 1, d.S, dO, d.v_ld(), dv.add, dv.data + v_off, d.v_ld());  // dV = W^T dO
  });
}

void gathered_attention_row(const float* query, const float* const* keys, const float* const* values, std::size_t S,
                            std::size_t H, std::size_t dk, std::size_t dv, float scale, float* out) {
  if (one_query_fits(H, dk, dv)) {
    attend_one_query(
        query, [&](std::size_t s) { return keys[s]; }, [&](std::size_t s) { return values[s]; }, S, H, dk, dv, scale,
        out);
    return;
  }
  attend_few_queries(
      1, S, H, dk, dv, scale, query, H * dk, [&](std::size_t s) { return keys[s]; },
      [&](std::size_t s) { return values[s]; }, [](std::size_t) -> const float* { return nullptr; }, nullptr, nullptr,
      out, H * dv);
}

}  // namespace xgrad::kernels
