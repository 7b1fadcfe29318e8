// Matrix products: torch.matmul's shape rules mapped onto kernels::gemm calls, forward and backward.
//
// Legend: C (batch..., n, m) = A (batch..., n, k) B (batch..., k, m). A 1-D A is a row (1, k),
// a 1-D B a column (k, 1); their axis is dropped from C. A "matrix" below is one (rows, cols)
// block of a contiguous stack: the batch axes only decide which blocks meet.
#include <xgrad/autograd/ops/matmul.hpp>

#include <algorithm>
#include <cstddef>
#include <vector>

#include <fmt/format.h>
#include <omp.h>

#include <xgrad/core/error.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/kernels/gemm.hpp>
#include <xgrad/kernels/parallel.hpp>

namespace xgrad {

namespace {

/// C = op(A) op(B) + beta C for contiguous row-major blocks: op(A) is (M, K), op(B) (K, N), C (M, N).
void gemm(bool transpose_a, bool transpose_b, std::size_t M, std::size_t N, std::size_t K, const float* A,
          const float* B, float beta, float* C) {
  kernels::gemm(transpose_a, transpose_b, M, N, K, 1.f, A, B, beta, C);
}

/// Matrix products up to this many multiply-adds are batched over threads, one single-threaded
/// GEMM per thread (kernels::gemm runs single-threaded inside a parallel region); larger ones use
/// the GEMM's own threads, unless there are enough of them to share out evenly.
constexpr std::size_t kSmallGemm = 128 * 128 * 128;

/// How one matmul maps onto GEMMs; the backward replays it.
struct MatmulPlan {
  std::size_t n = 0, k = 0, m = 0;
  Shape out_shape;
  std::size_t a_count = 1, b_count = 1;  // matrices stored in A and in B
  // Output matrix p is A's matrix a_index[p] times B's matrix b_index[p] (a broadcast batch axis
  // repeats a matrix).
  std::vector<std::size_t> a_index, b_index;

  std::size_t out_count() const { return a_index.size(); }
  /// B is a single matrix shared by every matrix of A: A's stack is one (a_count n, k) matrix and
  /// the whole product is one GEMM.
  bool folded() const { return b_count == 1; }
  bool empty() const { return n == 0 || k == 0 || m == 0 || out_count() == 0; }
  /// Whether `jobs` independent GEMMs of this size are spread over threads.
  bool parallel(std::size_t jobs) const {
    const std::size_t threads = static_cast<std::size_t>(omp_get_max_threads());
    return threads > 1 && jobs > 1 && (n * k * m <= kSmallGemm || jobs >= 4 * threads);
  }
};

MatmulPlan plan_matmul(const Shape& a_shape, const Shape& b_shape) {
  if (a_shape.empty() || b_shape.empty()) {
    throw Error(fmt::format("matmul: both operands must have at least 1 dimension, got shapes {} and {}",
                            shape_str(a_shape), shape_str(b_shape)));
  }
  MatmulPlan plan;
  const bool a_vector = a_shape.size() == 1, b_vector = b_shape.size() == 1;
  plan.n = a_vector ? 1 : a_shape[a_shape.size() - 2];
  plan.k = a_shape.back();
  const std::size_t b_rows = b_vector ? b_shape[0] : b_shape[b_shape.size() - 2];
  plan.m = b_vector ? 1 : b_shape.back();
  if (plan.k != b_rows) {
    throw Error(fmt::format("matmul: cannot multiply {} by {}: inner dimensions {} and {} differ", shape_str(a_shape),
                            shape_str(b_shape), plan.k, b_rows));
  }

  // Batch axes: everything before the matrix axes, broadcast NumPy-style (aligned on the right).
  const Shape a_batch(a_shape.begin(), a_shape.end() - (a_vector ? 1 : 2));
  const Shape b_batch(b_shape.begin(), b_shape.end() - (b_vector ? 1 : 2));
  const std::size_t rank = std::max(a_batch.size(), b_batch.size());
  Shape batch(rank);
  std::vector<std::size_t> a_stride(rank, 0), b_stride(rank, 0);  // in matrices; 0 on broadcast axes
  for (std::size_t i = rank, a_step = 1, b_step = 1; i-- > 0;) {
    const std::size_t a_dim = i + a_batch.size() >= rank ? a_batch[i + a_batch.size() - rank] : 1;
    const std::size_t b_dim = i + b_batch.size() >= rank ? b_batch[i + b_batch.size() - rank] : 1;
    if (a_dim != b_dim && a_dim != 1 && b_dim != 1) {
      throw Error(fmt::format(
          "matmul: cannot multiply {} by {}: batch dimensions {} and {} do not broadcast (batch axis {} is {} and {})",
          shape_str(a_shape), shape_str(b_shape), shape_str(a_batch), shape_str(b_batch), i, a_dim, b_dim));
    }
    batch[i] = a_dim == 1 ? b_dim : a_dim;
    if (a_dim != 1) a_stride[i] = a_step;
    if (b_dim != 1) b_stride[i] = b_step;
    a_step *= a_dim;
    b_step *= b_dim;
  }
  plan.a_count = numel_of(a_batch);
  plan.b_count = numel_of(b_batch);

  plan.out_shape = batch;
  if (!a_vector) plan.out_shape.push_back(plan.n);
  if (!b_vector) plan.out_shape.push_back(plan.m);

  const std::size_t count = numel_of(batch);
  plan.a_index.resize(count);
  plan.b_index.resize(count);
  std::vector<std::size_t> position(rank, 0);  // batch index of output matrix p, odometer-style
  for (std::size_t p = 0; p < count; ++p) {
    std::size_t a_at = 0, b_at = 0;
    for (std::size_t i = 0; i < rank; ++i) {
      a_at += position[i] * a_stride[i];
      b_at += position[i] * b_stride[i];
    }
    plan.a_index[p] = a_at;
    plan.b_index[p] = b_at;
    for (std::size_t i = rank; i-- > 0;) {
      if (++position[i] < batch[i]) break;
      position[i] = 0;
    }
  }
  return plan;
}

/// Calls accumulate(i, p) for every output matrix p made from stored matrix i (index[p] == i),
/// in increasing p for each i. Each stored matrix (so each gradient block) is handled by one
/// thread; different ones may run on different threads.
template <class Accumulate>
void for_each_use(const std::vector<std::size_t>& index, std::size_t stored, bool parallel, Accumulate accumulate) {
  if (index.size() == stored) {  // no broadcast: output p is made from stored matrix p
    kernels::parallel_for(stored, parallel, [&](std::size_t i) { accumulate(i, i); });
    return;
  }
  // Output matrices ordered by the stored matrix they use (a counting sort): stored matrix i's
  // uses are order[first[i]] .. order[first[i + 1] - 1].
  std::vector<std::size_t> first(stored + 1, 0), order(index.size());
  for (std::size_t i : index) ++first[i + 1];
  for (std::size_t i = 0; i < stored; ++i) first[i + 1] += first[i];
  std::vector<std::size_t> next(first.begin(), first.end() - 1);
  for (std::size_t p = 0; p < index.size(); ++p) order[next[index[p]]++] = p;
  kernels::parallel_for(stored, parallel, [&](std::size_t i) {
    for (std::size_t q = first[i]; q < first[i + 1]; ++q) accumulate(i, order[q]);
  });
}

}  // namespace

// C_p = A_a(p) B_b(p) for every output matrix p.
// dA_i = sum over p with a(p) = i of dC_p B_b(p)^T,  dB_j = sum over p with b(p) = j of A_a(p)^T dC_p:
// a broadcast batch axis sums its gradient; a 1-D operand's gradient is its (1, k) or (k, 1) one.
Tensor matmul(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined()) throw Error("matmul: an input tensor is undefined");
  auto plan = std::make_shared<const MatmulPlan>(plan_matmul(a.shape(), b.shape()));
  const std::size_t n = plan->n, k = plan->k, m = plan->m;
  const float* A = a.value().data();  // (a_count, n, k)
  const float* B = b.value().data();  // (b_count, k, m)

