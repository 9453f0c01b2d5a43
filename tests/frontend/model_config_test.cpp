// infer_config: the architecture and sizes read off a checkpoint's tensor names and shapes.
#include <catch2/catch.hpp>

#include "frontend/model_config.h"
#include "frontend_test_support.h"

namespace rwkvc::test {

namespace {

using Catch::Matchers::Contains;

// Zero tensors with the official names and shapes: infer_config reads only names and shapes.
WeightMap checkpoint_of(const ModelConfig& config) {
  WeightMap weights;
  for (const auto& [name, shape] : official_shapes(config)) weights.emplace(name, HostTensor(DType::f32, shape));
  return weights;
}

void reshape(WeightMap& weights, const std::string& name, Shape shape) {
  weights.erase(name);
  weights.emplace(name, HostTensor(DType::f32, std::move(shape)));
}

}  // namespace

TEST_CASE("infer_config reads every RWKV-7 size from its own tensor", "[frontend][config]") {
  ModelConfig expected = small_rwkv7(3);
  ModelConfig inferred = infer_config(checkpoint_of(expected), "m.safetensors");
  CHECK(inferred.arch == Arch::rwkv7);
  CHECK(inferred.layers == 3);
  CHECK(inferred.embd == 48);
  CHECK(inferred.vocab == 100);
  CHECK(inferred.ffn == 160);
  CHECK(inferred.head_size == 16);
  CHECK(inferred.decay_lora == 8);
  CHECK(inferred.aaa_lora == 12);
  CHECK(inferred.mv_lora == 4);
  CHECK(inferred.gate_lora == 20);
}

TEST_CASE("infer_config gives a 1-layer RWKV-7 model no value-mix LoRA", "[frontend][config]") {
  ModelConfig inferred = infer_config(checkpoint_of(small_rwkv7(1)), "m");
  CHECK(inferred.layers == 1);
  CHECK(inferred.mv_lora == 0);
}

TEST_CASE("infer_config reads RWKV-4 sizes and leaves the RWKV-7 fields at their defaults", "[frontend][config]") {
  ModelConfig inferred = infer_config(checkpoint_of(small_rwkv4(2)), "m");
  CHECK(inferred.arch == Arch::rwkv4);
  CHECK(inferred.layers == 2);
  CHECK(inferred.embd == 40);
  CHECK(inferred.vocab == 90);
  CHECK(inferred.ffn == 120);
  CHECK(inferred.head_size == ModelConfig{}.head_size);
  CHECK(inferred.decay_lora == 0);
  CHECK(inferred.mv_lora == 0);
}

TEST_CASE("infer_config recognises each version by either of its marker tensors", "[frontend][config]") {
  WeightMap v7 = checkpoint_of(small_rwkv7());
  v7.erase("blocks.0.att.x_r");
  CHECK(infer_config(v7, "m").arch == Arch::rwkv7);  // by w0
  WeightMap v4 = checkpoint_of(small_rwkv4());
  v4.erase("blocks.0.att.time_first");
  CHECK(infer_config(v4, "m").arch == Arch::rwkv4);  // by time_mix_k
}

TEST_CASE("infer_config counts layers by blocks.N.ln1.weight, ignoring look-alike names", "[frontend][config]") {
  WeightMap weights = checkpoint_of(small_rwkv7(2));
  weights.emplace("blocks.01.ln1.weight", HostTensor(DType::f32, {48}));  // not canonical: not a layer
  weights.emplace("blocks.x.ln1.weight", HostTensor(DType::f32, {48}));
  weights.emplace("blocks.5.ln1.weight.extra", HostTensor(DType::f32, {48}));
  CHECK(infer_config(weights, "m").layers == 2);
}

TEST_CASE("infer_config refuses checkpoints it cannot size, naming the file and tensor", "[frontend][config]") {
  const std::string origin = "/models/broken.safetensors";
  WeightMap weights = checkpoint_of(small_rwkv7(3));
  auto refused = [&](const std::string& part) {
    CHECK_THROWS_AS(infer_config(weights, origin), std::invalid_argument);
    CHECK_THROWS_WITH(infer_config(weights, origin), Contains(origin) && Contains(part));
  };
  SECTION("no version marker") {
    for (const char* marker : {"blocks.0.att.x_r", "blocks.0.att.w0"}) weights.erase(marker);
    refused("unknown RWKV version");
  }
  SECTION("a gap in the layer numbers") {
    weights.erase("blocks.1.ln1.weight");
    refused("blocks.2.ln1.weight but no blocks.1.ln1.weight");
  }
  SECTION("layers not starting at 0") {
    weights.erase("blocks.0.ln1.weight");
    refused("no blocks.0.ln1.weight");
  }
  SECTION("no layers at all") {
    for (int i = 0; i < 3; ++i) weights.erase(fmt::format("blocks.{}.ln1.weight", i));
    refused("no layers found");
  }
  SECTION("no embedding") {
    weights.erase("emb.weight");
    refused("no tensor 'emb.weight'");
  }
  SECTION("embedding not a matrix") {
    reshape(weights, "emb.weight", {100, 48, 1});
    refused("'emb.weight' has shape [100, 48, 1], expected [vocab, embd]");
  }
  SECTION("channel-mix key not C wide") {
    reshape(weights, "blocks.0.ffn.key.weight", {160, 47});
    refused("'blocks.0.ffn.key.weight' has shape [160, 47]");
  }
  SECTION("heads times head size not C") {
    reshape(weights, "blocks.0.att.r_k", {4, 16});
    refused("'blocks.0.att.r_k' has shape [4, 16]");
  }
  SECTION("a LoRA factor of the wrong height") {
    reshape(weights, "blocks.0.att.g1", {20, 48});
    refused("'blocks.0.att.g1' has shape [20, 48], expected [embd, gate_lora]");
  }
  SECTION("no value-mix LoRA in layer 1") {
    weights.erase("blocks.1.att.v1");
    refused("no tensor 'blocks.1.att.v1'");
  }
  SECTION("an empty extent") {
    reshape(weights, "blocks.0.att.w1", {48, 0});
    refused("'blocks.0.att.w1' has shape [48, 0]");
  }
}

}  // namespace rwkvc::test
