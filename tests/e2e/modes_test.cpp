// GPT mode, RNN mode and chunked feeding compute the same function: logits at every position
// and the final state agree to 1e-5 relative (f32 rounding of reordered work stays far below).
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "backends/feed_mode.h"
#include "e2e_support.h"
#include "frontend/random_model.h"

namespace rwkvc::test {

namespace {

constexpr double kTolerance = 1e-5;

void check_modes_agree(const CompiledModel& m, std::size_t length) {
  auto tokens = random_tokens(length, m.model.config.vocab, 1234);
  State gpt_state = m.exe->new_state();
  HostTensor gpt = feed(*m.exe, tokens, gpt_state, FeedMode::gpt(), true);
  REQUIRE(gpt.shape() == Shape{static_cast<Dim>(length), m.model.config.vocab});
  HostState gpt_host = gpt_state.to_host();

  for (FeedMode mode : {FeedMode::rnn(), FeedMode::chunked(3), FeedMode::chunked(16)}) {
    INFO("mode " << mode.name());
    State state = m.exe->new_state();
    HostTensor logits = feed(*m.exe, tokens, state, mode, true);
    REQUIRE(logits.shape() == gpt.shape());
    Error e = compare(logits.f32(), gpt.f32());
    INFO("logits max-abs " << e.max_abs << ", relative " << e.relative);
    CHECK(e.relative <= kTolerance);

    HostState host = state.to_host();
    for (std::size_t s = 0; s < host.slots.size(); ++s) {
      Error se = compare(std::span<const float>(host.slots[s]), std::span<const float>(gpt_host.slots[s]));
      INFO("state slot " << host.layout.slots[s].name << ": max-abs " << se.max_abs << ", relative " << se.relative);
      CHECK(se.relative <= kTolerance);
    }
  }
}

}  // namespace

TEST_CASE("RWKV-7: GPT, RNN and chunk:1/3/16 agree on logits and state", "[e2e][modes]") {
  check_modes_agree(compile_on_cpu(load_model(fixture_path("rwkv7-tiny.safetensors"))), 64);
}

TEST_CASE("RWKV-4: GPT, RNN and chunk:1/3/16 agree on logits and state", "[e2e][modes]") {
  check_modes_agree(compile_on_cpu(load_model(fixture_path("rwkv4-tiny.safetensors"))), 64);
}

TEST_CASE("RWKV-7 with head size 64: GPT, RNN and chunked agree", "[e2e][modes]") {
  Model model;
  model.path = "random head-size-64 model";
  model.config = load_model(fixture_path("rwkv7-tiny.safetensors")).config;
  model.config.embd = 128;
  model.config.head_size = 64;
  model.weights = make_random_model(model.config, 99);
  check_modes_agree(compile_on_cpu(std::move(model)), 40);
}

TEST_CASE("A state saved mid-sequence continues exactly where it stopped", "[e2e][modes]") {
  CompiledModel m = compile_on_cpu(load_model(fixture_path("rwkv7-tiny.safetensors")));
  auto tokens = random_tokens(20, m.model.config.vocab, 5);
  State whole = m.exe->new_state();
  HostTensor expected = m.exe->forward(tokens, whole);

  State first = m.exe->new_state();
  m.exe->forward(std::span(tokens).first(12), first);
  State resumed = m.exe->import_state(first.to_host());  // through host memory, as between backends
  HostTensor actual = m.exe->forward(std::span(tokens).subspan(12), resumed);
  CHECK(compare(actual.f32(), expected.f32()).relative <= kTolerance);
}

}  // namespace rwkvc::test

namespace rwkvc::test {

TEST_CASE("The last position's logits alone equal the last row of every position's logits", "[e2e][modes]") {
  for (const char* fixture : {"rwkv7-tiny.safetensors", "rwkv4-tiny.safetensors"}) {
    INFO(fixture);
    CompiledModel m = compile_on_cpu(load_model(fixture_path(fixture)));
    auto tokens = random_tokens(9, m.model.config.vocab, 8);
    State all_state = m.exe->new_state(), last_state = m.exe->new_state();
    ForwardOptions every;
    every.all_logits = true;
    HostTensor all = m.exe->forward(tokens, all_state, every);
    HostTensor last = m.exe->forward(tokens, last_state);  // the backend may run the head on one row
    REQUIRE(last.shape() == Shape{m.model.config.vocab});
    std::span<const float> last_row = all.f32().last(static_cast<std::size_t>(m.model.config.vocab));
    CHECK(compare(last.f32(), last_row).max_abs == 0.0);
  }
}

}  // namespace rwkvc::test
