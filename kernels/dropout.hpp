// Dropout with inverted scaling over contiguous arrays: the keep-mask and output from uniform draws,
// and the gradient through the saved mask (attention's weights: dropout_multipliers, kernels/attention).
#pragma once

#include <cstddef>
#include <cstdint>

namespace xgrad::kernels {

/// keep_i = bits_i >= drop_below, y_i = keep_i ? x_i scale : 0, for i < n; bits are uniform
/// 24-bit draws, so an element is dropped with probability drop_below / 2^24.
void dropout_forward(const std::uint32_t* bits, std::uint32_t drop_below, float scale, const float* x, bool* keep,
                     float* y, std::size_t n);
/// dx_i = keep_i ? dy_i scale : 0, over the threads for long arrays.
void dropout_backward(const bool* keep, const float* dy, float scale, float* dx, std::size_t n);

}  // namespace xgrad::kernels
