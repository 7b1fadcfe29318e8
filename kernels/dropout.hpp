// Dropout with inverted scaling over contiguous arrays: the keep-mask and output from a Philox
// stream's uniform draws, the gradient through the saved mask, and the multipliers that attention
// applies to its weights. Draw i belongs to element i whatever the thread count or order.
#pragma once

#include <cstddef>
#include <cstdint>

#include <xgrad/core/philox.hpp>

namespace xgrad::kernels {

/// out_i = stream.bits(first + i) for i < n: 24-bit uniform draws, vectorized, on this thread.
void philox_bits(const PhiloxStream& stream, std::uint64_t first, std::uint32_t* out, std::size_t n);

/// keep_i = bits_i >= drop_below, y_i = keep_i ? x_i scale : 0, for i < n, with bits_i =
/// stream.bits(i): an element is dropped with probability drop_below / 2^24. Over the threads for
/// long arrays.
void dropout_forward(const PhiloxStream& stream, std::uint32_t drop_below, float scale, const float* x, bool* keep,
                     float* y, std::size_t n);
/// dx_i = keep_i ? dy_i scale : 0, over the threads for long arrays.
void dropout_backward(const bool* keep, const float* dy, float scale, float* dx, std::size_t n);

/// keep_i = stream.bits(first + i) < drop_below ? 0 : kept for i < n: the multipliers (0 or
/// 1/(1-p)) of attention's weights, made for one (batch, head) block at a time, on this thread.
void dropout_multipliers(const PhiloxStream& stream, std::uint64_t first, std::size_t n, std::uint32_t drop_below,
                         float kept, float* keep);

}  // namespace xgrad::kernels
