// gradcheck itself: it passes a right gradient and catches a wrong one, with a useful report.
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

TEST_CASE("gradcheck passes a correct op") {
  Tensor x = randn({3, 4}).set_requires_grad(true);
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return tanh(in[0]) * in[0]; }, {x}));
}

TEST_CASE("gradcheck catches a wrong backward and names op, input, element, values and tolerance") {
  Tensor x = from_vector({0.1f, 0.2f, 0.3f, 0.4f}, {2, 2}).set_requires_grad(true);
  auto wrong_square = [](const std::vector<Tensor>& in) {
    auto saved = in[0].saved();
    Array y = *saved * *saved;
    return record("wrong_square", std::move(y), {in[0]}, [saved](BackwardContext& ctx) {
      Array g = ctx.grad_output() * 2.f * *saved;
      g(1, 1) += 1.f;  // the bug: element [1,1]'s gradient is off by v[1,1]-independent 1
      ctx.accumulate(0, std::move(g));
    });
  };
  GradcheckOptions options;
  options.raise_exception = false;
  GradcheckResult result = gradcheck(wrong_square, {x}, options);
  CHECK_FALSE(result.ok);
  CHECK(result.report.find("wrong_square") != std::string::npos);
  CHECK(result.report.find("input 0 of shape [2,2]") != std::string::npos);
  CHECK(result.report.find("element [1,1]") != std::string::npos);
  CHECK(result.report.find("tolerance") != std::string::npos);
  CHECK_THROWS_AS(gradcheck(wrong_square, {x}), Error);
}

TEST_CASE("gradcheck leaves the caller's tensors untouched") {
  Tensor x = randn({3}).set_requires_grad(true);
  Array before = x.value();
  gradcheck([](const std::vector<Tensor>& in) { return exp(in[0]); }, {x});
  CHECK(x.value() == before);
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("gradcheck checks tensors the function reaches by itself, and restores their gradients") {
  Tensor w = randn({3}).set_requires_grad(true);
  Tensor x = randn({3}).set_requires_grad(true);
  (w * 2.f).backward(ones({3}));  // an accumulated gradient the check must not disturb
  CHECK(gradcheck([&](const std::vector<Tensor>& in) { return tanh(in[0] * w); }, {x, w}));
  CHECK(w.grad().value() == Array{2.f, 2.f, 2.f});
  CHECK_FALSE(x.grad().defined());
  // A tensor the function uses but that is not passed is not checked; one that is passed but
  // unused has zero gradient, which its finite differences confirm.
  Tensor unused = randn({2}).set_requires_grad(true);
  CHECK(gradcheck([&](const std::vector<Tensor>& in) { return tanh(in[0] * w); }, {x, unused}));
}

TEST_CASE("gradcheck catches a tensor whose gradient flows nowhere although it is used") {
  Tensor w = randn({3}).set_requires_grad(true);
  Tensor x = randn({3}).set_requires_grad(true);
  GradcheckOptions options;
  options.raise_exception = false;
  // The function reads w's value outside the tape: its numerical gradient is not zero.
  GradcheckResult result = gradcheck(
      [&](const std::vector<Tensor>& in) { return in[0] * Tensor(in[1].value()); }, {x, w}, options);
  CHECK_FALSE(result.ok);
  CHECK(result.report.find("input 1") != std::string::npos);
}
