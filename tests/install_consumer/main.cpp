// Fits y = 3x with one weight: proves headers, library and dependencies arrive with find_package.
#include <xgrad/xgrad.hpp>

#include <cmath>
#include <cstdio>

int main() {
  xgrad::Tensor x = xgrad::from_vector({1.f, 2.f, 3.f}, {3});
  xgrad::Tensor w = xgrad::zeros({1}).set_requires_grad(true);
  for (int step = 0; step < 100; ++step) {
    xgrad::Tensor error = w * x - x * 3.f;
    xgrad::Tensor loss = error * error;
    loss.backward(xgrad::ones({3}));
    w.mutable_value() -= 0.02f * w.grad().value();
    w.zero_grad();
  }
  const float fitted = w.value()(0);
  std::printf("fitted w = %.4f (expected 3)\n", fitted);
  return std::abs(fitted - 3.f) < 1e-3f ? 0 : 1;
}
