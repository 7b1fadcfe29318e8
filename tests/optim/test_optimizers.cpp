// SGD, Adam and AdamW: trajectories against PyTorch's (tests/fixtures/optim.json), exact resume
// from a state dict, state dict checks, option checks, and the parallel update path.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <random>
#include <set>

#include <nlohmann/json.hpp>

#include <xgrad/optim/optim.hpp>
#include <xgrad/xgrad.hpp>

using namespace xgrad;
using namespace xgrad::optim;
using json = nlohmann::json;

namespace {

const json& fixture() {
  static const json data = [] {
    std::ifstream in(std::string(XGRAD_FIXTURES_DIR) + "/optim.json");
    REQUIRE(in.good());
    return json::parse(in);
  }();
  return data;
}

std::vector<float> floats(const json& values) { return values.get<std::vector<float>>(); }

// The fixture's problem: loss = sum_j sum((p_j - t_j) * (p_j - t_j) * c_j).
struct Problem {
  std::vector<Tensor> params;
  std::vector<Tensor> targets;
  std::vector<Tensor> coefs;

  // Gradients as PyTorch computes them: d * d * c sends c * d to each factor d, twice.
  void backward() const {
    for (std::size_t j = 0; j < params.size(); ++j) {
      Tensor d = params[j] - targets[j];
      (d * d * coefs[j]).backward(ones(params[j].shape()));
    }
  }
  std::vector<float> flat_params() const {
    std::vector<float> out;
    for (const Tensor& p : params) out.insert(out.end(), p.value().begin(), p.value().end());
    return out;
  }
};

Problem make_problem() {
  const json& problem = fixture()["problem"];
  Problem out;
  for (std::size_t j = 0; j < problem["shapes"].size(); ++j) {
    const Shape shape = problem["shapes"][j].get<Shape>();
    out.params.push_back(from_vector(floats(problem["init"][j]), shape).set_requires_grad(true));
    out.targets.push_back(from_vector(floats(problem["target"][j]), shape));
    out.coefs.push_back(from_vector(floats(problem["coef"][j]), shape));
  }
  return out;
}

std::unique_ptr<Optimizer> make_optimizer(const std::string& kind, const json& o, std::vector<Tensor> params) {
  if (kind == "sgd") {
    return std::make_unique<SGD>(params, SGDOptions(o["lr"].get<double>())
                                             .momentum(o.value("momentum", 0.0))
                                             .dampening(o.value("dampening", 0.0))
                                             .weight_decay(o.value("weight_decay", 0.0))
                                             .nesterov(o.value("nesterov", false))
                                             .maximize(o.value("maximize", false)));
  }
  const std::vector<double> betas = o.value("betas", std::vector<double>{0.9, 0.999});
  if (kind == "adam") {
    return std::make_unique<Adam>(params, AdamOptions(o["lr"].get<double>())
                                              .betas({betas[0], betas[1]})
                                              .eps(o.value("eps", 1e-8))
                                              .weight_decay(o.value("weight_decay", 0.0))
                                              .amsgrad(o.value("amsgrad", false))
                                              .maximize(o.value("maximize", false)));
  }
  REQUIRE(kind == "adamw");
  return std::make_unique<AdamW>(params, AdamWOptions(o["lr"].get<double>())
                                             .betas({betas[0], betas[1]})
                                             .eps(o.value("eps", 1e-8))
                                             .weight_decay(o.value("weight_decay", 0.01))
                                             .amsgrad(o.value("amsgrad", false))
                                             .maximize(o.value("maximize", false)));
}

std::unique_ptr<LRScheduler> make_scheduler(const json& s, Optimizer& optimizer) {
  if (s.is_null()) return nullptr;
  if (s["name"] == "noam") {
    return std::make_unique<NoamLR>(optimizer, s["d_model"].get<std::int64_t>(), s["warmup_steps"].get<std::int64_t>(),
                                    s["factor"].get<double>());
  }
  REQUIRE(s["name"] == "warmup_cosine");
  return std::make_unique<WarmupCosineLR>(optimizer, s["warmup_steps"].get<std::int64_t>(),
                                          s["total_steps"].get<std::int64_t>(), s["min_lr"].get<double>());
}

// Relative closeness at the problem's scale: a value below 0.5 in magnitude (a parameter on its
// way through zero, carrying the float32 rounding errors of its past values, which were of order
// 1 to 2) counts as 0.5. The worst seen is 1.6e-6 (FMA contraction and torch's own vectorized
// kernels make the roundings differ by a few ulps over 50 steps).
bool close(double actual, double expected, double rtol = 1e-5) {
  return std::abs(actual - expected) <= rtol * std::max(std::abs(expected), 0.5);
}

// A run of `steps` steps of the problem under one optimizer (and scheduler).
std::vector<std::vector<float>> run(Problem& problem, Optimizer& optimizer, LRScheduler* scheduler, int steps) {
  std::vector<std::vector<float>> trajectory;
  for (int step = 0; step < steps; ++step) {
    optimizer.zero_grad();
    problem.backward();
    optimizer.step();
    if (scheduler) scheduler->step();
    trajectory.push_back(problem.flat_params());
  }
  return trajectory;
}

}  // namespace

