// Register-blocked products for the small matrices of attention heads (T, S, dk of tens to a few
// hundred): no packing and no library call, which for a 32 x 32 x 32 product cost more than the
// arithmetic. Vector width from the ISA the library is compiled for (AVX-512: 16 floats, AVX: 8,
// else 4), through GCC's vector extensions.
#pragma once

#include <cstddef>

namespace xgrad::kernels {

/// C (M, N) = alpha A B + (accumulate ? C : 0), every row of B and C contiguous (strides ldb, ldc);
/// A is read as A(i, k) = A[i * a_row + k * a_col], so (a_row, a_col) = (lda, 1) is A and
/// (1, lda) is A stored transposed.
void small_gemm(std::size_t M, std::size_t N, std::size_t K, float alpha, const float* A, std::size_t a_row,
                std::size_t a_col, const float* B, std::size_t ldb, bool accumulate, float* C, std::size_t ldc);

/// out (cols, rows) = in (rows, cols)^T, in with row stride ld, out dense.
void transpose(const float* in, std::size_t rows, std::size_t cols, std::size_t ld, float* out);

}  // namespace xgrad::kernels
