// Elementwise ops with NumPy broadcasting, and the activations. Each op's doc gives its formula
// and derivative; its backward sits under its forward in elementwise.cpp.
#pragma once

#include <string>

#include <xgrad/autograd/tensor.hpp>

namespace xgrad {

/// a + b, broadcast. d/da = 1, d/db = 1.
Tensor add(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, float b);
/// a - b, broadcast. d/da = 1, d/db = -1.
Tensor sub(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, float b);
Tensor sub(float a, const Tensor& b);
/// a * b, broadcast. d/da = b, d/db = a.
Tensor mul(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, float b);
/// a / b, broadcast. d/da = 1/b, d/db = -a/b^2.
Tensor div(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, float b);
Tensor div(float a, const Tensor& b);
/// -x. d/dx = -1.
Tensor neg(const Tensor& x);
/// x^p. d/dx = p x^(p-1).
Tensor pow(const Tensor& x, float exponent);
/// a^b, broadcast. d/da = b a^(b-1), d/db = a^b ln a.
Tensor pow(const Tensor& a, const Tensor& b);
/// e^x. d/dx = e^x.
Tensor exp(const Tensor& x);
/// ln x. d/dx = 1/x.
Tensor log(const Tensor& x);
/// sqrt(x). d/dx = 1 / (2 sqrt(x)).
Tensor sqrt(const Tensor& x);
/// |x|. d/dx = sign(x) (0 at 0, as PyTorch).
Tensor abs(const Tensor& x);
/// tanh(x). d/dx = 1 - tanh(x)^2.
Tensor tanh(const Tensor& x);
/// sigmoid(x) = 1 / (1 + e^-x). d/dx = s (1 - s).
Tensor sigmoid(const Tensor& x);
/// max(x, 0). d/dx = 1 where x > 0, else 0.
Tensor relu(const Tensor& x);
/// x rounded to bfloat16 values (kept as fp32); the gradient passes through unchanged, as through
/// autocast's casts. What a bf16 input to a product keeps of x (core/precision.hpp).
Tensor round_bf16(const Tensor& x);
/// GELU. approximate "none": x Phi(x), Phi the normal CDF (erf form);
/// "tanh": 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). Derivatives in elementwise.cpp.
Tensor gelu(const Tensor& x, const std::string& approximate = "none");

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, float b);
Tensor operator+(float a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, float b);
Tensor operator-(float a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, float b);
Tensor operator*(float a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, float b);
Tensor operator/(float a, const Tensor& b);
Tensor operator-(const Tensor& x);

}  // namespace xgrad
