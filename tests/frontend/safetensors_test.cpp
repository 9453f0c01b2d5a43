// The safetensors reader and writer: round trips, the exact bytes written, memory-mapped views,
// every way a corrupt file is refused, and atomic writes.
#include <cstring>

#include <catch2/catch.hpp>

#include "frontend/safetensors.h"
#include "frontend_test_support.h"

namespace rwkvc::test {

namespace {

using Catch::Matchers::Contains;

bool same_bytes(const HostTensor& a, const HostTensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.data(), b.data(), a.nbytes()) == 0;
}

HostTensor halves(DType dtype, Shape shape, const std::vector<float>& values) {
  HostTensor t(dtype, std::move(shape));
  for (std::size_t i = 0; i < values.size(); ++i) {
    std::uint16_t bits = dtype == DType::f16 ? float_to_half(values[i]) : float_to_bf16(values[i]);
    std::memcpy(t.mutable_data() + 2 * i, &bits, 2);
  }
  return t;
}

WeightMap every_dtype() {
  WeightMap w;
  w.emplace("f32", HostTensor::from_f32({2, 3}, {1.5f, -2.25f, 3e-8f, 1e30f, -0.0f, 7.0f}));
  w.emplace("f16", halves(DType::f16, {4}, {0.5f, -65504.0f, 1e-6f, 3.0f}));
  w.emplace("bf16", halves(DType::bf16, {2, 2}, {1.0f, -3e38f, 0.1f, 2.0f}));
  w.emplace("i32", HostTensor::from_i32({3}, {-7, 0x7fffffff, 42}));
  w.emplace("scalar", HostTensor::from_f32({}, {9.5f}));
  w.emplace("empty", HostTensor(DType::f32, {0, 4}));
  return w;
}

// Reading `header` (+ `data`) as a file fails with a message naming the file and `part`.
void expect_refused(const TempDir& dir, const std::string& bytes, const std::string& part) {
  std::string path = dir.file("corrupt.safetensors");
  write_bytes(path, bytes);
  CHECK_THROWS_WITH(read_safetensors(path), Contains(path) && Contains(part));
}

const std::string kF32Pair = R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";

}  // namespace

TEST_CASE("safetensors round trip keeps dtype, shape, bytes and metadata of every dtype", "[frontend][safetensors]") {
  TempDir dir;
  WeightMap written = every_dtype();
  std::map<std::string, std::string> metadata{{"format", "pt"}, {"note", "ünïcode, \"quotes\" and \\ slashes"}};
  write_safetensors(dir.file("m.safetensors"), written, metadata);

  SafetensorsFile read = read_safetensors(dir.file("m.safetensors"));
  CHECK(read.metadata == metadata);
  REQUIRE(read.tensors.size() == written.size());
  for (const auto& [name, tensor] : written) {
    INFO(name);
    REQUIRE(read.tensors.contains(name));
    const HostTensor& back = read.tensors.at(name);
    CHECK(back.dtype() == tensor.dtype());
    CHECK(back.shape() == tensor.shape());
    CHECK(same_bytes(back, tensor));
  }
}

