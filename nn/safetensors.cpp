// safetensors reading (validating every header field and byte span before trusting it) and atomic
// writing (temporary file, fsync, rename, fsync of the folder).
#include <xgrad/nn/safetensors.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>
#include <tuple>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <xgrad/core/error.hpp>
#include <xgrad/utils/atomic_file.hpp>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian and is copied as is: a big-endian host needs byte swaps");

namespace xgrad::safetensors {

namespace {

using Json = nlohmann::json;

constexpr std::uint64_t kHeaderLengthBytes = 8;
/// The reference implementation's bound on the header: anything longer is not a checkpoint.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kMetadataKey = "__metadata__";

const Dtype kAllDtypes[] = {Dtype::F64, Dtype::F32, Dtype::F16, Dtype::BF16, Dtype::I64,
                            Dtype::I32, Dtype::I16, Dtype::I8,  Dtype::U8,   Dtype::BOOL};

/// A name or path from the file, quoted, its bytes escaped where they are not printable UTF-8.
std::string quoted(const std::string& text) { return "'" + printable(text) + "'"; }

std::string errno_text() { return std::strerror(errno); }

// --- file descriptors ------------------------------------------------------------------------

/// Owns a POSIX file descriptor.
class Descriptor {
 public:
  explicit Descriptor(int fd = -1) : fd_(fd) {}
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  ~Descriptor() { reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  /// Closes now and reports close's own failure (which can be a delayed write error).
  bool close() {
    const int fd = std::exchange(fd_, -1);
    return fd < 0 || ::close(fd) == 0;
  }
  void reset(int fd = -1) {
    close();
    fd_ = fd;
  }

 private:
  int fd_;
};

/// Largest single read or write request: Linux transfers at most about 2 GiB per call.
constexpr std::size_t kMaxTransfer = std::size_t(1) << 30;

// --- reading ---------------------------------------------------------------------------------

/// Where each tensor's bytes are and how to decode them, once the header has been checked.
struct Span {
  std::string name;
  Dtype dtype;
  Shape shape;
  std::uint64_t begin;  // relative to the start of the data section
  std::uint64_t end;
};

/// Reading context: the path every message names.
class Reader {
 public:
  explicit Reader(std::string path) : path_(std::move(path)) {}

  [[noreturn]] void fail(const std::string& problem) const {
    throw Error(fmt::format("safetensors: {}: {}", quoted(path_), problem));
  }
  [[noreturn]] void fail(const std::string& tensor, const std::string& problem) const {
    fail(fmt::format("tensor {}: {}", quoted(tensor), problem));
  }

