// distributed collectives across 2 ranks (run by mpirun -np 2): sums, means, broadcasts and
// gathers of tensors and texts; and mismatched shapes or ops refused on every rank.
#include "mpi_main.hpp"

#include <xgrad/xgrad.hpp>

using namespace xgrad;
namespace dist = xgrad::distributed;

TEST_CASE("The world: two ranks") {
  REQUIRE(dist::is_initialized());
  REQUIRE(dist::world_size() == 2);
  CHECK(dist::local_size() == 2);  // one machine
  CHECK(dist::local_rank() == dist::rank());
  CHECK(dist::default_threads() >= 1);
}

TEST_CASE("all_reduce sums, averages and takes the max over the ranks, in place") {
  const float r = static_cast<float>(dist::rank());
  const Tensor x = full({2, 3}, r + 1.f);  // rank 0: 1, rank 1: 2
  dist::all_reduce(x);
  CHECK(x.value()(1, 2) == 3.f);
  Array y = Array::from_shape({5});
  y.fill(r * 4.f);  // 0 and 4
  dist::all_reduce(y, dist::ReduceOp::average);
  CHECK(y(4) == 2.f);
  Array z = Array::from_shape({1});
  z(0) = r == 0 ? 7.f : -1.f;
  dist::all_reduce(z, dist::ReduceOp::max);
  CHECK(z(0) == 7.f);
  CHECK(dist::all_reduce(double(r) + 0.5) == 2.0);
  CHECK(dist::all_reduce(double(r), dist::ReduceOp::min) == 0.0);
}

TEST_CASE("broadcast and all_gather") {
  const float r = static_cast<float>(dist::rank());
  const Tensor x = full({3}, 10.f + r);
  dist::broadcast(x, /*root=*/1);
  CHECK(x.value()(0) == 11.f);
  const Tensor g = dist::all_gather(full({2, 2}, r));  // (2 ranks, 2, 2)
  REQUIRE(g.shape() == Shape{2, 2, 2});
  CHECK(g.value()(0, 1, 1) == 0.f);
  CHECK(g.value()(1, 0, 0) == 1.f);
  const std::vector<std::string> texts = dist::all_gather(std::string(dist::rank() + 1, 'a' + dist::rank()));
  CHECK(texts == std::vector<std::string>{"a", "bb"});
  CHECK(dist::broadcast(dist::rank() == 0 ? std::string("from rank 0") : std::string(), 0) == "from rank 0");
  CHECK_THROWS_WITH_AS(dist::broadcast(x, 2), doctest::Contains("root 2 is not a rank of a world of 2"), Error);
  dist::barrier();
}

TEST_CASE("Collectives on mismatched shapes or ops throw on every rank, naming each rank's") {
  const Tensor x = dist::rank() == 0 ? zeros({2, 3}) : zeros({3});
  CHECK_THROWS_WITH_AS(dist::all_reduce(x),
                       doctest::Contains("the ranks disagree on the collective or its shape (rank 0: all_reduce [2,3], "
                                         "rank 1: all_reduce [3])"),
                       Error);
  CHECK_THROWS_WITH_AS(dist::all_gather(x), doctest::Contains("rank 0: all_gather [2,3], rank 1: all_gather [3]"),
                       Error);
  const Tensor same = zeros({4});
  if (dist::rank() == 0) {
    CHECK_THROWS_WITH_AS(dist::all_reduce(same), doctest::Contains("rank 0: all_reduce [4], rank 1: broadcast [4]"),
                         Error);
  } else {
    CHECK_THROWS_WITH_AS(dist::broadcast(same), doctest::Contains("rank 0: all_reduce [4], rank 1: broadcast [4]"),
                         Error);
  }
  // The world is still in step afterwards.
  const Tensor ones = full({4}, 1.f);
  dist::all_reduce(ones);
  CHECK(ones.value()(3) == 2.f);
}