TEST_CASE("safetensors writer lays out the documented bytes", "[frontend][safetensors]") {
  TempDir dir;
  WeightMap w;
  w.emplace("b", HostTensor::from_i32({1}, {0x01020304}));
  w.emplace("a", HostTensor::from_f32({2}, {1.0f, -2.0f}));
  write_safetensors(dir.file("x.safetensors"), w);

  // Tensors in name order, offsets back to back, no __metadata__ when there is none, and the
  // header padded with spaces to a multiple of 8 (108 bytes of JSON -> 112).
  std::string header = R"({"a":{"data_offsets":[0,8],"dtype":"F32","shape":[2]},)"
                       R"("b":{"data_offsets":[8,12],"dtype":"I32","shape":[1]}})";
  REQUIRE(header.size() == 108);
  std::string expected = safetensors_bytes(header + std::string(4, ' '),
                                           std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0\x04\x03\x02\x01", 12));
  CHECK(read_bytes(dir.file("x.safetensors")) == expected);
}

TEST_CASE("safetensors writer is deterministic and pads the header to 8 bytes", "[frontend][safetensors]") {
  TempDir dir;
  for (std::size_t name_length = 1; name_length <= 8; ++name_length) {
    WeightMap w;
    w.emplace(std::string(name_length, 'n'), HostTensor::from_f32({1}, {2.0f}));
    std::map<std::string, std::string> metadata{{"k", std::string(name_length, 'v')}};
    write_safetensors(dir.file("one"), w, metadata);
    write_safetensors(dir.file("two"), w, metadata);
    std::string bytes = read_bytes(dir.file("one"));
    CHECK(bytes == read_bytes(dir.file("two")));
    std::uint64_t length = 0;
    std::memcpy(&length, bytes.data(), 8);
    CHECK(length % 8 == 0);
    CHECK(bytes.size() == 8 + length + 4);
    CHECK(bytes[8 + length - 1] != '\0');
  }
}

TEST_CASE("safetensors tensors are read-only views of the mapping that outlive the file object",
          "[frontend][safetensors]") {
  TempDir dir;
  std::string path = dir.file("m.safetensors");
  write_safetensors(path, every_dtype());
  HostTensor f32;
  {
    SafetensorsFile file = read_safetensors(path);
    f32 = file.tensors.at("f32");
    CHECK_THROWS_AS(file.tensors.at("i32").mutable_data(), std::logic_error);  // a view, not a copy
    // Laid out in name order within one mapping.
    CHECK(file.tensors.at("bf16").data() < file.tensors.at("f16").data());
    CHECK(file.tensors.at("f16").data() < file.tensors.at("f32").data());
  }
  // Replacing the file renames a new one over it; the old mapping keeps the old bytes.
  WeightMap other;
  other.emplace("f32", HostTensor::from_f32({2, 3}, {0, 0, 0, 0, 0, 0}));
  write_safetensors(path, other);
  CHECK(f32.f32()[0] == 1.5f);
  CHECK(f32.f32()[5] == 7.0f);
  CHECK(read_safetensors(path).tensors.at("f32").f32()[0] == 0.0f);
}

TEST_CASE("safetensors data misaligned for its dtype is copied and reads correctly", "[frontend][safetensors]") {
  TempDir dir;
  // A 55-byte header puts the data at file offset 63: not a multiple of 4.
  std::string header = kF32Pair + " ";
  REQUIRE((8 + header.size()) % 4 != 0);
  float values[2] = {3.25f, -1.0f};
  write_bytes(dir.file("m"), safetensors_bytes(header, std::string(reinterpret_cast<const char*>(values), 8)));
  SafetensorsFile file = read_safetensors(dir.file("m"));
  HostTensor& t = file.tensors.at("t");
  CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % 4 == 0);
  CHECK(t.f32()[0] == 3.25f);
  CHECK(t.f32()[1] == -1.0f);
}

TEST_CASE("safetensors reader refuses a file it cannot read", "[frontend][safetensors]") {
  TempDir dir;
  SECTION("missing") {
    CHECK_THROWS_WITH(read_safetensors(dir.file("nope")), Contains(dir.file("nope")) && Contains("No such file"));
  }
  SECTION("a directory") { CHECK_THROWS_WITH(read_safetensors(dir.file("")), Contains("not a regular file")); }
}

TEST_CASE("safetensors reader refuses bytes that are not safetensors", "[frontend][safetensors]") {
  TempDir dir;
  std::string path = dir.file("x");
  auto refused = [&](const std::string& bytes, const std::string& part) {
    write_bytes(path, bytes);
    CHECK_THROWS_AS(read_safetensors(path), NotSafetensorsError);
    CHECK_THROWS_WITH(read_safetensors(path), Contains(path) && Contains(part));
  };
  SECTION("empty") { refused("", "0 bytes long"); }
  SECTION("shorter than the length field") { refused("abcde", "5 bytes long"); }
  SECTION("header length beyond the file") { refused(safetensors_bytes(kF32Pair, "", 1000), "header length 1000"); }
  SECTION("header length of 2^64 - 1") { refused(std::string(8, '\xff'), "runs past the end"); }
  SECTION("header not JSON") { refused(safetensors_bytes("{\"t\": [1, 2"), "not JSON"); }
  SECTION("header JSON but not an object") { refused(safetensors_bytes("[1, 2]"), "not a JSON object"); }
  SECTION("text") { refused("this is not a model", "runs past the end"); }
}

