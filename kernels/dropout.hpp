// Dropout with inverted scaling over contiguous arrays: the keep-mask and output from uniform draws,
// the gradient through the saved mask, and the multipliers that attention applies to its weights.
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

/// keep_i = bits_i < drop_below ? 0 : kept: the multipliers (0 or 1/(1-p)) that attention keeps
/// for its weights, drawn up front so that the result does not depend on the thread count.
void dropout_multipliers(const std::uint32_t* bits, std::size_t n, std::uint32_t drop_below, float kept, float* keep);

}  // namespace xgrad::kernels
