// safetensors: round trips, files built byte by byte for every dtype, every malformed case with
// its message, atomic writes under failure and SIGKILL, the reference writer's file, and a fuzz.
#include <doctest/doctest.h>

#include "temp_dir.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xgrad/core/error.hpp>
#include <xgrad/nn/safetensors.hpp>

using namespace xgrad;
namespace fs = std::filesystem;
using safetensors::Dtype;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();


using Bytes = std::string;

template <typename T>
void append_le(Bytes& out, T value) {
  char raw[sizeof(T)];
  std::memcpy(raw, &value, sizeof(T));  // the host is little-endian, as the format
  out.append(raw, sizeof(T));
}

template <typename T>
Bytes le_bytes(std::initializer_list<T> values) {
  Bytes out;
  for (T v : values) append_le(out, v);
  return out;
}

/// A whole file: the header's length, the header as given (no padding added), the data.
Bytes file_bytes(const std::string& header, const Bytes& data = "") {
  Bytes out;
  append_le<std::uint64_t>(out, header.size());
  return out + header + data;
}

Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// What read() says about a file holding `bytes`; "" when it loads.
std::string error_for(const TempDir& dir, const Bytes& bytes) {
  const std::string path = dir.write("case.safetensors", bytes);
  try {
    safetensors::read(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

/// Checks that reading `bytes` fails with a message naming the file and containing `problem`.
void check_rejected(const Bytes& bytes, const std::string& problem) {
  TempDir dir("safetensors");
  const std::string message = error_for(dir, bytes);
  INFO("message: ", message);
  CHECK(message.find("'" + dir.file("case.safetensors") + "': ") != std::string::npos);
  CHECK(message.find(problem) != std::string::npos);
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

bool same_bits(const Array& a, const Array& b) {
  return a.shape() == b.shape() &&
         (a.size() == 0 || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

const std::string kOneTensor = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
const Bytes kTwoFloats = le_bytes<float>({1.f, 2.f});

}  // namespace

// --- round trips -----------------------------------------------------------------------------

TEST_CASE("write then read gives back floats, integers and metadata exactly") {
  TempDir dir("safetensors");
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::map<std::string, Array> tensors = {
      {"layer.weight", Array{{1.5f, -2.f, 0.f}, {-0.f, kInf, -kInf}}},
      {"layer.bias", Array{nan, 1e-45f, std::numeric_limits<float>::max()}},
      {"scalar", Array(3.25f)},
      {"empty", Array::from_shape({0, 3})},
  };
  std::map<std::string, Indices> indices = {
      {"ids", Indices{{0, -1},
                      {std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()}}},
      {"steps", Indices{42}},
  };
  std::map<std::string, std::string> metadata = {{"format", "pt"},
                                                 {"config", R"({"d_model": 4, "name": "caf\u00e9"})"},
                                                 {"empty", ""},
                                                 {"unicode", "\xcf\x80 \xe2\x82\xac"}};
  const std::string path = dir.file("model.safetensors");
  safetensors::write(path, tensors, indices, metadata);

  const safetensors::File file = safetensors::read(path);
  CHECK(file.path() == path);
  CHECK(file.keys() ==
        std::vector<std::string>{"empty", "ids", "layer.bias", "layer.weight", "scalar", "steps"});
  CHECK(file.metadata() == metadata);
  for (const auto& [name, values] : tensors) {
    CHECK(file.dtype(name) == Dtype::F32);
    CHECK(same_bits(file.get_tensor(name), values));
  }
  CHECK(file.get_tensor("scalar").dimension() == 0);
  CHECK(file.get_tensor("empty").shape() == std::vector<std::size_t>{0, 3});
  for (const auto& [name, values] : indices) {
    CHECK(file.dtype(name) == Dtype::I64);
    CHECK(file.get_indices(name) == values);
  }
  CHECK(file.tensors().size() == 4);
  CHECK(file.indices().size() == 2);
  CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});  // no temporary file left
}

TEST_CASE("the writer's bytes: sorted names, F32 and I64, contiguous data, header padded to 8") {
  TempDir dir("safetensors");
  const std::string path = dir.file("layout.safetensors");
  safetensors::write(path, {{"b", Array{1.f, 2.f}}, {"a", Array{{3.f, 4.f}}}}, {{"c", Indices{7}}},
                     {{"k", "v"}});
  const Bytes bytes = read_bytes(path);
  std::uint64_t header_length = 0;
  std::memcpy(&header_length, bytes.data(), 8);
  const std::string header = R"({"__metadata__":{"k":"v"},)"
                             R"("a":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},)"
                             R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
                             R"("c":{"dtype":"I64","shape":[1],"data_offsets":[16,24]}})";
  CHECK(header_length % 8 == 0);
  CHECK(header_length == header.size() + (8 - header.size() % 8) % 8);
  CHECK(bytes.substr(8, header_length) == header + std::string(header_length - header.size(), ' '));
  CHECK(bytes.substr(8 + header_length) ==
        le_bytes<float>({3.f, 4.f, 1.f, 2.f}) + le_bytes<std::int64_t>({7}));
}

TEST_CASE("no metadata: the header has no __metadata__ and read gives an empty map") {
  TempDir dir("safetensors");
  const std::string path = dir.file("plain.safetensors");
  safetensors::write(path, {{"w", Array{1.f}}});
  CHECK(read_bytes(path).find("__metadata__") == std::string::npos);
  CHECK(safetensors::read(path).metadata().empty());
}

TEST_CASE("write over an existing file replaces it") {
  TempDir dir("safetensors");
  const std::string path = dir.file("model.safetensors");
  safetensors::write(path, {{"old", Array{1.f}}});
  safetensors::write(path, {{"new", Array{2.f, 3.f}}});
  const auto file = safetensors::read(path);
  CHECK(file.keys() == std::vector<std::string>{"new"});
  CHECK(file.get_tensor("new") == Array{2.f, 3.f});
  CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
}

TEST_CASE("a written file gets the permissions of any new file (umask), not a temporary file's 0600") {
  TempDir dir("safetensors");
  dir.write("reference", "x");
  safetensors::write(dir.file("model.safetensors"), {{"w", Array{1.f}}});
  CHECK(fs::status(dir.file("model.safetensors")).permissions() ==
        fs::status(dir.file("reference")).permissions());
}

// --- files built byte by byte: every dtype ---------------------------------------------------

TEST_CASE("F16 converts exactly: normals, subnormals, zeros, infinities, NaN") {
  TempDir dir("safetensors");
  const Bytes data = le_bytes<std::uint16_t>(
      {0x3C00, 0xC000, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0x3555, 0x8001});
  dir.write("f16", file_bytes(R"({"h":{"dtype":"F16","shape":[3,4],"data_offsets":[0,24]}})", data));
  const auto file = safetensors::read(dir.file("f16"));
  CHECK(file.dtype("h") == Dtype::F16);
  const Array& h = file.get_tensor("h");
  REQUIRE(h.shape() == std::vector<std::size_t>{3, 4});
  CHECK(h(0, 0) == 1.f);
  CHECK(h(0, 1) == -2.f);
  CHECK(h(0, 2) == std::ldexp(1.f, -24));     // smallest subnormal
  CHECK(h(0, 3) == std::ldexp(1023.f, -24));  // largest subnormal
  CHECK(h(1, 0) == std::ldexp(1.f, -14));     // smallest normal
  CHECK(h(1, 1) == 65504.f);                  // largest finite
  CHECK(same_bits(h(1, 2), -0.f));
  CHECK(h(1, 3) == kInf);
  CHECK(h(2, 0) == -kInf);
  CHECK(std::isnan(h(2, 1)));
  CHECK(h(2, 2) == 1365.f / 4096.f);  // 0x3555 = (1 + 341/1024) / 4
  CHECK(h(2, 3) == -std::ldexp(1.f, -24));
}

TEST_CASE("BF16 converts exactly: the top half of a float32") {
  TempDir dir("safetensors");
  const Bytes data =
      le_bytes<std::uint16_t>({0x3F80, 0xC040, 0x4049, 0x0001, 0x8000, 0x7F80, 0xFF80, 0x7FC0});
  dir.write("bf16", file_bytes(R"({"b":{"dtype":"BF16","shape":[8],"data_offsets":[0,16]}})", data));
  const auto file = safetensors::read(dir.file("bf16"));
  CHECK(file.dtype("b") == Dtype::BF16);
  const Array& b = file.get_tensor("b");
  CHECK(b(0) == 1.f);
  CHECK(b(1) == -3.f);
  CHECK(b(2) == 3.140625f);
  CHECK(b(3) == std::ldexp(1.f, -133));  // subnormal
  CHECK(same_bits(b(4), -0.f));
  CHECK(b(5) == kInf);
  CHECK(b(6) == -kInf);
  CHECK(std::isnan(b(7)));
}

TEST_CASE("F64 rounds to the nearest float32, overflowing to infinity") {
  TempDir dir("safetensors");
  const double flt_max = std::numeric_limits<float>::max();
  const Bytes data = le_bytes<double>({1.5, -0.1, 1e300, -1e300, std::nan(""), 1e-50, flt_max,
                                       flt_max + std::ldexp(1.0, 102), 0x1.ffffffp+127, -0.0});
  dir.write("f64", file_bytes(R"({"d":{"dtype":"F64","shape":[10],"data_offsets":[0,80]}})", data));
  const auto file = safetensors::read(dir.file("f64"));
  CHECK(file.dtype("d") == Dtype::F64);
  const Array& d = file.get_tensor("d");
  CHECK(d(0) == 1.5f);
  CHECK(d(1) == -0.1f);
  CHECK(d(2) == kInf);
  CHECK(d(3) == -kInf);
  CHECK(std::isnan(d(4)));
  CHECK(same_bits(d(5), 0.f));
  CHECK(d(6) == std::numeric_limits<float>::max());
  CHECK(d(7) == std::numeric_limits<float>::max());  // below the halfway point: rounds down
  CHECK(d(8) == kInf);                               // the halfway point: ties to even, i.e. infinity
  CHECK(same_bits(d(9), -0.f));
}

TEST_CASE("I32, I16, I8, U8 and BOOL read as int64; names come back sorted") {
  TempDir dir("safetensors");
  // Listed in the header out of name order and out of data order.
  const std::string header = R"({"u8":{"dtype":"U8","shape":[2],"data_offsets":[28,30]},)"
                             R"("i32":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]},)"
                             R"("mask":{"dtype":"BOOL","shape":[4],"data_offsets":[30,34]},)"
                             R"("i8":{"dtype":"I8","shape":[2],"data_offsets":[26,28]},)"
                             R"("i16":{"dtype":"I16","shape":[5],"data_offsets":[16,26]}})";
  const Bytes data = le_bytes<std::int32_t>({std::numeric_limits<std::int32_t>::min(), -1, 0,
                                             std::numeric_limits<std::int32_t>::max()}) +
                     le_bytes<std::int16_t>({-32768, -1, 0, 1, 32767}) + le_bytes<std::int8_t>({-128, 127}) +
                     le_bytes<std::uint8_t>({0, 255}) + le_bytes<std::uint8_t>({0, 1, 1, 0});
  dir.write("ints", file_bytes(header, data));
  const auto file = safetensors::read(dir.file("ints"));
  CHECK(file.keys() == std::vector<std::string>{"i16", "i32", "i8", "mask", "u8"});
  CHECK(file.dtype("i32") == Dtype::I32);
  CHECK(file.dtype("i16") == Dtype::I16);
  CHECK(file.dtype("i8") == Dtype::I8);
  CHECK(file.dtype("u8") == Dtype::U8);
  CHECK(file.dtype("mask") == Dtype::BOOL);
  CHECK(file.get_indices("i32") == Indices{{-2147483648LL, -1}, {0, 2147483647}});
  CHECK(file.get_indices("i16") == Indices{-32768, -1, 0, 1, 32767});
  CHECK(file.get_indices("i8") == Indices{-128, 127});
  CHECK(file.get_indices("u8") == Indices{0, 255});
  CHECK(file.get_indices("mask") == Indices{0, 1, 1, 0});
  CHECK(file.tensors().empty());
}

TEST_CASE("dtype helpers") {
  CHECK(std::string(safetensors::dtype_name(Dtype::BF16)) == "BF16");
  CHECK(std::string(safetensors::dtype_name(Dtype::BOOL)) == "BOOL");
  CHECK(safetensors::element_size(Dtype::F64) == 8);
  CHECK(safetensors::element_size(Dtype::F16) == 2);
  CHECK(safetensors::element_size(Dtype::BOOL) == 1);
  CHECK(safetensors::is_floating_point(Dtype::BF16));
  CHECK_FALSE(safetensors::is_floating_point(Dtype::U8));
}

TEST_CASE("File lookups name the file and the tensor when they fail") {
  TempDir dir("safetensors");
  const std::string path = dir.file("m.safetensors");
  safetensors::write(path, {{"w", Array{1.f}}}, {{"ids", Indices{1}}});
  const auto file = safetensors::read(path);
  CHECK(file.contains("w"));
  CHECK_FALSE(file.contains("v"));
  CHECK_THROWS_WITH_AS(file.get_tensor("v"), doctest::Contains(("'" + path + "': no tensor 'v'").c_str()),
                       Error);
  CHECK_THROWS_WITH_AS(file.get_indices("v"), doctest::Contains("no tensor 'v'"), Error);
  CHECK_THROWS_WITH_AS(file.dtype("v"), doctest::Contains("no tensor 'v'"), Error);
  CHECK_THROWS_WITH_AS(file.get_tensor("ids"),
                       doctest::Contains("tensor 'ids' is I64, an integer tensor: use get_indices"), Error);
  CHECK_THROWS_WITH_AS(file.get_indices("w"),
                       doctest::Contains("tensor 'w' is F32, a floating-point tensor: use get_tensor"),
                       Error);
}

// --- the reference writer's file -------------------------------------------------------------

TEST_CASE("a file written by the reference PyTorch writer reads exactly") {
  // tests/fixtures/make_safetensors_fixture.py: insertion order, "__metadata__" last.
  const auto file = safetensors::read(XGRAD_FIXTURES_DIR "/reference_writer.safetensors");
  CHECK(file.keys() ==
        std::vector<std::string>{"empty", "encoder.bias", "encoder.weight", "scale", "token_ids"});
  CHECK(file.metadata() ==
        std::map<std::string, std::string>{
            {"format", "pt"}, {"config", R"({"d_model": 4, "activation": "relu", "dropout": 0.1})"}});
  Array weight = Array::from_shape({3, 4});
  for (std::size_t k = 0; k < 12; ++k) weight.data()[k] = static_cast<float>(k) / 8.f - 0.75f;
  CHECK(file.get_tensor("encoder.weight") == weight);
  const Array& bias = file.get_tensor("encoder.bias");
  REQUIRE(bias.size() == 5);
  CHECK(same_bits(bias(0), -0.f));
  CHECK(bias(1) == std::numeric_limits<float>::denorm_min());
  CHECK(bias(2) == std::numeric_limits<float>::max());
  CHECK(bias(3) == -kInf);
  CHECK(bias(4) == 3.14159265358979f);
  CHECK(file.get_tensor("scale") == Array(2.5f));
  CHECK(file.get_tensor("empty").shape() == std::vector<std::size_t>{0, 3});
  CHECK(file.get_indices("token_ids") ==
        Indices{{0, -1, 7},
                {std::int64_t(1) << 62, std::numeric_limits<std::int64_t>::min(),
                 std::numeric_limits<std::int64_t>::max()}});
  for (const auto& name : file.keys()) {
    CHECK(file.dtype(name) == (name == "token_ids" ? Dtype::I64 : Dtype::F32));
  }
}

// --- malformed files -------------------------------------------------------------------------

TEST_CASE("a valid hand-built file loads, so the cases below fail for their one defect") {
  TempDir dir("safetensors");
  CHECK(error_for(dir, file_bytes(kOneTensor, kTwoFloats)) == "");
  CHECK(error_for(dir, file_bytes(kOneTensor + "      ", kTwoFloats)) == "");  // padding is whitespace
}

TEST_CASE("rejected: files too short for the header length") {
  check_rejected("", "the file is 0 bytes, shorter than the 8-byte header length");
  check_rejected(Bytes("\x10\0\0\0\0", 5), "the file is 5 bytes, shorter than the 8-byte header length");
}

TEST_CASE("rejected: header lengths beyond the file or absurd") {
  Bytes bytes = file_bytes(kOneTensor, kTwoFloats);
  Bytes longer = bytes;
  longer[0] = static_cast<char>(kOneTensor.size() + 9);  // one byte more than the file holds
  check_rejected(longer, "header length " + std::to_string(kOneTensor.size() + 9) +
                             " reaches beyond the end of the file (" + std::to_string(bytes.size()) +
                             " bytes)");
  Bytes absurd;
  append_le<std::uint64_t>(absurd, 100'000'001);
  check_rejected(absurd + "{}", "header length 100000001 is absurd (more than 100000000 bytes)");
  Bytes huge;
  append_le<std::uint64_t>(huge, std::numeric_limits<std::uint64_t>::max());
  check_rejected(huge, "header length 18446744073709551615 is absurd");
}

TEST_CASE("rejected: malformed JSON, a header that is not an object, bad metadata") {
  check_rejected(file_bytes(R"({"w":{"dtype":"F32",)"), "malformed JSON header");
  check_rejected(file_bytes(""), "malformed JSON header");
  check_rejected(file_bytes(Bytes("{}\0 ", 4)), "malformed JSON header: a NUL byte at header byte 2");
  check_rejected(file_bytes("{\"\xff\":1}"), "malformed JSON header");  // not UTF-8
  {
    // The message shows the bad byte escaped, never raw.
    TempDir dir("safetensors");
    const std::string message = error_for(dir, file_bytes("{\"ok\xff\xfe\":1}"));
    INFO("message: ", message);
    CHECK(message.find("\\xff") != std::string::npos);
    CHECK(message.find('\xff') == std::string::npos);
    CHECK(message.find('\xfe') == std::string::npos);
  }
  check_rejected(file_bytes("[1,2]"), "the header is a JSON array, expected an object");
  check_rejected(file_bytes(R"({"__metadata__":{"format":"pt","epoch":3}})"),
                 "metadata key 'epoch' has a JSON number value, expected a string");
  check_rejected(file_bytes(R"({"__metadata__":["pt"]})"),
                 "__metadata__ is a JSON array, expected an object of strings");
  check_rejected(file_bytes(R"({"__metadata__":{"k":[[1]]}})"),
                 "header nests deeper than a safetensors header can");
}

TEST_CASE("rejected: missing, unknown and ill-typed fields") {
  check_rejected(file_bytes(R"({"w":[1]})"), "tensor 'w': entry is a JSON array, expected an object");
  check_rejected(file_bytes(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", kTwoFloats),
                 "tensor 'w': missing field 'shape'");
  check_rejected(file_bytes(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", kTwoFloats),
                 "tensor 'w': missing field 'dtype'");
  check_rejected(file_bytes(R"({"w":{"dtype":"F32","shape":[2]}})", kTwoFloats),
                 "tensor 'w': missing field 'data_offsets'");
  check_rejected(
      file_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"offset":0}})", kTwoFloats),
      "tensor 'w': unexpected field 'offset'");
  check_rejected(file_bytes(R"({"w":{"dtype":32,"shape":[2],"data_offsets":[0,8]}})", kTwoFloats),
                 "tensor 'w': dtype is a JSON number, expected a string");
  check_rejected(
      file_bytes(R"({"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", "ab"),
      "tensor 'w': unknown dtype 'F8_E4M3' (xgrad reads F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
  check_rejected(file_bytes(R"({"w":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}})", kTwoFloats),
                 "unknown dtype 'f32'");
  check_rejected(file_bytes(R"({"w":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", kTwoFloats),
                 "tensor 'w': shape is a JSON string, expected an array of non-negative integers");
  check_rejected(file_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":{"begin":0}}})", kTwoFloats),
                 "tensor 'w': data_offsets is a JSON object, expected [begin, end]");
  check_rejected(file_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}})", kTwoFloats),
                 "tensor 'w': data_offsets has 3 entries, expected [begin, end]");
  check_rejected(file_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,"8"]}})", kTwoFloats),
                 "tensor 'w': data_offsets[1] is a JSON string, expected a non-negative integer");
}

