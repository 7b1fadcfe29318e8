// linear: y = x W^T + b as one GEMM, with its backward as two more and a column sum.
#include <xgrad/nn/functional.hpp>

#include <cblas.h>
#include <fmt/format.h>

#include <xgrad/autograd/error.hpp>
#include <xgrad/autograd/tape.hpp>

namespace xgrad::nn::functional {

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (!x.defined() || !weight.defined()) throw Error("linear: input and weight must be defined");
  const Shape x_shape = x.shape(), w_shape = weight.shape();
  if (w_shape.size() != 2) {
    throw Error(fmt::format("linear: weight must be 2-D (out_features, in_features), got {}", shape_str(w_shape)));
  }
  if (x_shape.empty() || x_shape.back() != w_shape[1]) {
    throw Error(fmt::format("linear: input {} does not end in in_features {} of weight {}", shape_str(x_shape),
                            w_shape[1], shape_str(w_shape)));
  }
  const std::size_t in = w_shape[1], out = w_shape[0];
  const std::size_t rows = numel_of(x_shape) / in;  // M: every leading axis folded into one
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != out)) {
    throw Error(fmt::format("linear: bias must have shape [{}], got {}", out, shape_str(bias.shape())));
  }

  Shape y_shape = x_shape;
  y_shape.back() = out;
  Array y = Array::from_shape(y_shape);  // (M, out)
  float beta = 0.f;
  if (bias.defined()) {  // start every row at b, then accumulate x W^T on top
    const float* b = bias.value().data();
    for (std::size_t r = 0; r < rows; ++r) std::copy(b, b + out, y.data() + r * out);
    beta = 1.f;
  }
  if (rows > 0 && out > 0) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out, in, 1.f, x.value().data(), in,
                weight.value().data(), in, beta, y.data(), out);
  }

  std::vector<Tensor> inputs{x, weight};
  if (bias.defined()) inputs.push_back(bias);
  auto x_saved = x.saved(), w_saved = weight.saved();
  return record("linear", std::move(y), inputs, [x_saved, w_saved, rows, in, out](BackwardContext& ctx) {
    const float* dy = ctx.grad_output().data();  // (M, out)
    if (rows == 0) return;
    if (ctx.needs_grad(0)) {  // dx (M, in) += dy (M, out) W (out, in)
      Array& dx = ctx.grad_buffer(0);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, in, out, 1.f, dy, out, w_saved->data(), in, 1.f,
                  dx.data(), in);
    }
    if (ctx.needs_grad(1)) {  // dW (out, in) += dy^T (out, M) x (M, in)
      Array& dw = ctx.grad_buffer(1);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, rows, 1.f, dy, out, x_saved->data(), in, 1.f,
                  dw.data(), in);
    }
    if (ctx.needs_grad(2)) {  // db (out) += sum over rows of dy
      float* db = ctx.grad_buffer(2).data();
      for (std::size_t r = 0; r < rows; ++r) {
        const float* row = dy + r * out;
#pragma omp simd
        for (std::size_t j = 0; j < out; ++j) db[j] += row[j];
      }
    }
  });
}

}  // namespace xgrad::nn::functional
