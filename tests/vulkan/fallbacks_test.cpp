// The kernels' other paths, which the tiny models on this device would not take: devices
// without subgroup arithmetic or 16-bit storage (turned off with RWKVC_VULKAN_FEATURES_OFF),
// and shapes that are not multiples of the vector width or of a GEMM tile; their shaders pass
// spirv-val too.
#include <catch2/catch.hpp>

#include "backends/feed_mode.h"
#include "frontend/random_model.h"
#include "vulkan_test_support.h"

namespace rwkvc::test {

namespace {

constexpr double kF32Tolerance = 1e-4;

void check_model(Backend& vulkan, Model model, const std::string& pipeline, std::size_t length) {
  TwoBackends both = compile_both(vulkan, std::move(model), pipeline);
  check_spirv_valid(*both.vulkan);
  auto tokens = random_tokens(length, both.model.config.vocab, 8);
  State reference_state = both.cpu->new_state();
  HostTensor reference = feed(*both.cpu, tokens, reference_state, FeedMode::gpt(), true);
  for (FeedMode mode : {FeedMode::gpt(), FeedMode::rnn(), FeedMode::chunked(3)}) {
    INFO(both.model.path << " with passes '" << pipeline << "', mode " << mode.name());
    State state = both.vulkan->new_state();
    HostTensor logits = feed(*both.vulkan, tokens, state, mode, true);
    Error e = compare(logits.f32(), reference.f32());
    INFO("logits: max-abs " << e.max_abs << ", relative " << e.relative);
    CHECK(e.relative <= kF32Tolerance);
    CHECK(compare_states(state.to_host(), reference_state.to_host()).relative <= kF32Tolerance);
  }
}

}  // namespace

TEST_CASE("Vulkan without subgroup arithmetic or 16-bit storage matches the CPU", "[vulkan][fallbacks]") {
  FeaturesOff off("subgroups,storage16");
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  CHECK(vulkan->device_name().find("arithmetic") == std::string::npos);
  for (const char* pipeline : {"", "lower-precision=f16", "lower-precision=bf16"})
    check_model(*vulkan, load_model(fixture_path("rwkv7-tiny.safetensors")), pipeline, 7);
}

TEST_CASE("Vulkan matches the CPU on widths that are not multiples of 8 or of a tile", "[vulkan][fallbacks]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  Model model;
  model.path = "random RWKV-4, C 36, F 100, V 300";
  model.config = load_model(fixture_path("rwkv4-tiny.safetensors")).config;
  model.config.embd = 36;
  model.config.ffn = 100;
  model.config.vocab = 300;
  model.weights = make_random_model(model.config, 5);
  for (const char* pipeline : {"", "lower-precision=f16"}) check_model(*vulkan, model, pipeline, 67);
}

}  // namespace rwkvc::test
