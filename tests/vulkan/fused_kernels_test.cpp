// The kernels that replace several steps: LoRA matrices read through their transposed weight
// by the row GEMV, matmul_epilogue tails folded into the GEMV/GEMM store, token_shift_mix
// regions led by their layer norm as one kernel per row, and wkv regions of short calls as one
// kernel (T = 45 is short too: kFusedWkvMaxTokens; 130 takes the op-by-op path and the
// 128-wide GEMM tiles). Random RWKV-7 models with odd sizes, T in {1, 3, 45, 130}, against the
// CPU running the same graph; the profile's kernel labels show each fused kernel really ran.
#include <algorithm>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "backends/feed_mode.h"
#include "frontend/random_model.h"
#include "vulkan_test_support.h"

namespace rwkvc::test {

namespace {

constexpr double kF32Tolerance = 1e-4;
// f16 weights: the CPU rounds them identically, so only the summation order differs (a few
// units of f32 roundoff per dot product, grown through two layers); 1e-3 leaves room for that
// and still fails on any wrong element, which moves logits by O(1).
constexpr double kF16Tolerance = 1e-3;

Model odd_model(std::int64_t embd, std::int64_t head_size, std::uint64_t seed) {
  Model model;
  model.config.arch = Arch::rwkv7;
  model.config.layers = 2;
  model.config.embd = embd;
  model.config.head_size = head_size;
  model.config.vocab = 301;
  model.config.ffn = 3 * embd + 5;
  model.config.decay_lora = 13;
  model.config.aaa_lora = 11;
  model.config.mv_lora = 7;
  model.config.gate_lora = 19;
  model.path = fmt::format("random RWKV-7 C {} N {}", embd, head_size);
  model.weights = make_random_model(model.config, seed);
  return model;
}

bool ran(const vulkan::VulkanExecutable& exe, std::string_view label) {
  return std::any_of(exe.step_times().begin(), exe.step_times().end(),
                     [&](const auto& step) { return step.label.find(label) != std::string::npos; });
}

// Every T, all logits and the state against the CPU; returns after checking that the fused
// kernels ran (their labels appear in the profile of a decode step).
void check_fused(Backend& vulkan, Model model, const std::string& pipeline, double tolerance) {
  TwoBackends both = compile_both(vulkan, std::move(model), pipeline);
  check_spirv_valid(*both.vulkan);
  for (std::size_t length : {1, 3, 45, 130}) {
    INFO(both.model.path << ", passes '" << pipeline << "', " << length << " tokens");
    auto tokens = random_tokens(length, both.model.config.vocab, static_cast<unsigned>(length));
    State reference_state = both.cpu->new_state(), state = both.vulkan->new_state();
    // Two calls, so the second starts from a non-zero state (the token shift reads it).
    HostTensor reference = both.cpu->forward(tokens, reference_state, {.all_logits = true});
    both.vulkan->forward(tokens, state, {.all_logits = true});
    reference = both.cpu->forward(tokens, reference_state, {.all_logits = true});
    HostTensor logits = both.vulkan->forward(tokens, state, {.all_logits = true});
    Error e = compare(logits.f32(), reference.f32());
    INFO("logits: max-abs " << e.max_abs << ", relative " << e.relative);
    CHECK(e.relative <= tolerance);
    CHECK(compare_states(state.to_host(), reference_state.to_host()).relative <= tolerance);
  }
  auto& exe = dynamic_cast<vulkan::VulkanExecutable&>(*both.vulkan);
  exe.set_profiling(true);
  State state = exe.new_state();
  exe.forward(std::vector<std::int32_t>{4}, state, {.time_on_device = true});
  exe.set_profiling(false);
  if (exe.step_times().empty()) return;  // a device that cannot time
  CHECK(ran(exe, "layer_norm + token_shift_mix"));
  CHECK(ran(exe, "+ epilogue"));
  CHECK(ran(exe, "wkv region"));
  CHECK(!ran(exe, "l2_norm"));  // the wkv region's reductions run inside its kernel
  // Every weight multiplied from the left (the LoRA matrices) is read through its transpose
  // by the row GEMV: the column kernel (B[K,N]) never runs.
  for (const auto& step : exe.step_times()) {
    INFO(step.label);
    CHECK(step.label.find("B[K,N]") == std::string::npos);
  }
}

}  // namespace

TEST_CASE("Fused Vulkan kernels match the CPU on odd RWKV-7 sizes", "[vulkan][fused]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  std::string o2 = passes::preset_pipeline(2);
  check_fused(*vulkan, odd_model(40, 8, 21), o2, kF32Tolerance);
  check_fused(*vulkan, odd_model(40, 8, 22), o2 + "," + passes::precision_step(DType::f16), kF16Tolerance);
}

TEST_CASE("Fused Vulkan kernels without subgroup arithmetic or 16-bit storage match the CPU", "[vulkan][fused]") {
  FeaturesOff off("subgroups,storage16");
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  std::string o2 = passes::preset_pipeline(2);
  check_fused(*vulkan, odd_model(40, 8, 24), o2 + "," + passes::precision_step(DType::f16), kF16Tolerance);
}

TEST_CASE("Fused Vulkan kernels match the CPU on rows of more than 1024 channels", "[vulkan][fused]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  check_fused(*vulkan, odd_model(1032, 8, 23), passes::preset_pipeline(2), kF32Tolerance);
}

}  // namespace rwkvc::test
