// Rotary position embedding: each pair (x_i, x_{i+half}) of every head turned by its position's
// angles, and the turn back for the gradient.
//
// Legend: B batch, T positions, H heads, dh head width (even), half = dh / 2; cos and sin
// (max_len, half) hold cos(p w_i) and sin(p w_i) for position p and frequency w_i.
#pragma once

#include <cstddef>

namespace xgrad::kernels {

/// y (B, T, H*dh) from x (B, T, H*dh), position p = offset + t:
///   y_i = x_i cos(p w_i) - x_{i+half} sin(p w_i),  y_{i+half} = x_{i+half} cos(p w_i) + x_i sin(p w_i).
void rotary_forward(const float* x, float* y, const float* cos, const float* sin, std::size_t B, std::size_t T,
                    std::size_t H, std::size_t dh, std::size_t offset);
/// dx = the rotation of dy by -p w_i (the transpose of a rotation is the rotation back).
void rotary_backward(const float* dy, float* dx, const float* cos, const float* sin, std::size_t B, std::size_t T,
                     std::size_t H, std::size_t dh, std::size_t offset);

}  // namespace xgrad::kernels