  Array out = Array::from_shape(plan->out_shape);  // (count, n, m)
  float* C = out.data();
  if (plan->empty()) {
    out.fill(0.f);
  } else if (plan->folded()) {
    gemm(false, false, plan->a_count * n, m, k, A, B, 0.f, C);
  } else {
    kernels::parallel_for(plan->out_count(), plan->parallel(plan->out_count()), [&](std::size_t p) {
      gemm(false, false, n, m, k, A + plan->a_index[p] * n * k, B + plan->b_index[p] * k * m, 0.f, C + p * n * m);
    });
  }

  auto a_saved = a.saved(), b_saved = b.saved();
  return record("matmul", std::move(out), {a, b}, [plan, a_saved, b_saved](BackwardContext& ctx) {
    if (plan->empty()) {  // a zero-sized product: nothing flows back, but gradients keep their shapes
      if (ctx.needs_grad(0)) ctx.grad_buffer(0);
      if (ctx.needs_grad(1)) ctx.grad_buffer(1);
      return;
    }
    const std::size_t n = plan->n, k = plan->k, m = plan->m;
    const float* A = a_saved->data();           // (a_count, n, k)
    const float* B = b_saved->data();           // (b_count, k, m)
    const float* dC = ctx.grad_output().data();  // (count, n, m)

    if (ctx.needs_grad(0)) {
      float* dA = ctx.grad_buffer(0).data();  // (a_count, n, k)
      if (plan->folded()) {  // dA = dC B^T with A's stack as one matrix: one GEMM
        gemm(false, true, plan->a_count * n, k, m, dC, B, 1.f, dA);
      } else {
        for_each_use(plan->a_index, plan->a_count, plan->parallel(plan->a_count), [&](std::size_t i, std::size_t p) {
          gemm(false, true, n, k, m, dC + p * n * m, B + plan->b_index[p] * k * m, 1.f, dA + i * n * k);
        });
      }
    }
    if (ctx.needs_grad(1)) {
      float* dB = ctx.grad_buffer(1).data();  // (b_count, k, m)
      if (plan->folded()) {  // dB = A^T dC summed over A's stack: one (k, a_count n) x (a_count n, m) GEMM
        gemm(true, false, k, m, plan->a_count * n, A, dC, 1.f, dB);
      } else {
        for_each_use(plan->b_index, plan->b_count, plan->parallel(plan->b_count), [&](std::size_t j, std::size_t p) {
          gemm(true, false, k, m, n, A + plan->a_index[p] * n * k, dC + p * n * m, 1.f, dB + j * k * m);
        });
      }
    }
  });
}

}  // namespace xgrad
