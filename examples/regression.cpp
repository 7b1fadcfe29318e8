// Fits a small MLP to a noisy 2-D function with the autograd engine and plain SGD with momentum:
// the smallest complete training loop (data, forward, loss, backward, update).
//
//   y = sin(2 x0) + 0.5 x1^2 + noise,  x ~ U(-1.5, 1.5)^2
//   model: Linear(2, 64) -> tanh -> Linear(64, 64) -> tanh -> Linear(64, 1)
#include <xgrad/xgrad.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

using namespace xgrad;

namespace {

struct Dataset {
  Tensor x;  // (N, 2)
  Tensor y;  // (N, 1)
};

Dataset make_data(std::size_t n, Generator& generator) {
  Tensor x = uniform({n, 2}, -1.5f, 1.5f, generator);
  Array y = Array::from_shape({n, 1});
  for (std::size_t i = 0; i < n; ++i) {
    const float x0 = x.value()(i, 0), x1 = x.value()(i, 1);
    y(i, 0) = std::sin(2.f * x0) + 0.5f * x1 * x1 + 0.05f * generator.normal();
  }
  return {x, Tensor(std::move(y))};
}

/// A fully connected layer y = x W^T + b, initialised as PyTorch's Linear (U(-1/sqrt(in), 1/sqrt(in))).
struct Dense {
  Tensor weight;  // (out, in)
  Tensor bias;    // (out)
  Dense(std::size_t in, std::size_t out, Generator& generator) {
    const float bound = 1.f / std::sqrt(static_cast<float>(in));
    weight = uniform({out, in}, -bound, bound, generator).set_requires_grad(true);
    bias = uniform({out}, -bound, bound, generator).set_requires_grad(true);
  }
  Tensor operator()(const Tensor& x) const { return matmul(x, transpose(weight, 0, 1)) + bias; }
};

}  // namespace

int main(int argc, char** argv) {
  const int epochs = argc > 1 ? std::atoi(argv[1]) : 300;
  Generator generator(42);
  Dataset train = make_data(2048, generator), test = make_data(512, generator);

  Dense layer1(2, 64, generator), layer2(64, 64, generator), layer3(64, 1, generator);
  auto model = [&](const Tensor& x) { return layer3(tanh(layer2(tanh(layer1(x))))); };
  std::vector<Tensor> params = {layer1.weight, layer1.bias, layer2.weight, layer2.bias, layer3.weight, layer3.bias};
  std::vector<Array> velocity;
  for (const Tensor& p : params) velocity.push_back(xt::zeros_like(p.value()));

  const float lr = 0.05f, momentum = 0.9f;
  const std::size_t batch = 128, n = train.x.size(0);
  std::printf("fitting y = sin(2 x0) + 0.5 x1^2 with a 2-64-64-1 MLP, %zu samples, %d epochs\n", n, epochs);
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    double epoch_loss = 0;
    for (std::size_t start = 0; start < n; start += batch) {
      const auto b = static_cast<std::int64_t>(start);
      Tensor loss = mse_loss(model(narrow(train.x, 0, b, batch)), narrow(train.y, 0, b, batch));
      loss.backward();
      epoch_loss += loss.item();
      for (std::size_t i = 0; i < params.size(); ++i) {  // SGD with momentum, as torch.optim.SGD
        velocity[i] = momentum * velocity[i] + params[i].grad().value();
        params[i].mutable_value() -= lr * velocity[i];
        params[i].zero_grad();
      }
    }
    if (epoch == 1 || epoch % 25 == 0) {
      NoGradGuard no_grad;
      const float test_loss = mse_loss(model(test.x), test.y).item();
      std::printf("epoch %4d  train mse %.5f  test mse %.5f\n", epoch, epoch_loss / (n / batch), test_loss);
    }
  }
  NoGradGuard no_grad;
  const float rmse = std::sqrt(mse_loss(model(test.x), test.y).item());
  std::printf("final test RMSE %.4f (noise level 0.05)\n", rmse);
  return rmse < 0.1f ? EXIT_SUCCESS : EXIT_FAILURE;
}