TEST_CASE("rejected: negative or non-integer shape entries and offsets") {
  check_rejected(file_bytes(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", kTwoFloats),
                 "tensor 'w': shape[0] is -2, negative");
  check_rejected(file_bytes(R"({"w":{"dtype":"F32","shape":[1,2.0],"data_offsets":[0,8]}})", kTwoFloats),
                 "tensor 'w': shape[1] is 2.0, not an integer");
  check_rejected(file_bytes(R"({"w":{"dtype":"F32","shape":[2,null],"data_offsets":[0,8]}})", kTwoFloats),
                 "tensor 'w': shape[1] is a JSON null, expected a non-negative integer");
  check_rejected(file_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", kTwoFloats),
                 "tensor 'w': data_offsets[0] is -8, negative");
  check_rejected(
      file_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551616]}})", kTwoFloats),
      "tensor 'w': data_offsets[1] is 1.8446744073709552e+19, not an integer");
}

TEST_CASE("rejected: shape x dtype size different from the byte span, overflow included") {
  check_rejected(file_bytes(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,8]}})", kTwoFloats),
                 "tensor 'w': shape [2,3] of F32 needs 24 bytes but data_offsets [0, 8] span 8");
  check_rejected(file_bytes(R"({"w":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}})", kTwoFloats),
                 "tensor 'w': shape [2] of F64 needs 16 bytes but data_offsets [0, 8] span 8");
  // 2^32 * 2^32 * 4 bytes wraps to 0 in 64-bit arithmetic: it must not pass for an empty tensor.
  check_rejected(file_bytes(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})"),
                 "tensor 'w': shape [4294967296,4294967296] of F32 needs more than 2^64 bytes");
  check_rejected(file_bytes(R"({"w":{"dtype":"BF16","shape":[9223372036854775808],"data_offsets":[0,0]}})"),
                 "needs more than 2^64 bytes");
  // A zero dimension makes the tensor empty whatever the other dimensions are.
  TempDir dir("safetensors");
  CHECK(error_for(
            dir,
            file_bytes(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})")) ==
        "");
}

