// State files: a HostState saved and loaded back exactly, layout included; other files refused.
#include <catch2/catch.hpp>

#include "frontend/safetensors.h"
#include "frontend/state_file.h"
#include "frontend_test_support.h"

namespace rwkvc::test {

namespace {

using Catch::Matchers::Contains;

// Slot order differs from name order (blocks.10 sorts before blocks.2), and the inits are
// values that text must carry exactly.
HostState sample_state() {
  StateLayout layout{"rwkv4",
                     {{"blocks.2.att.shift", Shape{3}, 0.0},
                      {"blocks.2.att.pp", Shape{3}, -1e30},
                      {"blocks.10.att.wkv", Shape{2, 2, 2}, 0.1},
                      {"blocks.10.ffn.shift", Shape{3}, 1.0 / 3.0}}};
  HostState state = HostState::fresh(layout);
  float next = 0.5f;
  for (auto& slot : state.slots)
    for (float& v : slot) v = (next *= -1.25f);
  return state;
}

}  // namespace

TEST_CASE("a saved state loads back equal, layout, order and inits included", "[frontend][state]") {
  TempDir dir;
  HostState state = sample_state();
  save_state(dir.file("s.safetensors"), state);
  HostState loaded = load_state(dir.file("s.safetensors"));
  CHECK(loaded.layout.arch == "rwkv4");
  REQUIRE(loaded.layout.slots.size() == 4);
  CHECK(loaded.layout.slots[0].name == "blocks.2.att.shift");
  CHECK(loaded.layout.slots[2].name == "blocks.10.att.wkv");
  CHECK(loaded.layout.slots[1].init == -1e30);
  CHECK(loaded.layout.slots[3].init == 1.0 / 3.0);
  CHECK(loaded == state);
}

TEST_CASE("a fresh state of an empty layout round-trips", "[frontend][state]") {
  TempDir dir;
  HostState empty = HostState::fresh(StateLayout{"rwkv7", {}});
  save_state(dir.file("s"), empty);
  CHECK(load_state(dir.file("s")) == empty);
}

TEST_CASE("a state file is a safetensors file with one f32 tensor per slot and its metadata", "[frontend][state]") {
  TempDir dir;
  save_state(dir.file("s"), sample_state());
  SafetensorsFile file = read_safetensors(dir.file("s"));
  CHECK(file.metadata.at("format") == "rwkvc-state");
  CHECK(file.metadata.at("arch") == "rwkv4");
  CHECK(file.metadata.at("slots") == "blocks.2.att.shift,blocks.2.att.pp,blocks.10.att.wkv,blocks.10.ffn.shift");
  REQUIRE(file.tensors.size() == 4);
  CHECK(file.tensors.at("blocks.10.att.wkv").shape() == Shape{2, 2, 2});
  CHECK(file.tensors.at("blocks.10.att.wkv").dtype() == DType::f32);
}

TEST_CASE("load_state refuses files that are not consistent rwkvc states", "[frontend][state]") {
  TempDir dir;
  std::string path = dir.file("s.safetensors");
  WeightMap one;
  one.emplace("a", HostTensor::from_f32({2}, {1.0f, 2.0f}));
  auto refused = [&](const std::string& part) {
    CHECK_THROWS_AS(load_state(path), std::invalid_argument);
    CHECK_THROWS_WITH(load_state(path), Contains(path) && Contains(part));
  };
  const std::map<std::string, std::string> good{{"format", "rwkvc-state"}, {"arch", "rwkv7"}, {"slots", "a"}, {"init", "0"}};
  auto with = [&](const std::string& key, const std::string& value) {
    auto metadata = good;
    metadata[key] = value;
    return metadata;
  };
  SECTION("a model file") {
    write_safetensors(path, one, {{"format", "pt"}});
    refused("not an rwkvc state file");
  }
  SECTION("not safetensors") {
    write_bytes(path, "garbage!garbage!");
    refused("not a safetensors file");
  }
  SECTION("no arch") {
    auto metadata = good;
    metadata.erase("arch");
    write_safetensors(path, one, metadata);
    refused("no 'arch'");
  }
  SECTION("a listed slot without its tensor") {
    write_safetensors(path, one, with("slots", "b"));
    refused("no tensor for slot 'b'");
  }
  SECTION("more tensors than slots") {
    WeightMap two = one;
    two.emplace("b", HostTensor::from_f32({1}, {1.0f}));
    write_safetensors(path, two, good);
    refused("lists 1 slots but it holds 2 tensors");
  }
  SECTION("init values not matching the slots") {
    write_safetensors(path, one, with("init", "0,0"));
    refused("1 slots but 2 init values");
  }
  SECTION("an init value that is not a number") {
    write_safetensors(path, one, with("init", "zero"));
    refused("init value 'zero'");
  }
  SECTION("a slot that is not f32") {
    WeightMap ints;
    ints.emplace("a", HostTensor::from_i32({2}, {1, 2}));
    write_safetensors(path, ints, good);
    refused("slot 'a' is i32, expected f32");
  }
}

TEST_CASE("save_state refuses a state that does not match its layout, writing nothing", "[frontend][state]") {
  TempDir dir;
  HostState state = sample_state();
  SECTION("a slot with the wrong number of values") {
    state.slots[2].pop_back();
    CHECK_THROWS_WITH(save_state(dir.file("s"), state), Contains("'blocks.10.att.wkv' holds 7 values"));
  }
  SECTION("values for fewer slots than the layout has") {
    state.slots.pop_back();
    CHECK_THROWS_WITH(save_state(dir.file("s"), state), Contains("3 values for 4 slots"));
  }
  SECTION("a slot name with a comma") {
    state.layout.slots[0].name = "a,b";
    CHECK_THROWS_WITH(save_state(dir.file("s"), state), Contains("'a,b'"));
  }
  CHECK(dir.listing().empty());
}

}  // namespace rwkvc::test
