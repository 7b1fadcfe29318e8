// skinny_linear: dot products of rows of x with rows of W, kRows x kCols of them at once in
// vector registers (partial sums along `in`, summed across lanes at the end), W's block of
// kCols rows staying in L1 while every row of x goes by, the next block prefetched.
// skinny_linear_bf16: the same on bf16 rows (x converted first), with the CPU's bf16 dot product.
#include <xgrad/kernels/linear.hpp>

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include <xgrad/core/error.hpp>
#include <xgrad/kernels/gemm.hpp>

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
    for (std::size_t r = 0; r < R; ++r) {
      xv[r] = load(x + r * in + i);
      if (C > 1) vec::keep_in_register(xv[r]);
    }
    for (std::size_t c = 0; c < C; ++c) {
      Vec wv = load(w + c * in + i);
      if (R > 1) vec::keep_in_register(wv);
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

/// The schedule of both skinny kernels: W's `out` rows (of `in` elements of type T) in tasks of
/// kBlock over the threads when split_product says so; within a task, kCols rows at a time through
/// columns(o, kCols), then the rest one by one through columns(o, 1). W streams from memory once:
/// the rows two register blocks ahead are asked for while these are multiplied.
template <class T, class Columns>
void over_weight_rows(const T* w, std::size_t rows, std::size_t in, std::size_t out, Columns&& columns) {
  constexpr std::size_t kBlock = 64, kLine = 64 / sizeof(T);  // rows of W per task; elements per cache line
  const std::size_t blocks = (out + kBlock - 1) / kBlock;
  parallel_for(blocks, split_product(rows * in * out), [&](std::size_t block_index) {
    const std::size_t begin = block_index * kBlock, end = std::min(out, begin + kBlock);
    std::size_t o = begin;
    for (; o + kCols <= end; o += kCols) {
      if (o + 3 * kCols <= out) {
        for (std::size_t i = 0; i < kCols * in; i += kLine) __builtin_prefetch(w + (o + 2 * kCols) * in + i);
      }
      columns(o, kCols);
    }
    for (; o < end; ++o) columns(o, 1);
  });
}

// --- skinny_linear_bf16 --------------------------------------------------------------------------
// Compiled for AVX512_BF16 whatever the build's flags, called only where the CPU has it.

#define XGRAD_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))

/// The first `rem` bf16 lanes of a vector of 32 (rem < 32: a row's tail).
XGRAD_BF16_TARGET inline __mmask32 bf16_tail(std::size_t rem) { return static_cast<__mmask32>((1u << rem) - 1u); }

/// y[r, c] += x_r . w_c for R rows of x and C rows of W, both bf16 (stride in): 32 products at a
/// time by vdpbf16ps (pairs of exact products added into 16 fp32 sums), the lanes summed at the end.
template <std::size_t R, std::size_t C>
XGRAD_BF16_TARGET inline void block_bf16(const std::uint16_t* x, const std::uint16_t* w, std::size_t in, float* y,
                                         std::size_t out) {
  __m512 acc[R][C];
  for (std::size_t r = 0; r < R; ++r) {
    for (std::size_t c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  }
  // (A loop, not a lambda: a lambda would not inherit this function's target.)
  for (std::size_t i = 0; i < in; i += 32) {
    const __mmask32 mask = i + 32 <= in ? static_cast<__mmask32>(~0u) : bf16_tail(in - i);
    __m512bh xv[R];
    for (std::size_t r = 0; r < R; ++r) xv[r] = reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(mask, x + r * in + i));
    for (std::size_t c = 0; c < C; ++c) {
      const __m512bh wv = reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(mask, w + c * in + i));
      for (std::size_t r = 0; r < R; ++r) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], xv[r], wv);
    }
  }
  for (std::size_t r = 0; r < R; ++r) {
    for (std::size_t c = 0; c < C; ++c) y[r * out + c] += _mm512_reduce_add_ps(acc[r][c]);
  }
}

/// Every row of x against C rows of W: kRows rows at a time, then the rest one by one.
template <std::size_t C>
XGRAD_BF16_TARGET void columns_bf16(const std::uint16_t* x, std::size_t rows, std::size_t in, const std::uint16_t* w,
                                    float* y, std::size_t out) {
  std::size_t r = 0;
  for (; r + 4 <= rows; r += 4) block_bf16<4, C>(x + r * in, w, in, y + r * out, out);
  for (; r < rows; ++r) block_bf16<1, C>(x + r * in, w, in, y + r * out, out);
}

}  // namespace

XGRAD_BF16_TARGET void skinny_linear_bf16(const float* x, std::size_t rows, std::size_t in, const std::uint16_t* w,
                                          std::size_t out, float* y) {
  if (rows == 0 || out == 0 || in == 0) return;
  if (!bf16_gemm_native()) throw Error("skinny_linear_bf16: needs a CPU with bf16 instructions (AVX512_BF16)");
  thread_local std::vector<std::uint16_t> buffer;
  if (buffer.size() < rows * in) buffer.resize(rows * in);
  to_bf16(x, rows, in, in, buffer.data());
  const std::uint16_t* xb = buffer.data();  // the calling thread's: workers reach it through this
  over_weight_rows(w, rows, in, out, [&](std::size_t o, std::size_t cols) {
    if (cols == kCols) columns_bf16<kCols>(xb, rows, in, w + o * in, y + o, out);
    else columns_bf16<1>(xb, rows, in, w + o * in, y + o, out);
  });
}

void skinny_linear(const float* x, std::size_t rows, std::size_t in, const float* w, std::size_t out, float* y) {
  over_weight_rows(w, rows, in, out, [&](std::size_t o, std::size_t cols) {
    if (cols == kCols) columns<kCols>(x, rows, in, w + o * in, y + o, out);
    else columns<1>(x, rows, in, w + o * in, y + o, out);
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