  /// Reads exactly `bytes` bytes at `offset` of the file.
  void read_exact(int fd, void* destination, std::uint64_t bytes, std::uint64_t offset) const {
    auto* out = static_cast<unsigned char*>(destination);
    while (bytes > 0) {
      const ssize_t n =
          ::pread(fd, out, std::min<std::uint64_t>(bytes, kMaxTransfer), static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail(fmt::format("read failed at byte {}: {}", offset, errno_text()));
      if (n == 0) {
        fail(fmt::format("the file ends at byte {}, short of what its header announces (changed meanwhile?)",
                         offset));
      }
      out += n;
      bytes -= static_cast<std::uint64_t>(n);
      offset += static_cast<std::uint64_t>(n);
    }
  }

 private:
  std::string path_;
};

/// Parses the header text, rejecting duplicate keys (nlohmann keeps the last one silently) and
/// nesting deeper than a safetensors header has (root / tensor entry / shape array).
Json parse_header(const Reader& reader, const std::string& text) {
  std::vector<std::set<std::string>> keys_seen;  // per open object, by depth
  std::vector<std::string> key_path;             // the key under which each level was opened
  auto check = [&](int depth, Json::parse_event_t event, Json& parsed) {
    const auto level = static_cast<std::size_t>(depth);
    if (event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start) {
      if (level >= 3) reader.fail("header nests deeper than a safetensors header can (3 levels)");
      if (event == Json::parse_event_t::object_start) {
        keys_seen.resize(level + 1);
        keys_seen[level].clear();
      }
    } else if (event == Json::parse_event_t::key) {
      // A key at depth d belongs to the object opened at depth d - 1.
      const std::string& key = parsed.get_ref<const std::string&>();
      key_path.resize(level);
      key_path[level - 1] = key;
      if (!keys_seen[level - 1].insert(key).second) {
        if (level == 1) reader.fail(fmt::format("duplicate entry {} in the header", quoted(key)));
        if (key_path[0] == kMetadataKey) reader.fail(fmt::format("duplicate metadata key {}", quoted(key)));
        reader.fail(key_path[0], fmt::format("duplicate field {}", quoted(key)));
      }
    }
    return true;
  };
  // nlohmann's parser would stop at a NUL byte and ignore whatever follows it.
  const std::size_t nul = text.find('\0');
  if (nul != std::string::npos) {
    reader.fail(fmt::format("malformed JSON header: a NUL byte at header byte {}", nul));
  }
  try {
    return Json::parse(text, check);
  } catch (const Json::exception& e) {
    reader.fail(fmt::format("malformed JSON header: {}", printable(e.what())));
  }
}

Dtype parse_dtype(const Reader& reader, const std::string& tensor, const Json& value) {
  if (!value.is_string()) {
    reader.fail(tensor, fmt::format("dtype is a JSON {}, expected a string", value.type_name()));
  }
  const auto& text = value.get_ref<const std::string&>();
  for (Dtype dtype : kAllDtypes) {
    if (text == dtype_name(dtype)) return dtype;
  }
  std::vector<std::string> names;
  for (Dtype dtype : kAllDtypes) names.push_back(dtype_name(dtype));
  reader.fail(tensor, fmt::format("unknown dtype {} (xgrad reads {})", quoted(text), fmt::join(names, ", ")));
}

/// A JSON value that must be a non-negative integer; `what` names it in the message ("shape[1]").
std::uint64_t parse_size(const Reader& reader, const std::string& tensor, const std::string& what,
                         const Json& value) {
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  if (value.is_number_integer()) reader.fail(tensor, fmt::format("{} is {}, negative", what, value.dump()));
  if (value.is_number()) reader.fail(tensor, fmt::format("{} is {}, not an integer", what, value.dump()));
  reader.fail(tensor,
              fmt::format("{} is a JSON {}, expected a non-negative integer", what, value.type_name()));
}

std::string span_str(std::uint64_t begin, std::uint64_t end) { return fmt::format("[{}, {}]", begin, end); }

/// Checks one tensor entry of the header against itself and the data section's size.
Span parse_entry(const Reader& reader, const std::string& name, const Json& entry, std::uint64_t data_bytes) {
  if (!entry.is_object()) {
    reader.fail(name, fmt::format("entry is a JSON {}, expected an object with dtype, shape and data_offsets",
                                  entry.type_name()));
  }
  for (const auto& [field, value] : entry.items()) {
    if (field != "dtype" && field != "shape" && field != "data_offsets") {
      reader.fail(name, fmt::format("unexpected field {} (a tensor entry has dtype, shape and data_offsets)",
                                    quoted(field)));
    }
  }
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    if (!entry.contains(field)) reader.fail(name, fmt::format("missing field {}", quoted(field)));
  }

  Span span;
  span.name = name;
  span.dtype = parse_dtype(reader, name, entry.at("dtype"));

  const Json& shape = entry.at("shape");
  if (!shape.is_array()) {
    reader.fail(name, fmt::format("shape is a JSON {}, expected an array of non-negative integers",
                                  shape.type_name()));
  }
  for (std::size_t i = 0; i < shape.size(); ++i) {
    span.shape.push_back(parse_size(reader, name, fmt::format("shape[{}]", i), shape[i]));
  }

  const Json& offsets = entry.at("data_offsets");
  if (!offsets.is_array()) {
    reader.fail(name, fmt::format("data_offsets is a JSON {}, expected [begin, end]", offsets.type_name()));
  }
  if (offsets.size() != 2) {
    reader.fail(name, fmt::format("data_offsets has {} entries, expected [begin, end]", offsets.size()));
  }
  span.begin = parse_size(reader, name, "data_offsets[0]", offsets[0]);
  span.end = parse_size(reader, name, "data_offsets[1]", offsets[1]);
  if (span.begin > span.end) {
    reader.fail(name, fmt::format("data_offsets {} begin after they end", span_str(span.begin, span.end)));
  }
  if (span.end > data_bytes) {
    reader.fail(name, fmt::format("data_offsets {} reach beyond the data section, which is {} bytes",
                                  span_str(span.begin, span.end), data_bytes));
  }

