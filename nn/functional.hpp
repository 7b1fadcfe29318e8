// nn::functional: the stateless forms of the layers (torch.nn.functional). The modules in nn/
// hold parameters and call these.
//
// Dimension legend: B = batch, T = query (target) length, S = key (source) length,
// D = model width, H = heads, dk = D / H per head.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <xgrad/autograd/ops/dropout.hpp>
#include <xgrad/autograd/ops/embedding.hpp>
#include <xgrad/autograd/ops/layer_norm.hpp>
#include <xgrad/autograd/tensor.hpp>

namespace xgrad::nn::functional {

using xgrad::dropout;
using xgrad::embedding;
using xgrad::add_layer_norm;
using xgrad::layer_norm;

/// The activation a layer applies to its linear map's output.
enum class Activation { none, relu, gelu };

/// "relu" or "gelu" (a config's activation) as an Activation; another name throws xgrad::Error.
/// Layers resolve the name once, when they are built.
Activation activation_from_name(const std::string& name);
/// "none", "relu" or "gelu".
const char* activation_name(Activation activation);

/// y = act(x W^T + b).   x (..., in), weight (out, in), bias (out) or undefined -> y (..., out).
/// One GEMM with W^T as a transpose flag; backward: dx = dz W, dW += dz^T x, db += sum of dz's
/// rows, with dz = dy (no activation) or dy o [y > 0] (ReLU). The ReLU is fused: the bias and the
/// clamp are one pass after the GEMM, and the op ("linear_relu") keeps y for its mask; GELU is
/// gelu(linear(x, weight, bias)).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              Activation activation = Activation::none);

/// linear with rows [start, start + count) of weight (and of bias, if defined), read in place:
/// what linear(x, narrow(weight, 0, start, count), narrow(bias, 0, start, count)) computes, without
/// copying the blocks. Their gradients go into the same rows of the whole weight's and bias's.
/// x (..., in), weight (rows, in), bias (rows) or undefined -> y (..., count).
Tensor linear_rows(const Tensor& x, const Tensor& weight, const Tensor& bias, std::size_t start, std::size_t count);

/// While one lives (on any thread), linear and linear_rows give their fp32 products of a few rows
/// (kPackedMinRows to kPackedRows: a decoding step's, one row per sequence or beam) a copy of each
/// weight packed once for them (kernels::pack_weight), where the GEMM library would pack W again on
/// every call and kernels::skinny_linear reads W as stored: 1.1-3x the speed of either on those
/// products (bench_gemm --skinny). Greedy, sampled and beam decoding hold one while their steps
/// run; a loop of one's own over IncrementalDecoder or a KV cache can too. Backward is unchanged.
///
/// A copy is kept while its weight lives and its value is unchanged, so that the next decode finds
/// it made: as many floats as the weights used (release_packed_weights() frees them; a freed
/// weight's copy goes when the outermost guard ends). It is made again when the value changes (its
/// version, counted by mutable_value(), or its storage): writes through a reference taken before
/// the packing are not seen, as for bf16 autocast's copies.
class PackedWeightsGuard {
 public:
  PackedWeightsGuard();
  ~PackedWeightsGuard();
  PackedWeightsGuard(const PackedWeightsGuard&) = delete;
  PackedWeightsGuard& operator=(const PackedWeightsGuard&) = delete;
};

/// Frees the packed copies PackedWeightsGuard keeps (a guard living now makes them again).
void release_packed_weights();

/// The fewest and the most rows of x for which linear uses the packed weights under a
/// PackedWeightsGuard (measured: bench_gemm --skinny). One row reads W once either way, at the
/// speed W streams from memory, so a packed copy would only add memory (greedy decoding at batch
/// 1: 37 -> 49 MB of peak, no faster); above kPackedRows the GEMM library's own packing costs
/// little beside the product.
constexpr std::size_t kPackedMinRows = 2, kPackedRows = 128;

struct AttentionOptions {
  /// Additive mask added to the scores before softmax, (T, S) for every batch and head or
  /// (B*H, T, S); -inf blocks a position (e.g. the causal mask).
  std::optional<Array> attn_mask;
  /// (B, S): true marks a key to ignore (padding), as PyTorch's key_padding_mask.
  std::optional<Mask> key_padding_mask;
  float dropout_p = 0.f;  ///< dropout on the attention weights, when training
  bool training = false;
  Generator* generator = nullptr;  ///< for the dropout mask (default generator if null)
  bool need_weights = false;       ///< also return the weights averaged over heads
  /// Use only the first num_keys keys of k and v (0: all of them): k and v may hold more, as a
  /// KV cache with room to grow does. The masks then cover S = num_keys keys; the gradient of
  /// the keys and values beyond is 0.
  std::size_t num_keys = 0;
};

struct AttentionResult {
  Tensor output;   // (B, T, H*dv)
  Tensor weights;  // (B, T, S), averaged over heads; defined only with need_weights (no gradient)
};

/// Multi-head scaled dot-product attention, "Attention Is All You Need" 3.2, with the H heads
/// side by side in the last axis (head h uses columns [h*dk, (h+1)*dk)):
///   A_h = softmax(Q_h K_h^T / sqrt(dk) + mask),  out_h = dropout(A_h) V_h.
/// q (B, T, H*dk), k (B, S, H*dk), v (B, S, H*dv) -> (B, T, H*dv). A query row whose keys are all
/// masked attends to nothing: its weights and output are 0 (never NaN). One fused kernel per
/// (batch, head); heads are read in place by their row strides, never copied. Backward, with P = A_h:
///   dV = P^T dO,  dP = dO V^T,  dS = P o (dP - rowsum(dP o P)),  dQ = dS K / sqrt(dk),  dK = dS^T Q / sqrt(dk).
AttentionResult scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, std::int64_t num_heads,
                                             const AttentionOptions& options = {});
/// Keys and values kept by position, as a decoder's cache shared between the beams of a search
/// keeps them: position s holds keys[s] (N_s, H*dk) and values[s] (N_s, H*dv), one row per
/// sequence fed there, and padding[s] (N_s), true for a key to ignore (or null: none). Query row
/// b reads row index[b * length + s] of every position s < length, so beams that share a prefix
/// share its rows and nothing is copied when beams are reordered.
struct GatheredKeyValues {
  std::size_t length = 0;                       // positions
  std::vector<const Array*> keys, values;       // (length) each
  std::vector<const Mask*> padding;             // (length), entries may be null
  const std::vector<std::uint32_t>* index = nullptr;  // (B * length)
  /// Runs of this many consecutive query rows mostly read the same rows (the beams of one
  /// source): they are taken together per head, so the rows they share are read from cache.
  std::size_t group = 1;
};

/// One query per row attending to the keys and values its row gathers, for decoding: records no
/// gradient. q (B, 1, H*dk) -> (B, 1, H*dv); per head,
///   out_b = sum_s softmax_s(q_b . keys[s][index(b, s)] / sqrt(dk)) values[s][index(b, s)],
/// a row whose keys are all masked giving 0. Sizes and indices are checked (xgrad::Error).
Tensor gathered_attention(const Tensor& q, const GatheredKeyValues& kv, std::int64_t num_heads);

/// The causal mask of `length` new queries at positions past .. past + length - 1 against `past`
/// earlier keys and the new ones: (T, past + T), 0 where key j <= past + i, -inf after (a query
/// sees no later key). With past = 0, the (T, T) mask of a whole sequence.
Array causal_mask(std::size_t length, std::size_t past = 0);

}  // namespace xgrad::nn::functional
