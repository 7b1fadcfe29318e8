// A program started without mpirun is a world of one: MPI is not initialised, collectives
// leave their tensors as they are (all_gather stacks the one), DataParallel changes nothing.
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

using namespace xgrad;
namespace dist = xgrad::distributed;

TEST_CASE("Without mpirun: rank 0 of 1, collectives are identities") {
  dist::Environment world;
  CHECK_FALSE(dist::is_initialized());
  CHECK(dist::rank() == 0);
  CHECK(dist::world_size() == 1);
  CHECK(dist::local_size() == 1);
  CHECK(dist::default_threads() >= 1);
  const Tensor x = full({2, 2}, 3.f);
  dist::all_reduce(x, dist::ReduceOp::average);
  dist::broadcast(x);
  CHECK(x.value()(1, 1) == 3.f);
  CHECK(dist::all_gather(x).shape() == Shape{1, 2, 2});
  CHECK(dist::all_reduce(2.5) == 2.5);
  CHECK(dist::all_gather(std::string("text")) == std::vector<std::string>{"text"});
  dist::barrier();
}

TEST_CASE("DataParallel in a world of one leaves training as it is") {
  Generator g(1);
  nn::Linear layer(3, 2, true, g);
  const Array before = layer.weight.value();
  dist::DataParallel ddp(layer);
  CHECK(ddp.stats().buckets == 0);
  sum(layer.forward(full({4, 3}, 1.f))).backward();
  CHECK(layer.weight.value() == before);
  CHECK(layer.bias.grad().value()(0) == 4.f);
  CHECK(ddp.stats().synchronizations == 0);
}
