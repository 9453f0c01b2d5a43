// read_pth on checkpoints written by PyTorch's own torch.save (tests/models/make_pth_fixtures.py)
// and on archives made by hand: bit-exact tensors, strides and offsets honoured, views where
// the bytes allow, and every damaged file refused with its name and what is wrong.
#include <cstring>

#include <catch2/catch.hpp>

#include "frontend/model.h"
#include "frontend/pth_reader.h"
#include "frontend/safetensors.h"
#include "frontend_test_support.h"
#include "pth_test_support.h"

namespace rwkvc::test {

namespace {

using Catch::Matchers::Contains;

bool same_bytes(const HostTensor& a, const HostTensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.data(), b.data(), a.nbytes()) == 0;
}

// A tensor viewing the mapped file refuses to be written; a copy does not.
bool is_view(HostTensor& t) {
  try {
    t.mutable_data();
    return false;
  } catch (const std::logic_error&) {
    return true;
  }
}

// `values` rounded to f16 or bf16 the way torch's .half() and .bfloat16() round (to nearest even).
HostTensor rounded(const HostTensor& f32, DType dtype) {
  HostTensor out(dtype, f32.shape());
  auto values = f32.f32();
  for (std::size_t i = 0; i < values.size(); ++i) {
    std::uint16_t bits = dtype == DType::f16 ? float_to_half(values[i]) : float_to_bf16(values[i]);
    std::memcpy(out.mutable_data() + 2 * i, &bits, 2);
  }
  return out;
}

std::vector<std::string> names(const WeightMap& weights) {
  std::vector<std::string> result;
  for (const auto& [name, tensor] : weights) result.push_back(name);
  return result;
}

// A .pth of one pickle and some storages, written by hand under `prefix/`.
std::string handmade(const std::string& pickle, std::vector<std::pair<std::string, std::string>> storages = {},
                     const std::string& prefix = "archive", std::size_t leading_bytes = 0) {
  ZipSpec spec;
  spec.leading_bytes = leading_bytes;
  spec.entries.emplace_back(prefix + "/data.pkl", pickle);
  for (auto& [key, bytes] : storages) spec.entries.emplace_back(prefix + "/data/" + key, bytes);
  spec.entries.emplace_back(prefix + "/version", "3\n");
  return make_zip(spec);
}

// A state dict {name: tensor} pickled as torch.save does.
std::string one_tensor_pickle(const std::string& name, const std::string& type, std::int64_t numel, std::int64_t offset,
                              const std::vector<std::int64_t>& sizes, const std::vector<std::int64_t>& strides) {
  PickleWriter p;
  p.proto().global("collections", "OrderedDict").empty_tuple().reduce().mark().str(name);
  p.tensor(type, "0", numel, offset, sizes, strides).setitems().stop();
  return p.bytes();
}

WeightMap read_bytes_as_pth(const TempDir& dir, const std::string& bytes) {
  std::string path = dir.file("model.pth");
  write_bytes(path, bytes);
  return read_pth(path);
}

void expect_refused(const TempDir& dir, const std::string& bytes, const std::string& part) {
  std::string path = dir.file("model.pth");
  write_bytes(path, bytes);
  CHECK_THROWS_WITH(read_pth(path), Contains("PyTorch .pth checkpoint '" + path + "': ") && Contains(part));
}

}  // namespace

TEST_CASE("a torch.save f32 checkpoint equals its safetensors bit for bit, as views of the file", "[frontend][pth]") {
  WeightMap pth = read_pth(model_fixture("rwkv7-tiny-f32.pth"));
  WeightMap reference = read_safetensors(model_fixture("rwkv7-tiny.safetensors")).tensors;
  REQUIRE(names(pth) == names(reference));
  for (auto& [name, tensor] : pth) {
    INFO(name);
    const HostTensor& expected = reference.at(name);
    CHECK(tensor.dtype() == DType::f32);
    CHECK(tensor.shape() == expected.shape());
    CHECK(same_bytes(tensor, expected));
    CHECK(is_view(tensor));
  }
}

TEST_CASE("f16 and bf16 checkpoints hold torch's rounding of the f32 weights, bit for bit", "[frontend][pth]") {
  WeightMap reference = read_safetensors(model_fixture("rwkv4-tiny.safetensors")).tensors;
  for (auto [file, dtype] :
       {std::pair{"rwkv4-tiny-f16.pth", DType::f16}, std::pair{"rwkv4-tiny-bf16.pth", DType::bf16}}) {
    INFO(file);
    WeightMap pth = read_pth(model_fixture(file));
    REQUIRE(names(pth) == names(reference));
    for (const auto& [name, tensor] : pth) {
      INFO(name);
      CHECK(tensor.dtype() == dtype);
      CHECK(tensor.shape() == reference.at(name).shape());
      CHECK(same_bytes(tensor, rounded(reference.at(name), dtype)));
    }
  }
}

