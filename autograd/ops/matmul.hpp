// Matrix products through kernels::gemm.
#pragma once

#include <xgrad/autograd/tensor.hpp>

namespace xgrad {

/// torch.matmul: 1-D x 1-D is a dot product; 2-D x 2-D a matrix product; N-D operands are
/// stacks of matrices over the leading (batch) axes, which broadcast; a 1-D operand is treated as
/// a row (left) or column (right) vector and its axis dropped from the result.
///   A (..., n, k) x B (..., k, m) -> C (..., n, m)
///   dA = dC B^T, dB = A^T dC (summed over broadcast batch axes); transposes are GEMM flags.
Tensor matmul(const Tensor& a, const Tensor& b);

}  // namespace xgrad