TEST_CASE("rejected: offsets out of range, reversed, overlapping, leaving gaps or trailing bytes") {
  check_rejected(file_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", kTwoFloats),
                 "tensor 'w': data_offsets [4, 12] reach beyond the data section, which is 8 bytes");
  check_rejected(file_bytes(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", kTwoFloats),
                 "tensor 'w': data_offsets [8, 0] begin after they end");
  const Bytes three = le_bytes<float>({1.f, 2.f, 3.f});
  check_rejected(file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                            three),
                 "tensor 'b': data_offsets [4, 12] overlap those of tensor 'a' [0, 8]");
  check_rejected(file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})",
                            kTwoFloats),
                 "tensor 'b': data_offsets [4, 4] overlap those of tensor 'a' [0, 8]");
  check_rejected(file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                            R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                            three),
                 "tensor 'b': data_offsets [8, 12] leave a gap of 4 bytes (tensor 'a' ends at 4)");
  check_rejected(file_bytes(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", kTwoFloats),
                 "tensor 'w': data_offsets [4, 8] leave a gap of 4 bytes (the data section starts at 0)");
  check_rejected(
      file_bytes(kOneTensor, kTwoFloats + "xyz"),
      "3 trailing bytes after the last tensor's data: the data section is 11 bytes, the tensors cover 8");
  check_rejected(file_bytes("{}", "x"), "1 trailing bytes after the last tensor's data");
}

