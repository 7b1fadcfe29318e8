// Elementwise loops: one vectorized pass per block of the array, the blocks over the threads.
#include <xgrad/kernels/elementwise.hpp>

#include <xgrad/kernels/parallel.hpp>
#include <xgrad/kernels/simd.hpp>

namespace xgrad::kernels {

void add(const float* a, const float* b, float* y, std::size_t n) {
  parallel_blocks(n, [&](std::size_t begin, std::size_t end) {
#pragma omp simd
    for (std::size_t i = begin; i < end; ++i) y[i] = a[i] + b[i];
  });
}

void relu_forward(const float* x, float* y, std::size_t n) {
  parallel_blocks(n, [&](std::size_t begin, std::size_t end) {
#pragma omp simd
    for (std::size_t i = begin; i < end; ++i) y[i] = select(x[i] > 0.f, x[i], 0.f);
  });
}

void relu_backward(const float* y, const float* dy, float* dx, std::size_t n) {
  parallel_blocks(n, [&](std::size_t begin, std::size_t end) {
#pragma omp simd
    for (std::size_t i = begin; i < end; ++i) dx[i] = select(y[i] > 0.f, dy[i], 0.f);
  });
}

}  // namespace xgrad::kernels