  // Bytes the shape needs, without overflow: a zero dimension makes it 0 whatever the others are.
  const bool empty = std::find(span.shape.begin(), span.shape.end(), 0) != span.shape.end();
  std::uint64_t bytes = empty ? 0 : element_size(span.dtype);
  for (std::uint64_t dim : span.shape) {
    if (!empty && __builtin_mul_overflow(bytes, dim, &bytes)) {
      reader.fail(name, fmt::format("shape {} of {} needs more than 2^64 bytes", shape_str(span.shape),
                                    dtype_name(span.dtype)));
    }
  }
  if (bytes != span.end - span.begin) {
    reader.fail(name, fmt::format("shape {} of {} needs {} bytes but data_offsets {} span {}",
                                  shape_str(span.shape), dtype_name(span.dtype), bytes,
                                  span_str(span.begin, span.end), span.end - span.begin));
  }
  return span;
}

/// The spans, ordered by offset, must tile [0, data_bytes) exactly.
void check_coverage(const Reader& reader, std::vector<Span>& spans, std::uint64_t data_bytes) {
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  std::uint64_t covered = 0;
  const Span* previous = nullptr;
  for (const Span& span : spans) {
    if (span.begin < covered) {
      reader.fail(span.name,
                  fmt::format("data_offsets {} overlap those of tensor {} {}", span_str(span.begin, span.end),
                              quoted(previous->name), span_str(previous->begin, previous->end)));
    }
    if (span.begin > covered) {
      const std::string after = previous
                                    ? fmt::format("tensor {} ends at {}", quoted(previous->name), covered)
                                    : std::string("the data section starts at 0");
      reader.fail(span.name,
                  fmt::format("data_offsets {} leave a gap of {} bytes ({}): the data section must be "
                              "covered exactly, span after span",
                              span_str(span.begin, span.end), span.begin - covered, after));
    }
    covered = span.end;
    previous = &span;
  }
  if (covered != data_bytes) {
    reader.fail(
        fmt::format("{} trailing bytes after the last tensor's data: the data section is {} bytes, the "
                    "tensors cover {}",
                    data_bytes - covered, data_bytes, covered));
  }
}

/// float32 from IEEE binary16 bits: exact, as every binary16 value is a float32.
float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1Fu;
  const std::uint32_t mantissa = h & 0x3FFu;
  std::uint32_t bits;
  if (exponent == 0x1F) {
    bits = sign | 0x7F800000u | (mantissa << 13);  // inf, or NaN keeping its payload
  } else if (exponent != 0) {
    bits = sign | ((exponent - 15 + 127) << 23) | (mantissa << 13);  // normal: rebias the exponent
  } else {
    // Zero or subnormal: mantissa * 2^-24, exact in float32.
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

/// float32 from bfloat16 bits: bfloat16 is the top half of a float32.
float bfloat16_to_float(std::uint16_t b) {
  const std::uint32_t bits = std::uint32_t(b) << 16;
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

/// float32 nearest to a double (ties to even); beyond float32's range +-inf.
float double_to_float(double d) {
  // From FLT_MAX + half its ulp on, round-to-nearest-even gives infinity.
  constexpr double kOverflow = 0x1.ffffffp+127;
  constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
  constexpr float kInfinity = std::numeric_limits<float>::infinity();
  if (std::isnan(d)) return std::signbit(d) ? -kNaN : kNaN;
  if (std::fabs(d) >= kOverflow) return std::signbit(d) ? -kInfinity : kInfinity;
  return static_cast<float>(d);
}

template <typename T>
T load(const unsigned char* bytes) {
  T value;
  std::memcpy(&value, bytes, sizeof value);
  return value;
}

/// Decodes `count` elements of a non-F32 floating-point dtype into float32.
void decode_floats(Dtype dtype, const unsigned char* in, float* out, std::size_t count) {
  const std::size_t size = element_size(dtype);
  for (std::size_t i = 0; i < count; ++i, in += size) {
    switch (dtype) {
      case Dtype::F16: out[i] = half_to_float(load<std::uint16_t>(in)); break;
      case Dtype::BF16: out[i] = bfloat16_to_float(load<std::uint16_t>(in)); break;
      case Dtype::F64: out[i] = double_to_float(load<double>(in)); break;
      default: out[i] = load<float>(in); break;
    }
  }
}

/// Decodes `count` elements of an integer or boolean dtype into int64.
void decode_integers(const Reader& reader, const std::string& name, Dtype dtype, const unsigned char* in,
                     std::int64_t* out, std::size_t count) {
  const std::size_t size = element_size(dtype);
  for (std::size_t i = 0; i < count; ++i, in += size) {
    switch (dtype) {
      case Dtype::I32: out[i] = load<std::int32_t>(in); break;
      case Dtype::I16: out[i] = load<std::int16_t>(in); break;
      case Dtype::I8: out[i] = load<std::int8_t>(in); break;
      case Dtype::U8: out[i] = load<std::uint8_t>(in); break;
      case Dtype::BOOL:
        if (*in > 1) {
          reader.fail(name, fmt::format("BOOL element {} is byte {}, expected 0 or 1", i, int(*in)));
        }
        out[i] = *in;
        break;
      default: out[i] = load<std::int64_t>(in); break;
    }
  }
}

// --- writing ---------------------------------------------------------------------------------

/// A tensor to write: borrowed bytes, described by dtype and shape.
struct Outgoing {
  Dtype dtype;
  Shape shape;
  const void* data;
  std::uint64_t bytes;
};

std::uint64_t byte_count(const Shape& shape, std::size_t element) {
  return static_cast<std::uint64_t>(numel_of(shape)) * element;
}

}  // namespace

// --- dtypes ----------------------------------------------------------------------------------

const char* dtype_name(Dtype dtype) {
  switch (dtype) {
    case Dtype::F64: return "F64";
    case Dtype::F32: return "F32";
    case Dtype::F16: return "F16";
    case Dtype::BF16: return "BF16";
    case Dtype::I64: return "I64";
    case Dtype::I32: return "I32";
    case Dtype::I16: return "I16";
    case Dtype::I8: return "I8";
    case Dtype::U8: return "U8";
    case Dtype::BOOL: return "BOOL";
  }
  return "?";
}

std::size_t element_size(Dtype dtype) {
  switch (dtype) {
    case Dtype::F64:
    case Dtype::I64: return 8;
    case Dtype::F32:
    case Dtype::I32: return 4;
    case Dtype::F16:
    case Dtype::BF16:
    case Dtype::I16: return 2;
    case Dtype::I8:
    case Dtype::U8:
    case Dtype::BOOL: return 1;
  }
  return 0;
}

bool is_floating_point(Dtype dtype) {
  return dtype == Dtype::F64 || dtype == Dtype::F32 || dtype == Dtype::F16 || dtype == Dtype::BF16;
}

// --- File ------------------------------------------------------------------------------------

std::vector<std::string> File::keys() const {
  std::vector<std::string> names;
  names.reserve(dtypes_.size());
  for (const auto& entry : dtypes_) names.push_back(entry.first);
  return names;
}

bool File::contains(const std::string& name) const { return dtypes_.count(name) != 0; }

Dtype File::dtype(const std::string& name) const {
  auto found = dtypes_.find(name);
  if (found == dtypes_.end()) {
    throw Error(fmt::format("safetensors: {}: no tensor {}", quoted(path_), quoted(name)));
  }
  return found->second;
}

void File::not_held(const std::string& name) const {
  if (int8_.count(name)) {
    throw Error(fmt::format("safetensors: {}: tensor {} is I8, kept as bytes: use get_int8", quoted(path_),
                            quoted(name)));
  }
  if (std::binary_search(placed_.begin(), placed_.end(), name)) {
    throw Error(fmt::format("safetensors: {}: tensor {} was read into the storage given for it", quoted(path_),
                            quoted(name)));
  }
  throw Error(fmt::format("safetensors: {}: no tensor {}", quoted(path_), quoted(name)));
}

const Array& File::get_tensor(const std::string& name) const {
  auto found = tensors_.find(name);
  if (found != tensors_.end()) return found->second;
  if (indices_.count(name)) {
    throw Error(fmt::format("safetensors: {}: tensor {} is {}, an integer tensor: use get_indices",
                            quoted(path_), quoted(name), dtype_name(dtype(name))));
  }
  not_held(name);
}

const Indices& File::get_indices(const std::string& name) const {
  auto found = indices_.find(name);
  if (found != indices_.end()) return found->second;
  if (tensors_.count(name)) {
    throw Error(fmt::format("safetensors: {}: tensor {} is {}, a floating-point tensor: use get_tensor",
                            quoted(path_), quoted(name), dtype_name(dtype(name))));
  }
  not_held(name);
}

const Int8Tensor& File::get_int8(const std::string& name) const {
  auto found = int8_.find(name);
  if (found != int8_.end()) return found->second;
  if (contains(name)) {
    const bool widened = dtype(name) == Dtype::I8;
    throw Error(fmt::format("safetensors: {}: tensor {} is {}{}", quoted(path_), quoted(name), dtype_name(dtype(name)),
                            widened ? ", widened to int64 (read with Int8Tensors::keep to keep it as bytes): "
                                      "use get_indices"
                                    : ", not I8"));
  }
  throw Error(fmt::format("safetensors: {}: no tensor {}", quoted(path_), quoted(name)));
}

// --- read ------------------------------------------------------------------------------------

File read(const std::string& path, Int8Tensors int8) { return read(path, int8, nullptr); }

File read(const std::string& path, Int8Tensors int8, const Placer& place) {
  const Reader reader(path);
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is rejected just below.
  Descriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) reader.fail(fmt::format("cannot open: {}", errno_text()));
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) reader.fail(fmt::format("cannot stat: {}", errno_text()));
  if (!S_ISREG(info.st_mode)) reader.fail("not a regular file");
  const auto file_bytes = static_cast<std::uint64_t>(info.st_size);

