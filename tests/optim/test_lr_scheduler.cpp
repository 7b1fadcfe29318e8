// Learning-rate schedules: each one's values against hand-computed numbers, epoch counting,
// bad settings, and exact save/restore.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>

#include <xgrad/optim/optim.hpp>
#include <xgrad/xgrad.hpp>

using namespace xgrad;
using namespace xgrad::optim;

namespace {

// The lr of each of the first `steps` optimizer steps under a scheduler: the one set at
// construction, then one per scheduler.step().
std::vector<double> lrs(Optimizer& optimizer, LRScheduler& scheduler, int steps) {
  std::vector<double> out;
  for (int s = 0; s < steps; ++s) {
    out.push_back(optimizer.lr());
    CHECK(scheduler.get_last_lr() == optimizer.lr());
    scheduler.step();
  }
  return out;
}

void check_values(const std::vector<double>& actual, const std::vector<double>& expected) {
  REQUIRE(actual.size() == expected.size());
  for (std::size_t i = 0; i < actual.size(); ++i) {
    INFO("step ", i + 1);
    CHECK(actual[i] == doctest::Approx(expected[i]).epsilon(1e-12));
  }
}

Tensor parameter() { return randn({2}).set_requires_grad(true); }

}  // namespace

TEST_CASE("StepLR multiplies by gamma every step_size epochs") {
  SGD sgd({parameter()}, SGDOptions(1.0));
  StepLR scheduler(sgd, 3, 0.5);
  CHECK(scheduler.last_epoch() == 0);
  CHECK(scheduler.step_count() == 1);
  check_values(lrs(sgd, scheduler, 8), {1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25});
  CHECK(scheduler.last_epoch() == 8);
  CHECK(scheduler.step_count() == 9);
  CHECK(scheduler.base_lr() == 1.0);
}

TEST_CASE("ConstantLR scales by factor until total_iters; with factor 1 the lr stays fixed") {
  SGD sgd({parameter()}, SGDOptions(0.1));
  ConstantLR scheduler(sgd, 0.5, 3);
  check_values(lrs(sgd, scheduler, 6), {0.05, 0.05, 0.05, 0.1, 0.1, 0.1});

  Adam adam({parameter()}, AdamOptions(3e-4));
  ConstantLR fixed(adam, 1.0);
  check_values(lrs(adam, fixed, 7), std::vector<double>(7, 3e-4));
}

TEST_CASE("LambdaLR multiplies the base lr by the function of the epoch") {
  Adam adam({parameter()}, AdamOptions(0.2));
  LambdaLR scheduler(adam, [](std::int64_t epoch) { return 1.0 / (1.0 + static_cast<double>(epoch)); });
  check_values(lrs(adam, scheduler, 4), {0.2, 0.1, 0.2 / 3, 0.05});
}

TEST_CASE("NoamLR: factor * d_model^-0.5 * min(s^-0.5, s * warmup^-1.5), s counted from 1") {
  Adam adam({parameter()}, AdamOptions(1.0).betas({0.9, 0.98}).eps(1e-9));
  NoamLR scheduler(adam, 512, 4000, 2.0);
  // The first step's lr: linear warmup from 2 * 512^-0.5 * 4000^-1.5, neither 0 nor infinite.
  CHECK(adam.lr() == doctest::Approx(2.0 / std::sqrt(512.0) / std::pow(4000.0, 1.5)).epsilon(1e-12));
  CHECK(adam.lr() == doctest::Approx(3.4938562148434216e-07).epsilon(1e-12));
  std::vector<double> values = lrs(adam, scheduler, 16000);
  CHECK(values[1] == doctest::Approx(2 * values[0]).epsilon(1e-12));          // s = 2
  CHECK(values[3999] == doctest::Approx(2.0 / std::sqrt(512.0 * 4000.0)).epsilon(1e-12));  // s = warmup: the peak
  CHECK(values[3999] == doctest::Approx(0.0013975424859373685).epsilon(1e-12));
  CHECK(*std::max_element(values.begin(), values.end()) == values[3999]);
  CHECK(values[15999] == doctest::Approx(2.0 / std::sqrt(512.0) / std::sqrt(16000.0)).epsilon(1e-12));  // decay
  CHECK(values[15999] == doctest::Approx(values[3999] / 2).epsilon(1e-12));  // 1/sqrt(s): 4x the steps, half the lr
}

TEST_CASE("WarmupCosineLR: linear warmup to the base lr, cosine down to min_lr, then min_lr") {
  AdamW adamw({parameter()}, AdamWOptions(0.1));
  WarmupCosineLR scheduler(adamw, 4, 12, 0.01);
  const double c = (1.0 + std::cos(M_PI / 4)) / 2;       // progress 1/4
  const double c3 = (1.0 + std::cos(3 * M_PI / 4)) / 2;  // progress 3/4
  check_values(lrs(adamw, scheduler, 14),
               {0.025, 0.05, 0.075, 0.1,                                   // s = 1..4: warmup
                0.01 + 0.09 * (1.0 + std::cos(M_PI / 8)) / 2, 0.01 + 0.09 * c,
                0.01 + 0.09 * (1.0 + std::cos(3 * M_PI / 8)) / 2, 0.055,  // s = 8: halfway
                0.01 + 0.09 * (1.0 + std::cos(5 * M_PI / 8)) / 2, 0.01 + 0.09 * c3,
                0.01 + 0.09 * (1.0 + std::cos(7 * M_PI / 8)) / 2, 0.01,   // s = 12: total_steps
                0.01, 0.01});
  CHECK(0.01 + 0.09 * c == doctest::Approx(0.08681980515339464));

  SGD sgd({parameter()}, SGDOptions(1.0));
  WarmupCosineLR no_warmup(sgd, 0, 2);
  check_values(lrs(sgd, no_warmup, 3), {0.5, 0.0, 0.0});
}