TEST_CASE("trajectories match PyTorch's within 1e-5 relative") {
  const json& data = fixture();
  const int steps = data["steps"].get<int>();
  REQUIRE(data["trajectories"].size() == 14);
  for (const json& t : data["trajectories"]) {
    const std::string name = t["name"];
    INFO("trajectory ", name);
    Problem problem = make_problem();
    auto optimizer = make_optimizer(t["optimizer"], t["options"], problem.params);
    auto scheduler = make_scheduler(t["schedule"], *optimizer);
    for (int step = 0; step < steps; ++step) {
      INFO("step ", step + 1);
      optimizer->zero_grad();
      problem.backward();
      if (!t["clip"].is_null()) {
        const json& clip = t["clip"];
        const double norm_type =
            clip["norm_type"] == "inf" ? std::numeric_limits<double>::infinity() : clip["norm_type"].get<double>();
        const double total = clip_grad_norm_(problem.params, clip["max_norm"].get<double>(), norm_type);
        CHECK(close(total, t["total_norms"][step].get<double>()));
      }
      CHECK(close(optimizer->lr(), t["lrs"][step].get<double>(), 1e-12));
      optimizer->step();
      if (scheduler) scheduler->step();
      const std::vector<float> actual = problem.flat_params();
      const std::vector<float> expected = floats(t["params"][step]);
      REQUIRE(actual.size() == expected.size());
      for (std::size_t k = 0; k < actual.size(); ++k) {
        INFO("element ", k, ": xgrad ", actual[k], ", torch ", expected[k]);
        CHECK(close(actual[k], expected[k]));
      }
    }
  }
}

TEST_CASE("20 steps, save, load into fresh objects, 30 more: bit-identical to 50 steps") {
  struct Case {
    std::string kind;
    json options;
    bool noam;  // with NoamLR, else StepLR
  };
  const std::vector<Case> cases = {
      {"adam", {{"lr", 1.0}, {"betas", {0.9, 0.98}}, {"eps", 1e-9}, {"weight_decay", 0.01}}, true},
      {"adam", {{"lr", 0.03}, {"amsgrad", true}}, false},
      {"adamw", {{"lr", 0.03}}, true},
      {"sgd", {{"lr", 0.07}, {"momentum", 0.9}, {"dampening", 0.1}}, false},
      {"sgd", {{"lr", 0.07}, {"momentum", 0.9}, {"nesterov", true}}, true},
  };
  for (const Case& c : cases) {
    const std::string schedule = c.noam ? "NoamLR" : "StepLR";
    INFO(c.kind, " ", c.options.dump(), " with ", schedule);
    auto scheduler_for = [&](Optimizer& optimizer) -> std::unique_ptr<LRScheduler> {
      if (c.noam) return std::make_unique<NoamLR>(optimizer, 16, 8, 0.5);
      return std::make_unique<StepLR>(optimizer, 7, 0.5);
    };

    Problem whole = make_problem();
    auto optimizer = make_optimizer(c.kind, c.options, whole.params);
    auto scheduler = scheduler_for(*optimizer);
    const auto expected = run(whole, *optimizer, scheduler.get(), 50);

    for (bool scheduler_first : {true, false}) {
      const std::string order = scheduler_first ? "before the loads" : "after the optimizer's load";
      INFO("scheduler built ", order);
      Problem first = make_problem();
      auto optimizer1 = make_optimizer(c.kind, c.options, first.params);
      auto scheduler1 = scheduler_for(*optimizer1);
      run(first, *optimizer1, scheduler1.get(), 20);
      const StateDict optimizer_state = optimizer1->state_dict();
      const StateDict scheduler_state = scheduler1->state_dict();

      // Fresh parameters holding the saved values, a fresh optimizer built with other options.
      Problem second = make_problem();
      for (std::size_t j = 0; j < second.params.size(); ++j) second.params[j].mutable_value() = first.params[j].value();
      json other = c.options;
      other["lr"] = 0.5;
      auto optimizer2 = make_optimizer(c.kind, other, second.params);
      std::unique_ptr<LRScheduler> scheduler2;
      if (scheduler_first) scheduler2 = scheduler_for(*optimizer2);
      optimizer2->load_state_dict(optimizer_state);
      if (!scheduler_first) scheduler2 = scheduler_for(*optimizer2);
      scheduler2->load_state_dict(scheduler_state);
      CHECK(optimizer2->lr() == optimizer1->lr());
      CHECK(scheduler2->last_epoch() == 20);

      const auto resumed = run(second, *optimizer2, scheduler2.get(), 30);
      for (int step = 0; step < 30; ++step) {
        INFO("step ", 21 + step);
        CHECK(resumed[step] == expected[20 + step]);
      }
      CHECK(optimizer2->lr() == optimizer->lr());
    }
  }
}

