// The MPI calls behind xgrad::distributed: initialisation, shape-checked collectives, a barrier
// that sleeps, and non-blocking sums for data-parallel gradients.
#include <xgrad/distributed/distributed.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <fmt/format.h>
#include <mpi.h>

#include <xgrad/core/error.hpp>
#include <xgrad/kernels/team.hpp>

namespace xgrad::distributed {

namespace {

struct World {
  bool initialized = false;  // MPI_Init was called by us
  int rank = 0, size = 1, local_rank = 0, local_size = 1;
};
World world;

/// Whether a launcher (mpirun, or another PMI/PMIx one) started this process.
bool launched_by_mpirun() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"}) {
    if (std::getenv(name)) return true;
  }
  return false;
}

void init(int* argc, char*** argv) {
  if (world.initialized || !launched_by_mpirun()) return;
  int already = 0;
  MPI_Initialized(&already);
  if (!already) {
    int provided = 0;
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  }
  world.initialized = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &world.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world.size);
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world.rank, MPI_INFO_NULL, &local);
  MPI_Comm_rank(local, &world.local_rank);
  MPI_Comm_size(local, &world.local_size);
  MPI_Comm_free(&local);
}

bool active() { return world.initialized && world.size > 1; }

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::max: return MPI_MAX;
    case ReduceOp::min: return MPI_MIN;
    default: return MPI_SUM;
  }
}

/// At most INT_MAX elements per MPI call.
constexpr std::size_t kChunk = std::size_t{1} << 30;

const char* op_name(int code) {
  static const char* names[] = {"all_reduce", "broadcast", "all_gather"};
  return names[code];
}

/// Every rank's (op, shape) gathered and compared: all throw the same message if any differs.
void check_same(int op, const Shape& shape) {
  constexpr std::size_t kMaxDims = 8;
  std::vector<std::int64_t> mine(2 + kMaxDims, -1);
  mine[0] = op;
  mine[1] = static_cast<std::int64_t>(shape.size());
  for (std::size_t i = 0; i < std::min(shape.size(), kMaxDims); ++i) mine[2 + i] = static_cast<std::int64_t>(shape[i]);
  std::vector<std::int64_t> all(mine.size() * world.size);
  MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_INT64_T, all.data(), static_cast<int>(mine.size()),
                MPI_INT64_T, MPI_COMM_WORLD);
  bool same = true;
  for (int r = 1; r < world.size && same; ++r) same = std::equal(mine.size() * r + all.begin(), mine.size() * (r + 1) + all.begin(), all.begin());
  if (same) return;
  std::string ranks;
  for (int r = 0; r < world.size; ++r) {
    const std::int64_t* d = all.data() + mine.size() * r;
    std::string dims;
    for (std::int64_t i = 0; i < std::min<std::int64_t>(d[1], kMaxDims); ++i) dims += (i ? "," : "") + std::to_string(d[2 + i]);
    ranks += fmt::format("{}rank {}: {} [{}]", r ? ", " : "", r, op_name(static_cast<int>(d[0])), dims);
  }
  throw Error(fmt::format("distributed::{}: the ranks disagree on the collective or its shape ({}); every rank "
                          "must pass a tensor of one shape to the same op",
                          op_name(op), ranks));
}

}  // namespace

Environment::Environment(int& argc, char**& argv) { init(&argc, &argv); }
Environment::Environment() { init(nullptr, nullptr); }
Environment::~Environment() {
  if (!world.initialized) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
  world = World{};
}

bool is_initialized() { return world.initialized; }
int rank() { return world.rank; }
int world_size() { return world.size; }
int local_rank() { return world.local_rank; }
int local_size() { return world.local_size; }

std::string host_name() {
  char name[256] = {0};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "?";
  return name;
}

int default_threads() {
  const int allowed = static_cast<int>(kernels::cores_available());
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // Bound by the launcher to a share of the cores: that share is this rank's. Free to run on
  // every core: the ranks of this machine split them.
  if (allowed < cores) return std::max(1, allowed);
  return std::max(1, allowed / std::max(1, world.local_size));
}

void all_reduce(Array& x, ReduceOp op) {
  if (!active()) return;
  check_same(0, shape_of(x));
  for (std::size_t at = 0; at < x.size(); at += kChunk) {
    const int n = static_cast<int>(std::min(kChunk, x.size() - at));
    MPI_Allreduce(MPI_IN_PLACE, x.data() + at, n, MPI_FLOAT, mpi_op(op), MPI_COMM_WORLD);
  }
  if (op == ReduceOp::average) x /= static_cast<float>(world.size);
}

void all_reduce(const Tensor& x, ReduceOp op) {
  if (!active()) return;
  all_reduce(x.mutable_value(), op);
}

