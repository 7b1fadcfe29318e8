// gradcheck: compares the gradients the tape computes with central finite differences, as
// torch.autograd.gradcheck. Public: check your own ops with it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <xgrad/autograd/tensor.hpp>

namespace xgrad {

struct GradcheckOptions {
  std::string name;        ///< what is checked, for the report (default: the output's op)
  double eps = 1e-2;       ///< finite-difference step (float32 values: larger than torch's 1e-6)
  double atol = 1e-3;      ///< pass if |analytical - numerical| <= atol + rtol * |numerical|
  double rtol = 1e-2;
  std::uint64_t seed = 0;  ///< seeds the random projection of a non-scalar output
  bool raise_exception = true;  ///< throw xgrad::Error with the report on failure (else return false)
};

struct GradcheckResult {
  bool ok = true;
  std::string report;  ///< on failure: op, input, worst element's index, both values, tolerance
  explicit operator bool() const { return ok; }
};

using GradcheckFn = std::function<Tensor(const std::vector<Tensor>&)>;

/// Checks d(sum(v * f(inputs)))/d(input) for a fixed random v (any output shape) against central
/// differences (f(x + eps) - f(x - eps)) / 2 eps in double precision, for every element of every
/// input that requires grad. `f` may use the inputs directly or through modules that hold them
/// (a layer's own parameters can be checked): each element is perturbed in place and restored
/// exactly, and the inputs' accumulated gradients are set aside and restored.
GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace xgrad
