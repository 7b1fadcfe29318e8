// skinny_linear against a loop in double: y += x W^T for every row count it takes, widths around
// a vector's multiple, output counts around its block of W's rows, on one and on two threads,
// y's previous contents kept; skinny_linear_bf16 likewise, against the loop on bf16-rounded
// inputs, where the CPU has bf16 products; packed_linear likewise, on W packed by pack_weight.
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <vector>

#include <omp.h>

#include <xgrad/kernels/bf16.hpp>
#include <xgrad/kernels/gemm.hpp>
#include <xgrad/kernels/linear.hpp>
#include <xgrad/kernels/packed_linear.hpp>

using namespace xgrad::kernels;

namespace {

float value(std::size_t i, std::size_t salt) { return std::sin(0.37f * static_cast<float>(i) + 0.11f * salt); }

/// Fills x, W and y, runs product (x, rows, in, W, out, y), and checks y against y0 + x W^T.
template <class Product>
void check_product(Product product, std::size_t rows, std::size_t in, std::size_t out) {
  std::vector<float> x(rows * in), w(out * in), y(rows * out);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = value(i, 1);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = value(i, 2);
  for (std::size_t i = 0; i < y.size(); ++i) y[i] = value(i, 3);
  const std::vector<float> y0 = y;
  product(x.data(), rows, in, w.data(), out, y.data());
  std::size_t wrong = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t o = 0; o < out; ++o) {
      double expected = y0[r * out + o];
      for (std::size_t k = 0; k < in; ++k) expected += double(x[r * in + k]) * double(w[o * in + k]);
      // float sums of `in` products of |x| <= 1 in another order than the loop's
      if (std::fabs(y[r * out + o] - expected) > 1e-6 * static_cast<double>(in) + 1e-6) ++wrong;
    }
  }
  CAPTURE(rows);
  CAPTURE(in);
  CAPTURE(out);
  CHECK(wrong == 0);
}

}  // namespace

TEST_CASE("skinny_linear: y += x W^T for up to kSkinnyRows rows") {
  for (const int threads : {1, 2}) {
    omp_set_num_threads(threads);
    for (std::size_t rows = 1; rows <= kSkinnyRows; ++rows) {
      for (const std::size_t in : {1, 5, 16, 67, 256}) {
        for (const std::size_t out : {1, 3, 4, 5, 130, 1001}) check_product(skinny_linear, rows, in, out);
      }
    }
  }
}

TEST_CASE("packed_linear: y += x W^T on W packed, for row counts around its blocks of rows") {
  const auto packed = [](const float* x, std::size_t rows, std::size_t in, const float* w, std::size_t out, float* y) {
    // Filled with NaN first: a float of the packed weight left unwritten would show in y.
    std::vector<float> p(packed_weight_size(out, in), std::nanf(""));
    pack_weight(w, out, in, p.data());
    packed_linear(x, rows, in, p.data(), out, y);
  };
  for (const int threads : {1, 2}) {
    omp_set_num_threads(threads);
    for (const std::size_t rows : {1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 24, 25, 32, 131}) {
      for (const std::size_t in : {1, 5, 16, 67, 256}) {
        for (const std::size_t out : {1, 3, 8, 16, 17, 31, 32, 33, 130, 1001}) check_product(packed, rows, in, out);
      }
    }
  }
}

TEST_CASE("skinny_linear_bf16: y += x W^T of bf16-rounded inputs, W given as bf16 bits") {
  if (!bf16_gemm_native()) {
    MESSAGE("no bf16 products on this CPU: skinny_linear_bf16 is not used here");
    return;
  }
  for (const int threads : {1, 2}) {
    omp_set_num_threads(threads);
    for (std::size_t rows = 1; rows <= kSkinnyRows; ++rows) {
      for (const std::size_t in : {1, 5, 31, 32, 33, 256, 300}) {
        for (const std::size_t out : {1, 3, 4, 5, 130, 1001}) {
          std::vector<float> x(rows * in), w(out * in), y(rows * out);
          for (std::size_t i = 0; i < x.size(); ++i) x[i] = value(i, 4);
          for (std::size_t i = 0; i < w.size(); ++i) w[i] = value(i, 5);
          for (std::size_t i = 0; i < y.size(); ++i) y[i] = value(i, 6);
          std::vector<std::uint16_t> w_bits(w.size());
          to_bf16(w.data(), out, in, in, w_bits.data());
          const std::vector<float> y0 = y;
          skinny_linear_bf16(x.data(), rows, in, w_bits.data(), out, y.data());
          std::size_t wrong = 0;
          for (std::size_t r = 0; r < rows; ++r) {
            for (std::size_t o = 0; o < out; ++o) {
              double expected = y0[r * out + o], magnitude = std::fabs(expected);
              for (std::size_t k = 0; k < in; ++k) {
                const double product = double(round_bf16(x[r * in + k])) * double(round_bf16(w[o * in + k]));
                expected += product;
                magnitude += std::fabs(product);
              }
              // each product exact in fp32; the fp32 sums in another order: a few roundings
              if (std::fabs(y[r * out + o] - expected) > 1e-6 * magnitude + 1e-6) ++wrong;
            }
          }
          CAPTURE(threads);
          CAPTURE(rows);
          CAPTURE(in);
          CAPTURE(out);
          CHECK(wrong == 0);
        }
      }
    }
  }
}
