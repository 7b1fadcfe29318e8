// Rotary embedding's loop: (batch, position) pairs over the threads, each head's pairs vectorized.
#include <xgrad/kernels/rotary.hpp>

#include <xgrad/kernels/parallel.hpp>

namespace xgrad::kernels {

namespace {

/// Rotates each pair (x_i, x_{i+half}) of every head by +angle (direction 1) or -angle (-1):
///   y_i = x_i cos - x_{i+half} sin,  y_{i+half} = x_{i+half} cos + x_i sin.
void rotate(const float* x, float* y, const float* cos, const float* sin, std::size_t B, std::size_t T, std::size_t H,
            std::size_t dh, std::size_t offset, float direction) {
  const std::size_t half = dh / 2;
  parallel_rows(B * T, H * dh, [&](std::size_t bt) {  // bt = b T + t
    const std::size_t t = bt % T;
    const float* c = cos + (offset + t) * half;  // (half)
    const float* s = sin + (offset + t) * half;  // (half)
    for (std::size_t h = 0; h < H; ++h) {
      const std::size_t base = bt * H * dh + h * dh;
      const float* xi = x + base;  // (dh)
      float* yi = y + base;        // (dh)
#pragma omp simd
      for (std::size_t i = 0; i < half; ++i) {
        const float x1 = xi[i], x2 = xi[i + half], sn = direction * s[i];
        yi[i] = x1 * c[i] - x2 * sn;
        yi[i + half] = x2 * c[i] + x1 * sn;
      }
    }
  });
}

}  // namespace

void rotary_forward(const float* x, float* y, const float* cos, const float* sin, std::size_t B, std::size_t T,
                    std::size_t H, std::size_t dh, std::size_t offset) {
  rotate(x, y, cos, sin, B, T, H, dh, offset, 1.f);
}

void rotary_backward(const float* dy, float* dx, const float* cos, const float* sin, std::size_t B, std::size_t T,
                     std::size_t H, std::size_t dh, std::size_t offset) {
  rotate(dy, dx, cos, sin, B, T, H, dh, offset, -1.f);
}

}  // namespace xgrad::kernels
