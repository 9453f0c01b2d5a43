// The CPU backend against the independent NumPy reference (tests/reference/), which computes
// the published equations token by token in float64: logits at every position of a 64-token
// sequence and the final state agree to 1e-5 relative (f32 computation over a few layers).
#include <cstdlib>
#include <filesystem>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "backends/feed_mode.h"
#include "e2e_support.h"
#include "frontend/npy.h"
#include "frontend/random_model.h"
#include "frontend/safetensors.h"

namespace rwkvc::test {

namespace {

constexpr double kTolerance = 1e-5;

// Runs the NumPy reference on `model_path`, writing into a fresh directory it returns.
std::filesystem::path run_reference(const std::string& model_path, const std::vector<std::int32_t>& tokens,
                                    const std::string& tag) {
  auto dir = std::filesystem::path(RWKVC_BINARY_DIR) / "reference-out" / tag;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string command = fmt::format("{} {}/tests/reference/rwkv_reference.py --model {} --tokens {} --out {}",
                                    RWKVC_PYTHON, RWKVC_SOURCE_DIR, model_path, fmt::join(tokens, ","), dir.string());
  INFO(command);
  REQUIRE(std::system(command.c_str()) == 0);
  return dir;
}

void check_against_reference(const std::string& model_path, const std::string& tag) {
  CompiledModel m = compile_on_cpu(load_model(model_path));
  auto tokens = random_tokens(64, m.model.config.vocab, 77);
  auto dir = run_reference(model_path, tokens, tag);

  State state = m.exe->new_state();
  HostTensor logits = feed(*m.exe, tokens, state, FeedMode::gpt(), true);
  NpyArray golden = read_npy((dir / "logits.npy").string());
  REQUIRE(golden.shape == std::vector<std::int64_t>{64, m.model.config.vocab});
  auto vocab = static_cast<std::size_t>(m.model.config.vocab);
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    Error e = compare(logits.f32().subspan(t * vocab, vocab), std::span<const double>(golden.values).subspan(t * vocab, vocab));
    INFO("position " << t << ": max-abs " << e.max_abs << ", relative " << e.relative);
    CHECK(e.relative <= kTolerance);
  }

  HostState host = state.to_host();
  for (std::size_t s = 0; s < host.slots.size(); ++s) {
    const std::string& slot = host.layout.slots[s].name;
    NpyArray expected = read_npy((dir / "state" / (slot + ".npy")).string());
    REQUIRE(expected.values.size() == host.slots[s].size());
    Error e = compare(std::span<const float>(host.slots[s]), std::span<const double>(expected.values));
    INFO("state slot " << slot << ": max-abs " << e.max_abs << ", relative " << e.relative);
    CHECK(e.relative <= kTolerance);
  }
}

}  // namespace

TEST_CASE("RWKV-7 tiny model matches the NumPy reference at every position", "[e2e][reference]") {
  check_against_reference(fixture_path("rwkv7-tiny.safetensors"), "rwkv7-tiny");
}

TEST_CASE("RWKV-4 tiny model matches the NumPy reference at every position", "[e2e][reference]") {
  check_against_reference(fixture_path("rwkv4-tiny.safetensors"), "rwkv4-tiny");
}

TEST_CASE("RWKV-7 with head size 64 matches the NumPy reference", "[e2e][reference]") {
  ModelConfig config = load_model(fixture_path("rwkv7-tiny.safetensors")).config;
  config.embd = 128;
  config.head_size = 64;
  config.layers = 3;
  auto path = (std::filesystem::path(RWKVC_BINARY_DIR) / "rwkv7-head64.safetensors").string();
  write_safetensors(path, make_random_model(config, 31));
  check_against_reference(path, "rwkv7-head64");
}

}  // namespace rwkvc::test