TEST_CASE("spans may be listed in any order: the rule is on their offsets") {
  TempDir dir("safetensors");
  const std::string header = R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
                             R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  dir.write("any_order", file_bytes(header, kTwoFloats));
  const auto file = safetensors::read(dir.file("any_order"));
  CHECK(file.get_tensor("a") == Array{1.f});
  CHECK(file.get_tensor("b") == Array{2.f});
}

TEST_CASE("rejected: duplicate names, fields and metadata keys") {
  check_rejected(file_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                            kTwoFloats),
                 "duplicate entry 'w' in the header");
  check_rejected(
      file_bytes(R"({"w":{"dtype":"F16","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", kTwoFloats),
      "tensor 'w': duplicate field 'dtype'");
  check_rejected(file_bytes(R"({"__metadata__":{"k":"a","k":"b"}})"), "duplicate metadata key 'k'");
  check_rejected(file_bytes(R"({"__metadata__":{},"__metadata__":{}})"),
                 "duplicate entry '__metadata__' in the header");
}

TEST_CASE("rejected: BOOL bytes other than 0 and 1") {
  check_rejected(
      file_bytes(R"({"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})", Bytes("\x01\x02\x00", 3)),
      "tensor 'm': BOOL element 1 is byte 2, expected 0 or 1");
}

