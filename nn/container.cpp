#include <xgrad/nn/container.hpp>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>

namespace xgrad::nn::detail {

void throw_index_out_of_range(std::size_t index, std::size_t size) {
  throw Error(fmt::format("ModuleList: index {} is out of range for a list of {} modules", index, size));
}

}  // namespace xgrad::nn::detail
