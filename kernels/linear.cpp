// skinny_linear: dot products of rows of x with rows of W, kRows x kCols of them at once in
// vector registers (partial sums along `in`, summed across lanes at the end), W's block of
// kCols rows staying in L1 while every row of x goes by, the next block prefetched.
#include <xgrad/kernels/linear.hpp>

#include <algorithm>

#include <xgrad/kernels/parallel.hpp>
#include <xgrad/kernels/simd.hpp>
#include <xgrad/kernels/vec.hpp>

namespace xgrad::kernels {

namespace {

using vec::lanes_sum;
using vec::load;
using vec::Vec;
using vec::W;
/// Rows of x by rows of W whose dot products are held in registers at once.
constexpr std::size_t kRows = vec::kRegisters == 32 ? 4 : 3, kCols = 4;

/// y[r, c] += x_r . w_c for R rows of x (stride in) and C rows of W (stride in).
template <std::size_t R, std::size_t C>
[[gnu::always_inline]] inline void block(const float* x, const float* w, std::size_t in, float* y, std::size_t out) {
  Vec acc[R][C];
  for (std::size_t r = 0; r < R; ++r) {
    for (std::size_t c = 0; c < C; ++c) acc[r][c] = Vec{};
  }
  std::size_t i = 0;
  for (; i + W <= in; i += W) {
    Vec xv[R];
    for (std::size_t r = 0; r < R; ++r) xv[r] = load(x + r * in + i);
    for (std::size_t c = 0; c < C; ++c) {
      const Vec wv = load(w + c * in + i);
      for (std::size_t r = 0; r < R; ++r) acc[r][c] += xv[r] * wv;
    }
  }
  for (std::size_t r = 0; r < R; ++r) {
    for (std::size_t c = 0; c < C; ++c) {
      float sum = lanes_sum(acc[r][c]);
      for (std::size_t j = i; j < in; ++j) sum += x[r * in + j] * w[c * in + j];
      y[r * out + c] += sum;
    }
  }
}

/// Every row of x against C rows of W: kRows rows at a time, then the rest one by one.
template <std::size_t C>
void columns(const float* x, std::size_t rows, std::size_t in, const float* w, float* y, std::size_t out) {
  std::size_t r = 0;
  for (; r + kRows <= rows; r += kRows) block<kRows, C>(x + r * in, w, in, y + r * out, out);
  for (; r < rows; ++r) block<1, C>(x + r * in, w, in, y + r * out, out);
}

}  // namespace

void skinny_linear(const float* x, std::size_t rows, std::size_t in, const float* w, std::size_t out, float* y) {
  constexpr std::size_t kBlock = 64;  // outputs (rows of W) per task
  const std::size_t blocks = (out + kBlock - 1) / kBlock;
  parallel_rows(blocks, kBlock * in * rows, [&](std::size_t block_index) {
    const std::size_t begin = block_index * kBlock, end = std::min(out, begin + kBlock);
    std::size_t o = begin;
    for (; o + kCols <= end; o += kCols) {
      // W streams from memory once: ask for the rows two blocks ahead while these are multiplied.
      if (o + 3 * kCols <= out) {
        for (std::size_t i = 0; i < kCols * in; i += 16) __builtin_prefetch(w + (o + 2 * kCols) * in + i);
      }
      columns<kCols>(x, rows, in, w + o * in, y + o, out);
    }
    for (; o < end; ++o) columns<1>(x, rows, in, w + o * in, y + o, out);
  });
}

void bias_rows(const float* b, std::size_t rows, std::size_t out, float* y) {
  parallel_rows(rows, out, [&](std::size_t r) { std::copy(b, b + out, y + r * out); });
}

void bias_relu(const float* b, std::size_t rows, std::size_t out, float* y) {
  parallel_rows(rows, out, [&](std::size_t r) {
    float* row = y + r * out;
    // As relu_forward: the branch-free select, which also sends a NaN to 0.
    if (b) {
#pragma omp simd
      for (std::size_t j = 0; j < out; ++j) {
        const float z = row[j] + b[j];
        row[j] = select(z > 0.f, z, 0.f);
      }
    } else {
#pragma omp simd
      for (std::size_t j = 0; j < out; ++j) row[j] = select(row[j] > 0.f, row[j], 0.f);
    }
  });
}

void column_sums(const float* dy, std::size_t rows, std::size_t out, float* db) {
  constexpr std::size_t kColumns = 64;  // a block of columns per task, summed down every row
  parallel_rows((out + kColumns - 1) / kColumns, kColumns * rows, [&](std::size_t block) {
    const std::size_t begin = block * kColumns, end = std::min(out, begin + kColumns);
    for (std::size_t r = 0; r < rows; ++r) {
      const float* row = dy + r * out;
#pragma omp simd
      for (std::size_t j = begin; j < end; ++j) db[j] += row[j];
    }
  });
}

}  // namespace xgrad::kernels
