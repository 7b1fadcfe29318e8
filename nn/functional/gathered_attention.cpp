// Attention of one query per row over keys and values gathered by index from per-position
// blocks: the self-attention of a decoding step whose cache is shared between beams.
#include <xgrad/nn/functional.hpp>

#include <cmath>
#include <vector>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/kernels/parallel.hpp>
#include <xgrad/kernels/attention.hpp>

namespace xgrad::nn::functional {

namespace {

void check(const Tensor& q, const GatheredKeyValues& kv, std::int64_t num_heads) {
  const char* op = "gathered_attention";
  if (!q.defined() || q.dim() != 3 || q.size(1) != 1) {
    throw Error(fmt::format("{}: q must be (B, 1, H*dk), got {}", op, q.defined() ? shape_str(q.shape()) : "undefined"));
  }
  if (num_heads <= 0 || q.size(2) % static_cast<std::size_t>(num_heads) != 0) {
    throw Error(fmt::format("{}: {} heads do not divide q's width {}", op, num_heads, q.size(2)));
  }
  const std::size_t batch = q.size(0), width = q.size(2), T = kv.length;
  if (kv.keys.size() != T || kv.values.size() != T || kv.padding.size() != T || !kv.index ||
      kv.index->size() != batch * T) {
    throw Error(fmt::format("{}: {} positions need {} key, value and padding blocks and a ({}, {}) index; got {}, {}, {} "
                            "and {} indices",
                            op, T, T, batch, T, kv.keys.size(), kv.values.size(), kv.padding.size(),
                            kv.index ? kv.index->size() : 0));
  }
  if (kv.group == 0 || batch % kv.group != 0) {
    throw Error(fmt::format("{}: a group of {} rows does not divide the batch of {}", op, kv.group, batch));
  }
  std::size_t value_width = 0;
  for (std::size_t s = 0; s < T; ++s) {
    const Array& k = *kv.keys[s];
    const Array& v = *kv.values[s];
    if (k.dimension() != 2 || v.dimension() != 2 || k.shape()[1] != width || k.shape()[0] != v.shape()[0] ||
        v.shape()[1] % static_cast<std::size_t>(num_heads) != 0 || (s > 0 && v.shape()[1] != value_width)) {
      throw Error(fmt::format("{}: position {} holds keys {} and values {}; expected (N, {}) and (N, H*dv)", op, s,
                              shape_str(shape_of(k)), shape_str(shape_of(v)), width));
    }
    value_width = v.shape()[1];
    if (kv.padding[s] && (kv.padding[s]->dimension() != 1 || kv.padding[s]->shape()[0] != k.shape()[0])) {
      throw Error(fmt::format("{}: position {} has {} rows but a padding mask of {} entries", op, s, k.shape()[0],
                              kv.padding[s]->size()));
    }
    for (std::size_t b = 0; b < batch; ++b) {
      if ((*kv.index)[b * T + s] >= k.shape()[0]) {
        throw Error(fmt::format("{}: row {} reads row {} of position {}, which holds {} rows", op, b,
                                (*kv.index)[b * T + s], s, k.shape()[0]));
      }
    }
  }
}

}  // namespace

Tensor gathered_attention(const Tensor& q, const GatheredKeyValues& kv, std::int64_t num_heads) {
  check(q, kv, num_heads);
  const std::size_t batch = q.size(0), T = kv.length, H = static_cast<std::size_t>(num_heads);
  const std::size_t q_width = q.size(2), dk = q_width / H;
  const std::size_t v_width = T > 0 ? kv.values[0]->shape()[1] : q_width, dv = v_width / H;
  const float scale = 1.f / std::sqrt(static_cast<float>(dk));
  Array out = Array::from_shape({batch, 1, v_width});  // (B, 1, H*dv)
  out.fill(0.f);
  // Recorded without inputs, so without a gradient: the profiler and anomaly mode see it as an op.
  if (T == 0) return record("gathered_attention", std::move(out), {}, nullptr);  // no keys: every row attends to nothing
  const float* qd = q.value().data();
  const std::uint32_t* index = kv.index->data();
  const std::size_t groups = batch / kv.group;

  // Work items are groups: the rows of a group read the rows they share while they are cached.
  const bool parallel = batch * H * T * (dk + dv) >= kernels::kParallelWork;
  const auto make_rows = [&] { return std::vector<const float*>(2 * T); };  // a thread's (2, T) row pointers
  kernels::parallel_for_with(groups, parallel, make_rows, [&](std::size_t g, std::vector<const float*>& rows_of_b) {
    const float** keys = rows_of_b.data();  // row b's key and value rows, by position
    const float** values = keys + T;
    for (std::size_t b = g * kv.group; b < (g + 1) * kv.group; ++b) {
      const std::uint32_t* rows = index + b * T;
      for (std::size_t s = 0; s < T; ++s) {
        const bool masked = kv.padding[s] && kv.padding[s]->data()[rows[s]];
        keys[s] = masked ? nullptr : kv.keys[s]->data() + rows[s] * q_width;
        values[s] = kv.values[s]->data() + rows[s] * v_width;
      }
      kernels::gathered_attention_row(qd + b * q_width, keys, values, T, H, dk, dv, scale,
                                      out.data() + b * v_width);
    }
  });
  return record("gathered_attention", std::move(out), {}, nullptr);
}

}  // namespace xgrad::nn::functional
