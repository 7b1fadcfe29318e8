// Losses: cross_entropy against a plain double-precision reference and PyTorch's numbers, every
// option's gradient, nll_loss, mse_loss, and every bad-input case.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {
constexpr float kInf = std::numeric_limits<float>::infinity();

/// Cross-entropy written out with plain loops in double: per-row losses, and the reduced value.
struct Reference {
  std::vector<double> rows;
  double reduced;
  std::vector<double> grad;  // d reduced / d logits (None: upstream gradient of ones)
};

Reference reference_cross_entropy(const Array& logits, const Indices& targets, const CrossEntropyOptions& options) {
  const std::size_t N = logits.shape()[0], C = logits.shape()[1];
  const double eps = options.label_smoothing;
  Reference r;
  r.rows.assign(N, 0.0);
  r.grad.assign(N * C, 0.0);
  std::vector<std::vector<double>> probs(N, std::vector<double>(C));
  std::size_t count = 0;
  double total = 0;
  for (std::size_t n = 0; n < N; ++n) {
    if (targets(n) == options.ignore_index) continue;
    ++count;
    double m = -INFINITY;
    for (std::size_t c = 0; c < C; ++c) m = std::max(m, static_cast<double>(logits(n, c)));
    double z = 0;
    for (std::size_t c = 0; c < C; ++c) z += std::exp(logits(n, c) - m);
    double smooth = 0;
    for (std::size_t c = 0; c < C; ++c) {
      const double log_p = logits(n, c) - m - std::log(z);
      probs[n][c] = std::exp(log_p);
      smooth += -log_p / C;
    }
    const double nll = -(logits(n, targets(n)) - m - std::log(z));
    r.rows[n] = (1 - eps) * nll + eps * smooth;
    total += r.rows[n];
  }
  r.reduced = options.reduction == Reduction::Mean ? total / count : total;
  const double divisor = options.reduction == Reduction::Mean ? static_cast<double>(count) : 1.0;
  for (std::size_t n = 0; n < N; ++n) {
    if (targets(n) == options.ignore_index) continue;
    for (std::size_t c = 0; c < C; ++c) {
      r.grad[n * C + c] = (probs[n][c] - (1 - eps) * (static_cast<std::int64_t>(c) == targets(n)) - eps / C) / divisor;
    }
  }
  return r;
}

CrossEntropyOptions make_options(Reduction reduction, float smoothing = 0.f, std::int64_t ignore = -100) {
  CrossEntropyOptions options;
  options.reduction = reduction;
  options.label_smoothing = smoothing;
  options.ignore_index = ignore;
  return options;
}

Indices random_targets(std::size_t N, std::size_t C, Generator& generator) {
  Indices t = Indices::from_shape({N});
  for (std::size_t n = 0; n < N; ++n) t(n) = static_cast<std::int64_t>(generator.integer(C));
  return t;
}

/// Compares xgrad's loss and gradient with the reference for one case.
void check_against_reference(const Tensor& logits_in, const Indices& targets, const CrossEntropyOptions& options) {
  Tensor logits = Tensor(logits_in.value()).set_requires_grad(true);
  const Reference ref = reference_cross_entropy(logits.value(), targets, options);
  Tensor loss = cross_entropy(logits, targets, options);
  if (options.reduction == Reduction::None) {
    REQUIRE(loss.shape() == Shape{targets.size()});
    for (std::size_t n = 0; n < targets.size(); ++n) CHECK(loss.value()(n) == doctest::Approx(ref.rows[n]).epsilon(1e-5));
    loss.backward(ones(loss.shape()));
  } else {
    REQUIRE(loss.shape() == Shape{});
    CHECK(loss.item() == doctest::Approx(ref.reduced).epsilon(1e-5));
    loss.backward();
  }
  const Array& g = logits.grad().value();
  double worst = 0;
  for (std::size_t i = 0; i < g.size(); ++i) worst = std::max(worst, std::abs(g.data()[i] - ref.grad[i]));
  CHECK(worst < 1e-6);
}

