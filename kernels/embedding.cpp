// Embedding's gather (rows over the threads when many elements are copied) and scatter-add
// (serial: two positions may name the same row).
#include <xgrad/kernels/embedding.hpp>

#include <cstring>

#include <xgrad/kernels/parallel.hpp>

namespace xgrad::kernels {

void embedding_forward(const float* table, const std::int64_t* ids, std::size_t L, std::size_t D, float* out) {
  parallel_rows(L, D, [&](std::size_t i) { std::memcpy(out + i * D, table + ids[i] * D, D * sizeof(float)); });
}

void embedding_backward(const float* dout, const std::int64_t* ids, std::size_t L, std::size_t D,
                        std::int64_t padding, float* dtable) {
  for (std::size_t i = 0; i < L; ++i) {
    if (ids[i] == padding) continue;
    float* row = dtable + ids[i] * D;     // (D)
    const float* g_row = dout + i * D;  // (D)
#pragma omp simd
    for (std::size_t d = 0; d < D; ++d) row[d] += g_row[d];
  }
}

}  // namespace xgrad::kernels