TEST_CASE("a transposed head and LayerNorms sliced from one storage load as the tensors they show", "[frontend][pth]") {
  WeightMap pth = read_pth(model_fixture("rwkv4-tiny-bf16.pth"));
  CHECK_FALSE(is_view(pth.at("head.weight")));  // strides (1, V): gathered into a copy
  CHECK(is_view(pth.at("ln_out.bias")));        // a contiguous slice at an offset: viewed
  CHECK(is_view(pth.at("blocks.1.ln2.weight")));
  // The script slices the vectors in name order: ln2.weight follows ln2.bias in the storage.
  CHECK(pth.at("blocks.1.ln2.weight").data() == pth.at("blocks.1.ln2.bias").data() + 64 * 2);
}

TEST_CASE("strided tensors are read by their offset and strides", "[frontend][pth]") {
  WeightMap w = read_pth(model_fixture("strided.pth"));
  // The definitions of make_pth_fixtures.py's strided_tensors(): base[r][c] = 1 + 6r + c, ...
  auto base = [](int r, int c) { return static_cast<float>(1 + 6 * r + c); };
  auto expect = [&](const std::string& name, Shape shape, auto value_at) {
    INFO(name);
    HostTensor& t = w.at(name);
    REQUIRE(t.shape() == shape);
    std::vector<float> values = t.to_f32();
    std::vector<float> expected;
    std::vector<std::int64_t> index(shape.rank(), 0);
    for (std::int64_t i = 0; i < shape.numel(); ++i) {
      expected.push_back(value_at(index));
      for (std::size_t d = shape.rank(); d-- > 0 && ++index[d] == shape[d];) index[d] = 0;
    }
    CHECK(values == expected);
  };
  using I = const std::vector<std::int64_t>&;
  auto i32 = [](std::int64_t v) { return static_cast<int>(v); };
  expect("base", {4, 6}, [&](I i) { return base(i32(i[0]), i32(i[1])); });
  expect("transposed", {6, 4}, [&](I i) { return base(i32(i[1]), i32(i[0])); });
  expect("rows", {2, 6}, [&](I i) { return base(i32(i[0]) + 1, i32(i[1])); });
  expect("columns", {4, 3}, [&](I i) { return base(i32(i[0]), i32(i[1]) + 2); });
  expect("every_other", {2, 2}, [&](I i) { return base(2 * i32(i[0]), 3 * i32(i[1])); });
  expect("row_vector", {1, 5}, [&](I i) { return base(2, i32(i[1]) + 1); });
  expect("cube_permuted", {4, 2, 3}, [&](I i) { return static_cast<float>(1 + 12 * i[1] + 4 * i[2] + i[0]); });
  expect("half_transposed", {4, 3}, [&](I i) { return static_cast<float>(1 + 4 * i[1] + i[0]) / 4; });
  expect("bf16_tail", {5}, [&](I i) { return static_cast<float>(4 + i[0]) * 0.5f; });
  expect("scalar", {}, [&](I) { return 2.5f; });
  CHECK(w.at("empty").shape() == Shape{0, 3});
  CHECK(w.at("half_transposed").dtype() == DType::f16);
  CHECK(w.at("bf16_tail").dtype() == DType::bf16);

  for (const char* viewed : {"base", "rows", "row_vector", "bf16_tail"}) CHECK(is_view(w.at(viewed)));
  for (const char* copied : {"transposed", "columns", "every_other", "cube_permuted", "half_transposed"})
    CHECK_FALSE(is_view(w.at(copied)));
}

TEST_CASE("a deflated archive reads the same tensors as the stored one", "[frontend][pth]") {
  WeightMap stored = read_pth(model_fixture("strided.pth"));
  WeightMap deflated = read_pth(model_fixture("strided-deflated.pth"));
  REQUIRE(names(deflated) == names(stored));
  for (const auto& [name, tensor] : deflated) {
    INFO(name);
    CHECK(tensor.shape() == stored.at(name).shape());
    CHECK(same_bytes(tensor, stored.at(name)));
  }
}

