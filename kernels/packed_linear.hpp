// A linear layer's product for a few rows of x (a decoding step: one row per sequence or beam)
// from W packed once: panels of 2 vectors of W's rows, each stored k by k, so that the product
// runs register-blocked (rows of y by 2 vectors, held while k runs), as a GEMM's inner kernel,
// without the GEMM library packing all of W again on every call.
#pragma once

#include <cstddef>

namespace xgrad::kernels {

/// Floats of W (out, in) packed: `in` rows of one panel's width for each panel of W's rows, the
/// last panel padded with zeros.
std::size_t packed_weight_size(std::size_t out, std::size_t in);

/// packed (packed_weight_size(out, in)) = W (out, in) row-major, dense, rearranged: for panel p
/// of P = 2 W outputs, packed[(p in + k) P + j] = W[p P + j, k] (0 past `out`).
void pack_weight(const float* w, std::size_t out, std::size_t in, float* packed);

/// y (rows, out) += x (rows, in) W^T with W given packed (pack_weight), x and y dense. Panels over
/// the threads when split_product says so (linear.hpp).
void packed_linear(const float* x, std::size_t rows, std::size_t in, const float* packed, std::size_t out, float* y);

}  // namespace xgrad::kernels
