// A state is a value that moves between backends through host memory: a sequence started on
// one backend and finished on the other gives the logits of staying on one.
#include <catch2/catch.hpp>

#include "vulkan_test_support.h"

namespace rwkvc::test {

namespace {

constexpr double kF32Tolerance = 1e-4;

void check_handover(Backend& vulkan, const std::string& model_file) {
  TwoBackends both = compile_both(vulkan, load_model(fixture_path(model_file)), passes::preset_pipeline(2));
  auto tokens = random_tokens(17, both.model.config.vocab, 11);
  auto head = std::span(tokens).first(8), tail = std::span(tokens).subspan(8);

  State whole = both.cpu->new_state();
  HostTensor expected = both.cpu->forward(tokens, whole, {.all_logits = true});
  auto expected_tail = expected.f32().subspan(head.size() * static_cast<std::size_t>(both.model.config.vocab));

  SECTION("CPU to Vulkan") {
    State on_cpu = both.cpu->new_state();
    both.cpu->forward(head, on_cpu);
    State on_gpu = both.vulkan->import_state(on_cpu.to_host());
    CHECK(on_gpu.backend() == "vulkan");
    HostTensor actual = both.vulkan->forward(tail, on_gpu, {.all_logits = true});
    CHECK(compare(actual.f32(), expected_tail).relative <= kF32Tolerance);
    CHECK(compare_states(on_gpu.to_host(), whole.to_host()).relative <= kF32Tolerance);
  }
  SECTION("Vulkan to CPU") {
    State on_gpu = both.vulkan->new_state();
    both.vulkan->forward(head, on_gpu);
    State on_cpu = both.cpu->import_state(on_gpu.to_host());
    HostTensor actual = both.cpu->forward(tail, on_cpu, {.all_logits = true});
    CHECK(compare(actual.f32(), expected_tail).relative <= kF32Tolerance);
    CHECK(compare_states(on_cpu.to_host(), whole.to_host()).relative <= kF32Tolerance);
  }
  SECTION("a copy of a Vulkan state continues on its own") {
    State on_gpu = both.vulkan->new_state();
    both.vulkan->forward(head, on_gpu);
    State copy = on_gpu;  // a device-side copy
    both.vulkan->forward(tail, on_gpu);
    HostTensor actual = both.vulkan->forward(tail, copy, {.all_logits = true});
    CHECK(compare(actual.f32(), expected_tail).relative <= kF32Tolerance);
    CHECK(compare_states(copy.to_host(), on_gpu.to_host()).max_abs == 0.0);
  }
}

}  // namespace

TEST_CASE("RWKV-7: a state moves between the CPU and Vulkan mid-sequence", "[vulkan][state]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  check_handover(*vulkan, "rwkv7-tiny.safetensors");
}

TEST_CASE("RWKV-4: a state moves between the CPU and Vulkan mid-sequence", "[vulkan][state]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  check_handover(*vulkan, "rwkv4-tiny.safetensors");
}

TEST_CASE("A fresh Vulkan state holds each slot's init value", "[vulkan][state]") {
  auto vulkan = vulkan_or_skip();
  if (!vulkan) return;
  ValidationGuard guard;
  TwoBackends both = compile_both(*vulkan, load_model(fixture_path("rwkv4-tiny.safetensors")), "");
  HostState host = both.vulkan->new_state().to_host();
  CHECK(host == HostState::fresh(both.vulkan->state_layout()));
}

}  // namespace rwkvc::test
