// linear: y = x W^T + b as one GEMM (a GEMV for a single row, one pass over W for up to four), with its backward as two more and a
// column sum; linear_rows does the same with a block of W's rows, read in place.
#include <xgrad/nn/functional.hpp>

#include <algorithm>

#include <fmt/format.h>

#include <xgrad/autograd/error.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/kernels/gemm.hpp>
#include <xgrad/kernels/parallel.hpp>

namespace xgrad::nn::functional {

namespace {

/// Up to this many rows, y = x W^T skips GEMM, which would first copy (pack) the whole of W: for
/// a few rows (a decoding step, beam search's k rows) that costs more than the product.
constexpr std::size_t kGemvRows = 4;

/// y[r, o] += x[r] . W[o] for r < R (2 <= R <= 4) and o in [begin, end): each row of W is read
/// once for all R rows of x, two rows of W at a time, where R GEMVs would read all of W R times.
template <std::size_t R>
void add_few_rows_times_w(const float* x, std::size_t in, const float* w, std::size_t begin, std::size_t end, float* y,
                          std::size_t out) {
  const float* x0 = x;
  const float* x1 = x + in;
  const float* x2 = x + (R > 2 ? 2 : 0) * in;
  const float* x3 = x + (R > 3 ? 3 : 0) * in;
  std::size_t o = begin;
  for (; o + 2 <= end; o += 2) {
    const float* wa = w + o * in;
    const float* wb = wa + in;
    // W streams from memory once: ask for the rows four pairs ahead while these are multiplied.
    if (o + 10 <= out) {
      for (std::size_t i = 0; i < 2 * in; i += 16) __builtin_prefetch(wa + 8 * in + i);
    }
    float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f, b0 = 0.f, b1 = 0.f, b2 = 0.f, b3 = 0.f;
#pragma omp simd reduction(+ : a0, a1, a2, a3, b0, b1, b2, b3)
    for (std::size_t i = 0; i < in; ++i) {
      a0 += x0[i] * wa[i], b0 += x0[i] * wb[i];
      a1 += x1[i] * wa[i], b1 += x1[i] * wb[i];
      if constexpr (R > 2) a2 += x2[i] * wa[i], b2 += x2[i] * wb[i];
      if constexpr (R > 3) a3 += x3[i] * wa[i], b3 += x3[i] * wb[i];
    }
    const float as[4] = {a0, a1, a2, a3}, bs[4] = {b0, b1, b2, b3};
    for (std::size_t r = 0; r < R; ++r) y[r * out + o] += as[r], y[r * out + o + 1] += bs[r];
  }
  for (; o < end; ++o) {
    for (std::size_t r = 0; r < R; ++r) {
      float dot = 0.f;
#pragma omp simd reduction(+ : dot)
      for (std::size_t i = 0; i < in; ++i) dot += x[r * in + i] * w[o * in + i];
      y[r * out + o] += dot;
    }
  }
}

/// y (R, out) += x (R, in) W^T (in, out) for 2 <= R <= kGemvRows, over the threads in blocks of
/// outputs when there is enough work.
void add_few_rows_product(const float* x, std::size_t rows, std::size_t in, const float* w, std::size_t out, float* y) {
  constexpr std::size_t kBlock = 64;  // outputs per task
  const std::size_t blocks = (out + kBlock - 1) / kBlock;
  kernels::parallel_rows(blocks, kBlock * in * rows, [&](std::size_t block) {
    const std::size_t begin = block * kBlock, end = std::min(out, begin + kBlock);
    if (rows == 2) add_few_rows_times_w<2>(x, in, w, begin, end, y, out);
    else if (rows == 3) add_few_rows_times_w<3>(x, in, w, begin, end, y, out);
    else add_few_rows_times_w<4>(x, in, w, begin, end, y, out);
  });
}

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
  if (rows <= kGemvRows && out > 0) {  // decoding steps: GEMM would first pack all of W
    if (beta == 0.f) std::fill(y.data(), y.data() + rows * out, 0.f);  // both add to y
    if (rows == 1) kernels::gemm(false, true, 1, out, in, 1.f, x.value().data(), w, 1.f, y.data());
    else add_few_rows_product(x.value().data(), rows, in, w, out, y.data());
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