TEST_CASE("step skips parameters without a gradient, and zero_grad drops gradients") {
  Tensor a = from_vector({1.f, 2.f}, {2}).set_requires_grad(true);
  Tensor b = from_vector({3.f}, {1}).set_requires_grad(true);
  Adam adam({a, b}, AdamOptions(0.1));
  (a * a).backward(ones({2}));
  adam.step();
  CHECK(a.value()(0) == doctest::Approx(0.9f));  // Adam's first step moves by lr * sign(g)
  CHECK(b.value()(0) == 3.f);
  const StateDict state = adam.state_dict();
  CHECK(state.count("state.0.exp_avg") == 1);
  CHECK(state.count("state.1.exp_avg") == 0);
  CHECK(array_to_real(state.at("state.0.step")) == 1.0);

  adam.zero_grad();
  CHECK_FALSE(a.grad().defined());
  CHECK_FALSE(b.grad().defined());
  adam.step();  // no gradient anywhere: nothing moves
  CHECK(a.value()(0) == doctest::Approx(0.9f));
  CHECK(array_to_real(adam.state_dict().at("state.0.step")) == 1.0);

  SGD sgd({a, b}, SGDOptions(0.5).momentum(0.9));
  (b * 2.f).backward(ones({1}));
  sgd.step();
  CHECK(b.value()(0) == doctest::Approx(2.f));  // 3 - 0.5 * 2
  CHECK(a.value()(0) == doctest::Approx(0.9f));
  const StateDict sgd_state = sgd.state_dict();
  CHECK(sgd_state.count("state.0.momentum_buffer") == 0);
  CHECK(sgd_state.count("state.1.momentum_buffer") == 1);
}

TEST_CASE("SGD's first momentum step uses the gradient as the buffer; later ones mu b + (1 - tau) g") {
  Tensor p = from_vector({1.f}, {1}).set_requires_grad(true);
  SGD sgd({p}, SGDOptions(0.1).momentum(0.5).dampening(0.5));
  (p * 4.f).backward(ones({1}));  // g = 4
  sgd.step();                      // b = g = 4, p = 1 - 0.1 * 4
  CHECK(p.value()(0) == doctest::Approx(0.6f));
  (p * 2.f).backward(ones({1}));  // g = 4 + 2: gradients accumulate
  sgd.step();                      // b = 0.5 * 4 + 0.5 * 6 = 5, p = 0.6 - 0.1 * 5
  CHECK(p.value()(0) == doctest::Approx(0.1f));
  CHECK(sgd.state_dict().at("state.0.momentum_buffer")(0) == doctest::Approx(5.f));
}

