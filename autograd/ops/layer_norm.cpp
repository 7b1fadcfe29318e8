// Layer normalization over the last axis: a fused forward that saves each row's mean and
// 1/std, and a fused backward that reads them back. Every row is contiguous.
#include <xgrad/autograd/ops/layer_norm.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include <xgrad/autograd/error.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/kernels/parallel.hpp>

namespace xgrad {

// Legend: R = rows (every axis but the last, flattened), D = the normalized (last) axis.

namespace {

/// What the forward leaves for the backward, per row.
struct RowStats {
  std::vector<float> mean;  // (R)
  std::vector<float> rstd;  // (R) 1 / sqrt(var + eps)
};

/// weight or bias: undefined, or of shape [D].
void check_affine(const char* name, const Tensor& t, std::size_t d, const Shape& x_shape) {
  if (t.defined() && t.shape() != Shape{d}) {
    throw Error(fmt::format("layer_norm: {} has shape {}, expected [{}] (the last axis of the input, of shape {})",
                            name, shape_str(t.shape()), d, shape_str(x_shape)));
  }
}

/// Mean and biased variance of one row, in two passes over it while it sits in L1.
inline void row_moments(const float* x, std::size_t d, float& mean, float& var) {
  float s = 0.f;
#pragma omp simd reduction(+ : s)
  for (std::size_t j = 0; j < d; ++j) s += x[j];
  mean = s / static_cast<float>(d);
  float q = 0.f;
#pragma omp simd reduction(+ : q)
  for (std::size_t j = 0; j < d; ++j) {
    const float dev = x[j] - mean;
    q += dev * dev;
  }
  var = q / static_cast<float>(d);
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  if (!x.defined()) throw Error("layer_norm: the input tensor is undefined");
  const Shape shape = x.shape();
  if (shape.empty()) {
    throw Error("layer_norm: the input is a 0-d tensor: expected at least one axis (the last one is normalized)");
  }
  const std::size_t d = shape.back();
  const std::size_t rows = numel_of(Shape(shape.begin(), shape.end() - 1));
  check_affine("weight", weight, d, shape);
  check_affine("bias", bias, d, shape);

  // Absent weight and bias act as ones and zeros: one kernel for all four cases.
  const std::vector<float> ones(weight.defined() ? 0 : d, 1.f), zeros(bias.defined() ? 0 : d, 0.f);
  const float* w = weight.defined() ? weight.value().data() : ones.data();  // (D)
  const float* b = bias.defined() ? bias.value().data() : zeros.data();     // (D)

  auto stats = std::make_shared<RowStats>();
  stats->mean.resize(rows);
  stats->rstd.resize(rows);
  Array out = Array::from_shape(shape);  // (R, D)
  const float* xp = x.value().data();
  float* yp = out.data();
  kernels::parallel_rows(rows, d, [&](std::size_t r) {
    const float* xr = xp + r * d;
    float* yr = yp + r * d;
    float mean, var;
    row_moments(xr, d, mean, var);
    const float rstd = 1.f / std::sqrt(var + eps);
    stats->mean[r] = mean;
    stats->rstd[r] = rstd;
#pragma omp simd
    for (std::size_t j = 0; j < d; ++j) yr[j] = (xr[j] - mean) * rstd * w[j] + b[j];
  });

  std::vector<Tensor> inputs{x};
  std::size_t weight_input = 0, bias_input = 0;  // 0: absent (input 0 is x)
  if (weight.defined()) {
    weight_input = inputs.size();
    inputs.push_back(weight);
  }
  if (bias.defined()) {
    bias_input = inputs.size();
    inputs.push_back(bias);
  }
  auto x_saved = x.saved();
  std::shared_ptr<const Array> w_saved = weight.defined() ? weight.saved() : nullptr;

  // With xhat = (x - mean) rstd and g = dy * weight, per row:
  //   dx = rstd (g - mean(g) - xhat mean(g xhat)),  dweight = sum_rows dy xhat,  dbias = sum_rows dy.
  return record("layer_norm", std::move(out), inputs,
                [x_saved, w_saved, stats, rows, d, weight_input, bias_input](BackwardContext& ctx) {
    const bool need_x = ctx.needs_grad(0);
    const bool need_w = weight_input != 0 && ctx.needs_grad(weight_input);
    const bool need_b = bias_input != 0 && ctx.needs_grad(bias_input);
    const std::vector<float> ones(w_saved ? 0 : d, 1.f);
    const float* w = w_saved ? w_saved->data() : ones.data();  // (D)
    const float* xp = x_saved->data();                         // (R, D)
    const float* dyp = ctx.grad_output().data();               // (R, D)
    Array dx;
    if (need_x) dx = Array::from_shape(x_saved->shape());
    float* dxp = need_x ? dx.data() : nullptr;

    // Rows are split into one contiguous range per thread; each thread sums its rows' dweight
    // and dbias into its own slice of `partial`, added up afterwards.
    const bool parallel = rows >= 2 && rows * d >= kernels::kParallelWork;
    const int threads = parallel ? omp_get_max_threads() : 1;
    std::vector<float> partial(need_w || need_b ? static_cast<std::size_t>(threads) * 2 * d : 0, 0.f);  // (T, 2, D)
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
      const auto t = static_cast<std::size_t>(omp_get_thread_num());
      const auto nt = static_cast<std::size_t>(omp_get_num_threads());
      float* dw = partial.empty() ? nullptr : partial.data() + t * 2 * d;  // (D)
      float* db = partial.empty() ? nullptr : dw + d;                      // (D)
      for (std::size_t r = rows * t / nt; r < rows * (t + 1) / nt; ++r) {
        const float* xr = xp + r * d;
        const float* dyr = dyp + r * d;
        const float mean = stats->mean[r], rstd = stats->rstd[r];
        float sum_g = 0.f, sum_g_xhat = 0.f;
        if (dw) {
#pragma omp simd reduction(+ : sum_g, sum_g_xhat)
          for (std::size_t j = 0; j < d; ++j) {
            const float xhat = (xr[j] - mean) * rstd;
            const float g = dyr[j] * w[j];
            sum_g += g;
            sum_g_xhat += g * xhat;
            dw[j] += dyr[j] * xhat;
            db[j] += dyr[j];
          }
        } else {
#pragma omp simd reduction(+ : sum_g, sum_g_xhat)
          for (std::size_t j = 0; j < d; ++j) {
            const float g = dyr[j] * w[j];
            sum_g += g;
            sum_g_xhat += g * ((xr[j] - mean) * rstd);
          }
        }
        if (!dxp) continue;
        const float mean_g = sum_g / static_cast<float>(d);
        const float mean_g_xhat = sum_g_xhat / static_cast<float>(d);
        float* dxr = dxp + r * d;
#pragma omp simd
        for (std::size_t j = 0; j < d; ++j) {
          const float xhat = (xr[j] - mean) * rstd;
          dxr[j] = rstd * (dyr[j] * w[j] - mean_g - xhat * mean_g_xhat);
        }
      }
    }

    if (need_x) ctx.accumulate(0, std::move(dx));
    if (need_w || need_b) {
      Array dweight = Array::from_shape({d}), dbias = Array::from_shape({d});
      std::fill(dweight.begin(), dweight.end(), 0.f);
      std::fill(dbias.begin(), dbias.end(), 0.f);
      for (int t = 0; t < threads; ++t) {
        const float* dw = partial.data() + static_cast<std::size_t>(t) * 2 * d;
        for (std::size_t j = 0; j < d; ++j) {
          dweight.data()[j] += dw[j];
          dbias.data()[j] += dw[d + j];
        }
      }
      if (need_w) ctx.accumulate(weight_input, std::move(dweight));
      if (need_b) ctx.accumulate(bias_input, std::move(dbias));
    }
  });
}

}  // namespace xgrad