TEST_CASE("read_pth takes any archive folder, Parameters, zip64 and misaligned storages", "[frontend][pth]") {
  TempDir dir;
  const std::string storage = f32_bytes({1.5f, -2.0f, 3.25f, 4.0f, -5.5f, 6.0f});
  SECTION("a folder named anything, with a byteorder record") {
    ZipSpec spec{{{"my weights-1/data.pkl", one_tensor_pickle("w", "FloatStorage", 6, 0, {2, 3}, {3, 1})},
                  {"my weights-1/byteorder", "little"},
                  {"my weights-1/data/0", storage}}};
    WeightMap w = read_bytes_as_pth(dir, make_zip(spec));
    CHECK(w.at("w").to_f32() == std::vector<float>{1.5f, -2.0f, 3.25f, 4.0f, -5.5f, 6.0f});
  }
  SECTION("a Parameter") {
    PickleWriter p;
    p.proto().empty_dict().str("p").global("torch._utils", "_rebuild_parameter").mark();
    p.tensor("FloatStorage", "0", 6, 1, {2}, {2}).boolean(true).global("collections", "OrderedDict");
    p.empty_tuple().reduce().tuple().reduce().setitem().stop();
    WeightMap w = read_bytes_as_pth(dir, handmade(p.bytes(), {{"0", storage}}));
    CHECK(w.at("p").to_f32() == std::vector<float>{-2.0f, 4.0f});
  }
  SECTION("storages at odd addresses are copied") {
    std::string pickle = one_tensor_pickle("w", "FloatStorage", 6, 2, {4}, {1});
    std::size_t padding = handmade(pickle, {{"0", storage}}).find(storage) % 2 == 0 ? 1 : 0;
    std::string bytes = handmade(pickle, {{"0", storage}}, "archive", padding);
    REQUIRE(bytes.find(storage) % 2 == 1);
    WeightMap w = read_bytes_as_pth(dir, bytes);
    CHECK(w.at("w").to_f32() == std::vector<float>{3.25f, 4.0f, -5.5f, 6.0f});
  }
  SECTION("zip64") {
    ZipSpec spec{
        {{"archive/data.pkl", one_tensor_pickle("w", "FloatStorage", 6, 0, {6}, {1})}, {"archive/data/0", storage}},
        true};
    CHECK(read_bytes_as_pth(dir, make_zip(spec)).at("w").numel() == 6);
  }
}

TEST_CASE("damaged torch.save checkpoints are refused, naming the file and the fault", "[frontend][pth]") {
  TempDir dir;
  const std::string fixture = read_bytes(model_fixture("rwkv7-tiny-f32.pth"));
  ZipEditor zip(fixture);
  const std::string pickle = "archive/data.pkl";

  SECTION("truncated") {
    expect_refused(dir, fixture.substr(0, fixture.size() * 3 / 5), "no zip end-of-central-directory record");
  }
  SECTION("a storage with a bad CRC") {
    zip.flip_byte("archive/data/5", 17);
    expect_refused(dir, zip.bytes(), "entry 'archive/data/5' fails its CRC-32 check");
  }
  SECTION("a pickle with a bad CRC") {
    zip.flip_byte(pickle, 40);
    expect_refused(dir, zip.bytes(), "entry 'archive/data.pkl' fails its CRC-32 check");
  }
  SECTION("an unsupported pickle opcode") {
    zip.patch(pickle, "ccollections",
              "\x95"
              "collections");
    expect_refused(dir, zip.bytes(), "archive/data.pkl: unsupported pickle opcode 0x95 (FRAME) at byte 2");
  }
  SECTION("a global outside the allowlist") {
    zip.patch(pickle, "collections\nOrderedDict\n", std::string("builtins\neval\n") + std::string(10, 'N'));
    expect_refused(dir, zip.bytes(), "archive/data.pkl: pickle global 'builtins.eval' at byte 2 is not allowed");
  }
  SECTION("a storage type rwkvc does not read") {
    zip.patch(pickle, "torch\nFloatStorage\n", "torch\nQInt8Storage\n");
    expect_refused(dir, zip.bytes(), "pickle global 'torch.QInt8Storage' at byte");
  }
  SECTION("a missing storage record") {
    zip.rename("archive/data/0", "archive/data/x");
    expect_refused(dir, zip.bytes(),
                   "tensor 'blocks.0.att.a0' needs storage '0', but the archive has no entry 'archive/data/0'");
  }
  SECTION("no data.pkl") {
    zip.rename(pickle, "archive/data.pkx");
    expect_refused(dir, zip.bytes(), "no <folder>/data.pkl");
  }
}