TEST_CASE("state dict: the keys and hyper-parameters saved, exactly") {
  Tensor a = randn({3, 2}).set_requires_grad(true);
  Tensor b = randn({4}).set_requires_grad(true);
  Adam adam({a, b}, AdamOptions(1e-3).betas({0.9, 0.98}).eps(1e-9).amsgrad(true));
  (a * a).backward(ones({3, 2}));
  (b * b).backward(ones({4}));
  adam.step();
  adam.set_lr(0.1 / 3.0);  // not a float32: must survive exactly
  std::set<std::string> keys;
  for (const auto& [key, value] : adam.state_dict()) keys.insert(key);
  const std::set<std::string> expected = {
      "lr", "betas.0", "betas.1", "eps", "weight_decay", "amsgrad", "maximize",
      "state.0.step", "state.0.exp_avg", "state.0.exp_avg_sq", "state.0.max_exp_avg_sq",
      "state.1.step", "state.1.exp_avg", "state.1.exp_avg_sq", "state.1.max_exp_avg_sq"};
  CHECK(keys == expected);
  const StateDict state = adam.state_dict();
  CHECK(array_to_real(state.at("lr")) == 0.1 / 3.0);
  CHECK(array_to_real(state.at("betas.1")) == 0.98);
  CHECK(array_to_real(state.at("eps")) == 1e-9);
  CHECK(state.at("amsgrad")() == 1.f);
  CHECK(shape_of(state.at("state.0.exp_avg")) == Shape{3, 2});

  SGD sgd({a}, SGDOptions(0.1).momentum(0.9).nesterov(true));
  const StateDict sgd_state = sgd.state_dict();  // before any step: hyper-parameters only
  std::set<std::string> sgd_keys;
  for (const auto& [key, value] : sgd_state) sgd_keys.insert(key);
  CHECK(sgd_keys == std::set<std::string>{"lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"});
  CHECK(sgd_state.at("nesterov")() == 1.f);
}

TEST_CASE("a double stored as three float32 parts comes back exactly") {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> mantissa(-1.0, 1.0);
  std::uniform_int_distribution<int> exponent(-90, 100);
  for (int i = 0; i < 20000; ++i) {
    const double value = std::ldexp(mantissa(rng), exponent(rng));
    REQUIRE(array_to_real(real_to_array(value)) == value);
  }
  for (double value : {0.0, 1.0, 0.1, 1e-8, 0.999, 1.0 / 3.0, 9007199254740991.0, -123456789.123456789}) {
    CHECK(array_to_real(real_to_array(value)) == value);
  }
  CHECK(std::isinf(array_to_real(real_to_array(INFINITY))));
  CHECK_THROWS_WITH_AS(real_to_array(1e300), doctest::Contains("beyond float32's range"), Error);
}

TEST_CASE("load_state_dict checks every key and shape, lists every problem, and changes nothing on failure") {
  Tensor a = randn({2, 3}).set_requires_grad(true);
  Tensor b = randn({4}).set_requires_grad(true);
  Adam adam({a, b}, AdamOptions(0.01));
  (a * a).backward(ones({2, 3}));
  (b * b).backward(ones({4}));
  adam.step();
  const StateDict good = adam.state_dict();

  StateDict bad = good;
  bad.erase("state.1.exp_avg_sq");                   // missing
  bad["state.0.exp_avg"] = xt::zeros<float>({3, 2});  // wrong shape
  bad["state.7.exp_avg"] = xt::zeros<float>({4});     // no parameter 7
  bad["lr"] = real_to_array(-1.0);                    // invalid option
  bad["amsgrad"] = Array(0.5f);                       // not a flag
  bad["eps"] = xt::zeros<float>({1});                 // not a real's encoding

  Adam fresh({a, b}, AdamOptions(0.02));
  const StateDict before = fresh.state_dict();
  try {
    fresh.load_state_dict(bad);
    FAIL("load_state_dict accepted a bad state dict");
  } catch (const Error& error) {
    const std::string message = error.what();
    INFO(message);
    CHECK(message.find("Adam::load_state_dict (2 parameters): 6 problems") != std::string::npos);
    CHECK(message.find("missing key 'state.1.exp_avg_sq'") != std::string::npos);
    CHECK(message.find("'state.0.exp_avg' has shape [3,2], expected [2,3]") != std::string::npos);
    CHECK(message.find("unexpected key 'state.7.exp_avg'") != std::string::npos);
    CHECK(message.find("invalid learning rate: -1") != std::string::npos);
    CHECK(message.find("'amsgrad' holds 0.5, expected 0 or 1") != std::string::npos);
    CHECK(message.find("'eps' has shape [1], expected [3]") != std::string::npos);
  }
  CHECK(fresh.state_dict().size() == before.size());
  CHECK(fresh.lr() == 0.02);
  for (const auto& [key, value] : before) CHECK(fresh.state_dict().at(key) == value);

  fresh.load_state_dict(good);
  for (const auto& [key, value] : good) CHECK(fresh.state_dict().at(key) == value);

  SGD sgd({a}, SGDOptions(0.1));
  CHECK_THROWS_WITH_AS(sgd.load_state_dict(good), doctest::Contains("SGD::load_state_dict (1 parameters)"), Error);
  CHECK_THROWS_WITH_AS(sgd.load_state_dict(good), doctest::Contains("missing key 'momentum'"), Error);
}

