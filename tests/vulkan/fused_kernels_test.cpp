// The kernels that replace several steps: LoRA matrices read through their transposed weight
// by the row GEMV, matmul_epilogue tails folded into the GEMV/GEMM store, token_shift_mix
// regions led by their layer norm as one kernel per row (folded into the row GEMVs that read
// them for one-token calls, when the device has subgroup arithmetic), and wkv regions of short
// calls as one kernel (with RWKVC_VULKAN_FOLDS=norm_mix,lora_up also computing the LoRA ups) (T = 45 is short too: kFusedWkvMaxTokens; 130 takes the op-by-op path
// and the 128-wide GEMM tiles; its recurrence splits each state row over 4 invocations). Random RWKV-7 models with odd sizes, T in {1, 3, 45, 130}, against the
// CPU running the same graph; the profile's kernel labels show each fused kernel really ran.
// The one-token wkv kernel with its state rows split over 2, 4 or 8 invocations (and with one
// per row, RWKVC_VULKAN_WKV_TOKEN_SPLIT=0) runs two one-token calls at head sizes 16, 32 and 64.
// The wkv kernel reading its inputs a token ahead (RWKVC_VULKAN_WKV_PREFETCH=1) and the row
// GEMVs under other tunings (RWKVC_VULKAN_GEMV: loads in flight, rows and workgroups, the
// folded GEMV's weights loaded before its norm) run the same checks, as do the chained FFN
// GEMVs and the new state copied by kernels (several for many slots) or by transfers. The
// folded GEMVs of one mix batched into one dispatch (RWKVC_VULKAN_FOLDS=...,batch) run on odd
// models and both tiny models, their labels counted. The group norm + gate folded into the
// output projection (RWKVC_VULKAN_FOLDS=...,group_norm) runs on odd models and the RWKV-7 tiny
// model, its kernels counted (and the whole wkv kernel's absence) in one-token calls.
#include <algorithm>
#include <cstdlib>
#include <string>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "backends/feed_mode.h"
#include "backends/vulkan/device.h"
#include "frontend/random_model.h"
#include "vulkan_test_support.h"

