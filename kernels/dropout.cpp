// Dropout's loops: branch-free selects, vectorized.
#include <xgrad/kernels/dropout.hpp>

#include <xgrad/kernels/parallel.hpp>
#include <xgrad/kernels/simd.hpp>

namespace xgrad::kernels {

void dropout_forward(const std::uint32_t* bits, std::uint32_t drop_below, float scale, const float* x, bool* keep,
                     float* y, std::size_t n) {
#pragma omp simd
  for (std::size_t j = 0; j < n; ++j) {
    const bool kept = bits[j] >= drop_below;
    keep[j] = kept;
    y[j] = select(kept, x[j] * scale, 0.f);
  }
}

void dropout_backward(const bool* keep, const float* dy, float scale, float* dx, std::size_t n) {
  parallel_blocks(n, [&](std::size_t begin, std::size_t end) {
#pragma omp simd
    for (std::size_t i = begin; i < end; ++i) dx[i] = select(keep[i], dy[i] * scale, 0.f);
  });
}

void dropout_multipliers(const std::uint32_t* bits, std::size_t n, std::uint32_t drop_below, float kept, float* keep) {
#pragma omp simd
  for (std::size_t i = 0; i < n; ++i) keep[i] = select(bits[i] < drop_below, 0.f, kept);
}

}  // namespace xgrad::kernels
