#include <xgrad/autograd/broadcast.hpp>

#include <fmt/format.h>
#include <xtensor/xreducer.hpp>

#include <xgrad/core/error.hpp>

namespace xgrad {

bool has_shape(const Array& array, const Shape& shape) {
  return array.dimension() == shape.size() && std::equal(shape.begin(), shape.end(), array.shape().begin());
}

Array sum_to_shape(Array grad, const Shape& shape) {
  if (has_shape(grad, shape)) return grad;
  const std::size_t rank = grad.dimension();
  if (shape.size() > rank) {
    throw Error(fmt::format("sum_to_shape: cannot reduce a gradient of shape {} to the larger rank of {}",
                            shape_str(shape_of(grad)), shape_str(shape)));
  }
  const std::size_t leading = rank - shape.size();
  std::vector<std::size_t> axes;
  for (std::size_t i = 0; i < rank; ++i) {
    if (i < leading) {
      axes.push_back(i);
    } else if (shape[i - leading] == 1 && grad.shape()[i] != 1) {
      axes.push_back(i);
    } else if (shape[i - leading] != grad.shape()[i]) {
      throw Error(fmt::format("sum_to_shape: a gradient of shape {} is not a broadcast of shape {}",
                              shape_str(shape_of(grad)), shape_str(shape)));
    }
  }
  Array reduced = xt::sum(grad, axes, xt::evaluation_strategy::immediate);
  reduced.reshape(shape);
  return reduced;
}

}  // namespace xgrad