TEST_CASE("bad options throw an Error naming the optimizer and the value") {
  Tensor p = randn({3}).set_requires_grad(true);
  CHECK_THROWS_WITH_AS(SGD({p}, SGDOptions(-0.1)), doctest::Contains("SGD: invalid learning rate: -0.1"), Error);
  CHECK_THROWS_WITH_AS(SGD({p}, SGDOptions(0.1).momentum(-0.5)), doctest::Contains("SGD: invalid momentum: -0.5"),
                       Error);
  CHECK_THROWS_WITH_AS(SGD({p}, SGDOptions(0.1).weight_decay(-1)), doctest::Contains("SGD: invalid weight_decay: -1"),
                       Error);
  CHECK_THROWS_WITH_AS(SGD({p}, SGDOptions(0.1).momentum(0.9).dampening(1.5)),
                       doctest::Contains("SGD: invalid dampening: 1.5"), Error);
  CHECK_THROWS_WITH_AS(SGD({p}, SGDOptions(0.1).nesterov(true)),
                       doctest::Contains("nesterov momentum requires a momentum > 0 and zero dampening, got momentum 0"),
                       Error);
  CHECK_THROWS_WITH_AS(SGD({p}, SGDOptions(0.1).momentum(0.9).dampening(0.1).nesterov(true)),
                       doctest::Contains("got momentum 0.9 and dampening 0.1"), Error);
  CHECK_THROWS_WITH_AS(SGD({p}, SGDOptions(NAN)), doctest::Contains("SGD: invalid learning rate: nan"), Error);

  CHECK_THROWS_WITH_AS(Adam({p}, AdamOptions(-1e-3)), doctest::Contains("Adam: invalid learning rate: -0.001"), Error);
  CHECK_THROWS_WITH_AS(Adam({p}, AdamOptions().eps(-1e-8)), doctest::Contains("Adam: invalid epsilon value: -1e-08"),
                       Error);
  CHECK_THROWS_WITH_AS(Adam({p}, AdamOptions().betas({1.0, 0.999})),
                       doctest::Contains("Adam: invalid beta parameter at index 0: 1 (expected a value in [0, 1))"),
                       Error);
  CHECK_THROWS_WITH_AS(Adam({p}, AdamOptions().betas({0.9, -0.1})),
                       doctest::Contains("Adam: invalid beta parameter at index 1: -0.1"), Error);
  CHECK_THROWS_WITH_AS(Adam({p}, AdamOptions().weight_decay(-0.1)),
                       doctest::Contains("Adam: invalid weight_decay value: -0.1"), Error);
  CHECK_THROWS_WITH_AS(AdamW({p}, AdamWOptions().betas({0.9, 1.5})),
                       doctest::Contains("AdamW: invalid beta parameter at index 1: 1.5"), Error);
  CHECK_THROWS_WITH_AS(AdamW({p}, AdamWOptions(-2)), doctest::Contains("AdamW: invalid learning rate: -2"), Error);

  Adam adam({p});
  CHECK_THROWS_WITH_AS(adam.set_lr(-0.5), doctest::Contains("Adam: invalid learning rate: -0.5"), Error);
  CHECK(adam.lr() == 1e-3);
  CHECK(AdamW({p}).options().weight_decay() == 0.01);  // torch's default
  CHECK(Adam({p}).options().weight_decay() == 0.0);
}

