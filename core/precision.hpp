// The precision the matrix products compute in: fp32, or bf16 inputs with fp32 accumulation
// under an autocast scope (as torch.autocast):
//
//   {
//     xgrad::autocast bf16(xgrad::Precision::bf16);
//     loss = model.loss(...);      // GEMMs and attention: bf16 inputs, fp32 sums and outputs
//     loss.backward();             // the gradients' GEMMs too; gradients stay fp32 tensors
//   }
//   optimizer.step();              // master weights and optimizer state: fp32 always
//
// Everything else (layer norm and its statistics, softmax, the loss, the residual stream) stays
// fp32. The setting is process-wide (the kernels' worker threads see it), not per thread.
#pragma once

#include <string>

namespace xgrad {

enum class Precision { fp32, bf16 };

/// "fp32" or "bf16"; precision_from_name throws xgrad::Error on another name.
const char* precision_name(Precision precision);
Precision precision_from_name(const std::string& name);

/// The precision of the matrix products now.
Precision autocast_precision();

/// Sets the matrix products' precision for its scope, then puts back the previous one. When the
/// outermost scope ends, what the scopes cached is dropped (the bf16 copies of weights that bf16
/// products keep between calls, as torch.autocast's weight cache).
class autocast {
 public:
  explicit autocast(Precision precision);
  ~autocast();
  autocast(const autocast&) = delete;
  autocast& operator=(const autocast&) = delete;

 private:
  Precision previous_;
};

/// Registers a function that drops a cache kept for autocast's products; it runs when the
/// outermost autocast scope ends.
void on_autocast_exit(void (*drop_cache)());

}  // namespace xgrad
