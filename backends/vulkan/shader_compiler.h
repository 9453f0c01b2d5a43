// GLSL compute shaders to SPIR-V with shaderc, remembered on disk by a hash of their source
// (and of the compiler's target), so that a second start compiles nothing.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace rwkvc::vulkan {

class ShaderCompiler {
 public:
  // `cache_dir` empty: no disk cache.
  explicit ShaderCompiler(std::filesystem::path cache_dir);

  // The SPIR-V of `glsl` (target Vulkan 1.1); callable from several threads at once. Throws std::runtime_error with shaderc's messages
  // and the numbered source when it does not compile: a generated shader that fails is a bug.
  std::vector<std::uint32_t> compile(const std::string& glsl, const std::string& name);

  // Modules compiled from GLSL by this compiler (not found in the cache).
  int compiled() const { return compiled_.load(); }

 private:
  std::filesystem::path cache_dir_;
  std::atomic<int> compiled_ = 0;
};

// spirv-val's checks on one module (Vulkan 1.1 rules): the validator's message, empty when valid.
std::string validate_spirv(const std::vector<std::uint32_t>& module);

}  // namespace rwkvc::vulkan