GradcheckFn ce_with(const Indices& targets, const CrossEntropyOptions& options) {
  return [targets, options](const std::vector<Tensor>& in) { return cross_entropy(in[0], targets, options); };
}
}  // namespace

// --- cross_entropy: values ---------------------------------------------------------------------

TEST_CASE("cross_entropy of uniform logits is log C") {
  Tensor logits = zeros({3, 4});
  Indices t = {0, 3, 1};
  CHECK(cross_entropy(logits, t).item() == doctest::Approx(std::log(4.0)));
  // Label smoothing does not change it: every class has the same -log p.
  CHECK(cross_entropy(logits, t, make_options(Reduction::Mean, 0.3f)).item() == doctest::Approx(std::log(4.0)));
}

TEST_CASE("cross_entropy matches PyTorch 1.13 with label smoothing and ignore_index") {
  // torch.nn.functional.cross_entropy(x, t, label_smoothing=0.2, reduction=...)
  Tensor x = from_vector({0.5f, -1.0f, 2.0f, 0.0f, 1.5f, 1.0f, 1.0f, -0.5f, 0.25f, 3.0f,
                          -2.0f, 0.5f, 0.75f, 1.25f, -0.25f, 0.0f, 0.1f, 0.2f, 0.3f, 0.4f},
                         {4, 5})
                 .set_requires_grad(true);
  Indices t = {1, -100, 3, 0};
  Array none = cross_entropy(x, t, make_options(Reduction::None, 0.2f)).value();
  CHECK(none(0) == doctest::Approx(3.38051176071167));
  CHECK(none(1) == 0.f);
  CHECK(none(2) == doctest::Approx(1.0904934406280518));
  CHECK(none(3) == doctest::Approx(1.7794163227081299));
  CHECK(cross_entropy(x, t, make_options(Reduction::Sum, 0.2f)).item() == doctest::Approx(6.250421524047852));
  Tensor mean = cross_entropy(x, t, make_options(Reduction::Mean, 0.2f));
  CHECK(mean.item() == doctest::Approx(2.0834739208221436));
  mean.backward();
  const Array& g = x.grad().value();
  CHECK(g(0, 0) == doctest::Approx(0.023582153022289276));
  CHECK(g(0, 1) == doctest::Approx(-0.27176305651664734));
  CHECK(g(1, 3) == 0.f);
  CHECK(g(2, 3) == doctest::Approx(-0.1375986486673355));
  CHECK(g(3, 0) == doctest::Approx(-0.2259598970413208));
  CHECK(g(3, 4) == doctest::Approx(0.06728503853082657));

  // An ignore_index inside [0, C) ignores those targets (PyTorch: 2.123473882675171).
  Indices with_two = {1, 2, 3, 0};
  CHECK(cross_entropy(x, with_two, make_options(Reduction::Mean, 0.f, 2)).item() == doctest::Approx(2.123473882675171));
}

TEST_CASE("cross_entropy matches the double-precision reference: every option, row lengths around the SIMD width") {
  Generator generator(5);
  for (std::size_t C : {1, 3, 16, 37, 64}) {
    const std::size_t N = 9;
    Tensor logits = randn({N, C}, generator) * 3.f;
    Indices t = random_targets(N, C, generator);
    t(2) = -100;
    t(7) = -100;
    for (Reduction reduction : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
      for (float smoothing : {0.f, 0.1f, 1.f}) {
        CAPTURE(C);
        CAPTURE(smoothing);
        check_against_reference(logits, t, make_options(reduction, smoothing));
      }
    }
  }
}

