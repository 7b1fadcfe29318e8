// linear: y = x W^T + b as one GEMM (for the few rows of a decoding step, one pass over W in
// place), with its backward as two more and a column sum; linear_rows does the same with a block
// of W's rows, read in place.
#include <xgrad/nn/functional.hpp>

#include <algorithm>

#include <fmt/format.h>

#include <xgrad/autograd/error.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/kernels/gemm.hpp>
#include <xgrad/kernels/linear.hpp>
#include <xgrad/kernels/parallel.hpp>

namespace xgrad::nn::functional {

namespace {

/// y = x W[start : start + out]^T + b[start : start + out]: x (M, in), weight (W_rows, in),
/// bias (W_rows) or undefined. One kernel for linear (the whole W) and linear_rows (a block).
Tensor linear_kernel(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias, std::size_t start,
                     std::size_t out) {
  const Shape x_shape = x.shape();
  const std::size_t in = weight.size(1);
  const std::size_t rows = numel_of(x_shape) / in;  // M: every leading axis folded into one
  const bool whole = start == 0 && out == weight.size(0);

  Shape y_shape = x_shape;
  y_shape.back() = out;
  Array y = Array::from_shape(y_shape);  // (M, out)
  const float* w = weight.value().data() + start * in;  // (out, in), rows of W
  float beta = 0.f;
  if (bias.defined()) {  // start every row at b, then accumulate x W^T on top
    const float* b = bias.value().data() + start;
    kernels::parallel_rows(rows, out, [&](std::size_t r) { std::copy(b, b + out, y.data() + r * out); });
    beta = 1.f;
  }
  if (rows <= kernels::kSkinnyRows && out > 0) {  // decoding steps: GEMM would first pack all of W
    if (beta == 0.f) std::fill(y.data(), y.data() + rows * out, 0.f);  // skinny_linear adds to y
    kernels::skinny_linear(x.value().data(), rows, in, w, out, y.data());
  } else if (rows > 0 && out > 0) {
    kernels::gemm(false, true, rows, out, in, 1.f, x.value().data(), w, beta, y.data());
  }

  std::vector<Tensor> inputs{x, weight};
  if (bias.defined()) inputs.push_back(bias);
  auto x_saved = x.saved(), w_saved = weight.saved();
  return record(op, std::move(y), inputs, [x_saved, w_saved, rows, in, out, start, whole](BackwardContext& ctx) {
    const float* dy = ctx.grad_output().data();  // (M, out)
    if (ctx.needs_grad(0)) {  // dx (M, in) += dy (M, out) W (out, in)
      float beta = 0.f;
      Array& dx = ctx.grad_target(0, beta);
      if (rows > 0) {
        if (out > 0) {
          kernels::gemm(false, false, rows, in, out, 1.f, dy, w_saved->data() + start * in, beta, dx.data());
        } else if (beta == 0.f) {
          dx.fill(0.f);
        }
      }
    }
    if (ctx.needs_grad(1)) {  // dW (out, in) += dy^T (out, M) x (M, in), into W's block of rows
      float beta = 1.f;
      Array& dw = whole ? ctx.grad_target(1, beta) : ctx.grad_buffer(1);
      if (rows > 0 && out > 0) {
        kernels::gemm(true, false, out, in, rows, 1.f, dy, x_saved->data(), beta, dw.data() + start * in);
      } else if (beta == 0.f) {
        dw.fill(0.f);
      }
    }
    if (ctx.needs_grad(2)) {  // db (out) += sum over rows of dy
      float* db = ctx.grad_buffer(2).data() + start;
      constexpr std::size_t kColumns = 64;  // a block of columns per task, summed down every row
      kernels::parallel_rows((out + kColumns - 1) / kColumns, kColumns * rows, [&](std::size_t block) {
        const std::size_t begin = block * kColumns, end = std::min(out, begin + kColumns);
        for (std::size_t r = 0; r < rows; ++r) {
          const float* row = dy + r * out;
#pragma omp simd
          for (std::size_t j = begin; j < end; ++j) db[j] += row[j];
        }
      });
    }
  });
}

void check_input(const char* op, const Tensor& x, const Tensor& weight) {
  if (!x.defined() || !weight.defined()) throw Error(fmt::format("{}: input and weight must be defined", op));
  const Shape x_shape = x.shape(), w_shape = weight.shape();
  if (w_shape.size() != 2) {
    throw Error(fmt::format("{}: weight must be 2-D (out_features, in_features), got {}", op, shape_str(w_shape)));
  }
  if (x_shape.empty() || x_shape.back() != w_shape[1]) {
    throw Error(fmt::format("{}: input {} does not end in in_features {} of weight {}", op, shape_str(x_shape),
                            w_shape[1], shape_str(w_shape)));
  }
}

}  // namespace

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_input("linear", x, weight);
  const std::size_t out = weight.size(0);
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != out)) {
    throw Error(fmt::format("linear: bias must have shape [{}], got {}", out, shape_str(bias.shape())));
  }
  return linear_kernel("linear", x, weight, bias, 0, out);
}

Tensor linear_rows(const Tensor& x, const Tensor& weight, const Tensor& bias, std::size_t start, std::size_t count) {
  check_input("linear_rows", x, weight);
  const std::size_t rows = weight.size(0);
  if (start > rows || count > rows - start) {
    throw Error(fmt::format("linear_rows: rows [{}, {}) are outside the weight's {} rows (weight {})", start,
                            start + count, rows, shape_str(weight.shape())));
  }
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != rows)) {
    throw Error(fmt::format("linear_rows: bias must have shape [{}] (the weight's rows), got {}", rows,
                            shape_str(bias.shape())));
  }
  return linear_kernel("linear_rows", x, weight, bias, start, count);
}

}  // namespace xgrad::nn::functional
