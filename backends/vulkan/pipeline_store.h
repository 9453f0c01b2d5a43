// Compute pipelines made from GLSL, one per distinct source (the same generated kernel serves
// every layer), with the driver's pipeline cache loaded from and saved to disk.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/vulkan/device.h"
#include "backends/vulkan/shader_compiler.h"

namespace rwkvc::vulkan {

// Every kernel takes its buffers as storage buffers 0..bindings-1 of set 0 and up to
// kPushWords 32-bit push constants (the minimum every device offers).
inline constexpr std::uint32_t kPushWords = 32;

struct KernelSource {
  std::string name;  // for messages: "gemv_f16", "elementwise [T, 64]"
  std::string glsl;
  std::uint32_t bindings = 0;
};

struct Pipeline {
  std::string name;
  std::uint32_t bindings = 0;
  std::vector<std::uint32_t> spirv;
  VkShaderModule module = VK_NULL_HANDLE;
  VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
  VkPipelineLayout layout = VK_NULL_HANDLE;
  VkPipeline pipeline = VK_NULL_HANDLE;
};

class PipelineStore {
 public:
  PipelineStore(std::shared_ptr<const Device> device, std::filesystem::path cache_dir);
  ~PipelineStore();  // saves the pipeline cache
  PipelineStore(const PipelineStore&) = delete;
  PipelineStore& operator=(const PipelineStore&) = delete;

  // The pipeline for `source`, one per distinct source. Its Vulkan objects exist only after
  // build(): planning asks for every kernel first, and build() compiles them all at once.
  const Pipeline& get(const KernelSource& source);

  // Compiles every pipeline asked for since the last build on a pool of threads (shaderc and
  // vkCreateComputePipelines on distinct pipelines are thread-safe; the pipeline cache is
  // internally synchronised). Throws std::runtime_error naming the first shader that does not
  // compile.
  void build();

  // Every pipeline made, in the order they were asked for.
  const std::vector<std::unique_ptr<Pipeline>>& pipelines() const { return pipelines_; }
  int shaders_compiled() const { return compiler_.compiled(); }
  void save_cache() const;

 private:
  std::filesystem::path cache_file() const;
  void make(Pipeline& p, const std::string& glsl);

  std::shared_ptr<const Device> device_;
  std::filesystem::path cache_dir_;
  ShaderCompiler compiler_;
  VkPipelineCache cache_ = VK_NULL_HANDLE;
  std::map<std::string, Pipeline*, std::less<>> by_source_;
  std::vector<std::unique_ptr<Pipeline>> pipelines_;
  std::vector<std::pair<Pipeline*, std::string>> pending_;  // asked for, not built: with their GLSL
};

}  // namespace rwkvc::vulkan
