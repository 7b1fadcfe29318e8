#include <xgrad/kernels/bf16.hpp>

#include <xgrad/kernels/parallel.hpp>

namespace xgrad::kernels {

void round_bf16(const float* in, std::size_t n, float* out) {
  parallel_blocks(n, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) out[i] = round_bf16(in[i]);
  });
}

}  // namespace xgrad::kernels
