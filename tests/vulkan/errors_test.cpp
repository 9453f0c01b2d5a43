// Bad input fails before anything runs, with a message naming what is wrong, and leaves the
// state as it was.
#include <catch2/catch.hpp>

#include "vulkan_test_support.h"

namespace rwkvc::test {

using Catch::Matchers::Contains;

TEST_CASE("Vulkan refuses a token outside the vocabulary, naming it and its position", "[vulkan][errors]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  TwoBackends both = compile_both(*vulkan, load_model(fixture_path("rwkv7-tiny.safetensors")), passes::preset_pipeline(2));
  State state = both.vulkan->new_state();
  both.vulkan->forward(std::vector<std::int32_t>{1, 2}, state);
  HostState before = state.to_host();
  std::int32_t vocab = static_cast<std::int32_t>(both.model.config.vocab);
  CHECK_THROWS_WITH(both.vulkan->forward(std::vector<std::int32_t>{3, vocab}, state),
                    Contains(std::to_string(vocab)) && Contains("position 1"));
  CHECK_THROWS_AS(both.vulkan->forward(std::vector<std::int32_t>{-1}, state), std::invalid_argument);
  CHECK_THROWS_AS(both.vulkan->forward(std::vector<std::int32_t>{}, state), std::invalid_argument);
  CHECK(state.to_host() == before);
}

TEST_CASE("Vulkan refuses a CPU state, and the CPU a Vulkan state", "[vulkan][errors]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  TwoBackends both = compile_both(*vulkan, load_model(fixture_path("rwkv4-tiny.safetensors")), "");
  State cpu_state = both.cpu->new_state();
  CHECK_THROWS_WITH(both.vulkan->forward(std::vector<std::int32_t>{1}, cpu_state),
                    Contains("'cpu' backend") && Contains("to_host()"));
  State gpu_state = both.vulkan->new_state();
  CHECK_THROWS_AS(both.cpu->forward(std::vector<std::int32_t>{1}, gpu_state), std::invalid_argument);
}

TEST_CASE("Vulkan refuses a state made for another model", "[vulkan][errors]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  TwoBackends rwkv7 = compile_both(*vulkan, load_model(fixture_path("rwkv7-tiny.safetensors")), "");
  TwoBackends rwkv4 = compile_both(*vulkan, load_model(fixture_path("rwkv4-tiny.safetensors")), "");
  State state = rwkv4.vulkan->new_state();
  CHECK_THROWS_WITH(rwkv7.vulkan->forward(std::vector<std::int32_t>{1}, state), Contains("another model"));
  CHECK_THROWS_AS(rwkv7.vulkan->import_state(state.to_host()), std::invalid_argument);
}

TEST_CASE("A Vulkan device index out of range is a clear error", "[vulkan][errors]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  CHECK_THROWS_WITH(make_vulkan_backend({.device = 99}), Contains("no Vulkan device 99"));
  DeviceList list = list_vulkan_devices();
  CHECK(list.backend == "vulkan");
  CHECK(list.unavailable.empty());
  CHECK_FALSE(list.devices.empty());
}

}  // namespace rwkvc::test