void broadcast(Array& x, int root) {
  if (!active()) return;
  if (root < 0 || root >= world.size) {
    throw Error(fmt::format("distributed::broadcast: root {} is not a rank of a world of {}", root, world.size));
  }
  check_same(1, shape_of(x));
  for (std::size_t at = 0; at < x.size(); at += kChunk) {
    const int n = static_cast<int>(std::min(kChunk, x.size() - at));
    MPI_Bcast(x.data() + at, n, MPI_FLOAT, root, MPI_COMM_WORLD);
  }
}

void broadcast(const Tensor& x, int root) {
  if (!active()) return;
  broadcast(x.mutable_value(), root);
}

Array all_gather(const Array& x) {
  Shape shape = shape_of(x);
  shape.insert(shape.begin(), static_cast<std::size_t>(world.size));
  Array out = Array::from_shape(shape);  // (world, ...)
  if (!active()) {
    std::copy_n(x.data(), x.size(), out.data());
    return out;
  }
  check_same(2, shape_of(x));
  if (x.size() > static_cast<std::size_t>(INT_MAX)) {
    throw Error(fmt::format("distributed::all_gather: {} elements per rank exceed MPI's count limit", x.size()));
  }
  const int n = static_cast<int>(x.size());
  MPI_Allgather(x.data(), n, MPI_FLOAT, out.data(), n, MPI_FLOAT, MPI_COMM_WORLD);
  return out;
}

Tensor all_gather(const Tensor& x) { return Tensor(all_gather(x.value())); }

void barrier() {
  if (!active()) return;
  MPI_Request request;
  MPI_Ibarrier(MPI_COMM_WORLD, &request);
  int done = 0;
  for (int polls = 0; !done; ++polls) {
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (!done && polls > 100) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

double all_reduce(double value, ReduceOp op) {
  if (!active()) return value;
  MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_DOUBLE, mpi_op(op), MPI_COMM_WORLD);
  return op == ReduceOp::average ? value / world.size : value;
}

std::vector<std::string> all_gather(const std::string& text) {
  if (!active()) return {text};
  const int length = static_cast<int>(text.size());
  std::vector<int> lengths(world.size), offsets(world.size);
  MPI_Allgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, MPI_COMM_WORLD);
  int total = 0;
  for (int r = 0; r < world.size; ++r) offsets[r] = total, total += lengths[r];
  std::string all(static_cast<std::size_t>(total), '\0');
  MPI_Allgatherv(text.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR, MPI_COMM_WORLD);
  std::vector<std::string> texts;
  for (int r = 0; r < world.size; ++r) texts.push_back(all.substr(offsets[r], lengths[r]));
  return texts;
}

std::string broadcast(const std::string& text, int root) {
  if (!active()) return text;
  int length = static_cast<int>(text.size());
  MPI_Bcast(&length, 1, MPI_INT, root, MPI_COMM_WORLD);
  std::string out = world.rank == root ? text : std::string(static_cast<std::size_t>(length), '\0');
  MPI_Bcast(out.data(), length, MPI_CHAR, root, MPI_COMM_WORLD);
  return out;
}

void abort(const std::string& message, int exit_code) {
  if (world.initialized) {
    std::fprintf(stderr, "rank %d (%s): %s\n", world.rank, host_name().c_str(), message.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, exit_code);
  }
  std::fprintf(stderr, "%s\n", message.c_str());
  std::exit(exit_code);
}

// --- non-blocking sums -------------------------------------------------------------------------

namespace detail {

struct PendingReduce::Request {
  std::vector<MPI_Request> requests;
};

PendingReduce::PendingReduce(float* data, std::size_t n) {
  if (!active()) return;
  request_ = new Request;
  for (std::size_t at = 0; at < n; at += kChunk) {
    MPI_Request r;
    MPI_Iallreduce(MPI_IN_PLACE, data + at, static_cast<int>(std::min(kChunk, n - at)), MPI_FLOAT, MPI_SUM,
                   MPI_COMM_WORLD, &r);
    request_->requests.push_back(r);
  }
}

PendingReduce::PendingReduce(PendingReduce&& other) noexcept : request_(other.request_) { other.request_ = nullptr; }

PendingReduce& PendingReduce::operator=(PendingReduce&& other) noexcept {
  if (this != &other) {
    if (request_) wait();
    request_ = other.request_;
    other.request_ = nullptr;
  }
  return *this;
}

PendingReduce::~PendingReduce() {
  if (request_) wait();
}

bool PendingReduce::test() {
  if (!request_) return true;
  int done = 0;
  MPI_Testall(static_cast<int>(request_->requests.size()), request_->requests.data(), &done, MPI_STATUSES_IGNORE);
  if (done) {
    delete request_;
    request_ = nullptr;
  }
  return done != 0;
}

void PendingReduce::wait() {
  if (!request_) return;
  MPI_Waitall(static_cast<int>(request_->requests.size()), request_->requests.data(), MPI_STATUSES_IGNORE);
  delete request_;
  request_ = nullptr;
}

}  // namespace detail

}  // namespace xgrad::distributed