  if (file_bytes < kHeaderLengthBytes) {
    reader.fail(fmt::format("the file is {} bytes, shorter than the 8-byte header length", file_bytes));
  }
  unsigned char length_bytes[kHeaderLengthBytes];
  reader.read_exact(fd.get(), length_bytes, kHeaderLengthBytes, 0);
  std::uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = (header_bytes << 8) | length_bytes[i];
  if (header_bytes > kMaxHeaderBytes) {
    reader.fail(
        fmt::format("header length {} is absurd (more than {} bytes)", header_bytes, kMaxHeaderBytes));
  }
  if (header_bytes > file_bytes - kHeaderLengthBytes) {
    reader.fail(fmt::format("header length {} reaches beyond the end of the file ({} bytes)", header_bytes,
                            file_bytes));
  }
  const std::uint64_t data_start = kHeaderLengthBytes + header_bytes;
  const std::uint64_t data_bytes = file_bytes - data_start;

  std::string text(header_bytes, '\0');
  reader.read_exact(fd.get(), text.data(), header_bytes, kHeaderLengthBytes);
  const Json header = parse_header(reader, text);
  if (!header.is_object()) {
    reader.fail(fmt::format("the header is a JSON {}, expected an object", header.type_name()));
  }

  File file;
  file.path_ = path;
  std::vector<Span> spans;
  for (const auto& [name, entry] : header.items()) {
    if (name == kMetadataKey) {
      if (!entry.is_object()) {
        reader.fail(
            fmt::format("{} is a JSON {}, expected an object of strings", kMetadataKey, entry.type_name()));
      }
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) {
          reader.fail(fmt::format("metadata key {} has a JSON {} value, expected a string", quoted(key),
                                  value.type_name()));
        }
        file.metadata_[key] = value.get<std::string>();
      }
    } else {
      spans.push_back(parse_entry(reader, name, entry, data_bytes));
    }
  }
  check_coverage(reader, spans, data_bytes);

