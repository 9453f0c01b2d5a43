#include "backends/vulkan/shader_compiler.h"

#include <cstring>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <shaderc/shaderc.hpp>
#include <spirv-tools/libspirv.hpp>

#include "backends/vulkan/disk_cache.h"

namespace rwkvc::vulkan {

namespace {

// Part of every cache key: a change of target or optimisation invalidates old modules.
constexpr std::string_view kCompilerConfig = "shaderc vulkan1.1 spv1.3 O";

std::string numbered(const std::string& source) {
  std::istringstream lines(source);
  std::string line, out;
  for (int number = 1; std::getline(lines, line); ++number) out += fmt::format("{:4} {}\n", number, line);
  return out;
}

}  // namespace

ShaderCompiler::ShaderCompiler(std::filesystem::path cache_dir) : cache_dir_(std::move(cache_dir)) {}

std::vector<std::uint32_t> ShaderCompiler::compile(const std::string& glsl, const std::string& name) {
  std::filesystem::path cached;
  if (!cache_dir_.empty()) {
    std::string key = std::string(kCompilerConfig) + '\n' + glsl;
    cached = cache_dir_ / "spirv" / fmt::format("{:016x}.spv", stable_hash(key));
    if (auto bytes = read_file(cached); bytes && !bytes->empty() && bytes->size() % 4 == 0) {
      std::vector<std::uint32_t> words(bytes->size() / 4);
      std::memcpy(words.data(), bytes->data(), bytes->size());
      if (words[0] == 0x07230203u) return words;  // SPIR-V magic: not a truncated file
    }
  }

  shaderc::Compiler compiler;
  shaderc::CompileOptions options;
  options.SetTargetEnvironment(shaderc_target_env_vulkan, shaderc_env_version_vulkan_1_1);
  options.SetTargetSpirv(shaderc_spirv_version_1_3);
  options.SetOptimizationLevel(shaderc_optimization_level_performance);
  shaderc::SpvCompilationResult result =
      compiler.CompileGlslToSpv(glsl, shaderc_compute_shader, name.c_str(), options);
  if (result.GetCompilationStatus() != shaderc_compilation_status_success)
    throw std::runtime_error(fmt::format("vulkan: shader '{}' does not compile:\n{}\n{}", name,
                                         result.GetErrorMessage(), numbered(glsl)));
  std::vector<std::uint32_t> words(result.cbegin(), result.cend());
  ++compiled_;
  if (!cached.empty()) write_file(cached, words.data(), words.size() * sizeof(std::uint32_t));
  return words;
}

std::string validate_spirv(const std::vector<std::uint32_t>& module) {
  spvtools::SpirvTools tools(SPV_ENV_VULKAN_1_1);
  std::string messages;
  tools.SetMessageConsumer([&](spv_message_level_t, const char*, const spv_position_t& position, const char* message) {
    messages += fmt::format("word {}: {}\n", position.index, message);
  });
  if (tools.Validate(module)) return {};
  return messages.empty() ? "invalid SPIR-V" : messages;
}

}  // namespace rwkvc::vulkan
