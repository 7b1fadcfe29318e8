// xgrad::distributed: processes that train together over MPI (Open MPI's mpirun starts them, on
// one machine or many), with torch.distributed's names.
//
//   int main(int argc, char** argv) {
//     xgrad::distributed::Environment world(argc, argv);   // MPI_Init .. MPI_Finalize
//     if (xgrad::distributed::rank() == 0) ...
//
// A program started without mpirun is a world of one: rank 0 of 1, every collective a no-op,
// and MPI is never initialised. Only the thread that created the Environment calls MPI.
//
// Collectives take every rank's tensor of one shape. They check it first: ranks whose shapes
// differ all throw xgrad::Error naming the op and every rank's shape, instead of hanging or
// reading past a buffer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <xgrad/autograd/tensor.hpp>

namespace xgrad::distributed {

/// Initialises MPI when the process was started by mpirun (else a world of one), and finalises
/// it on destruction. One per program, created first thing in main.
class Environment {
 public:
  Environment(int& argc, char**& argv);
  Environment();
  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;
};

/// Whether MPI runs this process (started by mpirun, even with -np 1).
bool is_initialized();
int rank();        ///< 0 .. world_size() - 1
int world_size();  ///< 1 without mpirun
/// This process's place among the ranks of its machine, and how many they are.
int local_rank();
int local_size();
/// The host name, for messages.
std::string host_name();

/// The threads each rank should use by default: the cores this process may run on, shared
/// evenly with the other ranks of its machine when they all may run on every core (none bound).
int default_threads();

enum class ReduceOp { sum, average, max, min };

/// Every rank's x becomes the element-wise reduction over all ranks (in place).
void all_reduce(Array& x, ReduceOp op = ReduceOp::sum);
void all_reduce(const Tensor& x, ReduceOp op = ReduceOp::sum);
/// Every rank's x becomes root's x (in place).
void broadcast(Array& x, int root = 0);
void broadcast(const Tensor& x, int root = 0);
/// Every rank's x, stacked along a new first axis in rank order: (world_size, ...x's shape).
Array all_gather(const Array& x);
Tensor all_gather(const Tensor& x);
/// Waits until every rank has come here. Sleeps while it waits rather than spinning, so a rank
/// that waits on another's work (rank 0 validating, saving) leaves its core to it.
void barrier();

/// Scalars, for counts and flags (no shape check beyond one value).
double all_reduce(double value, ReduceOp op = ReduceOp::sum);
/// Texts of any length from every rank, in rank order (e.g. each rank's random state).
std::vector<std::string> all_gather(const std::string& text);
/// root's text on every rank.
std::string broadcast(const std::string& text, int root = 0);

/// Ends the whole job: prints "rank R (host): message" on stderr and has MPI kill every rank
/// (MPI_Abort), so that no rank waits forever for one that failed. Without MPI, exits.
[[noreturn]] void abort(const std::string& message, int exit_code = 1);

namespace detail {
/// Starts a sum all-reduce of n floats in place without waiting; wait() completes it. The
/// caller keeps `data` alive and unchanged until then. Every rank must start the same sequence.
class PendingReduce {
 public:
  PendingReduce() = default;
  PendingReduce(float* data, std::size_t n);
  PendingReduce(PendingReduce&& other) noexcept;
  PendingReduce& operator=(PendingReduce&& other) noexcept;
  ~PendingReduce();
  /// Lets MPI move the reduction on (call now and then while computing); true when done.
  bool test();
  void wait();

 private:
  struct Request;
  Request* request_ = nullptr;
};
}  // namespace detail

}  // namespace xgrad::distributed
