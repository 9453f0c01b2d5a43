// A state moves between backends through host memory mid-stream and the logits continue as if
// it had stayed put; the state stays on the device between calls and clones independently.
#include <catch2/catch.hpp>

#include "backends/feed_mode.h"
#include "cuda_test_support.h"

namespace rwkvc::test {

namespace {

constexpr double kTolerance = 1e-4;

// Feeds the first half of the tokens on `first`, moves the state, and the rest on `second`;
// compares with the CPU running the whole sequence.
void check_move(Backend& cuda, const std::string& from, const std::string& to) {
  Model model = load_model(fixture_path("rwkv7-tiny.safetensors"));
  Graph graph = passes::run_pipeline(build_graph(model.config), passes::parse_pipeline(passes::preset_pipeline(2)));
  auto compile_on = [&](const std::string& name) {
    return name == "cuda" ? cuda.compile(graph, model.weights) : make_backend(name)->compile(graph, model.weights);
  };
  auto reference = make_backend("cpu")->compile(graph, model.weights);
  auto first = compile_on(from);
  auto second = compile_on(to);
  auto tokens = random_tokens(16, model.config.vocab, 33);

  State whole = reference->new_state();
  HostTensor expected = reference->forward(tokens, whole);

  State state = first->new_state();
  first->forward(std::span(tokens).first(9), state);
  State moved = second->import_state(state.to_host());
  CHECK(moved.backend() == to);
  HostTensor actual = feed(*second, std::span(tokens).subspan(9), moved, FeedMode::chunked(3));
  INFO(from << " -> " << to);
  CHECK(compare(actual.f32(), expected.f32()).relative <= kTolerance);
  CHECK(compare_states(moved.to_host(), whole.to_host()).relative <= kTolerance);
}

}  // namespace

TEST_CASE("A state moves CUDA <-> CPU (and Vulkan when built) mid-stream", "[cuda][state]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  check_move(*cuda, "cpu", "cuda");
  check_move(*cuda, "cuda", "cpu");
  check_move(*cuda, "cuda", "cuda");
  auto names = backend_names();
  if (std::find(names.begin(), names.end(), "vulkan") != names.end()) {
    bool have_vulkan = true;
    try {
      make_backend("vulkan");
    } catch (const std::runtime_error&) {
      have_vulkan = false;  // built, but this machine has no Vulkan device
    }
    if (have_vulkan) {
      check_move(*cuda, "vulkan", "cuda");
      check_move(*cuda, "cuda", "vulkan");
    }
  }
}

TEST_CASE("Decoding two CUDA states in turn keeps them apart, and a clone is independent", "[cuda][state]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  Model model = load_model(fixture_path("rwkv4-tiny.safetensors"));
  Graph graph = passes::run_pipeline(build_graph(model.config), passes::parse_pipeline(passes::preset_pipeline(2)));
  auto reference = make_backend("cpu")->compile(graph, model.weights);
  auto exe = cuda->compile(graph, model.weights);
  auto a_tokens = random_tokens(6, model.config.vocab, 1), b_tokens = random_tokens(6, model.config.vocab, 2);

  // One-token calls replay a captured graph: alternating states must not share it wrongly.
  State a = exe->new_state(), b = exe->new_state();
  HostTensor a_last, b_last;
  for (std::size_t i = 0; i < a_tokens.size(); ++i) {
    a_last = exe->forward(std::span(a_tokens).subspan(i, 1), a);
    b_last = exe->forward(std::span(b_tokens).subspan(i, 1), b);
  }
  State ra = reference->new_state(), rb = reference->new_state();
  CHECK(compare(a_last.f32(), reference->forward(a_tokens, ra).f32()).relative <= kTolerance);
  CHECK(compare(b_last.f32(), reference->forward(b_tokens, rb).f32()).relative <= kTolerance);

  State copy = a;  // a device copy
  exe->forward(std::span(b_tokens).first(2), copy);
  CHECK(compare_states(a.to_host(), ra.to_host()).relative <= kTolerance);
}

TEST_CASE("Device timing and the kernel count are reported", "[cuda][state]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  Model model = load_model(fixture_path("rwkv7-tiny.safetensors"));
  auto exe = cuda->compile(build_graph(model.config), model.weights);
  State state = exe->new_state();
  ForwardOptions timed;
  timed.time_on_device = true;
  exe->forward(random_tokens(5, model.config.vocab, 3), state, timed);
  ExecutionStats stats = exe->stats();
  CHECK(stats.device_seconds > 0.0);
  CHECK(stats.kernels_per_forward > 0);
  CHECK(stats.weight_bytes > 0);
  CHECK(stats.device_bytes >= stats.weight_bytes);
  exe->forward(random_tokens(1, model.config.vocab, 4), state);
  CHECK(exe->stats().device_seconds < 0.0);
}

}  // namespace rwkvc::test
