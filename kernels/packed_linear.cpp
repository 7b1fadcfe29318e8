// packed_linear: for each panel of 2 W outputs of W packed k by k (pack_weight), blocks of kRows
// rows of y by the panel's 2 vectors held in registers while k runs: per k, the panel's 2 vectors
// loaded once and each row's x[r, k] broadcast once, 2 kRows multiply-adds; blocks of fewer rows
// split k into chains, so that enough multiply-adds are in flight. The panel (in x 2 W floats:
// 32 KB for in = 256 with AVX-512) stays in L1 across the blocks of rows.
#include <xgrad/kernels/packed_linear.hpp>

#include <algorithm>

#include <xgrad/kernels/linear.hpp>
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

/// Floats of the panel ahead of the one multiplied that are asked for (32 of its k, 4 KB).
constexpr std::size_t kAhead = 32 * kPanel;
/// Chains of k for R rows: each of a row's 2 accumulators is a chain of dependent multiply-adds,
/// and the units need 8 or more in flight (2 a cycle, 4 cycles each); for fewer rows, k is split
/// into S chains, to 16 accumulators with 32 registers (8 with 16).
constexpr std::size_t kAccumulators = vec::kRegisters == 32 ? 16 : 8;
template <std::size_t R>
constexpr std::size_t kChains = 2 * R >= kAccumulators ? 1 : kAccumulators / (2 * R);

/// y[0:R, 0:cols] += x[0:R, :] panel^T, cols <= 2 W of the panel's outputs: k in steps of S, chain
/// s with its own 2 R accumulators (a0, a1[s R + r]), the chains summed at the end. Each of the
/// panel's vectors is loaded once for the R rows and kept in a register (vec::keep_in_register).
template <std::size_t R, std::size_t S = kChains<R>>
[[gnu::always_inline]] inline void block(const float* x, std::size_t in, const float* panel, float* y, std::size_t out,
                                         std::size_t cols) {
  Vec a0[S * R], a1[S * R];
  // Every loop over the accumulators unrolled whole: otherwise GCC keeps the arrays in memory.
#pragma GCC unroll 32
  for (std::size_t i = 0; i < S * R; ++i) a0[i] = a1[i] = Vec{};
  const auto step = [&](std::size_t k, std::size_t s) {  // x[:, k] panel[k] into chain s
    const float* b = panel + k * kPanel;
    __builtin_prefetch(b + kAhead);
    __builtin_prefetch(b + kAhead + W);
    Vec b0 = load(b), b1 = load(b + W);
    vec::keep_in_register(b0);
    vec::keep_in_register(b1);
#pragma GCC unroll 16
    for (std::size_t r = 0; r < R; ++r) {
      const float xr = x[r * in + k];
      a0[s * R + r] += xr * b0;
      a1[s * R + r] += xr * b1;
    }
  };
  std::size_t k = 0;
  for (; k + S <= in; k += S) {
#pragma GCC unroll 16
    for (std::size_t s = 0; s < S; ++s) step(k + s, s);
  }
  for (; k < in; ++k) step(k, 0);  // the last in % S
#pragma GCC unroll 32
  for (std::size_t i = R; i < S * R; ++i) {
    a0[i % R] += a0[i];
    a1[i % R] += a1[i];
  }
  const std::size_t c0 = std::min(cols, W), c1 = cols - c0;
#pragma GCC unroll 16
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
  parallel_for(panels_of(out), split_product(rows * in * out), [&](std::size_t p) {
    const std::size_t cols = std::min(kPanel, out - p * kPanel);
    const float* panel = packed + p * in * kPanel;
    float* y_panel = y + p * kPanel;
    std::size_t r = 0;
    for (; r + kRows <= rows; r += kRows) block<kRows>(x + r * in, in, panel, y_panel + r * out, out, cols);
    if (r < rows) last_rows(rows - r, x + r * in, in, panel, y_panel + r * out, out, cols);
  });
}

}  // namespace xgrad::kernels
