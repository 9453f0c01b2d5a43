// Shared by the Vulkan tests: the backend with the Khronos validation layer on (or a skip when
// this machine has no Vulkan device), a guard that fails a test on any validation message, and
// models compiled on both the CPU reference and Vulkan from the same graph.
#pragma once

#include <cstdlib>
#include <memory>
#include <string>

#include <catch2/catch.hpp>

#include "backends/backend.h"
#include "backends/vulkan/instance.h"
#include "backends/vulkan/shader_compiler.h"
#include "backends/vulkan/vulkan_executable.h"
#include "backends/vulkan/vulkan_backend.h"
#include "frontend/graph_builders.h"
#include "frontend/model.h"
#include "passes/pass_manager.h"
#include "tests/e2e/e2e_support.h"

namespace rwkvc::test {

// The validation layer on, and shaders cached under the build tree rather than the user's home.
inline void configure_vulkan_for_tests() {
  ::setenv("RWKVC_VULKAN_VALIDATION", "1", 1);
  ::setenv("RWKVC_VULKAN_CACHE", RWKVC_BINARY_DIR "/vulkan-test-cache", 0);
}

// The Vulkan backend, or null after printing "skipped: no Vulkan device" (ctest then reports
// the test skipped). Only a missing device skips: other failures fail the test.
inline std::unique_ptr<Backend> vulkan_or_skip() {
  configure_vulkan_for_tests();
  try {
    return make_vulkan_backend({});
  } catch (const std::runtime_error& error) {
    std::string what = error.what();
    if (what.rfind("no Vulkan device", 0) != 0) throw;
    WARN("skipped: no Vulkan device (" << what << ")");
    return nullptr;
  }
}

// Sets RWKVC_VULKAN_FEATURES_OFF for the scope's lifetime (devices opened meanwhile see it).
class FeaturesOff {
 public:
  explicit FeaturesOff(const char* list) { ::setenv("RWKVC_VULKAN_FEATURES_OFF", list, 1); }
  ~FeaturesOff() { ::unsetenv("RWKVC_VULKAN_FEATURES_OFF"); }
};

// Fails the test, listing them, if the validation layer reported anything while it lived.
class ValidationGuard {
 public:
  ValidationGuard() { vulkan::take_validation_messages(); }
  ~ValidationGuard() {
    auto messages = vulkan::take_validation_messages();
    for (const std::string& message : messages) UNSCOPED_INFO(message);
    CHECK(messages.empty());
  }
};

// A model's graph after the passes of `pipeline` (e.g. preset_pipeline(2) or
// "lower-precision=f16"), compiled on the CPU reference and on Vulkan.
struct TwoBackends {
  Model model;
  Graph graph;
  std::unique_ptr<Executable> cpu, vulkan;
};

inline TwoBackends compile_both(Backend& vulkan, Model model, const std::string& pipeline) {
  Graph graph = passes::run_pipeline(build_graph(model.config), passes::parse_pipeline(pipeline));
  auto cpu = make_backend("cpu")->compile(graph, model.weights);
  auto gpu = vulkan.compile(graph, model.weights);
  return {std::move(model), std::move(graph), std::move(cpu), std::move(gpu)};
}

inline const vulkan::VulkanExecutable& as_vulkan(const Executable& exe) {
  return dynamic_cast<const vulkan::VulkanExecutable&>(exe);
}

// spirv-val's verdict on every module `exe` made: checked one by one, so a failure names it.
inline void check_spirv_valid(const Executable& exe) {
  auto modules = as_vulkan(exe).spirv_modules();
  CHECK(modules.size() > 3);
  for (const auto* module : modules) CHECK(vulkan::validate_spirv(*module) == "");
}

// The worst error over every slot of two states of one layout, relative to each slot's scale.
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