TEST_CASE("cross_entropy over many rows (threaded) matches the reference") {
  Generator generator(11);
  const std::size_t N = 96, C = 1000;  // above the threading threshold
  Tensor logits = randn({N, C}, generator) * 2.f;
  Indices t = random_targets(N, C, generator);
  for (std::size_t n = 0; n < N; n += 5) t(n) = 7;  // ignore_index 7: a valid class, ignored
  check_against_reference(logits, t, make_options(Reduction::Mean, 0.1f, 7));
  check_against_reference(logits, t, make_options(Reduction::None, 0.f, 7));
}

TEST_CASE("cross_entropy of rows far apart in scale, some ignored: each row shifted by its own maximum") {
  // Rows alternating around +400 and -400 (exp(800) overflows), 40 of them in runs of 16, the
  // targets of rows 3, 4 and 16-19 ignored, so that a row's successor is sometimes further on.
  Generator generator(13);
  const std::size_t N = 40, C = 1000;
  Array x = randn({N, C}, generator).value();
  for (std::size_t n = 0; n < N; ++n) {
    for (std::size_t c = 0; c < C; ++c) x(n, c) += n % 2 ? -400.f : 400.f;
  }
  Indices t = random_targets(N, C, generator);
  for (std::size_t n : {3, 4, 16, 17, 18, 19}) t(n) = -100;
  for (float smoothing : {0.f, 0.1f}) {
    CAPTURE(smoothing);
    check_against_reference(Tensor(x), t, make_options(Reduction::None, smoothing));
  }
}

TEST_CASE("cross_entropy of large logits is unbiased: the mean error over 2048 rows around 60 is below 2.5e-7") {
  // A row's loss rounds to a float: its error is up to half an ulp (3.8e-6 here) either way, and
  // over 2048 rows their mean is within 5e-8 of 0. A log-sum-exp taken with log2 e rounded to a
  // float and not corrected for it is low by 1.33e-8 of the mean logit (8.5e-7 here).
  Generator generator(17);
  const std::size_t N = 2048, C = 100;
  Tensor logits = randn({N, C}, generator) * 2.f + 60.f;
  Indices t = random_targets(N, C, generator);
  const CrossEntropyOptions options = make_options(Reduction::None);
  const Reference ref = reference_cross_entropy(logits.value(), t, options);
  const Array loss = cross_entropy(logits, t, options).value();
  double mean_error = 0;
  for (std::size_t n = 0; n < N; ++n) mean_error += (loss(n) - ref.rows[n]) / N;
  CHECK(std::fabs(mean_error) < 2.5e-7);
}

TEST_CASE("cross_entropy is numerically stable for large logits and handles -inf (masked) classes") {
  Tensor logits = from_vector({1e4f, 0.f, -1e4f, 50.f, 0.f, 0.f}, {2, 3});
  Indices t = {1, 0};
  Array loss = cross_entropy(logits, t, make_options(Reduction::None)).value();
  CHECK(loss(0) == doctest::Approx(1e4));
  CHECK(loss(1) == doctest::Approx(0.0).epsilon(1e-6));
  CHECK(std::isfinite(loss(1)));

  Tensor masked = from_vector({1.f, -kInf, 2.f, -kInf}, {1, 4}).set_requires_grad(true);
  Indices target = {2};
  Tensor l = cross_entropy(masked, target);
  CHECK(l.item() == doctest::Approx(std::log1p(std::exp(-1.0))));
  l.backward();
  CHECK(masked.grad().value()(0, 1) == 0.f);
  CHECK(masked.grad().value()(0, 0) == doctest::Approx(1 / (1 + std::exp(1.0))));

  // The same through the vectorised path: 40 classes, all but two masked.
  Array wide = Array::from_shape({1, 40});
  wide.fill(-kInf);
  wide(0, 17) = 1.f;
  wide(0, 33) = 2.f;
  Tensor w = Tensor(wide).set_requires_grad(true);
  Tensor lw = cross_entropy(w, Indices{33});
  CHECK(lw.item() == doctest::Approx(std::log1p(std::exp(-1.0))));
  lw.backward();
  bool zero_elsewhere = true;
  for (std::size_t c = 0; c < 40; ++c) zero_elsewhere = zero_elsewhere && (c == 17 || c == 33 || w.grad().value()(0, c) == 0.f);
  CHECK(zero_elsewhere);
  CHECK(w.grad().value()(0, 17) == doctest::Approx(1 / (1 + std::exp(1.0))));

  // Logits so far below the maximum that the fast exponential of the sum's terms gives inf or
  // NaN for them: the row is summed again with care.
  wide.fill(-1e30f);
  wide(0, 5) = -3e38f;
  wide(0, 17) = 1.f;
  wide(0, 33) = 2.f;
  CHECK(cross_entropy(Tensor(wide), Indices{33}).item() == doctest::Approx(std::log1p(std::exp(-1.0))));
}

