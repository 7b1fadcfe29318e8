// Optimizer step and gradient clipping speed on the parameters of the benchmark Transformer
// (V=1000, d=256, 3+3 layers, d_ff=1024: about 7.4M floats in 130 tensors).
//   build/bin/bench_optim [threads]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <vector>

#include <xgrad/optim/optim.hpp>
#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

std::vector<Shape> transformer_shapes() {
  const std::size_t V = 1000, d = 256, ff = 1024;
  std::vector<Shape> shapes = {{V, d}, {V, d}, {V, d}, {V}};  // embeddings, generator
  auto attention = [&] {
    for (int i = 0; i < 4; ++i) { shapes.push_back({d, d}); shapes.push_back({d}); }
  };
  auto feed_forward = [&] {
    shapes.insert(shapes.end(), {{ff, d}, {ff}, {d, ff}, {d}});
  };
  auto norm = [&] { shapes.insert(shapes.end(), {{d}, {d}}); };
  for (int layer = 0; layer < 3; ++layer) { attention(); feed_forward(); norm(); norm(); }
  for (int layer = 0; layer < 3; ++layer) { attention(); attention(); feed_forward(); norm(); norm(); norm(); }
  return shapes;
}

// Median milliseconds of `repeats` calls.
double time_ms(const std::function<void()>& f, int repeats = 30) {
  f();
  std::vector<double> times;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    f();
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::nth_element(times.begin(), times.begin() + repeats / 2, times.end());
  return times[repeats / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) set_num_threads(std::atoi(argv[1]));
  std::cout << runtime_info() << std::endl;
  std::vector<Tensor> params;
  std::size_t total = 0;
  for (const Shape& shape : transformer_shapes()) {
    Tensor p = randn(shape).set_requires_grad(true);
    (p * 1.f).backward(randn(shape));  // a gradient to step with
    params.push_back(p);
    total += p.numel();
  }
  std::printf("%zu parameters, %zu floats, %d threads\n", params.size(), total, get_num_threads());
  auto report = [&](const char* what, double ms, int arrays_touched) {
    const double gbs = static_cast<double>(total) * 4 * arrays_touched / (ms * 1e-3) / 1e9;
    std::printf("%-28s %8.3f ms   %6.1f GB/s\n", what, ms, gbs);
  };
  {
    optim::SGD sgd(params, optim::SGDOptions(1e-6).momentum(0.9));
    report("SGD momentum step", time_ms([&] { sgd.step(); }), 5);  // p, g, b read; p, b written
  }
  {
    optim::Adam adam(params, optim::AdamOptions(1e-6));
    report("Adam step", time_ms([&] { adam.step(); }), 7);  // p, g, m, v read; p, m, v written
  }
  {
    optim::AdamW adamw(params, optim::AdamWOptions(1e-6).amsgrad(true));
    report("AdamW amsgrad step", time_ms([&] { adamw.step(); }), 9);
  }
  report("clip_grad_norm_ (no clip)", time_ms([&] { optim::clip_grad_norm_(params, 1e30); }), 1);
  return 0;
}