TEST_CASE("rejected: paths that are no regular file, without waiting on a FIFO") {
  TempDir dir("safetensors");
  CHECK_THROWS_WITH_AS(safetensors::read(dir.file("missing")), doctest::Contains("cannot open: No such file"),
                       Error);
  fs::create_directory(dir.file("folder"));
  CHECK_THROWS_WITH_AS(safetensors::read(dir.file("folder")), doctest::Contains("not a regular file"), Error);
  REQUIRE(::mkfifo(dir.file("fifo").c_str(), 0600) == 0);
  CHECK_THROWS_WITH_AS(safetensors::read(dir.file("fifo")), doctest::Contains("not a regular file"), Error);
}

// --- writer errors and atomicity -------------------------------------------------------------

TEST_CASE("write rejects bad names and text before touching the disk") {
  TempDir dir("safetensors");
  const std::string path = dir.file("m.safetensors");
  CHECK_THROWS_WITH_AS(safetensors::write(path, {{"x", Array{1.f}}}, {{"x", Indices{1}}}),
                       doctest::Contains("tensor 'x' is both a float and an integer tensor"), Error);
  CHECK_THROWS_WITH_AS(safetensors::write(path, {{"__metadata__", Array{1.f}}}),
                       doctest::Contains("'__metadata__' names the metadata, it cannot name a tensor"),
                       Error);
  CHECK_THROWS_WITH_AS(safetensors::write(path, {{"w", Array{1.f}}}, {}, {{"k", "\xff"}}),
                       doctest::Contains("a tensor name or metadata string is not valid UTF-8"), Error);
  CHECK(dir.entries().empty());
  CHECK_THROWS_WITH_AS(safetensors::write(dir.file("no/such/folder/m.safetensors"), {{"w", Array{1.f}}}),
                       doctest::Contains("cannot create the temporary file"), Error);
}

