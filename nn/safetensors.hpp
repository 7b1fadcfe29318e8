// Checkpoints in the safetensors format: an 8-byte little-endian header length N, N bytes of JSON
// giving each tensor's dtype, shape and byte span, then the raw little-endian tensor data.
#pragma once

#include <cstddef>
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

/// The tensors and metadata of a safetensors file, as read() returns them. Names are kept in
/// sorted order, whatever their order in the file.
///
/// Conversions on reading: F32 as is; F16 and BF16 exactly (subnormals, infinities and NaNs
/// included: every such value is a float32); F64 rounded to nearest float32 (beyond float32's
/// range: +-inf). I64, I32, I16, I8 and U8 exactly to int64; BOOL to 0 and 1.
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

  /// All floating-point tensors, by name.
  const std::map<std::string, Array>& tensors() const { return tensors_; }
  /// All integer and boolean tensors, by name.
  const std::map<std::string, Indices>& indices() const { return indices_; }
  /// The header's "__metadata__", kept as is (empty when the file has none).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  friend File read(const std::string& path);
  std::string path_;
  std::map<std::string, Array> tensors_;
  std::map<std::string, Indices> indices_;
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
File read(const std::string& path);

/// Writes `tensors` as F32 and `indices` as I64 (or as I8 for the names `int8_names` lists, whose
/// values must then fit in [-128, 127]), with `metadata` as the header's "__metadata__"
/// (omitted when empty). Names are sorted and the data lies contiguously in header order. The
/// header is padded with spaces to a multiple of 8 bytes.
///
/// The write is atomic: the bytes go to a uniquely named temporary file in the target's folder,
/// which is flushed to disk and then renamed over `path`, and the folder is synced. On failure
/// the temporary file is removed and any previous file at `path` is left as it was.
void write(const std::string& path, const std::map<std::string, Array>& tensors,
           const std::map<std::string, Indices>& indices = {},
           const std::map<std::string, std::string>& metadata = {},
           const std::vector<std::string>& int8_names = {});

}  // namespace xgrad::safetensors
