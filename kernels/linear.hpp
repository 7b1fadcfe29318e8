// The loops of a linear layer around its GEMMs: y += x W^T for a few rows of x (a decoding step:
// one row per sequence or beam), reading W in place, once (a GEMM library would first copy, pack,
// the whole of W, which for so few rows costs about as much as the product); the bias, fused
// with a ReLU where there is one; the bias gradient.
#pragma once

#include <cstddef>
#include <cstdint>

#include <xgrad/kernels/team.hpp>

namespace xgrad::kernels {

/// Rows of x up to which skinny_linear beats the GEMM library (measured: bench_gemm --skinny).
constexpr std::size_t kSkinnyRows = 8;

/// Multiply-adds (rows x in x out) above which a product of few rows (skinny_linear,
/// packed_linear: a decoding step's layers) goes over the threads. Such a product streams W once,
/// in microseconds, and a parallel region costs several (libgomp's barriers make system calls, and
/// the other thread may have gone to sleep since the layer before). Measured on 2 cores (Zen 5 VM,
/// greedy and beam decoding): split from kParallelWork, two threads decoded at batch 1 at 0.8x of
/// one; split only above 2^20, at 1.0x, while batch 32's products (2^21 and more) still gain.
constexpr std::size_t kParallelProducts = std::size_t{1} << 20;

/// The same inside with_team (kernels/team.hpp), where handing a part to another thread costs a
/// cache line each way, not a region.
constexpr std::size_t kTeamProducts = std::size_t{1} << 15;

/// Whether a few-row product of this many multiply-adds goes over the threads: above
/// kTeamProducts in a team, else above kParallelProducts.
inline bool split_product(std::size_t multiply_adds) {
  return multiply_adds > (team_size() > 1 ? kTeamProducts : kParallelProducts);
}

/// y (rows, out) += x (rows, in) W^T, W (out, in) row-major, every matrix dense. Blocks of W's
/// rows over the threads when split_product says so.
void skinny_linear(const float* x, std::size_t rows, std::size_t in, const float* w, std::size_t out, float* y);

/// skinny_linear under bf16 autocast, W given as bf16 bits (a layer's bf16 copy, kernels::to_bf16),
/// dense (out, in): x rounded to bf16, each product exact in fp32, the sums in fp32, as
/// gemm_bf16 (whose matmul call and conversions cost more than so few rows' products). Only where
/// bf16_gemm_native() (the CPU's AVX512_BF16 dot products); throws xgrad::Error elsewhere.
void skinny_linear_bf16(const float* x, std::size_t rows, std::size_t in, const std::uint16_t* w, std::size_t out,
                        float* y);

/// y (rows, out): every row set to b (then a GEMM with beta = 1 adds x W^T on top).
void bias_rows(const float* b, std::size_t rows, std::size_t out, float* y);

/// y = relu(y + b) in place, per row (b (out) or null), with relu_forward's semantics (NaN -> 0):
/// a GEMM's epilogue, one pass.
void bias_relu(const float* b, std::size_t rows, std::size_t out, float* y);

/// db (out) += the sum of dy's rows (rows, out).
void column_sums(const float* dy, std::size_t rows, std::size_t out, float* db);

}  // namespace xgrad::kernels