TEST_CASE("cross_entropy with every target ignored: Mean is NaN (0/0, as PyTorch), gradient 0") {
  Tensor x = randn({3, 4}).set_requires_grad(true);
  Indices all_ignored = {-100, -100, -100};
  Tensor mean = cross_entropy(x, all_ignored, make_options(Reduction::Mean, 0.1f));
  CHECK(std::isnan(mean.item()));
  mean.backward();
  CHECK(x.grad().value() == Array(xt::zeros<float>({3, 4})));
  CHECK(cross_entropy(x, all_ignored, make_options(Reduction::Sum)).item() == 0.f);
  CHECK(cross_entropy(x, all_ignored, make_options(Reduction::None)).value() == Array{0, 0, 0});

  Indices none = Indices::from_shape({0});  // an empty batch: Mean NaN, Sum 0, as PyTorch
  CHECK(std::isnan(cross_entropy(zeros({0, 4}), none).item()));
  CHECK(cross_entropy(zeros({0, 4}), none, make_options(Reduction::Sum)).item() == 0.f);
}

TEST_CASE("cross_entropy of one row of logits (C) with a 0-d target, as PyTorch") {
  Tensor x = from_vector({0.5f, 1.5f, -1.f}, {3}).set_requires_grad(true);
  Indices t = 1;
  Tensor row = cross_entropy(from_vector({0.5f, 1.5f, -1.f}, {1, 3}), Indices{1});
  Tensor loss = cross_entropy(x, t);
  CHECK(loss.shape() == Shape{});
  CHECK(loss.item() == doctest::Approx(row.item()));
  CHECK(cross_entropy(x, t, make_options(Reduction::None)).shape() == Shape{});
  Indices ignored = -100;
  CHECK(std::isnan(cross_entropy(x, ignored).item()));
  CHECK(gradcheck(ce_with(t, make_options(Reduction::Mean, 0.2f)), {x}));
  CHECK(gradcheck(ce_with(t, make_options(Reduction::None)), {x}));
}

// --- cross_entropy: gradients ------------------------------------------------------------------

TEST_CASE("cross_entropy gradcheck: each reduction, with and without label smoothing and ignored targets") {
  Generator generator(3);
  Tensor logits = randn({5, 6}, generator).set_requires_grad(true);
  Indices t = {0, 5, -100, 2, 2};
  Indices custom_ignore = {0, 5, 1, 2, 1};
  for (Reduction reduction : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
    CHECK(gradcheck(ce_with(t, make_options(reduction)), {logits}));
    CHECK(gradcheck(ce_with(t, make_options(reduction, 0.15f)), {logits}));
    CHECK(gradcheck(ce_with(custom_ignore, make_options(reduction, 0.3f, 1)), {logits}));
  }
  CHECK(gradcheck(ce_with(t, make_options(Reduction::Mean, 1.f)), {logits}));
}

TEST_CASE("cross_entropy accumulates into an existing gradient") {
  Tensor x = randn({2, 3}).set_requires_grad(true);
  Indices t = {1, 2};
  Tensor twice = cross_entropy(x, t) + cross_entropy(x, t);
  twice.backward();
  Tensor y = Tensor(x.value()).set_requires_grad(true);
  cross_entropy(y, t).backward();
  CHECK(x.grad().value()(0, 1) == doctest::Approx(2 * y.grad().value()(0, 1)));
}

