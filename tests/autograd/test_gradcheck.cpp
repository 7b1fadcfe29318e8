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
