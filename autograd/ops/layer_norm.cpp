// Layer normalization over the last axis (of x, or of x + residual): shapes checked here, the
// rows normalized by kernels/layer_norm, which saves each row's mean and 1/std for the backward.
#include <xgrad/autograd/ops/layer_norm.hpp>

#include <memory>
#include <vector>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/kernels/layer_norm.hpp>

namespace xgrad {

// Legend: R = rows (every axis but the last, flattened), D = the normalized (last) axis.

namespace {

/// What the forward leaves for the backward, per row.
struct RowStats {
  std::vector<float> mean;  // (R)
  std::vector<float> rstd;  // (R) 1 / sqrt(var + eps)
};

/// weight or bias: undefined, or of shape [D].
void check_affine(const char* op, const char* name, const Tensor& t, std::size_t d, const Shape& x_shape) {
  if (t.defined() && t.shape() != Shape{d}) {
    throw Error(fmt::format("{}: {} has shape {}, expected [{}] (the last axis of the input, of shape {})", op, name,
                            shape_str(t.shape()), d, shape_str(x_shape)));
  }
}

/// layer_norm of x, or of x + residual when residual is defined (its own op, add_layer_norm).
Tensor layer_norm_of(const char* op, const Tensor& x, const Tensor& residual, const Tensor& weight, const Tensor& bias,
                     float eps) {
  if (!x.defined()) throw Error(fmt::format("{}: the input tensor is undefined", op));
  const Shape shape = x.shape();
  if (shape.empty()) {
    throw Error(fmt::format("{}: the input is a 0-d tensor: expected at least one axis (the last one is normalized)",
                            op));
  }
  const bool add = residual.defined();
  if (add && residual.shape() != shape) {
    throw Error(fmt::format("{}: the residual has shape {}, expected the input's shape {}", op,
                            shape_str(residual.shape()), shape_str(shape)));
  }
  const std::size_t d = shape.back();
  const std::size_t rows = numel_of(Shape(shape.begin(), shape.end() - 1));
  check_affine(op, "weight", weight, d, shape);
  check_affine(op, "bias", bias, d, shape);

  // Absent weight and bias act as ones and zeros: one kernel for all four cases.
  const std::vector<float> ones(weight.defined() ? 0 : d, 1.f), zeros(bias.defined() ? 0 : d, 0.f);
  const float* w = weight.defined() ? weight.value().data() : ones.data();  // (D)
  const float* b = bias.defined() ? bias.value().data() : zeros.data();     // (D)

  auto stats = std::make_shared<RowStats>();
  stats->mean.resize(rows);
  stats->rstd.resize(rows);
  // s = x (+ residual): the normalized rows, which the backward reads.
  std::shared_ptr<Array> sum = add ? std::make_shared<Array>(Array::from_shape(shape)) : nullptr;
  std::shared_ptr<const Array> s = add ? sum : x.saved();
  Array out = Array::from_shape(shape);  // (R, D)
  kernels::layer_norm_forward(x.value().data(), add ? residual.value().data() : nullptr,
                              add ? sum->data() : nullptr, rows, d, w, b, eps, stats->mean.data(),
                              stats->rstd.data(), out.data());

  std::vector<Tensor> inputs;
  inputs.reserve(4);
  inputs.push_back(x);
  if (add) inputs.push_back(residual);
  std::size_t weight_input = 0, bias_input = 0;  // 0: absent (input 0 is x)
  if (weight.defined()) {
    weight_input = inputs.size();
    inputs.push_back(weight);
  }
  if (bias.defined()) {
    bias_input = inputs.size();
    inputs.push_back(bias);
  }
  std::shared_ptr<const Array> w_saved = weight.defined() ? weight.saved() : nullptr;

  // With xhat = (s - mean) rstd and g = dy * weight, per row:
  //   ds = rstd (g - mean(g) - xhat mean(g xhat)),  dweight = sum_rows dy xhat,  dbias = sum_rows dy;
  // x and the residual both receive ds.
  return record(op, std::move(out), inputs, [s, w_saved, stats, rows, d, add, weight_input, bias_input](BackwardContext& ctx) {
    const bool need_w = weight_input != 0 && ctx.needs_grad(weight_input);
    const bool need_b = bias_input != 0 && ctx.needs_grad(bias_input);
    const std::vector<float> ones(w_saved ? 0 : d, 1.f);
    const float* w = w_saved ? w_saved->data() : ones.data();  // (D)
    // ds goes straight into x's and the residual's gradients, added to what they hold already.
    const kernels::GradOut ds_x = ctx.grad_out(0), ds_residual = add ? ctx.grad_out(1) : kernels::GradOut{};
    Array dweight, dbias;
    if (need_w || need_b) {
      dweight = Array::from_shape({d});
      dbias = Array::from_shape({d});
      dweight.fill(0.f);
      dbias.fill(0.f);
    }
    kernels::layer_norm_backward(s->data(), ctx.grad_output().data(), rows, d, w, stats->mean.data(),
                                 stats->rstd.data(), ds_x, ds_residual, need_w ? dweight.data() : nullptr,
                                 need_b ? dbias.data() : nullptr);
    if (need_w) ctx.accumulate(weight_input, std::move(dweight));
    if (need_b) ctx.accumulate(bias_input, std::move(dbias));
  });
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  return layer_norm_of("layer_norm", x, Tensor(), weight, bias, eps);
}

Tensor add_layer_norm(const Tensor& x, const Tensor& residual, const Tensor& weight, const Tensor& bias, float eps) {
  if (!residual.defined()) throw Error("add_layer_norm: the residual tensor is undefined");
  return layer_norm_of("add_layer_norm", x, residual, weight, bias, eps);
}

}  // namespace xgrad
