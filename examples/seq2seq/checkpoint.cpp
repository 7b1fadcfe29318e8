// Loading a checkpoint of the seq2seq program: the model and the tokenizer it was trained with.
#include "seq2seq.hpp"

#include <filesystem>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/models/checkpoint.hpp>
#include <xgrad/training/run_folder.hpp>

namespace seq2seq {

namespace fs = std::filesystem;
using xgrad::Error;

Checkpoint load_checkpoint(const std::string& path, bool int8) {
  Checkpoint checkpoint;
  checkpoint.dir = xgrad::training::resolve_checkpoint(path);
  const std::string model_path = (fs::path(checkpoint.dir) / "model.safetensors").string();
  checkpoint.model = int8 ? xgrad::models::load_int8<xgrad::models::Transformer>(model_path)
                          : xgrad::models::load_model(model_path);
  checkpoint.model->eval();
  checkpoint.tokenizer = xgrad::data::load_tokenizer(checkpoint.dir);
  const auto& config = checkpoint.model->config();
  const std::size_t vocab = checkpoint.tokenizer->vocab_size();
  if (vocab != config.src_vocab || vocab != config.tgt_vocab) {
    throw Error(fmt::format("'{}': the tokenizer has {} tokens but the model's vocabularies have {} (source) and {} "
                            "(target): they do not belong together",
                            checkpoint.dir, vocab, config.src_vocab, config.tgt_vocab));
  }
  return checkpoint;
}

}  // namespace seq2seq
