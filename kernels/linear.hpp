// y += x W^T for a few rows of x (a decoding step: one row per sequence or beam), reading W in
// place, once: a GEMM library would first copy (pack) the whole of W, which for so few rows
// costs about as much as the product.
#pragma once

#include <cstddef>

namespace xgrad::kernels {

/// Rows of x up to which skinny_linear beats the GEMM library (measured: bench_gemm --skinny).
constexpr std::size_t kSkinnyRows = 8;

/// y (rows, out) += x (rows, in) W^T, W (out, in) row-major, every matrix dense. Blocks of W's
/// rows over the threads when there is enough work.
void skinny_linear(const float* x, std::size_t rows, std::size_t in, const float* w, std::size_t out, float* y);

}  // namespace xgrad::kernels