namespace rwkvc::test {

namespace {

constexpr double kF32Tolerance = 1e-4;
// f16 weights: the CPU rounds them identically, so only the summation order differs (a few
// units of f32 roundoff per dot product, grown through two layers); 1e-3 leaves room for that
// and still fails on any wrong element, which moves logits by O(1).
constexpr double kF16Tolerance = 1e-3;
// bf16 weights: the same argument; the accumulation is f32 either way.
constexpr double kBf16Tolerance = 1e-3;

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
// Sets RWKVC_VULKAN_FOLDS (the decode folds) for the scope's lifetime.
class Folds {
 public:
  explicit Folds(const char* list) { ::setenv("RWKVC_VULKAN_FOLDS", list, 1); }
  ~Folds() { ::unsetenv("RWKVC_VULKAN_FOLDS"); }
};

// One forward call with the profile on, so that `ran` sees which kernels it took.
void profiled_forward(vulkan::VulkanExecutable& exe, const std::vector<std::int32_t>& tokens, State& state) {
  exe.set_profiling(true);
  exe.forward(tokens, state, {.time_on_device = true});
  exe.set_profiling(false);
}

// `both` fed `length` random tokens (from `seed`) twice, so the second call starts from the
// state the first left (the token shift reads it): every position's logits and the state
// against the CPU within `tolerance`, after each call.
void check_two_calls(TwoBackends& both, std::size_t length, unsigned seed, double tolerance) {
  auto tokens = random_tokens(length, both.model.config.vocab, seed);
  State reference_state = both.cpu->new_state(), state = both.vulkan->new_state();
  for (int call = 0; call < 2; ++call) {
    HostTensor reference = both.cpu->forward(tokens, reference_state, {.all_logits = true});
    HostTensor logits = both.vulkan->forward(tokens, state, {.all_logits = true});
    Error e = compare(logits.f32(), reference.f32());
    INFO("call " << call + 1 << ", logits: max-abs " << e.max_abs << ", relative " << e.relative);
    CHECK(e.relative <= tolerance);
    CHECK(compare_states(state.to_host(), reference_state.to_host()).relative <= tolerance);
  }
}

// Whether the LoRA ups fold is chosen: RWKVC_VULKAN_FOLDS lists it, or is unset (it is a default fold).
bool lora_up_fold_chosen() {
  const char* folds = std::getenv("RWKVC_VULKAN_FOLDS");
  return folds == nullptr || std::string(folds).find("lora_up") != std::string::npos;
}

void check_fused(Backend& vulkan, Model model, const std::string& pipeline, double tolerance, bool folds_norm_mix,
                 bool folds_lora_up = lora_up_fold_chosen()) {
  TwoBackends both = compile_both(vulkan, std::move(model), pipeline);
  check_spirv_valid(*both.vulkan);
  for (std::size_t length : {1, 3, 45, 130}) {
    INFO(both.model.path << ", passes '" << pipeline << "', " << length << " tokens");
    check_two_calls(both, length, static_cast<unsigned>(length), tolerance);
  }
  auto& exe = dynamic_cast<vulkan::VulkanExecutable&>(*both.vulkan);
  State state = exe.new_state();
  profiled_forward(exe, std::vector<std::int32_t>{4}, state);
  if (exe.step_times().empty()) return;  // a device that cannot time
  // One token: the mixes run inside the GEMVs that read them (their own kernel otherwise).
  CHECK(ran(exe, "layer_norm + mix + gemv") == folds_norm_mix);
  CHECK(ran(exe, "layer_norm + token_shift_mix") == !folds_norm_mix);
  CHECK(ran(exe, "+ epilogue"));
  CHECK(ran(exe, "wkv region"));
  CHECK(!ran(exe, "l2_norm"));  // the wkv region's reductions run inside its kernel
  CHECK(ran(exe, "state copy"));  // the new state goes into the state's buffers by a kernel
  // With the ups fold, the LoRA ups (GEMVs of N = C, K = a rank) run inside the wkv kernel.
  const ModelConfig& config = both.model.config;
  for (std::int64_t rank : {config.decay_lora, config.aaa_lora, config.mv_lora, config.gate_lora}) {
    INFO("LoRA rank " << rank);
    CHECK(ran(exe, fmt::format(",{},{},0,", config.embd, rank)) == !folds_lora_up);
  }
  // Every weight multiplied from the left (the LoRA matrices) is read through its transpose
  // by the row GEMV: the column kernel (B[K,N]) never runs.
  for (const auto& step : exe.step_times()) {
    INFO(step.label);
    CHECK(step.label.find("B[K,N]") == std::string::npos);
  }
  // Two tokens: the mix is its own kernel again.
  profiled_forward(exe, std::vector<std::int32_t>{5, 6}, state);
  CHECK(ran(exe, "layer_norm + token_shift_mix"));
  CHECK(!ran(exe, "layer_norm + mix + gemv"));
  // A long call: the recurrence kernel splits each state row over 4 invocations when the
  // device has subgroup shuffles (both devices the tests run on do, unless turned off).
  profiled_forward(exe, random_tokens(130, both.model.config.vocab, 9), state);
  CHECK(ran(exe, "wkv7 split") == folds_norm_mix);
}


// Sets RWKVC_VULKAN_WKV_TOKEN_SPLIT (invocations per state row of the one-token wkv kernel,
// read when a graph is compiled) for the scope's lifetime; "" leaves the default.
class TokenSplit {
 public:
  explicit TokenSplit(const char* value) {
    if (*value != '\0') ::setenv("RWKVC_VULKAN_WKV_TOKEN_SPLIT", value, 1);
  }
  ~TokenSplit() { ::unsetenv("RWKVC_VULKAN_WKV_TOKEN_SPLIT"); }
};

// The split the one-token wkv kernel should use on device 0 when `wanted` is asked: rows split
// only with subgroup shuffles, over neighbours of one subgroup, within one workgroup.
std::int64_t expected_split(std::int64_t wanted, std::int64_t head_size) {
  auto device = vulkan::Device::open(vulkan::Instance::create(), 0);
  const vulkan::DeviceFeatures& f = device->features();
  bool fits = wanted > 1 && f.subgroup_shuffle && f.subgroup_size % wanted == 0 && head_size % wanted == 0 &&
              head_size * wanted <= static_cast<std::int64_t>(f.max_workgroup_invocations);
  return fits ? wanted : 1;
}

// Two one-token calls (the second from the non-zero state the first left), logits and state
// against the CPU after each; the second is profiled, and its wkv region kernel must be the
// one with `split` invocations per state row (1: the kernel with one invocation per row).
void check_token_calls(Backend& vulkan, Model model, const std::string& pipeline, double tolerance, std::int64_t split) {
  TwoBackends both = compile_both(vulkan, std::move(model), pipeline);
  check_spirv_valid(*both.vulkan);
  auto& exe = dynamic_cast<vulkan::VulkanExecutable&>(*both.vulkan);
  State reference_state = both.cpu->new_state(), state = exe.new_state();
  auto tokens = random_tokens(2, both.model.config.vocab, 31);
  for (std::size_t call = 0; call < 2; ++call) {
    INFO(both.model.path << ", passes '" << pipeline << "', one-token call " << call + 1);
    std::vector<std::int32_t> token{tokens[call]};
    HostTensor reference = both.cpu->forward(token, reference_state, {});
    exe.set_profiling(call == 1);
    HostTensor logits = exe.forward(token, state, {.time_on_device = call == 1});
    exe.set_profiling(false);
    Error e = compare(logits.f32(), reference.f32());
    INFO("logits: max-abs " << e.max_abs << ", relative " << e.relative);
    CHECK(e.relative <= tolerance);
    CHECK(compare_states(state.to_host(), reference_state.to_host()).relative <= tolerance);
  }
  if (exe.step_times().empty()) return;  // a device that cannot time
  INFO("expected rows split over " << split << " invocations");
  CHECK(ran(exe, "wkv region"));
  CHECK(ran(exe, fmt::format("wkv region split{} ", split)) == (split > 1));
  CHECK(ran(exe, "wkv region split") == (split > 1));
  CHECK(!ran(exe, "l2_norm"));
}
}  // namespace

TEST_CASE("Fused Vulkan kernels match the CPU on odd RWKV-7 sizes", "[vulkan][fused]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  std::string o2 = passes::preset_pipeline(2);
  check_fused(*vulkan, odd_model(40, 8, 21), o2, kF32Tolerance, true);
  check_fused(*vulkan, odd_model(40, 8, 22), o2 + "," + passes::precision_step(DType::f16), kF16Tolerance, true);
  // C 36: rows of a length that is no multiple of 8 (the GEMV's narrow loads); bf16 weights.
  check_fused(*vulkan, odd_model(36, 4, 25), o2 + "," + passes::precision_step(DType::bf16), kBf16Tolerance, true);
  // The LoRA ups folded into the wkv kernel (not a default fold): ranks of 7..19, C 40 and 36.
  Folds ups("norm_mix,lora_up");
  check_fused(*vulkan, odd_model(40, 8, 26), o2 + "," + passes::precision_step(DType::f16), kF16Tolerance, true, true);
  check_fused(*vulkan, odd_model(36, 4, 27), o2, kF32Tolerance, true, true);
}

TEST_CASE("Fused Vulkan kernels without subgroup arithmetic or 16-bit storage match the CPU", "[vulkan][fused]") {
  FeaturesOff off("subgroups,storage16");
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  std::string o2 = passes::preset_pipeline(2);
  check_fused(*vulkan, odd_model(40, 8, 24), o2 + "," + passes::precision_step(DType::f16), kF16Tolerance, false);
  Folds ups("norm_mix,lora_up");  // the ups fold does not need subgroups
  check_fused(*vulkan, odd_model(40, 8, 28), o2, kF32Tolerance, false, true);
}

TEST_CASE("The one-token wkv region kernel with split state rows matches the CPU", "[vulkan][fused]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  std::string o2 = passes::preset_pipeline(2);
  // Head sizes 16, 32, 64 with 3 or 5 heads; the default split (4), 8 (a whole lavapipe
  // subgroup per row), 2, and 0 (the kernel with one invocation per row, kept for comparison).
  struct Case {
    const char* env;
    std::int64_t wanted;
  };
  for (Case split : {Case{"", 4}, Case{"8", 8}, Case{"2", 2}, Case{"0", 1}}) {
    TokenSplit scope(split.env);
    for (auto [embd, head_size] : {std::pair{48, 16}, std::pair{160, 32}, std::pair{192, 64}}) {
      INFO("RWKVC_VULKAN_WKV_TOKEN_SPLIT='" << split.env << "', C " << embd << ", N " << head_size);
      check_token_calls(*vulkan, odd_model(embd, head_size, 40 + static_cast<std::uint64_t>(head_size)), o2,
                        kF32Tolerance, expected_split(split.wanted, head_size));
    }
  }
  // f16 and bf16 weights, and the LoRA ups folded into the split kernel (their sums split too).
  check_token_calls(*vulkan, odd_model(160, 32, 51), o2 + "," + passes::precision_step(DType::f16), kF16Tolerance,
                    expected_split(4, 32));
  check_token_calls(*vulkan, odd_model(192, 64, 52), o2 + "," + passes::precision_step(DType::bf16), kBf16Tolerance,
                    expected_split(4, 64));
  Folds ups("norm_mix,lora_up");
  check_token_calls(*vulkan, odd_model(160, 32, 53), o2 + "," + passes::precision_step(DType::f16), kF16Tolerance,
                    expected_split(4, 32));
  TokenSplit eight("8");
  check_token_calls(*vulkan, odd_model(48, 16, 54), o2, kF32Tolerance, expected_split(8, 16));
}

// Sets RWKVC_VULKAN_WKV_PREFETCH (the wkv kernel reads its inputs a token ahead) for the
// scope's lifetime.
class WkvPrefetch {
 public:
  WkvPrefetch() { ::setenv("RWKVC_VULKAN_WKV_PREFETCH", "1", 1); }
  ~WkvPrefetch() { ::unsetenv("RWKVC_VULKAN_WKV_PREFETCH"); }
};

TEST_CASE("The wkv region kernel reading its inputs a token ahead matches the CPU", "[vulkan][fused]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  std::string o2 = passes::preset_pipeline(2);
  WkvPrefetch prefetch;
  // T 1, 3 and 45 run the one-kernel wkv (the loads of token t + 1 during token t).
  check_fused(*vulkan, odd_model(40, 8, 71), o2, kF32Tolerance, true);
  check_fused(*vulkan, odd_model(36, 4, 72), o2 + "," + passes::precision_step(DType::f16), kF16Tolerance, true);
  for (const char* split : {"", "0"}) {
    INFO("RWKVC_VULKAN_WKV_TOKEN_SPLIT='" << split << "'");
    TokenSplit scope(split);
    check_token_calls(*vulkan, odd_model(192, 64, 73), o2, kF32Tolerance, expected_split(*split ? 1 : 4, 64));
  }
  {
    Folds ups("norm_mix,lora_up");  // the ups stay computed in the body
    check_fused(*vulkan, odd_model(40, 8, 74), o2, kF32Tolerance, true, true);
  }
  TwoBackends both = compile_both(*vulkan, odd_model(40, 8, 75), o2);
  auto& exe = dynamic_cast<vulkan::VulkanExecutable&>(*both.vulkan);
  State state = exe.new_state();
  profiled_forward(exe, std::vector<std::int32_t>{4}, state);
  if (!exe.step_times().empty()) CHECK(ran(exe, " prefetched"));
}

// Sets RWKVC_VULKAN_WKV_UPS_AHEAD (the LoRA ups folded into the wkv kernel are computed a token
// ahead) for the scope's lifetime.
class UpsAhead {
 public:
  UpsAhead() { ::setenv("RWKVC_VULKAN_WKV_UPS_AHEAD", "1", 1); }
  ~UpsAhead() { ::unsetenv("RWKVC_VULKAN_WKV_UPS_AHEAD"); }
};

TEST_CASE("The wkv region kernel computing its folded LoRA ups a token ahead matches the CPU", "[vulkan][fused]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  std::string o2 = passes::preset_pipeline(2);
  Folds ups("norm_mix,lora_up");
  UpsAhead ahead;
  // T 1, 3 and 45 run the one-kernel wkv (token t + 1's ups during token t); ranks of 7..19.
  check_fused(*vulkan, odd_model(40, 8, 81), o2, kF32Tolerance, true, true);
  check_fused(*vulkan, odd_model(36, 4, 82), o2 + "," + passes::precision_step(DType::bf16), kBf16Tolerance, true, true);
  // Head sizes 16, 32 and 64, rows split over 4 and 8 invocations and one per row; then f16.
  for (const char* split : {"", "8", "0"}) {
    TokenSplit scope(split);
    for (auto [embd, head_size] : {std::pair{48, 16}, std::pair{160, 32}, std::pair{192, 64}}) {
      INFO("RWKVC_VULKAN_WKV_TOKEN_SPLIT='" << split << "', C " << embd << ", N " << head_size);
      std::int64_t wanted = *split == '\0' ? 4 : *split == '8' ? 8 : 1;
      check_token_calls(*vulkan, odd_model(embd, head_size, 83 + static_cast<std::uint64_t>(head_size)), o2,
                        kF32Tolerance, expected_split(wanted, head_size));
    }
  }
  check_token_calls(*vulkan, odd_model(160, 32, 84), o2 + "," + passes::precision_step(DType::f16), kF16Tolerance,
                    expected_split(4, 32));
  {
    WkvPrefetch prefetch;  // with the other inputs read a token ahead too
    check_fused(*vulkan, odd_model(40, 8, 85), o2, kF32Tolerance, true, true);
  }
  TwoBackends both = compile_both(*vulkan, odd_model(40, 8, 86), o2);
  auto& exe = dynamic_cast<vulkan::VulkanExecutable&>(*both.vulkan);
  State state = exe.new_state();
  profiled_forward(exe, std::vector<std::int32_t>{4}, state);
  if (exe.step_times().empty()) return;
  CHECK(ran(exe, " ups ahead"));
  CHECK(!ran(exe, " prefetched"));
}

TEST_CASE("The folded LoRA ups computed a token ahead without subgroups or 16-bit storage match the CPU",
          "[vulkan][fused]") {
  FeaturesOff off("subgroups,storage16");
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  Folds ups("norm_mix,lora_up");
  UpsAhead ahead;
  check_fused(*vulkan, odd_model(40, 8, 88), passes::preset_pipeline(2) + "," + passes::precision_step(DType::f16),
              kF16Tolerance, false, true);
}

TEST_CASE("A malformed RWKVC_VULKAN_WKV_UPS_AHEAD is refused with its setting named", "[vulkan][fused]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  ::setenv("RWKVC_VULKAN_WKV_UPS_AHEAD", "yes", 1);
  Model model = odd_model(40, 8, 87);
  Graph graph = passes::run_pipeline(build_graph(model.config), passes::parse_pipeline(passes::preset_pipeline(2)));
  CHECK_THROWS_WITH(vulkan->compile(graph, model.weights), Catch::Contains("RWKVC_VULKAN_WKV_UPS_AHEAD='yes'"));
  ::unsetenv("RWKVC_VULKAN_WKV_UPS_AHEAD");
}

// Sets RWKVC_VULKAN_GEMV (the row GEMVs' tuning, read when a graph is compiled) for the
// scope's lifetime.
class GemvSettings {
 public:
  explicit GemvSettings(const char* value) { ::setenv("RWKVC_VULKAN_GEMV", value, 1); }
  ~GemvSettings() { ::unsetenv("RWKVC_VULKAN_GEMV"); }
};

TEST_CASE("Row GEMVs under other tunings match the CPU", "[vulkan][fused]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  std::string o2 = passes::preset_pipeline(2);
  // Odd loads in flight, rows and subgroups per workgroup, few workgroups for the folded
  // products (so a subgroup runs several rows, the first from its prefetched registers, and
  // the last workgroup's block passes the end of the matrix), and the extremes.
  for (const char* tuning : {"fold_prefetch=1", "unroll=3,rows=3,fold_subgroups=3,fold_groups=5,fold_prefetch=1",
                             "unroll=16,rows=8,fold_subgroups=16,fold_groups=1024,fold_prefetch=1",
                             "unroll=1,rows=1,fold_subgroups=1,fold_groups=1,fold_prefetch=1"}) {
    INFO("RWKVC_VULKAN_GEMV='" << tuning << "'");
    GemvSettings scope(tuning);
    check_fused(*vulkan, odd_model(40, 8, 61), o2, kF32Tolerance, true);
    check_fused(*vulkan, odd_model(40, 8, 62), o2 + "," + passes::precision_step(DType::f16), kF16Tolerance, true);
    check_fused(*vulkan, odd_model(36, 4, 63), o2 + "," + passes::precision_step(DType::bf16), kBf16Tolerance, true);
  }
  // The prefetching kernel really ran (its label), on rows of a multiple of 8 only.
  GemvSettings scope("fold_prefetch=1");
  TwoBackends both = compile_both(*vulkan, odd_model(40, 8, 64), o2);
  auto& exe = dynamic_cast<vulkan::VulkanExecutable&>(*both.vulkan);
  State state = exe.new_state();
  profiled_forward(exe, std::vector<std::int32_t>{4}, state);
  if (!exe.step_times().empty()) CHECK(ran(exe, "+ prefetch"));
}

TEST_CASE("Folded GEMVs chained into the GEMV that reads them match the CPU", "[vulkan][fused]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  std::string o2 = passes::preset_pipeline(2);
  Folds chain("norm_mix,chain");
  // The FFN key (rows F = 3C + 5) chained into the value: outputs C 40 (16-byte loads of the
  // transposed value matrix) and C 36 (single loads); f32, f16 and bf16; with the default
  // tuning (rows a multiple of 8 per workgroup) and with 3 subgroups of 12 rows (5 workgroups'
  // worth), so a block's rows are no multiple of 8 and the last block passes the end.
  for (const char* tuning : {"", "fold_subgroups=3,fold_groups=5,fold_prefetch=1"}) {
    INFO("RWKVC_VULKAN_GEMV='" << tuning << "'");
    GemvSettings scope(tuning);
    check_fused(*vulkan, odd_model(40, 8, 81), o2, kF32Tolerance, true);
    check_fused(*vulkan, odd_model(40, 8, 82), o2 + "," + passes::precision_step(DType::f16), kF16Tolerance, true);
    check_fused(*vulkan, odd_model(36, 4, 83), o2 + "," + passes::precision_step(DType::bf16), kBf16Tolerance, true);
    check_fused(*vulkan, odd_model(36, 4, 84), o2, kF32Tolerance, true);
  }
  check_fused(*vulkan, odd_model(1032, 8, 85), o2, kF32Tolerance, true);
  // One token runs the chained kernel and the sum, not the value GEMV (K = F); two tokens the
  // value GEMV again.
  TwoBackends both = compile_both(*vulkan, odd_model(40, 8, 86), o2);
  auto& exe = dynamic_cast<vulkan::VulkanExecutable&>(*both.vulkan);
  std::string value_gemv = fmt::format(",{},{},0,", both.model.config.embd, both.model.config.ffn);
  State state = exe.new_state();
  profiled_forward(exe, std::vector<std::int32_t>{4}, state);
  if (exe.step_times().empty()) return;
  CHECK(ran(exe, "+ chained gemv"));
  CHECK(ran(exe, "chained gemv sum + epilogue"));
  CHECK(!ran(exe, value_gemv));
  profiled_forward(exe, std::vector<std::int32_t>{5, 6}, state);
  CHECK(!ran(exe, "chained gemv"));
  CHECK(ran(exe, value_gemv));
  // Both tiny models chain their FFN (matrix_test checks their logits in every feeding mode).
  for (const char* name : {"rwkv7-tiny.safetensors", "rwkv4-tiny.safetensors"}) {
    INFO(name);
    TwoBackends tiny = compile_both(*vulkan, load_model(fixture_path(name)), o2);
    auto& tiny_exe = dynamic_cast<vulkan::VulkanExecutable&>(*tiny.vulkan);
    tiny_exe.set_profiling(true);
    State tiny_state = tiny_exe.new_state();
    tiny_exe.forward(std::vector<std::int32_t>{4}, tiny_state, {.time_on_device = true});
    CHECK(ran(tiny_exe, "+ chained gemv"));
    CHECK(ran(tiny_exe, "chained gemv sum"));
  }
}

// The decode profile's folded GEMVs: batched kernels (RWKVC_VULKAN_FOLDS=...,batch), the
// products they run (their labels list each member's N after " N "), and unbatched ones.
struct FoldedGemvs {
  int batches = 0, members = 0, unbatched = 0;
};
FoldedGemvs folded_gemvs(const vulkan::VulkanExecutable& exe) {
  FoldedGemvs count;
  for (const auto& step : exe.step_times()) {
    const std::string& label = step.label;
    if (label.rfind("layer_norm + mix + gemv batch ", 0) == 0) {
      ++count.batches;
      std::size_t from = label.find(" N ") + 3;
      std::string list = label.substr(from, label.find(' ', from) - from);
      count.members += 1 + static_cast<int>(std::count(list.begin(), list.end(), ','));
    } else if (label.rfind("layer_norm + mix + gemv ", 0) == 0) {
      ++count.unbatched;
    }
  }
  return count;
}

// T in {1, 3, 45}, two calls each (the second from the state the first left), all logits and
// the state against the CPU; then a one-token call must run `members` products in batched
// kernels and `unbatched` folded GEMVs of their own, and a two-token call no batch.
void check_batched(Backend& vulkan, Model model, const std::string& pipeline, double tolerance, int members,
                   int unbatched) {
  TwoBackends both = compile_both(vulkan, std::move(model), pipeline);
  check_spirv_valid(*both.vulkan);
  for (std::size_t length : {1, 3, 45}) {
    INFO(both.model.path << ", passes '" << pipeline << "', " << length << " tokens");
    check_two_calls(both, length, static_cast<unsigned>(length) + 7, tolerance);
  }
  auto& exe = dynamic_cast<vulkan::VulkanExecutable&>(*both.vulkan);
  State state = exe.new_state();
  profiled_forward(exe, std::vector<std::int32_t>{4}, state);
  if (exe.step_times().empty()) return;  // a device that cannot time
  INFO(both.model.path << ", passes '" << pipeline << "'");
  FoldedGemvs one = folded_gemvs(exe);
  CHECK(one.batches >= 1);
  CHECK(one.members == members);
  CHECK(one.unbatched == unbatched);
  CHECK(!ran(exe, "layer_norm + token_shift_mix"));
  profiled_forward(exe, std::vector<std::int32_t>{5, 6}, state);
  CHECK(folded_gemvs(exe).batches == 0);
  CHECK(ran(exe, "layer_norm + token_shift_mix"));
}

// RWKV-7: a layer's attention mix feeds r, k, v and the LoRA downs of w, a, g (and of v after
// layer 0) in one batch; the FFN mix feeds the key alone, which stays a folded GEMV of its own.
int rwkv7_batched_products(const Model& model) { return static_cast<int>(7 * model.config.layers - 1); }

TEST_CASE("Folded GEMVs batched into one dispatch per mix match the CPU", "[vulkan][fused]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  std::string o2 = passes::preset_pipeline(2);
  Folds batch("norm_mix,lora_up,batch");
  // C 40 (16-byte loads), C 36 (rows of no multiple of 8: single loads), C 1032 (more than a
  // workgroup's invocations per row); f32, f16, bf16; then on two of them the weights of each
  // subgroup's first row loaded before the norm, odd loads in flight, subgroups and workgroups
  // per member (so a subgroup runs several rows).
  struct Case {
    Model model;
    std::string precision;
    double tolerance;
  };
  auto run = [&](const Case& c) {
    check_batched(*vulkan, c.model, c.precision.empty() ? o2 : o2 + "," + c.precision, c.tolerance,
                  rwkv7_batched_products(c.model), static_cast<int>(c.model.config.layers));
  };
  for (const Case& c : {Case{odd_model(40, 8, 101), "", kF32Tolerance},
                        Case{odd_model(36, 4, 104), "", kF32Tolerance},
                        Case{odd_model(1032, 8, 105), "", kF32Tolerance}})
    run(c);
  for (const char* tuning : {"", "batch_prefetch=1", "batch_prefetch=1,unroll=3,fold_subgroups=3,fold_groups=5",
                             "unroll=1,fold_subgroups=1,fold_groups=1"}) {
    INFO("RWKVC_VULKAN_GEMV='" << tuning << "'");
    GemvSettings scope(tuning);
    run({odd_model(40, 8, 102), passes::precision_step(DType::f16), kF16Tolerance});
    run({odd_model(36, 4, 103), passes::precision_step(DType::bf16), kBf16Tolerance});
  }
  // The prefetching kernel ran where rows are a multiple of 8.
  GemvSettings prefetch("batch_prefetch=1");
  TwoBackends both = compile_both(*vulkan, odd_model(40, 8, 106), o2);
  auto& exe = dynamic_cast<vulkan::VulkanExecutable&>(*both.vulkan);
  State state = exe.new_state();
  profiled_forward(exe, std::vector<std::int32_t>{4}, state);
  if (exe.step_times().empty()) return;
  auto prefetching = std::count_if(exe.step_times().begin(), exe.step_times().end(), [](const auto& step) {
    return step.label.find("gemv batch") != std::string::npos && step.label.find("+ prefetch") != std::string::npos;
  });
  CHECK(prefetching == 2);  // a batch a layer
}

TEST_CASE("Batched folded GEMVs match the CPU on both tiny models and without 16-bit storage", "[vulkan][fused]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  std::string o2 = passes::preset_pipeline(2);
  Folds batch("norm_mix,lora_up,batch");
  Model rwkv7 = load_model(fixture_path("rwkv7-tiny.safetensors"));
  check_batched(*vulkan, rwkv7, o2, kF32Tolerance, rwkv7_batched_products(rwkv7), static_cast<int>(rwkv7.config.layers));
  // RWKV-4: the time mix feeds k, v and r (sigmoid epilogue) in one batch; the channel mix's r
  // stores r * (relu(k)^2 Wv) in its epilogue, which waits for the key's product: its k and r
  // are not one level and stay two folded GEMVs.
  Model rwkv4 = load_model(fixture_path("rwkv4-tiny.safetensors"));
  int layers = static_cast<int>(rwkv4.config.layers);
  check_batched(*vulkan, rwkv4, o2, kF32Tolerance, 3 * layers, 2 * layers);
  {
    FeaturesOff off("storage16");
    auto unpacked = vulkan_or_skip();
    check_batched(*unpacked, odd_model(36, 4, 107), o2 + "," + passes::precision_step(DType::bf16), kBf16Tolerance,
                  rwkv7_batched_products(odd_model(36, 4, 107)), 2);
    check_batched(*unpacked, odd_model(40, 8, 108), o2 + "," + passes::precision_step(DType::f16), kF16Tolerance,
                  rwkv7_batched_products(odd_model(40, 8, 108)), 2);
  }
  // Without subgroup arithmetic nothing folds: every mix is its own kernel.
  FeaturesOff off("subgroups,storage16");
  auto plain = vulkan_or_skip();
  check_fused(*plain, odd_model(40, 8, 109), o2 + "," + passes::precision_step(DType::f16), kF16Tolerance, false, true);
}

TEST_CASE("The new state of many slots copied by several kernels matches the CPU", "[vulkan][fused]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  // 9 layers: 27 state slots, more than one copy kernel takes where a kernel may bind few
  // buffers (lavapipe: 16 slots a kernel).
  Model model = odd_model(40, 8, 94);
  model.config.layers = 9;
  model.weights = make_random_model(model.config, 94);
  TwoBackends both = compile_both(*vulkan, std::move(model), passes::preset_pipeline(2));
  State reference_state = both.cpu->new_state(), state = both.vulkan->new_state();
  auto tokens = random_tokens(3, both.model.config.vocab, 95);
  for (std::size_t call = 0; call < tokens.size(); ++call) {
    INFO("one-token call " << call + 1);
    std::vector<std::int32_t> token{tokens[call]};
    HostTensor reference = both.cpu->forward(token, reference_state, {});
    HostTensor logits = both.vulkan->forward(token, state, {});
    CHECK(compare(logits.f32(), reference.f32()).relative <= kF32Tolerance);
    CHECK(compare_states(state.to_host(), reference_state.to_host()).relative <= kF32Tolerance);
  }
  auto& exe = dynamic_cast<vulkan::VulkanExecutable&>(*both.vulkan);
  exe.set_profiling(true);
  exe.forward(std::vector<std::int32_t>{4}, state, {.time_on_device = true});
  if (exe.step_times().empty()) return;
  auto device = vulkan::Device::open(vulkan::Instance::create(), 0);
  std::size_t per_kernel = std::clamp<std::size_t>(device->features().max_storage_buffers / 2, 1, 128);
  auto copies = std::count_if(exe.step_times().begin(), exe.step_times().end(),
                              [](const auto& step) { return step.label.rfind("state copy", 0) == 0; });
  CHECK(static_cast<std::size_t>(copies) == (27 + per_kernel - 1) / per_kernel);
}

TEST_CASE("The new state copied by transfers instead of a kernel matches the CPU", "[vulkan][fused]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  ::setenv("RWKVC_VULKAN_STATE_COPY", "transfer", 1);
  TwoBackends both = compile_both(*vulkan, odd_model(40, 8, 91), passes::preset_pipeline(2));
  ::unsetenv("RWKVC_VULKAN_STATE_COPY");
  State reference_state = both.cpu->new_state(), state = both.vulkan->new_state();
  auto tokens = random_tokens(5, both.model.config.vocab, 92);
  for (std::size_t length : {1, 4}) {
    INFO(length << " tokens");
    std::vector<std::int32_t> call(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(length));
    HostTensor reference = both.cpu->forward(call, reference_state, {});
    HostTensor logits = both.vulkan->forward(call, state, {});
    CHECK(compare(logits.f32(), reference.f32()).relative <= kF32Tolerance);
    CHECK(compare_states(state.to_host(), reference_state.to_host()).relative <= kF32Tolerance);
  }
  auto& exe = dynamic_cast<vulkan::VulkanExecutable&>(*both.vulkan);
  exe.set_profiling(true);
  exe.forward(std::vector<std::int32_t>{4}, state, {.time_on_device = true});
  if (!exe.step_times().empty()) CHECK(!ran(exe, "state copy"));
  ::setenv("RWKVC_VULKAN_STATE_COPY", "bits", 1);
  Model model = odd_model(40, 8, 93);
  Graph graph = passes::run_pipeline(build_graph(model.config), passes::parse_pipeline(passes::preset_pipeline(2)));
  CHECK_THROWS_WITH(vulkan->compile(graph, model.weights), Catch::Contains("RWKVC_VULKAN_STATE_COPY"));
  ::unsetenv("RWKVC_VULKAN_STATE_COPY");
}

TEST_CASE("A malformed RWKVC_VULKAN_GEMV is refused with its setting named", "[vulkan][fused]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  for (const char* bad : {"unroll=0", "unroll=17", "rows=x", "fold_prefetch=2", "batch_prefetch=2", "speed=11", "unroll"}) {
    INFO(bad);
    GemvSettings scope(bad);
    Model model = odd_model(40, 8, 65);
    Graph graph = passes::run_pipeline(build_graph(model.config), passes::parse_pipeline(passes::preset_pipeline(2)));
    CHECK_THROWS_WITH(vulkan->compile(graph, model.weights), Catch::Contains("RWKVC_VULKAN_GEMV"));
  }
}

