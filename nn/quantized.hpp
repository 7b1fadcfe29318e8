// int8 inference for the linear layers of any model, as torch.ao.quantization.quantize_dynamic:
// weights held in int8 with one scale per output row, activations quantized per row on the fly,
// products accumulated in int32, results in fp32 (the scheme and its error bound:
// kernels/quantize.hpp). Layer norm, softmax, attention and the residual stream stay fp32.
//
//   nn::quantize_dynamic(model);     // every Linear, attention projection and output projection
//   NoGradGuard no_grad;             // int8 runs where no gradient is recorded
//   model.forward(...)
//
// By default a quantized layer keeps its fp32 weight: with gradients recorded (training) it runs in
// fp32, and its int8 copy is remade when the fp32 weight has changed since (its version counter).
// quantize_dynamic(model, Fp32Weights::release) frees the fp32 weights instead, as PyTorch's
// quantize_dynamic does, for a model that only runs inference: those weights then take a quarter
// of their fp32 memory (and a scale per row). A weight that another layer also uses (an output
// projection tied to the embedding) keeps its fp32 values.
//
// A model that will only decode from an int8 checkpoint need not make fp32 weights at all: built
// while an Int8WeightsOnly guard is alive, its layers start as released ones and take their int8
// values from the file (load_quantized; models::load_int8 does both).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <xgrad/autograd/tensor.hpp>
#include <xgrad/kernels/quantize.hpp>
#include <xgrad/nn/functional.hpp>
#include <xgrad/nn/module.hpp>
#include <xgrad/nn/safetensors.hpp>

namespace xgrad::nn {

/// An fp32 weight (out, in) and its int8 copy, made when first asked for and remade when the
/// weight has changed since; or, once released, the int8 values alone.
class Int8Weight {
 public:
  explicit Int8Weight(Tensor weight);
  /// A weight that never had fp32 values: `weight` is (out, 0), its int8 values (out, in) come
  /// later through assign(). Until then get() throws.
  static std::shared_ptr<Int8Weight> without_fp32(Tensor weight, std::size_t in);
  const kernels::QuantizedWeight& get() const;
  /// Takes these int8 values as the copy of the weight as it is now (a quantized checkpoint's).
  void assign(kernels::QuantizedWeight quantized);
  /// Quantizes the weight if not yet done, then frees its fp32 values: the parameter keeps its
  /// number of rows and no columns, (out, 0), and the layer runs only in int8.
  void release();
  bool released() const { return released_; }
  const Tensor& weight() const { return weight_; }
  std::size_t rows() const { return rows_; }  ///< out
  std::size_t cols() const { return cols_; }  ///< in, also once the fp32 values are gone
  /// Throws xgrad::Error, naming `layer`, when the fp32 weight was released: for the layers' fp32
  /// paths (gradients recorded).
  void require_fp32(const char* layer) const;

 private:
  Tensor weight_;
  std::size_t rows_ = 0, cols_ = 0;
  mutable kernels::QuantizedWeight quantized_;
  mutable std::uint64_t version_ = 0;
  bool released_ = false;
};

/// A layer whose weights can run in int8 for inference.
class Quantizable {
 public:
  virtual ~Quantizable() = default;
  virtual void quantize_int8() = 0;
  virtual bool is_quantized() const = 0;
  /// The int8 copies, by the name of their fp32 parameter in this layer (empty until quantized).
  virtual std::vector<std::pair<std::string, Int8Weight*>> int8_weights() const = 0;
};

/// While one is alive, the quantizable layers built on this thread (Linear, MultiheadAttention's
/// input projection, a Transformer's untied output projection) make no fp32 weight: each starts
/// as a released one, (out, 0), and runs in int8 once a quantized checkpoint has given it its
/// values (load_quantized). Used to load an int8 file for decoding without ever allocating the
/// fp32 weights (models::load_int8). A weight shared with another layer (an output projection
/// tied to the embedding) is made as usual.
class Int8WeightsOnly {
 public:
  Int8WeightsOnly();
  ~Int8WeightsOnly();
  Int8WeightsOnly(const Int8WeightsOnly&) = delete;
  Int8WeightsOnly& operator=(const Int8WeightsOnly&) = delete;
  /// Whether a guard is alive on this thread.
  static bool active();
};

/// The weight (out, in) a quantizable layer's constructor registers: make() (the fp32 weight,
/// initialized), or, while an Int8WeightsOnly guard is alive, an (out, 0) stand-in, `int8` then
/// set to the Int8Weight that waits for a quantized checkpoint's values.
Tensor quantizable_weight(std::size_t out, std::size_t in, std::shared_ptr<Int8Weight>& int8,
                          const std::function<Tensor()>& make);

/// What quantize_dynamic does with the fp32 weights it quantizes.
enum class Fp32Weights {
  keep,     ///< kept: the model still trains and saves in fp32 (1.25 times those weights' memory)
  release,  ///< freed, unless another layer uses the same weight: an inference-only model
};

/// Quantizes every Quantizable module of `model` (itself included). Returns how many.
std::size_t quantize_dynamic(Module& model, Fp32Weights fp32 = Fp32Weights::keep);
/// Whether any layer of `model` is quantized.
bool is_quantized(const Module& model);
/// The names of the weights whose fp32 values quantize_dynamic released.
std::vector<std::string> released_weights(const Module& model);

/// A quantized model's file: its state_dict with every quantized weight W stored as W.int8 (I8,
/// (out, in)) and W.scale (F32, (out)) instead of its fp32 values (a quarter of the bytes), and
/// {"quantization": "int8"} added to `metadata`. Atomic, as nn::save.
void save_quantized(const Module& model, const std::string& path, std::map<std::string, std::string> metadata);
/// Reads such a file into `model` (of the file's configuration): quantizes the model, takes every
/// W.int8 and W.scale as W's int8 copy (exactly the saved numbers) and their product as W's fp32
/// value (a W tied to a parameter the file holds in fp32 keeps that parameter's values; a
/// released W, or one built under Int8WeightsOnly, keeps none), and loads the other tensors
/// strictly. xgrad::Error names what is missing or mis-shaped.
void load_quantized(Module& model, const safetensors::File& file);
/// The same, taking the file's arrays rather than copying them.
void load_quantized(Module& model, safetensors::File&& file);

namespace functional {
/// act(x W[first .. first + count)^T + b[first ..]) with W in int8: x (..., in) -> (..., count).
/// Records no gradient (call it where none is recorded). bias (rows) or undefined.
Tensor quantized_linear(const Tensor& x, const kernels::QuantizedWeight& weight, const Tensor& bias,
                        std::size_t first, std::size_t count, Activation activation = Activation::none);
}  // namespace functional

}  // namespace xgrad::nn