namespace {
/// Lowers this process's file size limit for its lifetime, with SIGXFSZ ignored so that a write
/// beyond the limit fails with EFBIG instead of killing the process.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved_) == 0);
    previous_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    rlimit lowered = saved_;
    lowered.rlim_cur = bytes;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &lowered) == 0);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    ::signal(SIGXFSZ, previous_handler_);
  }

 private:
  rlimit saved_{};
  void (*previous_handler_)(int) = nullptr;
};
}  // namespace

TEST_CASE("a write that fails midway leaves the previous file intact and no temporary file") {
  TempDir dir("safetensors");
  const std::string path = dir.file("model.safetensors");
  safetensors::write(path, {{"w", Array{1.f, 2.f, 3.f}}}, {}, {{"step", "1"}});
  const Bytes before = read_bytes(path);

  // 1 MB of data against a 64 kB limit: the write fails after 64 kB have reached the disk.
  Array big = Array::from_shape({256 * 1024});
  std::fill(big.begin(), big.end(), 7.f);
  {
    FileSizeLimit limit(64 * 1024);
    CHECK_THROWS_WITH_AS(safetensors::write(path, {{"w", big}}, {}, {{"step", "2"}}),
                         doctest::Contains("writing the temporary file failed"), Error);
  }
  CHECK(read_bytes(path) == before);
  const auto file = safetensors::read(path);
  CHECK(file.get_tensor("w") == Array{1.f, 2.f, 3.f});
  CHECK(file.metadata().at("step") == "1");
  CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
}

TEST_CASE("a write that fails at the rename removes its temporary file") {
  TempDir dir("safetensors");
  fs::create_directory(dir.file("model.safetensors"));  // a folder where the file should go
  CHECK_THROWS_WITH_AS(safetensors::write(dir.file("model.safetensors"), {{"w", Array{1.f}}}),
                       doctest::Contains("renaming the temporary file over the target failed"), Error);
  CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
}

#if defined(__x86_64__)
/// Runs `body` in a child process traced with ptrace and kills the child with SIGKILL as it enters
/// its `occurrence`-th system call numbered one of `calls`. Returns "killed", "finished" (the
/// child ended first) or why tracing was not possible.
std::string kill_at_syscall(const std::function<void()>& body, const std::vector<long>& calls, int occurrence) {
  const pid_t child = ::fork();
  if (child < 0) return "fork failed";
  if (child == 0) {
    if (::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) ::_exit(3);
    ::raise(SIGSTOP);
    try {
      body();
    } catch (...) {
      ::_exit(2);
    }
    ::_exit(0);
  }
  int status = 0;
  if (::waitpid(child, &status, 0) != child || !WIFSTOPPED(status)) return "the child did not stop for tracing";
  if (::ptrace(PTRACE_SETOPTIONS, child, nullptr, PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL) != 0) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
    return "ptrace is not permitted here";
  }
  int seen = 0, signal = 0;
  bool entering = true;
  for (;;) {
    ::ptrace(PTRACE_SYSCALL, child, nullptr, reinterpret_cast<void*>(static_cast<long>(signal)));
    signal = 0;
    if (::waitpid(child, &status, 0) != child || WIFEXITED(status) || WIFSIGNALED(status)) return "finished";
    if (WSTOPSIG(status) != (SIGTRAP | 0x80)) {  // a signal for the child: deliver it
      signal = WSTOPSIG(status);
      continue;
    }
    if (entering) {
      user_regs_struct regs{};
      ::ptrace(PTRACE_GETREGS, child, nullptr, &regs);
      const long call = static_cast<long>(regs.orig_rax);
      if (std::find(calls.begin(), calls.end(), call) != calls.end() && ++seen == occurrence) {
        ::kill(child, SIGKILL);
        ::waitpid(child, &status, 0);
        return "killed";
      }
    }
    entering = !entering;
  }
}

