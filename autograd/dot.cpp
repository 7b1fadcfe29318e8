#include <xgrad/autograd/dot.hpp>

#include <map>
#include <set>
#include <vector>

#include <fmt/format.h>

#include <xgrad/autograd/tape.hpp>

namespace xgrad {

namespace {

/// text with quotes and backslashes escaped, for inside a DOT string.
std::string escaped(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

/// A DOT string literal.
std::string quoted(const std::string& text) { return "\"" + escaped(text) + "\""; }

}  // namespace

std::string to_dot(const Tensor& root, const std::vector<std::pair<std::string, Tensor>>& names) {
  std::map<const TensorImpl*, std::string> leaf_names;
  for (const auto& [name, tensor] : names) {
    if (tensor.defined()) leaf_names.emplace(tensor.impl(), name);
  }
  std::string out = "digraph tape {\n  rankdir=BT;\n  node [fontname=\"Helvetica\", fontsize=10];\n";
  out += fmt::format("  output [shape=plaintext, label={}];\n", quoted("output " + shape_str(root.shape())));
  const std::shared_ptr<Node>& start = root.grad_fn();
  if (!start) {
    out += "}\n";
    return out;
  }
  out += fmt::format("  n{} -> output;\n", start->sequence);
  std::set<const Node*> seen{start.get()};
  std::vector<const Node*> work{start.get()};
  std::set<const TensorImpl*> leaves;
  while (!work.empty()) {
    const Node* node = work.back();
    work.pop_back();
    const std::string label = node->released() ? fmt::format("{} #{} (released)", node->name, node->sequence)
                                               : fmt::format("{} #{}", node->name, node->sequence);
    out += fmt::format("  n{} [shape=box, style=rounded, label={}];\n", node->sequence, quoted(label));
    for (const Edge& edge : node->inputs) {
      const std::string shape = quoted(shape_str(edge.shape));
      if (edge.node) {
        out += fmt::format("  n{} -> n{} [label={}];\n", edge.node->sequence, node->sequence, shape);
        if (seen.insert(edge.node.get()).second) work.push_back(edge.node.get());
      } else if (edge.leaf) {
        const TensorImpl* leaf = edge.leaf.get();
        const std::string id = fmt::format("l{}", static_cast<const void*>(leaf));
        out += fmt::format("  {} -> n{} [label={}];\n", quoted(id), node->sequence, shape);
        if (leaves.insert(leaf).second) {
          const auto name = leaf_names.find(leaf);
          const std::string text = escaped(name != leaf_names.end() ? name->second : std::string("leaf")) + "\\n" +
                                   shape_str(shape_of(*leaf->data));
          out += fmt::format("  {} [shape=ellipse, label=\"{}\"];\n", quoted(id), text);
        }
      }
    }
  }
  out += "}\n";
  return out;
}

}  // namespace xgrad
