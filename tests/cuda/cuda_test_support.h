// Shared by the CUDA tests: the backend (or a skip when this machine has no CUDA device), and
// models compiled on the CPU reference and on CUDA from the same graph, so that f16/bf16
// weights are rounded identically on both and only the device's arithmetic differs.
#pragma once

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include <catch2/catch.hpp>

#include "backends/backend.h"
#include "backends/feed_mode.h"
#include "backends/cuda/cuda_backend.h"
#include "frontend/graph_builders.h"
#include "frontend/model.h"
#include "passes/pass_manager.h"
#include "tests/e2e/e2e_support.h"

namespace rwkvc::test {

// Sets (or, given null, unsets) an environment variable for the scope and restores what it was:
// the backend's switches are read when a program is built, so a case holds whatever the
// caller's environment says.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value == nullptr)
      ::unsetenv(name);
    else
      ::setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// Compiled kernels cached under the build tree rather than the user's home.
inline void configure_cuda_for_tests() { ::setenv("XDG_CACHE_HOME", RWKVC_BINARY_DIR "/cuda-test-cache", 0); }

// The CUDA backend, or null after printing "skipped: no CUDA device" (ctest then reports the
// test skipped). Only a missing device skips: other failures fail the test.
inline std::unique_ptr<Backend> cuda_or_skip() {
  configure_cuda_for_tests();
  try {
    return make_cuda_backend({});
  } catch (const std::runtime_error& error) {
    std::string what = error.what();
    if (what.rfind("no CUDA device", 0) != 0) throw;
    WARN("skipped: no CUDA device (" << what << ")");
    return nullptr;
  }
}

struct CpuAndCuda {
  Model model;
  Graph graph;
  std::unique_ptr<Executable> cpu, cuda;
};

// The model's graph after `pipeline` (e.g. preset_pipeline(2) + ",lower-precision=f16"),
// compiled on both backends.
inline CpuAndCuda compile_both(Backend& cuda, Model model, const std::string& pipeline) {
  Graph graph = passes::run_pipeline(build_graph(model.config), passes::parse_pipeline(pipeline));
  auto cpu = make_backend("cpu")->compile(graph, model.weights);
  auto gpu = cuda.compile(graph, model.weights);
  return {std::move(model), std::move(graph), std::move(cpu), std::move(gpu)};
}

// The worst error over the slots of two states of one layout, each relative to its slot's scale.
inline Error compare_states(const HostState& actual, const HostState& reference) {
  Error worst;
  for (std::size_t s = 0; s < reference.slots.size(); ++s) {
    Error e = compare(std::span<const float>(actual.slots[s]), std::span<const float>(reference.slots[s]));
    UNSCOPED_INFO("state slot " << reference.layout.slots[s].name << ": max-abs " << e.max_abs << ", relative "
                                << e.relative);
    worst.max_abs = std::max(worst.max_abs, e.max_abs);
    worst.relative = std::max(worst.relative, e.relative);
  }
  return worst;
}

// f32 throughout: the differences are summation order (warp reductions, cuBLAS) and the
// device's exp/tanh, far below 1e-4 relative to the reference's largest magnitude.
inline constexpr double kF32Tolerance = 1e-4;

// `tokens` fed to `exe` in `mode`: every position's logits and every state slot within
// `tolerance` of the reference (relative to its largest magnitude); the errors are printed.
inline void check_mode_against(Executable& exe, std::span<const std::int32_t> tokens, FeedMode mode,
                               const HostTensor& reference, const HostState& reference_host, double tolerance) {
  State state = exe.new_state();
  HostTensor logits = feed(exe, tokens, state, mode, true);
  REQUIRE(logits.shape() == reference.shape());
  Error e = compare(logits.f32(), reference.f32());
  INFO("logits: max-abs " << e.max_abs << ", relative " << e.relative);
  Error state_error = compare_states(state.to_host(), reference_host);
  CHECK(e.relative <= tolerance);
  CHECK(state_error.relative <= tolerance);
  // The errors seen, for the record (printed whether or not the checks pass).
  WARN("errors: logits " << e.relative << ", state " << state_error.relative);
}

// `length` tokens fed to the CPU (GPT) and to CUDA in GPT, RNN and chunk:3 modes: every
// position's logits and every state slot within `tolerance` (relative to the reference's
// largest magnitude), and the last position alone when all_logits is off.
inline void check_against_cpu_in_every_mode(Backend& cuda, Model model, const std::string& pipeline, std::size_t length,
                                            double tolerance) {
  CpuAndCuda both = compile_both(cuda, std::move(model), pipeline);
  auto tokens = random_tokens(length, both.model.config.vocab, 91 + static_cast<unsigned>(length));
  State reference_state = both.cpu->new_state();
  HostTensor reference = feed(*both.cpu, tokens, reference_state, FeedMode::gpt(), true);
  HostState reference_host = reference_state.to_host();

  for (FeedMode mode : {FeedMode::gpt(), FeedMode::rnn(), FeedMode::chunked(3)}) {
    INFO(both.model.path << " '" << pipeline << "', mode " << mode.name() << ", " << length << " tokens");
    check_mode_against(*both.cuda, tokens, mode, reference, reference_host, tolerance);

    // Without all_logits the last position alone comes back (the head runs on that row only).
    State again = both.cuda->new_state();
    HostTensor last = feed(*both.cuda, tokens, again, mode, false);
    auto V = static_cast<std::size_t>(both.model.config.vocab);
    CHECK(compare(last.f32(), reference.f32().last(V)).relative <= tolerance);
  }
}

}  // namespace rwkvc::test