TEST_CASE("bad parameter lists throw") {
  Tensor p = randn({3}).set_requires_grad(true);
  CHECK_THROWS_WITH_AS(Adam(std::vector<Tensor>{}), doctest::Contains("Adam: got an empty parameter list"), Error);
  CHECK_THROWS_WITH_AS(SGD({p, Tensor()}, SGDOptions(0.1)), doctest::Contains("SGD: parameter 1 is undefined"), Error);
  CHECK_THROWS_WITH_AS(SGD({p * 2.f}, SGDOptions(0.1)),
                       doctest::Contains("SGD: parameter 0 (shape [3]) is not a leaf: it is the output of 'mul'"), Error);
  CHECK_THROWS_WITH_AS(AdamW({p, p}), doctest::Contains("AdamW: parameter 1 (shape [3]) appears more than once"), Error);
}

TEST_CASE("a parameter whose value was replaced by another shape is reported, not overrun") {
  Tensor p = randn({3}).set_requires_grad(true);
  Adam adam({p});
  (p * p).backward(ones({3}));
  adam.step();
  p.mutable_value() = xt::zeros<float>({5});
  CHECK_THROWS_WITH_AS(adam.step(), doctest::Contains("Adam::step: parameter 0 has shape [5] but its gradient has shape [3]"),
                       Error);
  p.zero_grad();
  (p * p).backward(ones({5}));
  CHECK_THROWS_WITH_AS(adam.step(), doctest::Contains("parameter 0 has shape [5] but its exp_avg has shape [3]"), Error);
}

TEST_CASE("large parameters (the SIMD and multi-threaded path) update exactly as small ones") {
  // A large parameter tiling the fixture's small ones: every element must follow the very same
  // arithmetic, whichever path (SIMD batch or one at a time, any thread) it takes.
  const Problem small_problem = make_problem();
  const std::size_t copies = 7000;  // 84k elements: above the parallel threshold
  std::vector<float> init, target, coef;
  for (std::size_t r = 0; r < copies; ++r) {
    for (std::size_t j = 0; j < small_problem.params.size(); ++j) {
      const Tensor& p = small_problem.params[j];
      init.insert(init.end(), p.value().begin(), p.value().end());
      target.insert(target.end(), small_problem.targets[j].value().begin(), small_problem.targets[j].value().end());
      coef.insert(coef.end(), small_problem.coefs[j].value().begin(), small_problem.coefs[j].value().end());
    }
  }
  const std::size_t width = init.size() / copies;  // 12
  const int threads = get_num_threads();
  for (const char* kind : {"sgd", "adam", "adamw"}) {
    INFO(kind);
    const json options = std::string(kind) == "sgd"
                             ? json{{"lr", 0.05}, {"momentum", 0.9}, {"weight_decay", 0.01}}
                             : json{{"lr", 0.05}, {"amsgrad", true}, {"weight_decay", 0.02}};
    Problem small = make_problem();
    auto small_optimizer = make_optimizer(kind, options, small.params);
    const auto small_run = run(small, *small_optimizer, nullptr, 5);

    for (int n_threads : {1, 2}) {
      set_num_threads(n_threads);
      Problem large;
      large.params = {from_vector(init, {init.size()}).set_requires_grad(true)};
      large.targets = {from_vector(target, {target.size()})};
      large.coefs = {from_vector(coef, {coef.size()})};
      auto large_optimizer = make_optimizer(kind, options, large.params);
      const auto large_run = run(large, *large_optimizer, nullptr, 5);
      std::size_t mismatches = 0;
      for (std::size_t k = 0; k < large_run.back().size(); ++k) {
        if (large_run.back()[k] != small_run.back()[k % width]) ++mismatches;
      }
      INFO(n_threads, " threads");
      CHECK(mismatches == 0);
    }
    set_num_threads(threads);
  }
}

