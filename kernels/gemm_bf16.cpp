// kernels::gemm_bf16: products of bf16 inputs summed in fp32. On a CPU with bf16 instructions
// (AVX512_BF16, AMX) the operands are converted to bf16 and multiplied by oneDNN's bf16 matmul;
// elsewhere the fp32 GEMM multiplies copies rounded to bf16 values. Both give the same numbers up
// to the order of the fp32 sums (a product of two bf16 values is exact in fp32).
#include <xgrad/kernels/gemm.hpp>

#include <cstdint>
#include <cstring>
#include <exception>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include <dnnl.hpp>
#include <fmt/format.h>
#if defined(__AVX512BF16__)
#include <immintrin.h>
#endif

#include <xgrad/core/error.hpp>
#include <xgrad/kernels/bf16.hpp>
#include <xgrad/kernels/column_split.hpp>

namespace xgrad::kernels {

namespace {

using Bf16 = std::uint16_t;  // a bf16 value's bits: fp32's upper half

/// x rounded to bf16 (round_bf16's rule), as its 16 bits.
inline Bf16 bf16_bits(float x) {
  std::uint32_t bits;
  const float rounded = round_bf16(x);
  std::memcpy(&bits, &rounded, sizeof bits);
  // A NaN whose payload sits in the lower half stays NaN: its top mantissa bit is set (quiet).
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0) bits |= 0x00400000u;
  return static_cast<Bf16>(bits >> 16);
}

/// out[i] = the bf16 of in[i], n values. With AVX512_BF16 the conversion instruction does 32 at
/// a time (the same rounding, except that it takes fp32 subnormals, below 1.2e-38, as zeros).
void to_bf16(const float* in, std::size_t n, Bf16* out) {
  std::size_t i = 0;
#if defined(__AVX512BF16__)
  for (; i + 32 <= n; i += 32) {
    const __m512bh pair = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(in + i + 16), _mm512_loadu_ps(in + i));
    _mm512_storeu_si512(out + i, reinterpret_cast<__m512i>(pair));
  }
#endif
  for (; i < n; ++i) out[i] = bf16_bits(in[i]);
}

/// A rows x cols operand with row stride ld, converted to bf16 (kernels::to_bf16) into a dense
/// buffer of this thread's (kept between calls).
const Bf16* dense_bf16(const float* X, std::size_t rows, std::size_t cols, std::size_t ld, std::vector<Bf16>& buffer) {
  if (buffer.size() < rows * cols) buffer.resize(rows * cols);
  kernels::to_bf16(X, rows, cols, ld, buffer.data());
  return buffer.data();
}

/// oneDNN's bf16 matmul with every dimension given at run time: one primitive per transposition
/// and beta (created once per thread), whatever the shapes. A dense row-major operand is 'ab', a
/// transposed one 'ba'; C is dense; alpha is a run-time output scale and beta a sum post-op.
class Bf16Matmul {
 public:
  Bf16Matmul() : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {}

  void operator()(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, float alpha,
                  const Bf16* A, const Bf16* B, float beta, float* C) {
    using dnnl::memory;
    const auto dim = [](std::size_t n) { return static_cast<memory::dim>(n); };
    const memory::desc a({dim(M), dim(K)}, memory::data_type::bf16, trans_a ? memory::format_tag::ba : memory::format_tag::ab);
    const memory::desc b({dim(K), dim(N)}, memory::data_type::bf16, trans_b ? memory::format_tag::ba : memory::format_tag::ab);
    const memory::desc c({dim(M), dim(N)}, memory::data_type::f32, memory::format_tag::ab);
    const memory::desc scale({1}, memory::data_type::f32, memory::format_tag::a);
    // oneDNN's memory objects take non-const handles; it only reads A, B and the scale.
    memory a_memory(a, engine_, const_cast<Bf16*>(A)), b_memory(b, engine_, const_cast<Bf16*>(B)),
        c_memory(c, engine_, C), scale_memory(scale, engine_, &alpha);
    primitive(trans_a, trans_b, beta)
        .execute(stream_, {{DNNL_ARG_SRC, a_memory},
                           {DNNL_ARG_WEIGHTS, b_memory},
                           {DNNL_ARG_DST, c_memory},
                           {DNNL_ARG_ATTR_OUTPUT_SCALES, scale_memory}});
    stream_.wait();
  }

 private:
  dnnl::matmul& primitive(bool trans_a, bool trans_b, float beta) {
    const auto key = std::make_tuple(trans_a, trans_b, beta);
    auto found = primitives_.find(key);
    if (found != primitives_.end()) return found->second;
    using dnnl::memory;
    const memory::dim any = DNNL_RUNTIME_DIM_VAL;
    const memory::desc a({any, any}, memory::data_type::bf16, trans_a ? memory::format_tag::ba : memory::format_tag::ab);
    const memory::desc b({any, any}, memory::data_type::bf16, trans_b ? memory::format_tag::ba : memory::format_tag::ab);
    const memory::desc c({any, any}, memory::data_type::f32, memory::format_tag::ab);
    dnnl::primitive_attr attr;
    attr.set_output_scales(0, {DNNL_RUNTIME_F32_VAL});
    if (beta != 0.f) {
      dnnl::post_ops sum;
      sum.append_sum(beta);
      attr.set_post_ops(sum);
    }
    const dnnl::matmul::primitive_desc description(dnnl::matmul::desc(a, b, c), attr, engine_);
    return primitives_.emplace(key, dnnl::matmul(description)).first->second;
  }

