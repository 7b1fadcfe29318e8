// A 2-rank job whose rank 1 fails while rank 0 waits for it in a collective:
//   fail_rank throw   rank 1 throws; its handler ends the job with distributed::abort
//   fail_rank kill    rank 1 is killed (SIGKILL): mpirun ends the job
// Either way the job must end, with a message naming rank 1, instead of rank 0 waiting forever.
#include <csignal>
#include <string>

#include <xgrad/xgrad.hpp>

namespace dist = xgrad::distributed;

int main(int argc, char** argv) {
  dist::Environment world(argc, argv);
  const std::string mode = argc > 1 ? argv[1] : "throw";
  try {
    if (dist::rank() == 1) {
      if (mode == "kill") std::raise(SIGKILL);
      throw xgrad::Error("the data of this rank cannot be read");
    }
    const xgrad::Tensor x = xgrad::zeros({4});
    dist::all_reduce(x);  // rank 1 never comes
  } catch (const std::exception& e) {
    dist::abort(std::string("error: ") + e.what());
  }
  return 0;
}