TEST_CASE("bad schedule settings throw an Error naming the scheduler and the value") {
  SGD sgd({parameter()}, SGDOptions(0.1));
  CHECK_THROWS_WITH_AS(StepLR(sgd, 0), doctest::Contains("StepLR: invalid step_size: 0 (expected at least 1)"), Error);
  CHECK_THROWS_WITH_AS(StepLR(sgd, 2, -0.5), doctest::Contains("StepLR: invalid gamma: -0.5"), Error);
  CHECK_THROWS_WITH_AS(ConstantLR(sgd, 0.0), doctest::Contains("ConstantLR: invalid factor: 0 (expected a value in (0, 1])"),
                       Error);
  CHECK_THROWS_WITH_AS(ConstantLR(sgd, 1.5), doctest::Contains("ConstantLR: invalid factor: 1.5"), Error);
  CHECK_THROWS_WITH_AS(ConstantLR(sgd, 0.5, 0), doctest::Contains("ConstantLR: invalid total_iters: 0"), Error);
  CHECK_THROWS_WITH_AS(NoamLR(sgd, 0, 10), doctest::Contains("NoamLR: invalid d_model: 0"), Error);
  CHECK_THROWS_WITH_AS(NoamLR(sgd, 512, 0), doctest::Contains("NoamLR: invalid warmup_steps: 0"), Error);
  CHECK_THROWS_WITH_AS(NoamLR(sgd, 512, 10, -1.0), doctest::Contains("NoamLR: invalid factor: -1"), Error);
  CHECK_THROWS_WITH_AS(WarmupCosineLR(sgd, -1, 10), doctest::Contains("WarmupCosineLR: invalid warmup_steps: -1"), Error);
  CHECK_THROWS_WITH_AS(WarmupCosineLR(sgd, 10, 10),
                       doctest::Contains("WarmupCosineLR: invalid total_steps: 10 (expected more than warmup_steps, 10)"),
                       Error);
  CHECK_THROWS_WITH_AS(WarmupCosineLR(sgd, 1, 10, 0.5),
                       doctest::Contains("WarmupCosineLR: invalid min_lr: 0.5 (expected a value in [0, base lr 0.1])"),
                       Error);
  CHECK_THROWS_WITH_AS(LambdaLR(sgd, nullptr), doctest::Contains("LambdaLR: lr_lambda is empty"), Error);
  CHECK(sgd.lr() == 0.1);  // no failed construction touched the optimizer
}

TEST_CASE("a scheduler's state restores exactly, and sets the optimizer's lr") {
  auto make = [](Optimizer& optimizer) { return std::make_unique<WarmupCosineLR>(optimizer, 5, 30, 1e-3); };
  Adam whole_adam({parameter()}, AdamOptions(0.07));
  auto whole = make(whole_adam);
  const std::vector<double> expected = lrs(whole_adam, *whole, 40);

  Adam first_adam({parameter()}, AdamOptions(0.07));
  auto first = make(first_adam);
  lrs(first_adam, *first, 13);
  const StateDict state = first->state_dict();
  CHECK(array_to_real(state.at("last_epoch")) == 13);
  CHECK(array_to_real(state.at("min_lr")) == 1e-3);

  Adam second_adam({parameter()}, AdamOptions(0.07));
  auto second = make(second_adam);
  second->load_state_dict(state);
  CHECK(second->last_epoch() == 13);
  CHECK(second->step_count() == 14);
  CHECK(second_adam.lr() == expected[13]);
  const std::vector<double> resumed = lrs(second_adam, *second, 27);
  for (int s = 0; s < 27; ++s) CHECK(resumed[s] == expected[13 + s]);
}

TEST_CASE("a scheduler's load_state_dict lists every problem and changes nothing on failure") {
  SGD sgd({parameter()}, SGDOptions(0.1));
  StepLR scheduler(sgd, 3, 0.5);
  scheduler.step();
  StateDict bad = scheduler.state_dict();
  bad.erase("gamma");
  bad["step_size"] = real_to_array(0.0);
  bad["last_epoch"] = real_to_array(2.5);
  bad["extra"] = Array(1.f);
  StepLR other(sgd, 5, 0.1);
  try {
    other.load_state_dict(bad);
    FAIL("load_state_dict accepted a bad state dict");
  } catch (const Error& error) {
    const std::string message = error.what();
    INFO(message);
    CHECK(message.find("StepLR::load_state_dict: 4 problems") != std::string::npos);
    CHECK(message.find("missing key 'gamma'") != std::string::npos);
    CHECK(message.find("StepLR: invalid step_size: 0") != std::string::npos);
    CHECK(message.find("'last_epoch' holds 2.5, expected a whole number") != std::string::npos);
    CHECK(message.find("unexpected key 'extra'") != std::string::npos);
  }
  CHECK(other.last_epoch() == 0);
  CHECK(other.state_dict() == StepLR(sgd, 5, 0.1).state_dict());
}