  dnnl::engine engine_;
  dnnl::stream stream_;
  std::map<std::tuple<bool, bool, float>, dnnl::matmul> primitives_;
};

/// This thread's matmul, and its buffer for C (or for its block of C's columns) when C's rows
/// are not contiguous. Functions, not thread_local names in gemm_bf16: a worker thread of the
/// column split reaches its own objects, constructed on its first call.
Bf16Matmul& thread_matmul() {
  thread_local Bf16Matmul matmul;
  return matmul;
}

std::vector<float>& c_buffer() {
  thread_local std::vector<float> buffer;
  return buffer;
}

/// The stored span of a rows x cols operand with row stride ld, rounded to bf16 values (as
/// fp32), into a buffer of this thread's.
const float* rounded_copy(const float* X, std::size_t rows, std::size_t cols, std::size_t ld, std::vector<float>& buffer) {
  const std::size_t span = (rows - 1) * ld + cols;
  if (buffer.size() < span) buffer.resize(span);
  round_bf16(X, span, buffer.data());
  return buffer.data();
}

}  // namespace

bool bf16_gemm_native() {
  static const bool native = [] {
    const unsigned isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
    const unsigned bf16 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
    return (isa & bf16) == bf16;  // oneDNN's ISAs are nested bit sets: AMX includes AVX512_BF16
  }();
  return native;
}

void to_bf16(const float* X, std::size_t rows, std::size_t cols, std::size_t ld, std::uint16_t* out) {
  for (std::size_t r = 0; r < rows; ++r) to_bf16(X + r * ld, cols, out + r * cols);
}

void gemm_bf16(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, float alpha, const float* A,
               std::size_t lda, const float* B, std::size_t ldb, float beta, float* C, std::size_t ldc) {
  if (M == 0 || N == 0 || K == 0) {
    gemm_fp32(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);  // no products: beta C
    return;
  }
  if (!bf16_gemm_native()) {
    thread_local std::vector<float> a_rounded, b_rounded;
    A = rounded_copy(A, trans_a ? K : M, trans_a ? M : K, lda, a_rounded);
    B = rounded_copy(B, trans_b ? N : K, trans_b ? K : N, ldb, b_rounded);
    gemm_fp32(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  thread_local std::vector<Bf16> b_bf16;
  gemm_bf16(trans_a, trans_b, M, N, K, alpha, A, lda, dense_bf16(B, trans_b ? N : K, trans_b ? K : N, ldb, b_bf16),
            beta, C, ldc);
}

void gemm_bf16(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, float alpha, const float* A,
               std::size_t lda, const std::uint16_t* B, float beta, float* C, std::size_t ldc) {
  if (M == 0 || N == 0) return;
  if (!bf16_gemm_native()) throw Error("gemm_bf16: operands in bf16 need a CPU with bf16 instructions (AVX512_BF16, AMX)");
  thread_local std::vector<Bf16> a_bf16;
  const Bf16* a = dense_bf16(A, trans_a ? K : M, trans_a ? M : K, lda, a_bf16);
  const auto add_into_c = [&](const float* part, std::size_t n0, std::size_t n) {  // C's columns [n0, n0 + n)
    for (std::size_t i = 0; i < M; ++i) {
      const float* t = part + i * n;
      float* row = C + i * ldc + n0;
      if (beta == 0.f) std::memcpy(row, t, n * sizeof(float));
      else for (std::size_t j = 0; j < n; ++j) row[j] = t[j] + beta * row[j];
    }
  };
  const auto failed = [&](const char* what) {
    return Error(fmt::format("gemm_bf16: oneDNN's bf16 matmul failed ({}) for op(A) ({}, {}){} x op(B) ({}, {}){}",
                             what, M, K, trans_a ? " transposed" : "", K, N, trans_b ? " transposed" : ""));
  };
  // Few rows of a B stored (N, K): each thread the rows of B, columns of C, of its block (the
  // matmul's own split of 32 rows over 2 threads gains nothing: docs/PERFORMANCE.md).
  if (trans_b) {
    std::string failure;
    const bool split = split_columns(M, N, [&](std::size_t n0, std::size_t n1) {
      const std::size_t n = n1 - n0;
      try {  // (nothing may leave the parallel region: a failure is recorded)
        std::vector<float>& part = c_buffer();
        if (part.size() < M * n) part.resize(M * n);
        thread_matmul()(trans_a, true, M, n, K, alpha, a, B + n0 * K, 0.f, part.data());
        add_into_c(part.data(), n0, n);
      } catch (const std::exception& e) {
#pragma omp critical(xgrad_gemm_status)
        failure = e.what();
      }
    });
    if (!failure.empty()) throw failed(failure.c_str());
    if (split) return;
  }
  std::vector<float>& c_dense = c_buffer();
  try {
    if (ldc == N) {
      thread_matmul()(trans_a, trans_b, M, N, K, alpha, a, B, beta, C);
      return;
    }
    if (c_dense.size() < M * N) c_dense.resize(M * N);
    thread_matmul()(trans_a, trans_b, M, N, K, alpha, a, B, 0.f, c_dense.data());
  } catch (const dnnl::error& e) {
    throw failed(e.what());
  }
  add_into_c(c_dense.data(), 0, N);
}

}  // namespace xgrad::kernels