TEST_CASE("param groups: each group steps as its own optimizer with its lr and weight decay") {
  auto make = [](std::uint64_t seed) {
    Generator g(seed);
    return std::vector<Tensor>{randn({3, 4}, g).set_requires_grad(), randn({4}, g).set_requires_grad(),
                               randn({2, 2}, g).set_requires_grad()};
  };
  auto set_grads = [](const std::vector<Tensor>& ps, int step) {
    for (std::size_t i = 0; i < ps.size(); ++i) {
      Generator g(100 + step * 10 + i);
      ps[i].impl()->grad = std::make_shared<Array>(randn(ps[i].shape(), g).value());
    }
  };
  for (const bool decoupled : {false, true}) {
    CAPTURE(decoupled);
    const std::vector<Tensor> grouped = make(1), a = make(1), b = make(1);
    std::vector<optim::ParamGroup> groups(2);
    groups[0].params = {grouped[0], grouped[2]};
    groups[0].weight_decay = 0.1;
    groups[1].params = {grouped[1]};
    groups[1].lr = 0.02;
    std::unique_ptr<optim::Optimizer> together, first, second;
    if (decoupled) {
      together = std::make_unique<optim::AdamW>(groups, optim::AdamWOptions(0.01).weight_decay(0.5));
      first = std::make_unique<optim::AdamW>(std::vector<Tensor>{a[0], a[2]}, optim::AdamWOptions(0.01).weight_decay(0.1));
      second = std::make_unique<optim::AdamW>(std::vector<Tensor>{b[1]}, optim::AdamWOptions(0.02).weight_decay(0.5));
    } else {
      together = std::make_unique<optim::Adam>(groups, optim::AdamOptions(0.01).weight_decay(0.5));
      first = std::make_unique<optim::Adam>(std::vector<Tensor>{a[0], a[2]}, optim::AdamOptions(0.01).weight_decay(0.1));
      second = std::make_unique<optim::Adam>(std::vector<Tensor>{b[1]}, optim::AdamOptions(0.02).weight_decay(0.5));
    }
    REQUIRE(together->num_param_groups() == 2);
    CHECK(together->group_lr(1) == 0.02);
    CHECK(together->group_weight_decay(1) == 0.5);  // unset: the optimizer's
    for (int step = 0; step < 5; ++step) {
      // A schedule halves the rate each step: group 1 stays at twice the base.
      const double lr = 0.01 / (1 << step);
      together->set_lr(lr);
      first->set_lr(lr);
      second->set_lr(2 * lr);
      CHECK(together->group_lr(1) == doctest::Approx(2 * lr));
      set_grads(grouped, step);
      set_grads(a, step);
      set_grads(b, step);
      together->step();
      first->step();
      second->step();
    }
    CHECK(grouped[0].value() == a[0].value());
    CHECK(grouped[2].value() == a[2].value());
    CHECK(grouped[1].value() == b[1].value());
    // The groups' values travel with the state, and a plain optimizer's state keeps its old keys.
    const optim::StateDict state = together->state_dict();
    CHECK(state.count("param_groups.1.lr") == 1);
    CHECK(first->state_dict().count("param_groups.0.lr") == 0);
  }
}

TEST_CASE("SGD param groups, weight_decay_groups and group state round trip") {
  Generator g(3);
  nn::Linear layer(4, 3, true, g);
  nn::LayerNorm norm(3);
  std::vector<std::pair<std::string, Tensor>> named = layer.named_parameters();
  for (const auto& [name, p] : norm.named_parameters()) named.emplace_back("norm." + name, p);
  const auto groups = optim::weight_decay_groups(named, 0.05);
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].params.size() == 1);  // the weight matrix
  CHECK(groups[1].params.size() == 3);  // bias, norm weight, norm bias
  CHECK(groups[1].weight_decay == 0.0);

  optim::SGD sgd(groups, optim::SGDOptions(0.1).momentum(0.9));
  for (const Tensor& p : layer.parameters()) p.impl()->grad = std::make_shared<Array>(xt::ones<float>(p.value().shape()));
  const Array before = layer.bias.value();
  sgd.step();
  CHECK(layer.bias.value() == Array(before - 0.1f));  // no decay on the bias
  const optim::StateDict state = sgd.state_dict();
  CHECK(state.at("param_groups.0.weight_decay").size() > 0);
  optim::SGD other(optim::weight_decay_groups(named, 0.7), optim::SGDOptions(0.1).momentum(0.9));
  other.load_state_dict(state);
  CHECK(other.group_weight_decay(0) == 0.05);
  CHECK_THROWS_WITH_AS(optim::SGD(std::vector<optim::ParamGroup>{{layer.parameters(), -1.0, std::nullopt}},
                                  optim::SGDOptions(0.1)),
                       doctest::Contains("learning rate of param group 0"), Error);
}