TEST_CASE("inconsistent tensor records are refused, naming the tensor", "[frontend][pth]") {
  TempDir dir;
  const std::string four = f32_bytes({1, 2, 3, 4});
  auto refused = [&](const std::string& pickle, const std::string& part) {
    expect_refused(dir, handmade(pickle, {{"0", four}}), part);
  };
  refused(one_tensor_pickle("t", "FloatStorage", 5, 0, {5}, {1}),
          "tensor 't': storage '0' should hold 5 f32 elements, but entry 'archive/data/0' has 16 bytes");
  refused(one_tensor_pickle("t", "HalfStorage", 4, 0, {4}, {1}), "storage '0' should hold 4 f16 elements");
  refused(one_tensor_pickle("t", "FloatStorage", 4, 0, {2, 3}, {3, 1}),
          "tensor 't' (shape [2, 3], strides [3, 1], offset 0) reaches element 5 of storage '0', which holds 4");
  refused(one_tensor_pickle("t", "FloatStorage", 4, 4, {1}, {1}), "reaches element 4 of storage '0'");
  refused(one_tensor_pickle("t", "FloatStorage", 4, 0, {2, 3}, {0, 1}),
          "tensor 't' (shape [2, 3], strides [0, 1], offset 0) repeats elements");
  refused(one_tensor_pickle("t", "FloatStorage", 4, 0, {2, 2}, {1}), "tensor 't' has 2 sizes but 1 strides");
  refused(one_tensor_pickle("t", "FloatStorage", 4, 0, {std::int64_t{1} << 40, std::int64_t{1} << 40}, {1, 1}),
          "is too large to address");

  PickleWriter many_copies;  // five transposed copies of one 4-element storage
  many_copies.proto().empty_dict().mark();
  for (char name = 'a'; name < 'f'; ++name)
    many_copies.str(std::string(1, name)).tensor("FloatStorage", "0", 4, 0, {2, 2}, {1, 2});
  many_copies.setitems().stop();
  refused(many_copies.bytes(),
          "tensor 'e' brings the bytes copied out of non-contiguous tensors to 80, more than 4 times the 16 bytes");

  PickleWriter not_a_tensor;
  not_a_tensor.proto().empty_dict().str("x").integer(5).setitem().stop();
  refused(not_a_tensor.bytes(), "'x' is a int (pickle byte 9), not a tensor");

  PickleWriter seven_arguments;
  seven_arguments.proto().empty_dict().str("t").global("torch._utils", "_rebuild_tensor_v2").mark();
  seven_arguments.mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").integer(4).tuple().persid();
  seven_arguments.integer(0).ints({4}).ints({1}).boolean(false).none().none().tuple().reduce().setitem().stop();
  refused(seven_arguments.bytes(), "tensor 't' is rebuilt from 7 arguments");

  PickleWriter twice;
  twice.proto().empty_dict().mark().str("t").tensor("FloatStorage", "0", 4, 0, {4}, {1});
  twice.str("t").tensor("FloatStorage", "0", 4, 0, {2}, {1}).setitems().stop();
  refused(twice.bytes(), "tensor 't' appears twice");

  PickleWriter tuple_root;
  tuple_root.proto().empty_tuple().stop();
  refused(tuple_root.bytes(), "archive/data.pkl holds a tuple, not a dict of tensors");

  ZipSpec two_pickles{{{"a/data.pkl", tuple_root.bytes()}, {"b/data.pkl", tuple_root.bytes()}}};
  expect_refused(dir, make_zip(two_pickles), "holds 2 pickles (a/data.pkl and b/data.pkl)");

  ZipSpec big_endian{{{"archive/data.pkl", tuple_root.bytes()}, {"archive/byteorder", "big"}}};
  expect_refused(dir, make_zip(big_endian), "byte order 'big'");
}

TEST_CASE("load_model reads .pth checkpoints and refuses ones without RWKV tensors", "[frontend][pth][model]") {
  Model pth = load_model(model_fixture("rwkv7-tiny-f32.pth"));
  Model safetensors = load_model(model_fixture("rwkv7-tiny.safetensors"));
  CHECK(pth.config == safetensors.config);
  CHECK(load_model(model_fixture("rwkv4-tiny-f16.pth")).config ==
        load_model(model_fixture("rwkv4-tiny.safetensors")).config);
  std::string strided = model_fixture("strided.pth");
  CHECK_THROWS_WITH(load_model(strided), Contains(strided) && Contains("unknown RWKV version"));
}

}  // namespace rwkvc::test
