// The correctness matrix: both tiny models, -O0 and -O2, GPT, RNN and chunk:3 feeding; every
// position's logits and every state slot against the CPU reference running the same graph.
// f32 throughout: the differences are summation order (warp reductions, cuBLAS) and the
// device's exp/tanh, far below 1e-4 relative to the reference's largest magnitude.
#include <catch2/catch.hpp>

#include "backends/feed_mode.h"
#include "cuda_test_support.h"
#include "frontend/random_model.h"

namespace rwkvc::test {

namespace {

constexpr double kF32Tolerance = 1e-4;

void check_against_cpu(Backend& cuda, Model model, const std::string& pipeline, std::size_t length) {
  CpuAndCuda both = compile_both(cuda, std::move(model), pipeline);
  auto tokens = random_tokens(length, both.model.config.vocab, 91 + static_cast<unsigned>(length));
  State reference_state = both.cpu->new_state();
  HostTensor reference = feed(*both.cpu, tokens, reference_state, FeedMode::gpt(), true);
  HostState reference_host = reference_state.to_host();

  for (FeedMode mode : {FeedMode::gpt(), FeedMode::rnn(), FeedMode::chunked(3)}) {
    INFO(both.model.path << " '" << pipeline << "', mode " << mode.name() << ", " << length << " tokens");
    State state = both.cuda->new_state();
    HostTensor logits = feed(*both.cuda, tokens, state, mode, true);
    REQUIRE(logits.shape() == reference.shape());
    Error e = compare(logits.f32(), reference.f32());
    INFO("logits: max-abs " << e.max_abs << ", relative " << e.relative);
    Error state_error = compare_states(state.to_host(), reference_host);
    CHECK(e.relative <= kF32Tolerance);
    CHECK(state_error.relative <= kF32Tolerance);
    // The errors seen, for the record (printed whether or not the checks pass).
    WARN("errors: logits " << e.relative << ", state " << state_error.relative);

    // Without all_logits the last position alone comes back (the head runs on that row only).
    State again = both.cuda->new_state();
    HostTensor last = feed(*both.cuda, tokens, again, mode, false);
    auto V = static_cast<std::size_t>(both.model.config.vocab);
    CHECK(compare(last.f32(), reference.f32().last(V)).relative <= kF32Tolerance);
  }
}

}  // namespace

TEST_CASE("CUDA matches the CPU on RWKV-7 tiny at -O0 and -O2 in every feeding mode", "[cuda][matrix]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  for (int level : {0, 2})
    check_against_cpu(*cuda, load_model(fixture_path("rwkv7-tiny.safetensors")), passes::preset_pipeline(level), 13);
}

TEST_CASE("CUDA matches the CPU on RWKV-4 tiny at -O0 and -O2 in every feeding mode", "[cuda][matrix]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  for (int level : {0, 2})
    check_against_cpu(*cuda, load_model(fixture_path("rwkv4-tiny.safetensors")), passes::preset_pipeline(level), 13);
}

TEST_CASE("CUDA matches the CPU on a prompt longer than a WKV chunk and the GEMV row limit", "[cuda][matrix]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  check_against_cpu(*cuda, load_model(fixture_path("rwkv7-tiny.safetensors")), passes::preset_pipeline(2), 70);
  check_against_cpu(*cuda, load_model(fixture_path("rwkv4-tiny.safetensors")), passes::preset_pipeline(2), 70);
}

TEST_CASE("CUDA matches the CPU on RWKV-7 with head size 64", "[cuda][matrix]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  Model model;
  model.path = "random head-size-64 model";
  model.config = load_model(fixture_path("rwkv7-tiny.safetensors")).config;
  model.config.embd = 128;
  model.config.head_size = 64;
  model.weights = make_random_model(model.config, 7);
  check_against_cpu(*cuda, std::move(model), passes::preset_pipeline(2), 21);
}

}  // namespace rwkvc::test