// --- cross_entropy: bad input ------------------------------------------------------------------

TEST_CASE("cross_entropy rejects bad targets, shapes and options") {
  Tensor x = randn({4, 5});
  Indices short_targets = {1, 2, 3};
  CHECK_THROWS_WITH_AS(
      cross_entropy(x, short_targets),
      doctest::Contains("cross_entropy: input of shape [4,5] expects targets of shape [4], got targets of shape [3]"),
      Error);
  Indices matrix = {{1, 2}, {3, 4}};
  CHECK_THROWS_WITH_AS(cross_entropy(x, matrix), doctest::Contains("got targets of shape [2,2]"), Error);
  Indices high = {1, 2, 5, 0};
  CHECK_THROWS_WITH_AS(cross_entropy(x, high),
                       doctest::Contains("cross_entropy: target 5 at position 2 is out of range for 5 classes "
                                         "(expected 0 to 4, or ignore_index -100)"),
                       Error);
  Indices negative = {1, -1, 2, 0};
  CHECK_THROWS_WITH_AS(cross_entropy(x, negative), doctest::Contains("target -1 at position 1"), Error);
  Indices fine = {1, 2, 3, 0};
  CHECK_THROWS_WITH_AS(cross_entropy(x, fine, make_options(Reduction::Mean, 1.5f)),
                       doctest::Contains("label_smoothing must be between 0.0 and 1.0, got 1.5"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(x, fine, make_options(Reduction::Mean, -0.1f)),
                       doctest::Contains("label_smoothing"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(randn({2, 3, 4}), fine),
                       doctest::Contains("expected an input of shape [N, C] or [C], got shape [2,3,4]"), Error);
  Indices one = {1};
  CHECK_THROWS_WITH_AS(cross_entropy(randn({5}), one),
                       doctest::Contains("input of shape [5] (one row of classes) expects a 0-d target, got "
                                         "targets of shape [1]"),
                       Error);
  CHECK_THROWS_WITH_AS(cross_entropy(Tensor(), fine), doctest::Contains("undefined"), Error);
}

// --- nll_loss ----------------------------------------------------------------------------------

TEST_CASE("nll_loss picks -log_probs[n, t_n] and agrees with cross_entropy on log-softmax inputs") {
  Tensor lp = from_vector({-0.1f, -2.f, -3.f, -1.f, -0.5f, -4.f}, {2, 3});
  Indices t = {0, 2};
  CHECK(nll_loss(lp, t, -100, Reduction::None).value() == Array{0.1f, 4.f});
  CHECK(nll_loss(lp, t).item() == doctest::Approx(2.05));
  CHECK(nll_loss(lp, t, -100, Reduction::Sum).item() == doctest::Approx(4.1));
  Indices one_ignored = {0, -100};
  CHECK(nll_loss(lp, one_ignored).item() == doctest::Approx(0.1));
  CHECK(std::isnan(nll_loss(lp, Indices{-100, -100}).item()));

  Generator generator(8);
  Array logits = randn({6, 7}, generator).value();
  Array log_softmax = Array::from_shape({6, 7});
  for (std::size_t n = 0; n < 6; ++n) {
    double z = 0;
    for (std::size_t c = 0; c < 7; ++c) z += std::exp(static_cast<double>(logits(n, c)));
    for (std::size_t c = 0; c < 7; ++c) log_softmax(n, c) = static_cast<float>(logits(n, c) - std::log(z));
  }
  Indices targets = random_targets(6, 7, generator);
  targets(4) = -100;
  CHECK(nll_loss(Tensor(log_softmax), targets).item() ==
        doctest::Approx(cross_entropy(Tensor(logits), targets).item()).epsilon(1e-5));
}

TEST_CASE("nll_loss gradient and gradcheck for each reduction") {
  Tensor lp = randn({4, 3}).set_requires_grad(true);
  Indices t = {2, -100, 0, 2};
  nll_loss(lp, t).backward();
  const Array& g = lp.grad().value();
  CHECK(g(0, 2) == doctest::Approx(-1.0 / 3));
  CHECK(g(3, 2) == doctest::Approx(-1.0 / 3));
  CHECK(g(1, 0) == 0.f);
  CHECK(g(0, 0) == 0.f);
  for (Reduction reduction : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
    CHECK(gradcheck([&](const std::vector<Tensor>& in) { return nll_loss(in[0], t, -100, reduction); }, {lp}));
  }
  Tensor row = randn({3}).set_requires_grad(true);
  Indices scalar = 1;
  CHECK(nll_loss(row, scalar).item() == -row.value()(1));
  CHECK(gradcheck([&](const std::vector<Tensor>& in) { return nll_loss(in[0], scalar); }, {row}));
}

TEST_CASE("nll_loss rejects bad targets and shapes") {
  Tensor lp = randn({3, 4});
  CHECK_THROWS_WITH_AS(nll_loss(lp, Indices{0, 1}), doctest::Contains("nll_loss: input of shape [3,4] expects targets of shape [3]"),
                       Error);
  CHECK_THROWS_WITH_AS(nll_loss(lp, Indices{0, 4, 1}),
                       doctest::Contains("nll_loss: target 4 at position 1 is out of range for 4 classes"), Error);
  CHECK_THROWS_WITH_AS(nll_loss(randn({2, 2, 2}), Indices{0, 1}), doctest::Contains("got shape [2,2,2]"), Error);
}

// --- mse_loss ----------------------------------------------------------------------------------

TEST_CASE("mse_loss values for each reduction, and broadcasting as PyTorch") {
  Tensor a = from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = from_vector({0.5f, 2, 4, 4, 7, 6}, {2, 3});
  CHECK(mse_loss(a, b, Reduction::None).value() == Array{{0.25f, 0, 1}, {0, 4, 0}});
  CHECK(mse_loss(a, b).item() == doctest::Approx(5.25 / 6));
  CHECK(mse_loss(a, b, Reduction::Sum).item() == doctest::Approx(5.25));
  Tensor row = from_vector({0.5f, 2, 4}, {3});
  CHECK(mse_loss(a, row).item() == doctest::Approx(4.416666507720947));  // PyTorch's value
  CHECK(std::isnan(mse_loss(zeros({0}), zeros({0})).item()));
}

TEST_CASE("mse_loss gradient and gradcheck: both inputs, each reduction, broadcasting") {
  Tensor a = from_vector({1, 2}, {2}).set_requires_grad(true);
  Tensor b = from_vector({0, 4}, {2}).set_requires_grad(true);
  mse_loss(a, b).backward();
  CHECK(a.grad().value() == Array{1.f, -2.f});  // 2 (a - b) / 2
  CHECK(b.grad().value() == Array{-1.f, 2.f});

  Tensor x = randn({3, 4}).set_requires_grad(true);
  Tensor y = randn({3, 4}).set_requires_grad(true);
  Tensor z = randn({4}).set_requires_grad(true);
  for (Reduction reduction : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
    CHECK(gradcheck([reduction](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1], reduction); }, {x, y}));
    CHECK(gradcheck([reduction](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1], reduction); }, {x, z}));
  }
}

TEST_CASE("mse_loss rejects shapes that do not broadcast") {
  CHECK_THROWS_WITH_AS(mse_loss(randn({2, 3}), randn({2})),
                       doctest::Contains("mse_loss: shapes [2,3] and [2] cannot be broadcast"), Error);
  CHECK_THROWS_WITH_AS(mse_loss(randn({2}), Tensor()), doctest::Contains("undefined"), Error);
}
