// The strided copy: the copy's axes simplified (size-1 axes dropped, axes contiguous on both
// sides merged), a transpose copied in tiles so that both sides move a cache line at a time, and
// the work cut into units shared out among the threads.
#include <xgrad/kernels/strided_copy.hpp>

#include <algorithm>
#include <cstring>

#include <omp.h>

namespace xgrad::kernels {

namespace {

/// One axis of a copy: its size and the element strides on the source and destination sides.
struct CopyAxis {
  std::size_t size;
  std::ptrdiff_t src;
  std::ptrdiff_t dst;
};

constexpr std::size_t kTile = 32;              // a 32 x 32 block of a transpose (4 KB a side) stays in L1
constexpr std::size_t kRowBlock = 1 << 14;     // long rows are cut so that two threads can share one
constexpr std::size_t kParallelMin = 1 << 16;  // 256 KB: below, a copy takes ~10 us, too little to share

template <Write mode>
inline void put(float& to, float from) {
  if constexpr (mode == Write::assign) to = from;
  else to += from;
}

/// dst[i] (=|+=) src[i] for i < n, each side with its own stride.
template <Write mode>
void copy_row(const float* src, std::ptrdiff_t src_stride, float* dst, std::ptrdiff_t dst_stride, std::size_t n) {
  if (src_stride == 1 && dst_stride == 1) {
    if constexpr (mode == Write::assign) {
      std::memcpy(dst, src, n * sizeof(float));
    } else {
#pragma omp simd
      for (std::size_t i = 0; i < n; ++i) dst[i] += src[i];
    }
  } else if (dst_stride == 1) {
    for (std::size_t i = 0; i < n; ++i) put<mode>(dst[i], src[i * src_stride]);
  } else {
    for (std::size_t i = 0; i < n; ++i) put<mode>(dst[i * dst_stride], src[i * src_stride]);
  }
}

/// The copy over axes (outer..., k, l), where l is the last axis and k (when tiled) the axis that
/// is unit-stride on the side where l is not: a transpose, copied in kTile x kTile blocks so both
/// sides are read and written a cache line at a time. The work is cut into units (one position of
/// the outer axes times one block of k or of l) shared out among the threads.
template <Write mode>
void copy_axes(const float* src, float* dst, const std::vector<CopyAxis>& axes, std::size_t tiled_axis,
               bool parallel) {
  const CopyAxis last = axes.back();
  const bool tiled = tiled_axis < axes.size() - 1;
  std::vector<CopyAxis> outer;
  for (std::size_t d = 0; d + 1 < axes.size(); ++d) {
    if (!tiled || d != tiled_axis) outer.push_back(axes[d]);
  }
  const CopyAxis k = tiled ? axes[tiled_axis] : CopyAxis{1, 0, 0};
  std::size_t outer_count = 1;
  for (const CopyAxis& a : outer) outer_count *= a.size;
  const std::size_t block = tiled ? kTile : kRowBlock;
  const std::size_t blocks = tiled ? (k.size + kTile - 1) / kTile : (last.size + kRowBlock - 1) / kRowBlock;

  auto run = [&](std::size_t begin, std::size_t end) {
    if (begin >= end) return;
    // Position of unit `begin` in the outer axes, then an odometer over them.
    std::vector<std::size_t> index(outer.size());
    std::ptrdiff_t src_offset = 0, dst_offset = 0;
    std::size_t rest = begin / blocks;
    for (std::size_t d = outer.size(); d-- > 0;) {
      index[d] = rest % outer[d].size;
      rest /= outer[d].size;
      src_offset += static_cast<std::ptrdiff_t>(index[d]) * outer[d].src;
      dst_offset += static_cast<std::ptrdiff_t>(index[d]) * outer[d].dst;
    }
    std::size_t b = begin % blocks;
    for (std::size_t unit = begin; unit < end; ++unit) {
      const std::size_t lo = b * block;
      if (tiled) {
        const std::size_t k_end = std::min(lo + kTile, k.size);
        for (std::size_t l0 = 0; l0 < last.size; l0 += kTile) {
          const std::size_t n = std::min(kTile, last.size - l0);
          for (std::size_t i = lo; i < k_end; ++i) {
            const std::ptrdiff_t ki = static_cast<std::ptrdiff_t>(i), li = static_cast<std::ptrdiff_t>(l0);
            copy_row<mode>(src + src_offset + ki * k.src + li * last.src, last.src,
                           dst + dst_offset + ki * k.dst + li * last.dst, last.dst, n);
          }
        }
      } else {
        const std::size_t n = std::min(kRowBlock, last.size - lo);
        const auto li = static_cast<std::ptrdiff_t>(lo);
        copy_row<mode>(src + src_offset + li * last.src, last.src, dst + dst_offset + li * last.dst, last.dst, n);
      }
      if (++b == blocks) {
        b = 0;
        for (std::size_t d = outer.size(); d-- > 0;) {
          src_offset += outer[d].src;
          dst_offset += outer[d].dst;
          if (++index[d] < outer[d].size) break;
          src_offset -= static_cast<std::ptrdiff_t>(outer[d].size) * outer[d].src;
          dst_offset -= static_cast<std::ptrdiff_t>(outer[d].size) * outer[d].dst;
          index[d] = 0;
        }
      }
    }
  };

  const std::size_t units = outer_count * blocks;
  if (!parallel || units < 2) {
    run(0, units);
    return;
  }
#pragma omp parallel
  {
    const auto threads = static_cast<std::size_t>(omp_get_num_threads());
    const auto thread = static_cast<std::size_t>(omp_get_thread_num());
    run(units * thread / threads, units * (thread + 1) / threads);
  }
}

}  // namespace

Strides contiguous_strides(const Shape& shape) {
  Strides strides(shape.size());
  std::ptrdiff_t step = 1;
  for (std::size_t d = shape.size(); d-- > 0;) {
    strides[d] = step;
    step *= static_cast<std::ptrdiff_t>(shape[d]);
  }
  return strides;
}

void copy_strided(const float* src, const Strides& src_strides, float* dst, const Strides& dst_strides,
                  const Shape& shape, Write mode) {
  const std::size_t count = numel_of(shape);
  if (count == 0) return;
  // Axes of size 1 move nothing; an axis whose stride on both sides is its inner neighbour's
  // whole extent merges into it. What is left is the copy's true structure.
  std::vector<CopyAxis> axes;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    CopyAxis a{shape[d], src_strides[d], dst_strides[d]};
    if (!axes.empty()) {
      CopyAxis& prev = axes.back();
      const auto n = static_cast<std::ptrdiff_t>(a.size);
      if (prev.src == a.src * n && prev.dst == a.dst * n) {
        prev = CopyAxis{prev.size * a.size, a.src, a.dst};
        continue;
      }
    }
    axes.push_back(a);
  }
  if (axes.empty()) axes.push_back(CopyAxis{1, 1, 1});

  // A transpose: the last axis is unit-stride on one side only, and another axis is unit-stride
  // on the other side.
  std::size_t tiled_axis = axes.size();
  const CopyAxis& last = axes.back();
  if ((last.src == 1) != (last.dst == 1) && last.size >= 4) {
    for (std::size_t d = 0; d + 1 < axes.size(); ++d) {
      const bool unit = last.src == 1 ? axes[d].dst == 1 : axes[d].src == 1;
      if (unit && axes[d].size >= 4) tiled_axis = d;
    }
  }

  bool parallel = count >= kParallelMin && omp_get_max_threads() > 1 && !omp_in_parallel();
  for (const CopyAxis& a : axes) parallel = parallel && a.dst != 0;
  if (mode == Write::assign) copy_axes<Write::assign>(src, dst, axes, tiled_axis, parallel);
  else copy_axes<Write::add>(src, dst, axes, tiled_axis, parallel);
}

}  // namespace xgrad::kernels
