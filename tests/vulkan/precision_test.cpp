// f16 and bf16 weights (the lower-precision pass): the CPU reference runs the same lowered
// graph and rounds the weights identically, and both sides compute activations, sums and the
// state in f32, so what remains is the order of f32 summation and the GPU's exp/tanh, the same
// as in f32: the same 1e-4 relative bound holds. Against the f32 model the difference must be
// of the order of the weights' rounding (f16 unit roundoff 4.9e-4, bf16 3.9e-3), which shows
// that the narrow weights were really read.
#include <catch2/catch.hpp>

#include "backends/feed_mode.h"
#include "vulkan_test_support.h"

namespace rwkvc::test {

namespace {

constexpr double kSameGraphTolerance = 1e-4;

void check_lowered(Backend& vulkan, const std::string& model_file, DType dtype, int level) {
  std::string pipeline = passes::preset_pipeline(level);
  std::string lowered = pipeline + (pipeline.empty() ? "" : ",") + passes::precision_step(dtype);
  TwoBackends narrow = compile_both(vulkan, load_model(fixture_path(model_file)), lowered);
  bool any_narrow = false;
  for (const WeightDecl& decl : narrow.graph.weights) any_narrow = any_narrow || narrow.graph.type(decl.value).dtype == dtype;
  REQUIRE(any_narrow);

  auto tokens = random_tokens(12, narrow.model.config.vocab, 21);
  State reference_state = narrow.cpu->new_state();
  HostTensor reference = feed(*narrow.cpu, tokens, reference_state, FeedMode::gpt(), true);
  HostState reference_host = reference_state.to_host();
  for (FeedMode mode : {FeedMode::gpt(), FeedMode::rnn(), FeedMode::chunked(3)}) {
    INFO(model_file << " " << dtype_name(dtype) << " -O" << level << ", mode " << mode.name());
    State state = narrow.vulkan->new_state();
    HostTensor logits = feed(*narrow.vulkan, tokens, state, mode, true);
    Error e = compare(logits.f32(), reference.f32());
    INFO("logits: max-abs " << e.max_abs << ", relative " << e.relative);
    CHECK(e.relative <= kSameGraphTolerance);
    CHECK(compare_states(state.to_host(), reference_host).relative <= kSameGraphTolerance);
  }

  auto f32_model = make_backend("cpu")->compile(passes::run_pipeline(build_graph(narrow.model.config),
                                                                    passes::parse_pipeline(pipeline)),
                                                narrow.model.weights);
  State f32_state = f32_model->new_state();
  HostTensor f32_logits = feed(*f32_model, tokens, f32_state, FeedMode::gpt(), true);
  Error rounding = compare(reference.f32(), f32_logits.f32());
  INFO("lowered vs f32 logits: relative " << rounding.relative);
  CHECK(rounding.relative > 1e-6);
  CHECK(rounding.relative < 0.1);
}

}  // namespace

TEST_CASE("Vulkan with f16 weights matches the CPU running the same lowered graph", "[vulkan][precision]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  for (const char* model : {"rwkv7-tiny.safetensors", "rwkv4-tiny.safetensors"})
    for (int level : {0, 2}) check_lowered(*vulkan, model, DType::f16, level);
}

TEST_CASE("Vulkan with bf16 weights matches the CPU running the same lowered graph", "[vulkan][precision]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  for (const char* model : {"rwkv7-tiny.safetensors", "rwkv4-tiny.safetensors"})
    for (int level : {0, 2}) check_lowered(*vulkan, model, DType::bf16, level);
}

}  // namespace rwkvc::test