TEST_CASE("a writer killed at any step of a write leaves the old file whole") {
  TempDir dir("safetensors");
  const std::string path = dir.file("model.safetensors");
  const Array old_w{1.f, 2.f, 3.f};
  safetensors::write(path, {{"w", old_w}});
  Array big = Array::from_shape({1024 * 1024});
  std::fill(big.begin(), big.end(), 5.f);
  const auto write_new = [&] { safetensors::write(path, {{"w", big}, {"v", big}}); };

  // The writes of the header and of each tensor's data, the fsync and the rename: killed as it
  // enters each of them, the writer must leave the previous file in place, readable and equal.
  const std::vector<std::pair<std::vector<long>, int>> moments = {
      {{SYS_write}, 1}, {{SYS_write}, 2}, {{SYS_write}, 3}, {{SYS_fsync, SYS_fdatasync}, 1},
      {{SYS_rename, SYS_renameat, SYS_renameat2}, 1}};
  for (const auto& moment : moments) {
    const auto& calls = moment.first;
    const int occurrence = moment.second;
    CAPTURE(calls.front());
    CAPTURE(occurrence);
    const std::string outcome = kill_at_syscall(write_new, calls, occurrence);
    if (outcome != "killed" && outcome != "finished") {
      MESSAGE("not checked: " << outcome);
      return;
    }
    REQUIRE(outcome == "killed");
    CHECK(safetensors::read(path).get_tensor("w") == old_w);
  }
  // Left alone, the same traced writer replaces the file.
  REQUIRE(kill_at_syscall(write_new, {SYS_write}, 1000000) == "finished");
  const auto file = safetensors::read(path);
  CHECK(file.get_tensor("w") == big);
  CHECK(file.get_tensor("v") == big);
}
#endif

// --- fuzz ------------------------------------------------------------------------------------

TEST_CASE("fuzz: mutated files either load or throw xgrad::Error") {
  TempDir dir("safetensors");
  const std::string valid_path = dir.file("valid.safetensors");
  safetensors::write(valid_path, {{"a", Array{{1.f, 2.f}, {3.f, 4.f}}}, {"b", Array(0.5f)}},
                     {{"ids", Indices{1, 2, 3}}}, {{"format", "pt"}, {"config", R"({"d":4})"}});
  // Add F16 and BOOL tensors by hand so that their decoders are fuzzed too.
  Bytes valid = read_bytes(valid_path);
  std::uint64_t header_length = 0;
  std::memcpy(&header_length, valid.data(), 8);
  std::string header = valid.substr(8, header_length);
  Bytes data = valid.substr(8 + header_length);
  header = header.substr(0, header.find_last_of('}')) +
           R"(,"h":{"dtype":"F16","shape":[2],"data_offsets":[)" + std::to_string(data.size()) + "," +
           std::to_string(data.size() + 4) + R"(]},"m":{"dtype":"BOOL","shape":[2],"data_offsets":[)" +
           std::to_string(data.size() + 4) + "," + std::to_string(data.size() + 6) + "]}}";
  data += le_bytes<std::uint16_t>({0x3C00, 0x0001}) + Bytes("\x01\x00", 2);
  valid = file_bytes(header, data);
  REQUIRE(error_for(dir, valid) == "");

  std::mt19937_64 rng(20240601);
  auto below = [&](std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng() % n); };
  // clang-format off
  const char* json_pieces[] = {"{", "}", "[", "]", "\"", ",", ":", "-", ".", "e", "0", "1", "9", " ", "\\",
                               "\\u", "null", "true", "1e400", "18446744073709551615", "18446744073709551616",
                               "-1", "2.5", "\"F16\"", "\"BOOL\"", "\"I8\"", "\"__metadata__\"", "\"a\":",
                               "[0,0]", "{}", "[]"};
  // clang-format on

  auto mutate_header_text = [&](std::string text) {
    switch (below(6)) {
      case 0: text.erase(below(text.size()), 1 + below(8)); break;
      case 1: text.insert(below(text.size() + 1), json_pieces[below(std::size(json_pieces))]); break;
      case 2:
      case 3:
      case 4: {  // replace a run of digits by another number: valid JSON, doubtful sizes
        std::size_t at = text.find_first_of("0123456789", below(text.size()));
        if (at == std::string::npos) break;
        const std::size_t end = text.find_first_not_of("0123456789", at);
        const char* numbers[] = {"0",  "1",  "3", "7", "8", "16", "4294967296", "9223372036854775808",
                                 "-4", "1.0"};
        text.replace(at, end - at, numbers[below(std::size(numbers))]);
        break;
      }
      default: {  // copy a random slice elsewhere (duplicate keys, repeated fields)
        const std::size_t from = below(text.size());
        const std::string slice = text.substr(from, 1 + below(40));
        text.insert(below(text.size() + 1), slice);
        break;
      }
    }
    return text;
  };

  int loaded = 0, rejected = 0;
  const int kCases = 6000;
  for (int i = 0; i < kCases; ++i) {
    Bytes bytes = valid;
    const std::size_t edits = 1 + below(3);
    for (std::size_t e = 0; e < edits; ++e) {
      switch (below(7)) {
        case 0:  // byte flips anywhere
          for (std::size_t k = 0, n = 1 + below(4); k < n && !bytes.empty(); ++k) {
            bytes[below(bytes.size())] ^= static_cast<char>(1 + below(255));
          }
          break;
        case 1:  // truncation
          bytes.resize(below(bytes.size() + 1));
          break;
        case 2: {  // header length edits
          if (bytes.size() < 8) break;
          std::uint64_t length = 0;
          std::memcpy(&length, bytes.data(), 8);
          const std::uint64_t choices[] = {length + 1 + below(16),
                                           length - 1 - below(16),
                                           rng(),
                                           below(bytes.size()),
                                           0,
                                           100'000'000,
                                           1ull << 63};
          length = choices[below(std::size(choices))];
          std::memcpy(bytes.data(), &length, 8);
          break;
        }
        case 3:
        case 4: {  // JSON edits, with the header length kept consistent
          if (bytes.size() < 8) break;
          std::uint64_t length = 0;
          std::memcpy(&length, bytes.data(), 8);
          if (length > bytes.size() - 8) break;
          const std::string text = mutate_header_text(bytes.substr(8, length));
          bytes = file_bytes(text, bytes.substr(8 + length));
          break;
        }
        case 5:  // extra bytes at the end
          bytes += Bytes(1 + below(8), static_cast<char>(below(2)));
          break;
        default: {  // a byte of the data section: the values change, the file stays valid but for BOOL
          const std::size_t data_start = valid.size() - data.size();
          if (bytes.size() > data_start) {
            bytes[data_start + below(bytes.size() - data_start)] = static_cast<char>(rng());
          }
          break;
        }
      }
    }
    const std::string path = dir.write("fuzz.safetensors", bytes);
    try {
      const auto file = safetensors::read(path);
      for (const auto& name : file.keys()) CHECK(file.contains(name));
      ++loaded;
    } catch (const Error&) {
      ++rejected;
    } catch (const std::exception& e) {
      FAIL("case ", i, ": not an xgrad::Error: ", e.what());
    }
  }
  MESSAGE("fuzz: ", loaded, " loaded, ", rejected, " rejected");
  CHECK(loaded + rejected == kCases);
  CHECK(loaded > 0);  // some mutations (data bytes, whitespace) keep the file valid
  CHECK(rejected > kCases / 2);
}

