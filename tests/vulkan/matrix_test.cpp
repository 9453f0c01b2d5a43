// The correctness matrix: both tiny models, -O0 and -O2, GPT, RNN and chunk:3 feeding; every
// position's logits and every state slot against the CPU reference running the same graph.
// f32 throughout, so the only differences are summation order and the GPU's exp/tanh: 1e-4
// relative to the reference's largest magnitude. The same with the decode variants that are
// off by default (the chained FFN GEMVs, prefetches).
#include <catch2/catch.hpp>

#include "backends/feed_mode.h"
#include "frontend/random_model.h"
#include "vulkan_test_support.h"

namespace rwkvc::test {

namespace {

constexpr double kF32Tolerance = 1e-4;

void check_against_cpu(Backend& vulkan, Model model, int level, std::size_t length) {
  TwoBackends both = compile_both(vulkan, std::move(model), passes::preset_pipeline(level));
  auto tokens = random_tokens(length, both.model.config.vocab, 77 + static_cast<unsigned>(level));
  State reference_state = both.cpu->new_state();
  HostTensor reference = feed(*both.cpu, tokens, reference_state, FeedMode::gpt(), true);
  HostState reference_host = reference_state.to_host();

  for (FeedMode mode : {FeedMode::gpt(), FeedMode::rnn(), FeedMode::chunked(3)}) {
    INFO(both.model.path << " -O" << level << ", mode " << mode.name() << ", " << length << " tokens");
    State state = both.vulkan->new_state();
    HostTensor logits = feed(*both.vulkan, tokens, state, mode, true);
    REQUIRE(logits.shape() == reference.shape());
    Error e = compare(logits.f32(), reference.f32());
    INFO("logits: max-abs " << e.max_abs << ", relative " << e.relative);
    CHECK(e.relative <= kF32Tolerance);
    CHECK(compare_states(state.to_host(), reference_host).relative <= kF32Tolerance);
  }
}

}  // namespace

TEST_CASE("Vulkan matches the CPU on RWKV-7 tiny at -O0 and -O2 in every feeding mode", "[vulkan][matrix]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  for (int level : {0, 2}) check_against_cpu(*vulkan, load_model(fixture_path("rwkv7-tiny.safetensors")), level, 13);
}

TEST_CASE("Vulkan matches the CPU on RWKV-4 tiny at -O0 and -O2 in every feeding mode", "[vulkan][matrix]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  for (int level : {0, 2}) check_against_cpu(*vulkan, load_model(fixture_path("rwkv4-tiny.safetensors")), level, 13);
}

// Sets the decode variants that are not on by default for the scope's lifetime: the chained
// FFN GEMVs, the folded GEMVs' weights loaded before their norm, the LoRA ups in the wkv kernel,
// its inputs and ups read a token ahead.
class DecodeVariants {
 public:
  DecodeVariants() {
    ::setenv("RWKVC_VULKAN_FOLDS", "norm_mix,chain,lora_up", 1);
    ::setenv("RWKVC_VULKAN_GEMV", "fold_prefetch=1,unroll=16", 1);
    ::setenv("RWKVC_VULKAN_WKV_PREFETCH", "1", 1);
    ::setenv("RWKVC_VULKAN_WKV_UPS_AHEAD", "1", 1);
  }
  ~DecodeVariants() {
    ::unsetenv("RWKVC_VULKAN_FOLDS");
    ::unsetenv("RWKVC_VULKAN_GEMV");
    ::unsetenv("RWKVC_VULKAN_WKV_PREFETCH");
    ::unsetenv("RWKVC_VULKAN_WKV_UPS_AHEAD");
  }
};

TEST_CASE("Vulkan with the decode variants matches the CPU on both tiny models in every feeding mode", "[vulkan][matrix]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  DecodeVariants variants;
  for (const char* name : {"rwkv7-tiny.safetensors", "rwkv4-tiny.safetensors"})
    for (int level : {0, 2}) check_against_cpu(*vulkan, load_model(fixture_path(name)), level, 13);
}

TEST_CASE("Vulkan matches the CPU on a prompt longer than one GEMM tile", "[vulkan][matrix]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  check_against_cpu(*vulkan, load_model(fixture_path("rwkv7-tiny.safetensors")), 2, 70);
}

TEST_CASE("Vulkan matches the CPU on RWKV-7 with head size 64", "[vulkan][matrix]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  Model model;
  model.path = "random head-size-64 model";
  model.config = load_model(fixture_path("rwkv7-tiny.safetensors")).config;
  model.config.embd = 128;
  model.config.head_size = 64;
  model.weights = make_random_model(model.config, 99);
  check_against_cpu(*vulkan, std::move(model), 2, 9);
}

TEST_CASE("Vulkan returns the last position's logits alone by default", "[vulkan][matrix]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  for (int level : {0, 2}) {
    TwoBackends both = compile_both(*vulkan, load_model(fixture_path("rwkv7-tiny.safetensors")), passes::preset_pipeline(level));
    auto tokens = random_tokens(9, both.model.config.vocab, 3);
    State cpu_state = both.cpu->new_state(), gpu_state = both.vulkan->new_state();
    HostTensor expected = both.cpu->forward(tokens, cpu_state);
    HostTensor actual = both.vulkan->forward(tokens, gpu_state);
    REQUIRE(actual.shape() == Shape{both.model.config.vocab});
    CHECK(compare(actual.f32(), expected.f32()).relative <= kF32Tolerance);
  }
}

}  // namespace rwkvc::test