TEST_CASE("safetensors reader refuses corrupt tensor entries, naming the tensor", "[frontend][safetensors]") {
  TempDir dir;
  std::string eight(8, '\x01'), twelve(12, '\x01');
  SECTION("entry not an object") { expect_refused(dir, safetensors_bytes(R"({"t": 3})"), "'t' is not a JSON object"); }
  SECTION("missing dtype") {
    expect_refused(dir, safetensors_bytes(R"({"t":{"shape":[2],"data_offsets":[0,8]}})", eight), "'t' has no dtype");
  }
  SECTION("missing shape") {
    expect_refused(dir, safetensors_bytes(R"({"t":{"dtype":"F32","data_offsets":[0,8]}})", eight), "'t' has no shape");
  }
  SECTION("missing data_offsets") {
    expect_refused(dir, safetensors_bytes(R"({"t":{"dtype":"F32","shape":[2]}})", eight), "'t' has no data_offsets");
  }
  SECTION("unsupported dtype") {
    expect_refused(dir, safetensors_bytes(R"({"t":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", eight),
                   "'t' has dtype F64");
  }
  SECTION("dtype not a string") {
    expect_refused(dir, safetensors_bytes(R"({"t":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", eight), "dtype 4");
  }
  SECTION("negative extent") {
    expect_refused(dir, safetensors_bytes(R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight),
                   "'t' has shape [-2]");
  }
  SECTION("fractional extent") {
    expect_refused(dir, safetensors_bytes(R"({"t":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", eight),
                   "not a list of non-negative integers");
  }
  SECTION("shape too large to address") {
    expect_refused(dir,
                   safetensors_bytes(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
                                     eight),
                   "too large");
  }
  SECTION("offsets reversed") {
    expect_refused(dir, safetensors_bytes(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", eight),
                   "'t' has data_offsets [8,0]");
  }
  SECTION("one offset") {
    expect_refused(dir, safetensors_bytes(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[8]}})", eight),
                   "expected [begin, end]");
  }
  SECTION("offsets beyond the data section") {
    expect_refused(dir, safetensors_bytes(R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", eight),
                   "'t' has data_offsets [0, 16] beyond the data section's 8 bytes");
  }
  SECTION("byte length not numel * dtype size") {
    expect_refused(dir, safetensors_bytes(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight),
                   "'t' holds 8 bytes, but shape [3] of F32 needs 12 bytes");
  }
  SECTION("overlapping tensors") {
    expect_refused(dir,
                   safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                     R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                     twelve),
                   "'a' (bytes 0 to 8) and 'b' (bytes 4 to 12) overlap");
  }
  SECTION("a tensor inside another") {
    expect_refused(dir,
                   safetensors_bytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
                                     R"("b":{"dtype":"I32","shape":[1],"data_offsets":[4,8]}})",
                                     twelve),
                   "overlap");
  }
  SECTION("metadata value not a string") {
    expect_refused(dir, safetensors_bytes(R"({"__metadata__":{"k":1}})"), "__metadata__ entry 'k' is not a string");
  }
}

TEST_CASE("safetensors reader accepts empty tensors sharing an offset and an empty file", "[frontend][safetensors]") {
  TempDir dir;
  write_bytes(dir.file("m"), safetensors_bytes(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
                                               R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                                               std::string(8, '\0')));
  SafetensorsFile file = read_safetensors(dir.file("m"));
  CHECK(file.tensors.at("a").numel() == 0);
  CHECK(file.tensors.at("b").numel() == 2);

  write_safetensors(dir.file("none"), {});
  CHECK(read_safetensors(dir.file("none")).tensors.empty());
}

TEST_CASE("a failed safetensors write leaves no file behind", "[frontend][safetensors]") {
  TempDir dir;
  WeightMap good;
  good.emplace("t", HostTensor::from_f32({1}, {1.0f}));

  SECTION("directory that does not exist") {
    std::string path = dir.file("missing/m.safetensors");
    CHECK_THROWS_WITH(write_safetensors(path, good), Contains(path));
    CHECK(dir.listing().empty());
  }
  SECTION("a tensor with no data fails midway; the old file survives") {
    std::string path = dir.file("m.safetensors");
    write_safetensors(path, good);
    std::string before = read_bytes(path);
    WeightMap bad = good;
    bad.emplace("u", HostTensor());  // shape [] (one element) but no bytes behind it
    CHECK_THROWS_WITH(write_safetensors(path, bad), Contains(path) && Contains("'u' has no data"));
    CHECK(dir.listing() == std::vector<std::string>{"m.safetensors"});
    CHECK(read_bytes(path) == before);
  }
  SECTION("a tensor named __metadata__") {
    WeightMap bad = good;
    bad.emplace("__metadata__", HostTensor::from_f32({1}, {1.0f}));
    CHECK_THROWS_AS(write_safetensors(dir.file("m"), bad), std::invalid_argument);
    CHECK(dir.listing().empty());
  }
  SECTION("metadata that is not UTF-8") {
    CHECK_THROWS_WITH(write_safetensors(dir.file("m"), good, {{"k", "\xff\xfe"}}), Contains("not UTF-8"));
    CHECK(dir.listing().empty());
  }
}

}  // namespace rwkvc::test
