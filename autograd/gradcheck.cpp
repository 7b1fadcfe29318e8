#include <xgrad/autograd/gradcheck.hpp>

#include <cmath>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/autograd/tape.hpp>

namespace xgrad {

namespace {
/// sum(v * y) in double: the scalar whose gradient is checked.
double projected(const Array& y, const Array& v) {
  double total = 0;
  for (std::size_t i = 0; i < y.size(); ++i) total += static_cast<double>(y.data()[i]) * v.data()[i];
  return total;
}
}  // namespace

GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs, const GradcheckOptions& options) {
  // The inputs themselves are perturbed (and restored exactly), so `f` may reach them through a
  // module's members; their gradients are set aside for the check and put back afterwards.
  std::vector<std::shared_ptr<Array>> caller_grads;
  for (const Tensor& input : inputs) {
    if (!input.defined() || !input.is_leaf()) {
      throw Error(fmt::format("gradcheck({}): every input must be a defined leaf tensor", options.name));
    }
    caller_grads.push_back(input.impl()->grad);
    input.impl()->grad.reset();
  }
  struct RestoreGrads {
    const std::vector<Tensor>& inputs;
    std::vector<std::shared_ptr<Array>>& grads;
    ~RestoreGrads() {
      for (std::size_t i = 0; i < inputs.size(); ++i) inputs[i].impl()->grad = grads[i];
    }
  } restore{inputs, caller_grads};

  Tensor output = f(inputs);
  std::string name = options.name;
  if (name.empty()) name = output.grad_fn() ? output.grad_fn()->name : "function";
  if (!output.requires_grad()) {
    throw Error(fmt::format("gradcheck({}): the output does not require grad: no input requires grad, or the "
                            "function leaves the tape",
                            name));
  }
  Generator generator(options.seed);
  Array v = randn(output.shape(), generator).value();
  output.backward(Tensor(v));

  GradcheckResult result;
  double worst_excess = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].requires_grad()) continue;
    Array& x = inputs[i].mutable_value();
    const Tensor grad = inputs[i].grad();  // taken before any perturbation
    const Shape shape = inputs[i].shape();
    for (std::size_t k = 0; k < x.size(); ++k) {
      const float original = x.data()[k];
      double numerical;
      {
        NoGradGuard no_grad;
        x.data()[k] = static_cast<float>(original + options.eps);
        const double plus = projected(f(inputs).value(), v);
        x.data()[k] = static_cast<float>(original - options.eps);
        const double minus = projected(f(inputs).value(), v);
        x.data()[k] = original;
        numerical = (plus - minus) / (2 * options.eps);
      }
      const double analytical = grad.defined() ? grad.value().data()[k] : 0.0;
      const double tolerance = options.atol + options.rtol * std::abs(numerical);
      const double excess = std::abs(analytical - numerical) - tolerance;
      if (!(excess <= 0) && (result.ok || excess > worst_excess || std::isnan(excess))) {
        result.ok = false;
        worst_excess = excess;
        result.report = fmt::format(
            "gradcheck({}): input {} of shape {}, element {}: analytical gradient {:.6g}, numerical {:.6g}, "
            "difference {:.3g} exceeds tolerance {:.3g} (atol {} + rtol {} * |numerical|, eps {})",
            name, i, shape_str(shape), index_str(k, shape), analytical, numerical, std::abs(analytical - numerical),
            tolerance, options.atol, options.rtol, options.eps);
      }
    }
  }
  if (!result.ok && options.raise_exception) throw Error(result.report);
  return result;
}

}  // namespace xgrad
