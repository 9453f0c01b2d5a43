#include "backends/vulkan/pipeline_store.h"

#include <fmt/format.h>

#include "backends/task_pool.h"
#include "backends/vulkan/disk_cache.h"
#include "backends/vulkan/vk_error.h"

namespace rwkvc::vulkan {

PipelineStore::PipelineStore(std::shared_ptr<const Device> device, std::filesystem::path cache_dir)
    : device_(std::move(device)), cache_dir_(std::move(cache_dir)), compiler_(cache_dir_) {
  std::optional<std::vector<std::byte>> data;
  if (!cache_dir_.empty()) data = read_file(cache_file());
  VkPipelineCacheCreateInfo info{};
  info.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO;
  if (data) {
    info.initialDataSize = data->size();
    info.pInitialData = data->data();
  }
  // The driver checks the header and ignores data made by another device or driver.
  check(vkCreatePipelineCache(device_->handle(), &info, nullptr, &cache_), "vkCreatePipelineCache");
}

PipelineStore::~PipelineStore() {
  save_cache();
  VkDevice device = device_->handle();
  for (const auto& p : pipelines_) {
    vkDestroyPipeline(device, p->pipeline, nullptr);
    vkDestroyPipelineLayout(device, p->layout, nullptr);
    vkDestroyDescriptorSetLayout(device, p->set_layout, nullptr);
    vkDestroyShaderModule(device, p->module, nullptr);
  }
  vkDestroyPipelineCache(device, cache_, nullptr);
}

std::filesystem::path PipelineStore::cache_file() const {
  const DeviceFeatures& features = device_->features();
  std::string uuid;
  for (std::uint8_t byte : features.pipeline_cache_uuid) uuid += fmt::format("{:02x}", byte);
  return cache_dir_ / fmt::format("pipelines-{}-{:08x}.bin", uuid, features.driver_version);
}

void PipelineStore::save_cache() const {
  if (cache_dir_.empty() || cache_ == VK_NULL_HANDLE) return;
  std::size_t size = 0;
  if (vkGetPipelineCacheData(device_->handle(), cache_, &size, nullptr) != VK_SUCCESS || size == 0) return;
  std::vector<std::byte> data(size);
  if (vkGetPipelineCacheData(device_->handle(), cache_, &size, data.data()) != VK_SUCCESS) return;
  write_file(cache_file(), data.data(), size);
}

const Pipeline& PipelineStore::get(const KernelSource& source) {
  if (auto it = by_source_.find(source.glsl); it != by_source_.end()) return *it->second;
  auto p = std::make_unique<Pipeline>();
  p->name = source.name;
  p->bindings = source.bindings;
  Pipeline* made = p.get();
  by_source_.emplace(source.glsl, made);
  pipelines_.push_back(std::move(p));
  pending_.emplace_back(made, source.glsl);
  return *made;
}

void PipelineStore::build() {
  std::vector<std::pair<Pipeline*, std::string>> work = std::move(pending_);
  pending_.clear();
  if (work.empty()) return;
  // RWKVC_VULKAN_COMPILE_THREADS=n caps the pool (default: the hardware's threads).
  run_jobs(work.size(), pool_threads("RWKVC_VULKAN_COMPILE_THREADS"),
           [&](std::size_t i) { make(*work[i].first, work[i].second); });
}

void PipelineStore::make(Pipeline& pipeline, const std::string& glsl) {
  Pipeline* p = &pipeline;
  p->spirv = compiler_.compile(glsl, p->name);
  VkDevice device = device_->handle();
  VkShaderModuleCreateInfo module{};
  module.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO;
  module.codeSize = p->spirv.size() * sizeof(std::uint32_t);
  module.pCode = p->spirv.data();
  check(vkCreateShaderModule(device, &module, nullptr, &p->module), "vkCreateShaderModule");

  std::vector<VkDescriptorSetLayoutBinding> bindings(p->bindings);
  for (std::uint32_t i = 0; i < p->bindings; ++i)
    bindings[i] = {i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, nullptr};
  VkDescriptorSetLayoutCreateInfo set{};
  set.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO;
  set.bindingCount = p->bindings;
  set.pBindings = bindings.data();
  check(vkCreateDescriptorSetLayout(device, &set, nullptr, &p->set_layout), "vkCreateDescriptorSetLayout");

  VkPushConstantRange push{VK_SHADER_STAGE_COMPUTE_BIT, 0, kPushWords * 4};
  VkPipelineLayoutCreateInfo layout{};
  layout.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO;
  layout.setLayoutCount = 1;
  layout.pSetLayouts = &p->set_layout;
  layout.pushConstantRangeCount = 1;
  layout.pPushConstantRanges = &push;
  check(vkCreatePipelineLayout(device, &layout, nullptr, &p->layout), "vkCreatePipelineLayout");

  VkComputePipelineCreateInfo info{};
  info.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO;
  info.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
  info.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
  info.stage.module = p->module;
  info.stage.pName = "main";
  info.layout = p->layout;
  check(vkCreateComputePipelines(device, cache_, 1, &info, nullptr, &p->pipeline),
        fmt::format("vkCreateComputePipelines ({})", p->name));
}

}  // namespace rwkvc::vulkan