  Placement placement;
  if (place) {
    std::vector<TensorInfo> infos;
    for (const Span& span : spans) infos.push_back({span.name, span.dtype, span.shape});
    std::sort(infos.begin(), infos.end(), [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
    placement = place(infos, file.metadata_);
  }
  std::vector<unsigned char> buffer;
  for (const Span& span : spans) {
    const std::uint64_t bytes = span.end - span.begin;
    const std::size_t count = numel_of(span.shape);
    const std::uint64_t offset = data_start + span.begin;
    file.dtypes_[span.name] = span.dtype;
    if (const auto to = placement.find(span.name); to != placement.end()) {
      if (span.dtype != Dtype::F32 || (bytes > 0 && !to->second)) {
        throw Error(fmt::format("safetensors: {}: tensor {} ({}) cannot be read into the storage given for it",
                                quoted(path), quoted(span.name), dtype_name(span.dtype)));
      }
      reader.read_exact(fd.get(), to->second, bytes, offset);
      file.placed_.push_back(span.name);
      continue;
    }
    if (span.dtype == Dtype::F32) {
      Array values = Array::from_shape(span.shape);
      reader.read_exact(fd.get(), values.data(), bytes, offset);
      file.tensors_.emplace(span.name, std::move(values));
      continue;
    }
    if (span.dtype == Dtype::I8 && int8 == Int8Tensors::keep) {
      Int8Tensor values{span.shape, std::vector<std::int8_t>(count)};
      reader.read_exact(fd.get(), values.values.data(), bytes, offset);
      file.int8_.emplace(span.name, std::move(values));
      continue;
    }
    buffer.resize(bytes);
    reader.read_exact(fd.get(), buffer.data(), bytes, offset);
    if (is_floating_point(span.dtype)) {
      Array values = Array::from_shape(span.shape);
      decode_floats(span.dtype, buffer.data(), values.data(), count);
      file.tensors_.emplace(span.name, std::move(values));
    } else {
      Indices values = Indices::from_shape(span.shape);
      decode_integers(reader, span.name, span.dtype, buffer.data(), values.data(), count);
      file.indices_.emplace(span.name, std::move(values));
    }
  }
  std::sort(file.placed_.begin(), file.placed_.end());
  return file;
}

// --- write -----------------------------------------------------------------------------------

namespace {

/// An F32 tensor to write, from the array's own storage.
Outgoing outgoing_floats(const Array& values) {
  const Shape shape(values.shape().begin(), values.shape().end());
  return Outgoing{Dtype::F32, shape, values.data(), byte_count(shape, sizeof(float))};
}

/// Writes `outgoing` (the F32 tensors, sorted by name: the header's order and the data's), then
/// `indices` and `int8`, as write() documents.
void write_file(const std::string& path, std::map<std::string, Outgoing> outgoing,
                const std::map<std::string, Indices>& indices, const std::map<std::string, std::string>& metadata,
                const std::map<std::string, Int8Tensor>& int8) {
  auto fail = [&](const std::string& problem) {
    throw Error(fmt::format("safetensors: {}: {}", quoted(path), problem));
  };
  for (const auto& [name, values] : indices) {
    if (outgoing.count(name)) {
      fail(fmt::format("tensor {} is both a float and an integer tensor", quoted(name)));
    }
    const Shape shape(values.shape().begin(), values.shape().end());
    outgoing.emplace(name, Outgoing{Dtype::I64, shape, values.data(), byte_count(shape, sizeof(std::int64_t))});
  }
  for (const auto& [name, values] : int8) {
    if (outgoing.count(name)) {
      fail(fmt::format("tensor {} is given twice: as an I8 tensor and as a float or int64 one", quoted(name)));
    }
    if (numel_of(values.shape) != values.values.size()) {
      fail(fmt::format("I8 tensor {} has {} values for a shape {} of {}", quoted(name), values.values.size(),
                       shape_str(Shape(values.shape.begin(), values.shape.end())), numel_of(values.shape)));
    }
    outgoing.emplace(name, Outgoing{Dtype::I8, values.shape, values.values.data(), byte_count(values.shape, 1)});
  }
  if (outgoing.count(kMetadataKey)) {
    fail(fmt::format("{} names the metadata, it cannot name a tensor", quoted(kMetadataKey)));
  }

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : outgoing) {
    header[name] = {{"dtype", dtype_name(tensor.dtype)},
                    {"shape", tensor.shape},
                    {"data_offsets", {offset, offset + tensor.bytes}}};
    offset += tensor.bytes;
  }
  std::string text;
  try {
    text = header.dump(-1, ' ', /*ensure_ascii=*/true);
  } catch (const nlohmann::ordered_json::exception& e) {
    fail(fmt::format("a tensor name or metadata string is not valid UTF-8: {}", printable(e.what())));
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // the data starts 8-byte aligned

  unsigned char length_bytes[kHeaderLengthBytes];
  for (std::size_t i = 0; i < kHeaderLengthBytes; ++i) {
    length_bytes[i] = static_cast<unsigned char>(text.size() >> (8 * i));
  }

  utils::AtomicFile file(path, "safetensors");
  file.append(length_bytes, kHeaderLengthBytes);
  file.append(text.data(), text.size());
  for (const auto& [name, tensor] : outgoing) file.append(tensor.data, tensor.bytes);
  file.commit();
}

}  // namespace

void write(const std::string& path, const std::map<std::string, Array>& tensors,
           const std::map<std::string, Indices>& indices,
           const std::map<std::string, std::string>& metadata, const std::map<std::string, Int8Tensor>& int8) {
  std::map<std::string, Outgoing> outgoing;
  for (const auto& [name, values] : tensors) outgoing.emplace(name, outgoing_floats(values));
  write_file(path, std::move(outgoing), indices, metadata, int8);
}

void write_state(const std::string& path, const std::map<std::string, Tensor>& tensors,
                 const std::map<std::string, std::string>& metadata, const std::map<std::string, Int8Tensor>& int8) {
  std::map<std::string, Outgoing> outgoing;
  for (const auto& [name, tensor] : tensors) outgoing.emplace(name, outgoing_floats(tensor.value()));
  write_file(path, std::move(outgoing), {}, metadata, int8);
}

}  // namespace xgrad::safetensors
