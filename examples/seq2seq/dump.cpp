// `seq2seq dump`: one batch's logits, loss and gradients, to compare with another framework.
//
//   seq2seq dump --model M.safetensors --batch B.safetensors --out O.safetensors
//     Reads int64 tensors src (B,S), tgt_in (B,T), tgt_out (B,T) from B, runs the model in eval
//     mode, computes the mean cross-entropy over positions where tgt_out != pad_id, runs
//     backward, and writes logits, loss and grad.<parameter name> for every parameter to O:
//     what to compare with another framework on the same weights and batch.
#include "seq2seq.hpp"

#include <xgrad/xgrad.hpp>

#include <cstdio>
#include <map>
#include <string>

namespace seq2seq {

using namespace xgrad;

namespace {

/// An int64 tensor of the batch file, checked for presence and rank 2.
Indices batch_tensor(const safetensors::File& batch, const std::string& name) {
  if (!batch.contains(name)) {
    throw Error("seq2seq dump: '" + batch.path() + "' has no tensor '" + name + "' (expected int64 src, tgt_in, tgt_out)");
  }
  const Indices& ids = batch.get_indices(name);
  if (ids.dimension() != 2) {
    throw Error("seq2seq dump: '" + batch.path() + "': tensor '" + name + "' must be (B, L), got rank " +
                std::to_string(ids.dimension()));
  }
  return ids;
}

}  // namespace

int dump_command(const std::string& model_path, const std::string& batch_path, const std::string& out_path) {
  std::shared_ptr<models::Transformer> model = models::load_model(model_path);
  model->eval();
  const safetensors::File batch = safetensors::read(batch_path);
  const Indices src = batch_tensor(batch, "src");
  const Indices tgt_in = batch_tensor(batch, "tgt_in");
  const Indices tgt_out = batch_tensor(batch, "tgt_out");

  Tensor logits = model->forward(src, tgt_in);  // (B, T, V)
  const std::size_t vocab = logits.size(-1);
  CrossEntropyOptions options;
  options.ignore_index = model->config().pad_id;
  Indices targets = tgt_out;
  targets.reshape({targets.size()});
  Tensor loss = cross_entropy(reshape(logits, {-1, static_cast<std::int64_t>(vocab)}), targets, options);
  model->zero_grad();
  loss.backward();

  std::map<std::string, Array> out{{"logits", logits.value()}, {"loss", loss.value()}};
  for (const auto& [name, parameter] : model->named_parameters()) {
    const Tensor grad = parameter.grad();
    out.emplace("grad." + name, grad.defined() ? grad.value() : xt::zeros_like(parameter.value()));
  }
  safetensors::write(out_path, out, {}, {{"format", "pt"}});
  std::printf("loss %.6f over %zu target positions; wrote logits, loss and %zu gradients to %s\n", loss.item(),
              targets.size(), model->named_parameters().size(), out_path.c_str());
  return 0;
}

}  // namespace seq2seq
