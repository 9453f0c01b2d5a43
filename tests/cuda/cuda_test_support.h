// Shared by the CUDA tests: the backend (or a skip when this machine has no CUDA device), and
// models compiled on the CPU reference and on CUDA from the same graph, so that f16/bf16
// weights are rounded identically on both and only the device's arithmetic differs.
#pragma once

#include <cstdlib>
#include <memory>
#include <string>

#include <catch2/catch.hpp>

#include "backends/backend.h"
#include "backends/cuda/cuda_backend.h"
#include "frontend/graph_builders.h"
#include "frontend/model.h"
#include "passes/pass_manager.h"
#include "tests/e2e/e2e_support.h"

namespace rwkvc::test {

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

}  // namespace rwkvc::test
