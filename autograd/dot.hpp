// The tape behind a tensor as a Graphviz DOT graph: what an op graph looks like, for the docs,
// for debugging a model's wiring, for teaching (PyTorch users know it as torchviz's make_dot).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <xgrad/autograd/tensor.hpp>

namespace xgrad {

/// One box per record reachable from root (the op's name and its sequence number), one ellipse
/// per leaf that requires grad (its name in `names`, e.g. model.named_parameters(), else "leaf",
/// and its shape), an arrow from each input to the op that used it, labelled with the input's
/// shape, and the root's shape at the top. Render with `dot -Tsvg graph.dot -o graph.svg`. Call it
/// before backward (which releases the records unless retain_graph).
std::string to_dot(const Tensor& root, const std::vector<std::pair<std::string, Tensor>>& names = {});

}  // namespace xgrad
