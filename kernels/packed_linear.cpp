// packed_linear: for each panel of 2 W outputs of W packed k by k (pack_weight), blocks of kRows
// rows of y by the panel's 2 vectors held in registers while k runs: per k, the panel's 2 vectors
// loaded once and each row's x[r, k] broadcast once, 2 kRows multiply-adds. The panel (in x 2 W
// floats: 32 KB for in = 256 with AVX-512) stays in L1 across the blocks of rows.
#include <xgrad/kernels/packed_linear.hpp>

#include <algorithm>

#include <xgrad/kernels/parallel.hpp>
#include <xgrad/kernels/vec.hpp>

namespace xgrad::kernels {

namespace {

using vec::load;
using vec::store;
using vec::Vec;
using vec::W;
constexpr std::size_t kPanel = 2 * W;
/// Rows of y held in registers: 2 kRows accumulators, the panel's 2 vectors and a broadcast fit
/// (12 with 32 registers, 6 with 16).
constexpr std::size_t kRows = vec::kRegisters == 32 ? 12 : 6;

/// Panels of W's `out` rows, the last one perhaps partly zeros.
std::size_t panels_of(std::size_t out) { return (out + kPanel - 1) / kPanel; }

/// y[0:R, 0:cols] += x[0:R, :] panel^T, cols <= 2 W of the panel's outputs.
template <std::size_t R>
[[gnu::always_inline]] inline void block(const float* x, std::size_t in, const float* panel, float* y, std::size_t out,
                                         std::size_t cols) {
  Vec a0[R], a1[R];
  for (std::size_t r = 0; r < R; ++r) a0[r] = a1[r] = Vec{};
  for (std::size_t k = 0; k < in; ++k) {
    const Vec b0 = load(panel + k * kPanel), b1 = load(panel + k * kPanel + W);
    for (std::size_t r = 0; r < R; ++r) {
      const float xr = x[r * in + k];
      a0[r] += xr * b0;
      a1[r] += xr * b1;
    }
  }
  const std::size_t c0 = std::min(cols, W), c1 = cols - c0;
  for (std::size_t r = 0; r < R; ++r) {
    float* row = y + r * out;
    store(row, load(row, c0, 0.f) + a0[r], c0);
    if (c1 > 0) store(row + W, load(row + W, c1, 0.f) + a1[r], c1);
  }
}

/// The last R < kRows rows, R known at run time: each count its own block.
template <std::size_t R = kRows - 1>
void last_rows(std::size_t rows, const float* x, std::size_t in, const float* panel, float* y, std::size_t out,
               std::size_t cols) {
  if constexpr (R > 0) {
    if (rows == R) return block<R>(x, in, panel, y, out, cols);
    last_rows<R - 1>(rows, x, in, panel, y, out, cols);
  }
}

}  // namespace

std::size_t packed_weight_size(std::size_t out, std::size_t in) { return panels_of(out) * kPanel * in; }

void pack_weight(const float* w, std::size_t out, std::size_t in, float* packed) {
  parallel_rows(panels_of(out), kPanel * in, [&](std::size_t p) {
    float* panel = packed + p * in * kPanel;  // (in, kPanel)
    for (std::size_t j = 0; j < kPanel; ++j) {
      const std::size_t o = p * kPanel + j;
      if (o < out) {
        const float* row = w + o * in;
        for (std::size_t k = 0; k < in; ++k) panel[k * kPanel + j] = row[k];
      } else {
        for (std::size_t k = 0; k < in; ++k) panel[k * kPanel + j] = 0.f;
      }
    }
  });
}

void packed_linear(const float* x, std::size_t rows, std::size_t in, const float* packed, std::size_t out, float* y) {
  parallel_rows(panels_of(out), kPanel * in * rows, [&](std::size_t p) {
    const std::size_t cols = std::min(kPanel, out - p * kPanel);
    const float* panel = packed + p * in * kPanel;
    float* y_panel = y + p * kPanel;
    std::size_t r = 0;
    for (; r + kRows <= rows; r += kRows) block<kRows>(x + r * in, in, panel, y_panel + r * out, out, cols);
    if (r < rows) last_rows(rows - r, x + r * in, in, panel, y_panel + r * out, out, cols);
  });
}

}  // namespace xgrad::kernels
