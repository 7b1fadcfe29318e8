// The loops of a linear layer around its GEMMs: y += x W^T for a few rows of x (a decoding step:
// one row per sequence or beam), reading W in place, once (a GEMM library would first copy, pack,
// the whole of W, which for so few rows costs about as much as the product); the bias, fused
// with a ReLU where there is one; the bias gradient.
#pragma once

#include <cstddef>

namespace xgrad::kernels {

/// Rows of x up to which skinny_linear beats the GEMM library (measured: bench_gemm --skinny).
constexpr std::size_t kSkinnyRows = 8;

/// y (rows, out) += x (rows, in) W^T, W (out, in) row-major, every matrix dense. Blocks of W's
/// rows over the threads when there is enough work.
void skinny_linear(const float* x, std::size_t rows, std::size_t in, const float* w, std::size_t out, float* y);

/// y (rows, out): every row set to b (then a GEMM with beta = 1 adds x W^T on top).
void bias_rows(const float* b, std::size_t rows, std::size_t out, float* y);

/// y = relu(y + b) in place, per row (b (out) or null), with relu_forward's semantics (NaN -> 0):
/// a GEMM's epilogue, one pass.
void bias_relu(const float* b, std::size_t rows, std::size_t out, float* y);

/// db (out) += the sum of dy's rows (rows, out).
void column_sums(const float* dy, std::size_t rows, std::size_t out, float* db);

}  // namespace xgrad::kernels
