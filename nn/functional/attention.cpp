// Multi-head scaled dot-product attention as one fused op: per (batch, head), scores by GEMM,
// masked softmax, optional dropout, weighted sum of values by GEMM; its backward likewise.
// Heads are addressed as column blocks of (B, T, H*dk) through BLAS leading dimensions.
#include <xgrad/nn/functional.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include <fmt/format.h>

#include <xgrad/autograd/error.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/kernels/gemm.hpp>
#include <xgrad/kernels/parallel.hpp>
#include <xgrad/kernels/simd.hpp>
#include <xgrad/kernels/softmax.hpp>

namespace xgrad::nn::functional {

Array causal_mask(std::size_t length) {
  Array mask = Array::from_shape({length, length});
  for (std::size_t i = 0; i < length; ++i) {
    for (std::size_t j = 0; j < length; ++j) mask(i, j) = j > i ? -std::numeric_limits<float>::infinity() : 0.f;
  }
  return mask;
}

namespace {

/// Sizes of one attention call.
struct Dims {
  std::size_t B, T, S, H, dk, dv;
  std::size_t S_stored;  // keys stored per batch row in k and v (S of them used)
  std::size_t q_ld() const { return H * dk; }  // row stride of q and k
  std::size_t v_ld() const { return H * dv; }  // row stride of v and the output
};

Dims check_shapes(const Tensor& q, const Tensor& k, const Tensor& v, std::int64_t num_heads,
                  const AttentionOptions& options) {
  const char* op = "scaled_dot_product_attention";
  if (!q.defined() || !k.defined() || !v.defined()) throw Error(fmt::format("{}: q, k and v must be defined", op));
  const Shape qs = q.shape(), ks = k.shape(), vs = v.shape();
  if (qs.size() != 3 || ks.size() != 3 || vs.size() != 3) {
    throw Error(fmt::format("{}: q, k and v must be (B, T, H*d), got {}, {} and {}", op, shape_str(qs), shape_str(ks),
                            shape_str(vs)));
  }
  if (num_heads <= 0) throw Error(fmt::format("{}: num_heads must be positive, got {}", op, num_heads));
  const auto H = static_cast<std::size_t>(num_heads);
  if (qs[0] != ks[0] || ks[0] != vs[0] || ks[1] != vs[1] || qs[2] != ks[2]) {
    throw Error(fmt::format("{}: q {}, k {} and v {} disagree (expected q (B, T, E), k (B, S, E), v (B, S, Ev))", op,
                            shape_str(qs), shape_str(ks), shape_str(vs)));
  }
  if (qs[2] % H != 0 || vs[2] % H != 0) {
    throw Error(fmt::format("{}: embedding sizes {} and {} are not divisible by {} heads", op, qs[2], vs[2], H));
  }
  if (options.num_keys > ks[1]) {
    throw Error(fmt::format("{}: num_keys {} exceeds the {} keys that k {} holds", op, options.num_keys, ks[1],
                            shape_str(ks)));
  }
  const std::size_t S = options.num_keys > 0 ? options.num_keys : ks[1];
  Dims d{qs[0], qs[1], S, H, qs[2] / H, vs[2] / H, ks[1]};
  if (options.attn_mask) {
    const Shape ms = shape_of(*options.attn_mask);
    const bool per_all = ms == Shape{d.T, d.S}, per_head = ms == Shape{d.B * d.H, d.T, d.S};
    if (!per_all && !per_head) {
      throw Error(fmt::format("{}: attn_mask has shape {}, expected [{},{}] or [{},{},{}]", op, shape_str(ms), d.T, d.S,
                              d.B * d.H, d.T, d.S));
    }
  }
  if (options.key_padding_mask) {
    const auto& m = *options.key_padding_mask;
    if (m.dimension() != 2 || m.shape()[0] != d.B || m.shape()[1] != d.S) {
      throw Error(fmt::format("{}: key_padding_mask has shape {}, expected [{},{}] (B, S)", op,
                              shape_str(Shape(m.shape().begin(), m.shape().end())), d.B, d.S));
    }
  }
  if (!(options.dropout_p >= 0.f && options.dropout_p <= 1.f)) {
    throw Error(fmt::format("{}: dropout_p must be in [0, 1], got {}", op, options.dropout_p));
  }
  return d;
}

/// Queries up to this many per (batch, head) are served by the loops below instead of sgemm: one
/// query row (a decoding step) is too little work to pay for packing K and V into GEMM panels.
constexpr std::size_t kFewQueries = 4;

/// P (T, S) = scale * Q (T, dk) K^T (dk, S), Q and K with row strides q_ld and k_ld.
void scores_few_queries(const float* Q, std::size_t q_ld, const float* K, std::size_t k_ld, std::size_t T,
                        std::size_t S, std::size_t dk, float scale, float* P) {
  for (std::size_t t = 0; t < T; ++t) {
    const float* q = Q + t * q_ld;
    for (std::size_t s = 0; s < S; ++s) {
      const float* k = K + s * k_ld;
      float dot = 0.f;
#pragma omp simd reduction(+ : dot)
      for (std::size_t j = 0; j < dk; ++j) dot += q[j] * k[j];
      P[t * S + s] = scale * dot;
    }
  }
}

/// O (T, dv) = W (T, S) V (S, dv), V and O with row strides v_ld and o_ld.
void weighted_values_few_queries(const float* W, const float* V, std::size_t v_ld, std::size_t T, std::size_t S,
                                 std::size_t dv, float* O, std::size_t o_ld) {
  for (std::size_t t = 0; t < T; ++t) {
    float* o = O + t * o_ld;
    std::fill(o, o + dv, 0.f);
    for (std::size_t s = 0; s < S; ++s) {
      const float w = W[t * S + s];
      const float* v = V + s * v_ld;
#pragma omp simd
      for (std::size_t j = 0; j < dv; ++j) o[j] += w * v[j];
    }
  }
}

}  // namespace

AttentionResult scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, std::int64_t num_heads,
                                             const AttentionOptions& options) {
  const Dims d = check_shapes(q, k, v, num_heads, options);
  const float scale = 1.f / std::sqrt(static_cast<float>(d.dk));
  const std::size_t heads = d.B * d.H, block = d.T * d.S;
  const bool use_dropout = options.training && options.dropout_p > 0.f;

  // probs (B, H, T, S): softmax weights, kept for backward. keep (B, H, T, S): dropout's
  // 0 or 1/(1-p) per weight, drawn up front so the result does not depend on thread count.
  auto probs = std::make_shared<Array>(Array::from_shape({d.B, d.H, d.T, d.S}));
  std::shared_ptr<Array> keep;
  if (use_dropout) {
    Generator& gen = options.generator ? *options.generator : default_generator();
    keep = std::make_shared<Array>(Array::from_shape({d.B, d.H, d.T, d.S}));
    const float p = options.dropout_p, kept = p < 1.f ? 1.f / (1.f - p) : 0.f;
    const std::uint32_t drop_below = Generator::uniform_threshold(p);  // dropped: uniform() < p
    std::vector<std::uint32_t> bits(keep->size());
    gen.uniform_bits(bits.data(), bits.size());
    float* m = keep->data();
#pragma omp simd
    for (std::size_t i = 0; i < bits.size(); ++i) m[i] = kernels::select(bits[i] < drop_below, 0.f, kept);
  }
  Array out = Array::from_shape({d.B, d.T, d.v_ld()});

  const float* qd = q.value().data();
  const float* kd = k.value().data();
  const float* vd = v.value().data();
  const float* attn = options.attn_mask ? options.attn_mask->data() : nullptr;
  const bool attn_per_head = options.attn_mask && options.attn_mask->dimension() == 3;
  const bool* padding = options.key_padding_mask ? options.key_padding_mask->data() : nullptr;

  // A decoding step (one query) is too little work to wake a second thread for.
  const bool parallel = heads > 1 && heads * block * (d.dk + d.dv) >= kernels::kParallelWork;
#pragma omp parallel if (parallel)
  {
    Array dropped = use_dropout ? Array::from_shape({d.T, d.S}) : Array();
#pragma omp for schedule(static)
    for (std::size_t bh = 0; bh < heads; ++bh) {
      const std::size_t b = bh / d.H, h = bh % d.H;
      const float* Q = qd + b * d.T * d.q_ld() + h * d.dk;  // (T, dk), ld H*dk
      const float* K = kd + b * d.S_stored * d.q_ld() + h * d.dk;  // (S, dk), ld H*dk
      const float* V = vd + b * d.S_stored * d.v_ld() + h * d.dv;  // (S, dv), ld H*dv
      float* P = probs->data() + bh * block;                // (T, S)
      // Scores = Q K^T / sqrt(dk)
      if (d.T <= kFewQueries) scores_few_queries(Q, d.q_ld(), K, d.q_ld(), d.T, d.S, d.dk, scale, P);
      else kernels::gemm(false, true, d.T, d.S, d.dk, scale, Q, d.q_ld(), K, d.q_ld(), 0.f, P, d.S);
      const float* A = attn ? attn + (attn_per_head ? bh * block : 0) : nullptr;
      for (std::size_t t = 0; t < d.T; ++t) {
        float* row = P + t * d.S;
        if (A) {
          for (std::size_t s = 0; s < d.S; ++s) row[s] += A[t * d.S + s];
        }
        if (padding) {
          for (std::size_t s = 0; s < d.S; ++s) {
            if (padding[b * d.S + s]) row[s] = -std::numeric_limits<float>::infinity();
          }
        }
        kernels::masked_softmax_row(row, d.S);
      }
      const float* weights = P;
      if (use_dropout) {
        const float* M = keep->data() + bh * block;
        for (std::size_t i = 0; i < block; ++i) dropped.data()[i] = P[i] * M[i];
        weights = dropped.data();
      }
      // out_h = weights V
      float* O = out.data() + b * d.T * d.v_ld() + h * d.dv;
      if (d.T <= kFewQueries) weighted_values_few_queries(weights, V, d.v_ld(), d.T, d.S, d.dv, O, d.v_ld());
      else kernels::gemm(false, false, d.T, d.dv, d.S, 1.f, weights, d.S, V, d.v_ld(), 0.f, O, d.v_ld());
    }
  }

  AttentionResult result;
  if (options.need_weights) {
    Array mean = Array::from_shape({d.B, d.T, d.S});
    mean.fill(0.f);
    for (std::size_t b = 0; b < d.B; ++b) {
      for (std::size_t h = 0; h < d.H; ++h) {
        const float* P = probs->data() + (b * d.H + h) * block;
        float* M = mean.data() + b * block;
        for (std::size_t i = 0; i < block; ++i) M[i] += P[i] / static_cast<float>(d.H);
      }
    }
    result.weights = Tensor(std::move(mean));
  }

  auto q_saved = q.saved(), k_saved = k.saved(), v_saved = v.saved();
  result.output = record("scaled_dot_product_attention", std::move(out), {q, k, v},
                         [d, scale, probs, keep, q_saved, k_saved, v_saved](BackwardContext& ctx) {
    const std::size_t heads = d.B * d.H, block = d.T * d.S;
    const float* dout = ctx.grad_output().data();  // (B, T, H*dv)
    float* dq = ctx.needs_grad(0) ? ctx.grad_buffer(0).data() : nullptr;
    float* dk = ctx.needs_grad(1) ? ctx.grad_buffer(1).data() : nullptr;
    float* dv = ctx.needs_grad(2) ? ctx.grad_buffer(2).data() : nullptr;
    const float* qd = q_saved->data();
    const float* kd = k_saved->data();
    const float* vd = v_saved->data();
    const bool parallel = heads > 1 && heads * block * (d.dk + d.dv) >= kernels::kParallelWork;
#pragma omp parallel if (parallel)
    {
      Array dweights = Array::from_shape({d.T, d.S});
      Array dropped = keep ? Array::from_shape({d.T, d.S}) : Array();
#pragma omp for schedule(static)
      for (std::size_t bh = 0; bh < heads; ++bh) {
        const std::size_t b = bh / d.H, h = bh % d.H;
        const std::size_t q_off = b * d.T * d.q_ld() + h * d.dk, k_off = b * d.S_stored * d.q_ld() + h * d.dk;
        const std::size_t v_off = b * d.S_stored * d.v_ld() + h * d.dv, o_off = b * d.T * d.v_ld() + h * d.dv;
        const float* P = probs->data() + bh * block;  // (T, S)
        const float* M = keep ? keep->data() + bh * block : nullptr;
        const float* weights = P;
        if (M) {
          for (std::size_t i = 0; i < block; ++i) dropped.data()[i] = P[i] * M[i];
          weights = dropped.data();
        }
        if (dv) {  // dV (S, dv) += weights^T (S, T) dO (T, dv)
          kernels::gemm(true, false, d.S, d.dv, d.T, 1.f, weights, d.S, dout + o_off,
                      d.v_ld(), 1.f, dv + v_off, d.v_ld());
        }
        if (!dq && !dk) continue;
        float* dP = dweights.data();  // dweights (T, S) = dO (T, dv) V^T (dv, S)
        kernels::gemm(false, true, d.T, d.S, d.dv, 1.f, dout + o_off, d.v_ld(), vd + v_off,
                    d.v_ld(), 0.f, dP, d.S);
        for (std::size_t t = 0; t < d.T; ++t) {  // dS = P o (dP - rowsum(dP o P)), dropout folded into dP
          float* g = dP + t * d.S;
          const float* p = P + t * d.S;
          if (M) {
            for (std::size_t s = 0; s < d.S; ++s) g[s] *= M[t * d.S + s];
          }
          float dot = 0.f;
          for (std::size_t s = 0; s < d.S; ++s) dot += g[s] * p[s];
          for (std::size_t s = 0; s < d.S; ++s) g[s] = p[s] * (g[s] - dot);
        }
        if (dq) {  // dQ (T, dk) += dS (T, S) K (S, dk) / sqrt(dk)
          kernels::gemm(false, false, d.T, d.dk, d.S, scale, dP, d.S, kd + k_off, d.q_ld(),
                      1.f, dq + q_off, d.q_ld());
        }
        if (dk) {  // dK (S, dk) += dS^T (S, T) Q (T, dk) / sqrt(dk)
          kernels::gemm(true, false, d.S, d.dk, d.T, scale, dP, d.S, qd + q_off, d.q_ld(),
                      1.f, dk + k_off, d.q_ld());
        }
      }
    }
  });
  return result;
}

}  // namespace xgrad::nn::functional