TEST_CASE("I8 tensors: written from bytes, read back as bytes (Int8Tensors::keep) or widened to int64") {
  TempDir dir("safetensors");
  const std::string path = dir.file("q.safetensors");
  const safetensors::Int8Tensor q{{2, 3}, {-128, -1, 0, 1, 2, 127}};
  safetensors::write(path, {{"w.scale", Array{0.5f, 0.25f}}}, {{"ids", Indices{7}}}, {}, {{"w.int8", q}});
  const std::uintmax_t header_and_length = std::filesystem::file_size(path) - (2 * 4 + 8 + 6);
  CHECK(header_and_length % 8 == 0);  // F32 8 bytes, I64 8 bytes, I8 6 bytes of data

  const auto kept = safetensors::read(path, safetensors::Int8Tensors::keep);
  CHECK(kept.dtype("w.int8") == Dtype::I8);
  CHECK(kept.get_int8("w.int8").shape == std::vector<std::size_t>{2, 3});
  CHECK(kept.get_int8("w.int8").values == q.values);
  CHECK(kept.indices().size() == 1);  // ids; the I8 tensor is bytes
  CHECK(kept.int8_tensors().size() == 1);
  CHECK_THROWS_WITH_AS(kept.get_indices("w.int8"), doctest::Contains("'w.int8' is I8, kept as bytes: use get_int8"),
                       Error);
  CHECK_THROWS_WITH_AS(kept.get_tensor("w.int8"), doctest::Contains("use get_int8"), Error);
  CHECK_THROWS_WITH_AS(kept.get_int8("ids"), doctest::Contains("'ids' is I64, not I8"), Error);
  CHECK_THROWS_WITH_AS(kept.get_int8("v"), doctest::Contains("no tensor 'v'"), Error);

  const auto widened = safetensors::read(path);
  CHECK(widened.get_indices("w.int8") == Indices{{-128, -1, 0}, {1, 2, 127}});
  CHECK(widened.int8_tensors().empty());
  CHECK_THROWS_WITH_AS(widened.get_int8("w.int8"), doctest::Contains("widened to int64"), Error);

  // Moving the arrays out of a file that is done with.
  safetensors::File taken = safetensors::read(path, safetensors::Int8Tensors::keep);
  const auto arrays = std::move(taken).take_tensors();
  CHECK(arrays.at("w.scale") == Array{0.5f, 0.25f});

  CHECK_THROWS_WITH_AS(safetensors::write(dir.file("bad.safetensors"), {}, {}, {},
                                          {{"w", safetensors::Int8Tensor{{2, 2}, {1, 2, 3}}}}),
                       doctest::Contains("I8 tensor 'w' has 3 values for a shape [2,2] of 4"), Error);
  CHECK_THROWS_WITH_AS(safetensors::write(dir.file("bad.safetensors"), {{"w", Array{1.f}}}, {}, {},
                                          {{"w", safetensors::Int8Tensor{{1}, {1}}}}),
                       doctest::Contains("tensor 'w' is given twice"), Error);
  CHECK_FALSE(std::filesystem::exists(dir.file("bad.safetensors")));
}
