// The one GEMM of xgrad: every matrix product of the ops, layers and decoding goes through here,
// and this is the only place that calls the GEMM library (oneDNN, whose JIT picks its kernels
// from the CPU's feature flags, so a CPU it has no table entry for still gets its widest ISA).
#pragma once

#include <cstddef>
#include <cstdint>

namespace xgrad::kernels {

/// C (M, N) = alpha op(A) op(B) + beta C, every matrix row-major: op(A) is (M, K), op(B) (K, N).
/// A transposed operand is read in place (never copied): with trans_a, A is stored (K, M).
/// lda, ldb and ldc are the row strides of A, B and C as stored. beta = 0 overwrites C (whatever
/// it held, NaN included); beta = 1 accumulates. M, N or K of 0 is a no-op apart from beta C.
/// Called inside an OpenMP parallel region it runs on the calling thread alone, so independent
/// products (per head, per batch) can be spread over the threads by the caller. Under
/// autocast(Precision::bf16) it is gemm_bf16, otherwise gemm_fp32.
void gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, float alpha, const float* A,
          std::size_t lda, const float* B, std::size_t ldb, float beta, float* C, std::size_t ldc);

/// gemm in fp32, whatever the autocast scope says (gemm calls it outside bf16 autocast).
void gemm_fp32(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, float alpha, const float* A,
               std::size_t lda, const float* B, std::size_t ldb, float beta, float* C, std::size_t ldc);

/// gemm of bf16 inputs with fp32 sums (gemm calls it under bf16 autocast): A and B rounded to
/// bf16 (kernels/bf16.hpp), each product exact in fp32, the sums in fp32. On a CPU with bf16
/// instructions (AVX512_BF16, AMX) oneDNN's bf16 matmul runs it, at up to twice fp32's speed;
/// elsewhere the fp32 GEMM of copies rounded to bf16 values, at fp32's speed less the rounding.
void gemm_bf16(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, float alpha, const float* A,
               std::size_t lda, const float* B, std::size_t ldb, float beta, float* C, std::size_t ldc);

/// Whether gemm_bf16 runs on the CPU's bf16 instructions (oneDNN dispatches AVX512_BF16 or AMX).
bool bf16_gemm_native();

/// gemm_bf16 with B given as bf16 bits (16-bit values), dense as stored: (K, N), or (N, K) with
/// trans_b. For an operand used many times, converted once with to_bf16 (a layer's weight).
/// Only where bf16_gemm_native(); throws xgrad::Error elsewhere. K must be positive.
void gemm_bf16(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, float alpha, const float* A,
               std::size_t lda, const std::uint16_t* B, float beta, float* C, std::size_t ldc);

/// out (rows, cols), dense = the bf16 bits of a rows x cols fp32 operand with row stride ld,
/// rounded as round_bf16 (kernels/bf16.hpp) does.
void to_bf16(const float* X, std::size_t rows, std::size_t cols, std::size_t ld, std::uint16_t* out);

/// gemm with dense operands: lda, ldb and ldc are the stored row lengths.
inline void gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, float alpha, const float* A,
                 const float* B, float beta, float* C) {
  gemm(trans_a, trans_b, M, N, K, alpha, A, trans_a ? M : K, B, trans_b ? K : N, beta, C, N);
}

/// C (M, N) = A (M, K) B^T, exactly in int32: A unsigned 8-bit, B (N, K) signed 8-bit, both
/// row-major and dense. On CPUs without VNNI the library adds pairs of u8 x s8 products in 16
/// bits, saturating: callers keep A in [0, 127] and B in [-127, 127], so that no pair exceeds
/// 2 x 127 x 127 = 32258 (kernels/quantize.hpp does).
void gemm_u8s8s32(std::size_t M, std::size_t N, std::size_t K, const std::uint8_t* A, const std::int8_t* B,
                  std::int32_t* C);

}  // namespace xgrad::kernels