TEST_CASE("Fused Vulkan kernels match the CPU on rows of more than 1024 channels", "[vulkan][fused]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  check_fused(*vulkan, odd_model(1032, 8, 23), passes::preset_pipeline(2), kF32Tolerance, true);
}

namespace {

// The group norm + gate fold (RWKVC_VULKAN_FOLDS=...,group_norm): every T (two calls each) and
// the state against the CPU; in a one-token call, `folded` says whether each layer's output
// projection ran the group norm prologue and the wkv kernel stored its input instead (no wkv
// kernel of the gated output ran); calls of 3 tokens keep the original kernels.
// `groups`: the workgroups a head the split wkv kernel should use (its label's "groups<G>").
void check_group_norm_fold(Backend& vulkan, Model model, const std::string& pipeline, double tolerance, bool folded,
                           std::int64_t groups = 1) {
  TwoBackends both = compile_both(vulkan, std::move(model), pipeline);
  check_spirv_valid(*both.vulkan);
  for (std::size_t length : {1, 3, 45}) {
    INFO(both.model.path << ", passes '" << pipeline << "', " << length << " tokens");
    check_two_calls(both, length, static_cast<unsigned>(length) + 11, tolerance);
  }
  auto& exe = dynamic_cast<vulkan::VulkanExecutable&>(*both.vulkan);
  State state = exe.new_state();
  profiled_forward(exe, std::vector<std::int32_t>{4}, state);
  if (exe.step_times().empty()) return;  // a device that cannot time
  INFO(both.model.path << ", passes '" << pipeline << "'");
  auto count = [&](auto&& pick) {
    return std::count_if(exe.step_times().begin(), exe.step_times().end(), [&](const auto& step) { return pick(step.label); });
  };
  auto layers = static_cast<long>(both.model.config.layers);
  auto prologues = [](const std::string& label) { return label.rfind("group_norm + gate + gemv", 0) == 0; };
  auto split_wkv = [](const std::string& label) {
    return label.find("wkv region") != std::string::npos && label.find("group norm out") != std::string::npos;
  };
  auto whole_wkv = [](const std::string& label) {
    return label.find("wkv region") != std::string::npos && label.find("group norm out") == std::string::npos;
  };
  CHECK(count(prologues) == (folded ? layers : 0));
  CHECK(count(split_wkv) == (folded ? layers : 0));
  CHECK(count(whole_wkv) == (folded ? 0 : layers));
  auto grouped = [&](const std::string& label) { return label.find(fmt::format(" groups{}", groups)) != std::string::npos; };
  CHECK(count(grouped) == (folded && groups > 1 ? layers : 0));
  profiled_forward(exe, std::vector<std::int32_t>{5, 6, 7}, state);
  CHECK(count(prologues) == 0);
  CHECK(count(split_wkv) == 0);
  CHECK(count(whole_wkv) == layers);
}

}  // namespace

