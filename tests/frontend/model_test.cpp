// load_model: a checkpoint file in, its weights and inferred config out; other files refused
// with a message that says what the file is not.
#include <catch2/catch.hpp>

#include "frontend/model.h"
#include "frontend/random_model.h"
#include "frontend/safetensors.h"
#include "frontend_test_support.h"

namespace rwkvc::test {

namespace {

using Catch::Matchers::Contains;

}  // namespace

TEST_CASE("load_model reads a safetensors checkpoint, its config and metadata", "[frontend][model]") {
  TempDir dir;
  ModelConfig config = small_rwkv7(2);
  WeightMap weights = make_random_model(config, 3);
  std::string path = dir.file("m.safetensors");
  write_safetensors(path, weights, {{"format", "pt"}});

  Model model = load_model(path);
  CHECK(model.path == path);
  CHECK(model.config == config);
  CHECK(model.metadata == std::map<std::string, std::string>{{"format", "pt"}});
  REQUIRE(model.weights.size() == weights.size());
  auto values = model.weights.at("blocks.1.att.v2").f32();
  auto original = weights.at("blocks.1.att.v2").f32();
  CHECK(std::equal(values.begin(), values.end(), original.begin(), original.end()));
}

TEST_CASE("load_model refuses files that are not models", "[frontend][model]") {
  TempDir dir;
  std::string path = dir.file("m.safetensors");
  SECTION("text") {
    write_bytes(path, "this is not a model");
    CHECK_THROWS_WITH(load_model(path),
                      Contains("'" + path + "' is not a model file (safetensors or PyTorch .pth): its header length"));
  }
  SECTION("too short to be either") {
    write_bytes(path, "PK");
    CHECK_THROWS_WITH(load_model(path), Contains(path) && Contains("not a model file") && Contains("2 bytes long"));
  }
  SECTION("a PyTorch zip archive") {
    write_bytes(path, std::string("PK\x03\x04", 4) + std::string(60, '\0'));
    CHECK_THROWS_WITH(load_model(path), Contains(path) && Contains("PyTorch .pth"));
  }
  SECTION("missing: says so, not that it is the wrong kind of file") {
    CHECK_THROWS_WITH(load_model(path), Contains(path) && Contains("No such file"));
    CHECK_THROWS_WITH(load_model(path), !Contains("not a model file"));
  }
  SECTION("a corrupt tensor entry") {
    write_bytes(path, safetensors_bytes(R"({"emb.weight":{"dtype":"F32","shape":[3],"data_offsets":[0,4]}})",
                                        std::string(4, '\0')));
    CHECK_THROWS_WITH(load_model(path), Contains(path) && Contains("'emb.weight' holds 4 bytes"));
  }
  SECTION("safetensors without RWKV tensors") {
    WeightMap other;
    other.emplace("encoder.weight", HostTensor::from_f32({1}, {1.0f}));
    write_safetensors(path, other);
    CHECK_THROWS_WITH(load_model(path), Contains(path) && Contains("unknown RWKV version"));
  }
}

}  // namespace rwkvc::test
