// A new layer written against xgrad's public API: RMSNorm (Zhang & Sennrich, 2019), checked with
// gradcheck, then trained inside a small network with Adam.
//
//   RMSNorm(x) = x / sqrt(mean(x^2 over the last axis) + eps) * weight
//
// Composed from differentiable ops, it needs no backward of its own: the tape derives it.
#include <xgrad/xgrad.hpp>

#include <cstdio>
#include <cstdlib>

using namespace xgrad;

/// Shape: (..., D) -> (..., D). Parameter: weight (D) = 1.
class RMSNorm : public nn::Module {
 public:
  explicit RMSNorm(std::size_t dim, float eps = 1e-6f) : nn::Module("RMSNorm"), eps_(eps) {
    weight = register_parameter("weight", ones({dim}));
  }

  Tensor forward(const Tensor& x) const {
    Tensor mean_square = mean(x * x, {-1}, /*keepdim=*/true);  // (..., 1)
    return run_hooks(x / sqrt(mean_square + eps_) * weight);
  }

  Tensor weight;

 private:
  float eps_;
};

/// The layer in use, registered like any built-in one.
struct Net : nn::Module {
  std::shared_ptr<nn::Linear> linear1, linear2;
  std::shared_ptr<RMSNorm> norm;
  Net() : nn::Module("Net") {
    linear1 = register_module("linear1", std::make_shared<nn::Linear>(8, 32));
    norm = register_module("norm", std::make_shared<RMSNorm>(32));
    linear2 = register_module("linear2", std::make_shared<nn::Linear>(32, 4));
  }
  Tensor forward(const Tensor& x) const { return linear2->forward(tanh(norm->forward(linear1->forward(x)))); }
};

int main() {
  manual_seed(0);

  // 1. The layer's gradients agree with finite differences, for its input and its weight.
  RMSNorm norm(6);
  nn::init::uniform_(norm.weight, 0.5, 1.5);
  Tensor x = randn({4, 6}).set_requires_grad(true);
  GradcheckOptions options;
  options.name = "RMSNorm";
  GradcheckResult check = gradcheck(
      [&](const std::vector<Tensor>& in) { return norm.forward(in[0]); },  // in[1] is norm.weight itself
      {x, norm.weight}, options);
  std::printf("gradcheck RMSNorm: %s\n", check.ok ? "ok" : check.report.c_str());
  if (!check.ok) return EXIT_FAILURE;

  // 2. It trains: a Linear -> RMSNorm -> tanh -> Linear network fits a smooth target with Adam.
  Net net;
  Tensor inputs = randn({256, 8});
  Tensor targets = tanh(matmul(inputs, randn({8, 4})) * 2.f);
  optim::Adam optimizer(net.parameters(), optim::AdamOptions(1e-2));
  float first = 0, last = 0;
  for (int step = 0; step < 300; ++step) {
    Tensor loss = mse_loss(net.forward(inputs), targets);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    if (step == 0) first = loss.item();
    last = loss.item();
    if (step % 50 == 0 || step == 299) std::printf("step %3d  loss %.5f\n", step, loss.item());
  }
  std::printf("%s", net.to_string().c_str());
  std::printf("loss %.4f -> %.4f\n", first, last);
  return last < 0.1f * first ? EXIT_SUCCESS : EXIT_FAILURE;
}