TEST_CASE("The group norm + gate folded into the output projection matches the CPU", "[vulkan][fused]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  std::string o2 = passes::preset_pipeline(2);
  std::string f16 = o2 + "," + passes::precision_step(DType::f16), bf16 = o2 + "," + passes::precision_step(DType::bf16);
  // With the default folds and the ups fold (the gate's up then computed in the wkv kernel),
  // without the others; C 40 (head size 8, 16-byte loads), C 36 (head size 4, single loads),
  // C 1032 (head size 8: more heads than subgroups).
  for (const char* folds : {"norm_mix,lora_up,batch,group_norm", "group_norm", "norm_mix,group_norm"}) {
    INFO("RWKVC_VULKAN_FOLDS='" << folds << "'");
    Folds scope(folds);
    check_group_norm_fold(*vulkan, odd_model(40, 8, 141), o2, kF32Tolerance, true);
    check_group_norm_fold(*vulkan, odd_model(36, 4, 142), f16, kF16Tolerance, true);
    check_group_norm_fold(*vulkan, odd_model(40, 8, 143), bf16, kBf16Tolerance, true);
  }
  Folds scope("norm_mix,lora_up,batch,group_norm");
  check_group_norm_fold(*vulkan, odd_model(1032, 8, 144), f16, kF16Tolerance, true);
  // The rows of each state row split over 8 invocations, and over one.
  for (const char* split : {"8", "0"}) {
    TokenSplit rows(split);
    check_group_norm_fold(*vulkan, odd_model(48, 16, 145), o2, kF32Tolerance, true);
  }
  Model rwkv7 = load_model(fixture_path("rwkv7-tiny.safetensors"));
  check_group_norm_fold(*vulkan, rwkv7, o2, kF32Tolerance, true);
  check_group_norm_fold(*vulkan, rwkv7, f16, kF16Tolerance, true);
}

