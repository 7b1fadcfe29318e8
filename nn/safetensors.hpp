// Checkpoints in the safetensors format: an 8-byte little-endian header length N, N bytes of JSON
// giving each tensor's dtype, shape and byte span, then the raw little-endian tensor data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <xgrad/autograd/tensor.hpp>

namespace xgrad::safetensors {

/// The element types xgrad reads. Floating-point tensors load as xgrad::Array (float32), the
/// integer and boolean ones as xgrad::Indices (int64).
enum class Dtype { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

/// The dtype as a header spells it: "F32", "BF16", "BOOL", ...
const char* dtype_name(Dtype dtype);
/// Bytes per element (BOOL is one byte).
std::size_t element_size(Dtype dtype);
/// True for F64, F32, F16 and BF16.
bool is_floating_point(Dtype dtype);

/// An I8 tensor as its bytes, row-major: a quantized checkpoint's weights, which as int64 would
/// take eight times their size.
struct Int8Tensor {
  Shape shape;
  std::vector<std::int8_t> values;
};

/// What read() makes of I8 tensors: int64 Indices like the other integer tensors (widen), or
/// Int8Tensor bytes (keep).
enum class Int8Tensors { widen, keep };

/// The tensors and metadata of a safetensors file, as read() returns them. Names are kept in
/// sorted order, whatever their order in the file.
///
/// Conversions on reading: F32 as is; F16 and BF16 exactly (subnormals, infinities and NaNs
/// included: every such value is a float32); F64 rounded to nearest float32 (beyond float32's
/// range: +-inf). I64, I32, I16, I8 and U8 exactly to int64; BOOL to 0 and 1. I8 stays bytes
/// when read with Int8Tensors::keep.
/// A tensor as the header describes it, before any data is read.
struct TensorInfo {
  std::string name;
  Dtype dtype;
  Shape shape;
};

/// Where read() is to put F32 tensors instead of arrays of its own: by name, storage for exactly
/// the tensor's number of floats.
using Placement = std::map<std::string, float*>;
/// Called by read() once the whole header has been checked and before any data is read, with the
/// header's tensors (in name order) and its metadata; returns the tensors to read straight into
/// given storage (a loader's parameters: no second copy of a model). It may throw to refuse the
/// file, which then has changed nothing.
using Placer = std::function<Placement(const std::vector<TensorInfo>&, const std::map<std::string, std::string>&)>;

class File {
 public:
  /// The path the file was read from.
  const std::string& path() const { return path_; }
  /// Every tensor name, floating-point and integer, sorted.
  std::vector<std::string> keys() const;
  bool contains(const std::string& name) const;
  /// The dtype the tensor has in the file (before conversion).
  Dtype dtype(const std::string& name) const;

  /// A floating-point tensor as float32. Throws xgrad::Error if there is no tensor of that name
  /// or if it is an integer tensor.
  const Array& get_tensor(const std::string& name) const;
  /// An integer or boolean tensor as int64. Throws xgrad::Error if there is no tensor of that
  /// name or if it is a floating-point tensor.
  const Indices& get_indices(const std::string& name) const;
  /// An I8 tensor kept as bytes (read with Int8Tensors::keep). Throws xgrad::Error if there is
  /// no such tensor.
  const Int8Tensor& get_int8(const std::string& name) const;

  /// All floating-point tensors, by name.
  const std::map<std::string, Array>& tensors() const { return tensors_; }
  /// All integer and boolean tensors, by name, but the I8 ones kept as bytes.
  const std::map<std::string, Indices>& indices() const { return indices_; }
  /// The I8 tensors kept as bytes (none unless read with Int8Tensors::keep).
  const std::map<std::string, Int8Tensor>& int8_tensors() const { return int8_; }
  /// Moves the floating-point tensors out of a file that is done with (std::move(file)): a loader
  /// then holds each array once, not the file's and its own copy.
  std::map<std::string, Array> take_tensors() && { return std::move(tensors_); }
  /// The same for the I8 tensors kept as bytes.
  std::map<std::string, Int8Tensor> take_int8_tensors() && { return std::move(int8_); }
  /// The header's "__metadata__", kept as is (empty when the file has none).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  /// The F32 tensors read into the storage a Placer gave (not in tensors()), sorted.
  const std::vector<std::string>& placed() const { return placed_; }

 private:
  friend File read(const std::string& path, Int8Tensors int8, const Placer& place);
  /// Throws why get_tensor or get_indices has no `name` of its kind beyond a tensor of the other
  /// kind: an I8 tensor kept as bytes, a tensor placed in given storage, or none at all.
  [[noreturn]] void not_held(const std::string& name) const;
  std::string path_;
  std::vector<std::string> placed_;
  std::map<std::string, Array> tensors_;
  std::map<std::string, Indices> indices_;
  std::map<std::string, Int8Tensor> int8_;
  std::map<std::string, Dtype> dtypes_;
  std::map<std::string, std::string> metadata_;
};

/// Reads a safetensors file. Nothing in it is trusted: every problem (short file, absurd header
/// length, malformed or ill-typed JSON, duplicate names, unknown dtype, a shape that does not
/// match its byte span, spans that overlap, leave gaps or leave trailing bytes) throws
/// xgrad::Error naming the file, the tensor when there is one, and the problem.
///
/// Data rule, as the reference implementation's: the spans, ordered by offset, must cover the
/// data section exactly, each beginning where the previous one ends, the first at 0 and the last
/// ending at the end of the file. Header fields other than dtype, shape and data_offsets are
/// rejected; BOOL bytes must be 0 or 1.
File read(const std::string& path, Int8Tensors int8 = Int8Tensors::widen);
/// The same, reading the F32 tensors that `place` names straight into the storage it gives.
File read(const std::string& path, Int8Tensors int8, const Placer& place);

/// Writes `tensors` as F32, `indices` as I64 and `int8` as I8, with `metadata` as the header's
/// "__metadata__" (omitted when empty). An int8 tensor's values must number its shape's size. Names are sorted and the data lies contiguously in header order. The
/// header is padded with spaces to a multiple of 8 bytes.
///
/// The write is atomic: the bytes go to a uniquely named temporary file in the target's folder,
/// which is flushed to disk and then renamed over `path`, and the folder is synced. On failure
/// the temporary file is removed and any previous file at `path` is left as it was.
void write(const std::string& path, const std::map<std::string, Array>& tensors,
           const std::map<std::string, Indices>& indices = {},
           const std::map<std::string, std::string>& metadata = {},
           const std::map<std::string, Int8Tensor>& int8 = {});

/// The same for tensors (a module's state_dict), written from their own storage: no copy of the
/// model is made to save it.
void write_state(const std::string& path, const std::map<std::string, Tensor>& tensors,
                 const std::map<std::string, std::string>& metadata = {},
                 const std::map<std::string, Int8Tensor>& int8 = {});

}  // namespace xgrad::safetensors
