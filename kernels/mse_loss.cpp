// Mean squared error's elementwise loops, one thread each.
#include <xgrad/kernels/mse_loss.hpp>

namespace xgrad::kernels {

void mse_forward(const float* d, float* l, std::size_t n) {
#pragma omp simd
  for (std::size_t i = 0; i < n; ++i) l[i] = d[i] * d[i];
}

double mse_sum(const float* d, std::size_t n) {
  double total = 0;
  for (std::size_t i = 0; i < n; ++i) total += static_cast<double>(d[i]) * d[i];
  return total;
}

void mse_backward(const float* d, const float* g, float* dd, std::size_t n) {
#pragma omp simd
  for (std::size_t i = 0; i < n; ++i) dd[i] = 2.f * d[i] * g[i];
}

void mse_backward_reduced(const float* d, float s, float* dd, std::size_t n) {
#pragma omp simd
  for (std::size_t i = 0; i < n; ++i) dd[i] = s * d[i];
}

}  // namespace xgrad::kernels