// Sets RWKVC_VULKAN_WKV_GROUPS (workgroups a head of the group norm fold's wkv kernel) for the
// scope's lifetime.
class HeadGroups {
 public:
  explicit HeadGroups(const char* value) { ::setenv("RWKVC_VULKAN_WKV_GROUPS", value, 1); }
  ~HeadGroups() { ::unsetenv("RWKVC_VULKAN_WKV_GROUPS"); }
};

// The workgroups a head device 0 takes when `wanted` is asked with rows split over `split`:
// a row's split * groups invocations neighbours in one subgroup, dividing the head size.
std::int64_t expected_groups(std::int64_t wanted, std::int64_t split, std::int64_t head_size) {
  auto device = vulkan::Device::open(vulkan::Instance::create(), 0);
  const vulkan::DeviceFeatures& f = device->features();
  std::int64_t lanes = wanted * split;
  bool fits = f.subgroup_shuffle && f.subgroup_size % lanes == 0 && head_size % lanes == 0;
  return fits ? wanted : 1;
}

TEST_CASE("The group norm fold with a head's rows over several workgroups matches the CPU", "[vulkan][fused]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  std::string o2 = passes::preset_pipeline(2);
  std::string f16 = o2 + "," + passes::precision_step(DType::f16), bf16 = o2 + "," + passes::precision_step(DType::bf16);
  for (const char* folds : {"norm_mix,lora_up,batch,group_norm", "group_norm"}) {
    Folds scope(folds);
    for (const char* wanted : {"2", "4", "8"}) {
      INFO("RWKVC_VULKAN_FOLDS='" << folds << "', RWKVC_VULKAN_WKV_GROUPS=" << wanted);
      HeadGroups groups(wanted);
      std::int64_t g = wanted[0] - '0';
      // Head sizes 8, 16 and 64 (rows split over 4 invocations), and 16 with one a row.
      check_group_norm_fold(*vulkan, odd_model(40, 8, 161), o2, kF32Tolerance, true,
                            expected_groups(g, expected_split(4, 8), 8));
      check_group_norm_fold(*vulkan, odd_model(48, 16, 162), f16, kF16Tolerance, true,
                            expected_groups(g, expected_split(4, 16), 16));
      check_group_norm_fold(*vulkan, odd_model(192, 64, 163), bf16, kBf16Tolerance, true,
                            expected_groups(g, expected_split(4, 64), 64));
      TokenSplit one("0");
      check_group_norm_fold(*vulkan, odd_model(48, 16, 164), o2, kF32Tolerance, true, expected_groups(g, 1, 16));
    }
  }
  // At least one setting really spread the heads (lavapipe's subgroups take 4 x 2 invocations).
  CHECK(expected_groups(2, expected_split(4, 16), 16) == 2);
  // A malformed setting is refused, naming it.
  HeadGroups malformed("3");
  Folds scope("group_norm");
  Model model = odd_model(40, 8, 165);
  Graph graph = passes::run_pipeline(build_graph(model.config), passes::parse_pipeline(o2));
  CHECK_THROWS_WITH(vulkan->compile(graph, model.weights), Catch::Contains("RWKVC_VULKAN_WKV_GROUPS='3'"));
}

TEST_CASE("The group norm fold without 16-bit storage or subgroups matches the CPU", "[vulkan][fused]") {
  std::string o2 = passes::preset_pipeline(2);
  Folds scope("norm_mix,lora_up,batch,group_norm");
  {
    FeaturesOff off("storage16");
    auto vulkan = vulkan_or_skip();
    if (!vulkan) return;
    ValidationGuard guard;
    check_group_norm_fold(*vulkan, odd_model(40, 8, 151), o2 + "," + passes::precision_step(DType::f16), kF16Tolerance, true);
    check_group_norm_fold(*vulkan, odd_model(36, 4, 152), o2 + "," + passes::precision_step(DType::bf16), kBf16Tolerance, true);
  }
  // Without subgroup arithmetic the output projection cannot take the prologue: the wkv kernel
  // keeps its tail.
  FeaturesOff off("subgroups,storage16");
  auto plain = vulkan_or_skip();
  ValidationGuard guard;
  check_group_norm_fold(*plain, odd_model(40, 8, 153), o2, kF32Tolerance, false);
}

}  // namespace rwkvc::test
