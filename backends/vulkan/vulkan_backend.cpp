#include "backends/vulkan/vulkan_backend.h"

#include <stdexcept>

#include <fmt/format.h>

#include "backends/vulkan/device.h"
#include "backends/vulkan/vulkan_executable.h"
#include "backends/vulkan/vulkan_state.h"
#include "ir/error.h"
#include "ir/verifier.h"

namespace rwkvc {

namespace {

using vulkan::Device;
using vulkan::Instance;

class VulkanBackend final : public Backend {
 public:
  explicit VulkanBackend(std::shared_ptr<const Device> device) : device_(std::move(device)) {}

  std::string_view name() const override { return vulkan::kVulkanBackendName; }

  std::string device_name() const override {
    const vulkan::DeviceFeatures& f = device_->features();
    return fmt::format("vulkan: {} (Vulkan {}.{}, subgroup {}{}, {} KiB shared memory{}{})", f.name,
                       VK_API_VERSION_MAJOR(f.api_version), VK_API_VERSION_MINOR(f.api_version), f.subgroup_size,
                       f.subgroup_arithmetic ? " with arithmetic" : "", f.shared_memory_bytes / 1024,
                       f.storage16 ? ", 16-bit storage" : "", f.cooperative_matrix ? ", cooperative matrices" : "");
  }

  std::unique_ptr<Executable> compile(const Graph& graph, const WeightMap& weights) const override {
    verify(graph);
    if (graph.tokens == kNoValue || graph.type(graph.tokens) != TensorType{DType::i32, Shape{kSeq}})
      throw IrError(fmt::format("graph '{}' has no tokens input i32[T]: the Vulkan backend feeds every forward call's "
                                "tokens there", graph.name));
    if (graph.logits == kNoValue)
      throw IrError(fmt::format("graph '{}' has no logits: forward would have nothing to return", graph.name));
    return std::make_unique<vulkan::VulkanExecutable>(device_, graph, weights);
  }

 private:
  std::shared_ptr<const Device> device_;
};

}  // namespace

std::unique_ptr<Backend> make_vulkan_backend(const BackendOptions& options) {
  std::shared_ptr<Instance> instance;
  try {
    instance = Instance::create();
  } catch (const std::runtime_error& error) {
    throw std::runtime_error(fmt::format("no Vulkan device: {}", error.what()));
  }
  return std::make_unique<VulkanBackend>(Device::open(std::move(instance), options.device));
}

DeviceList list_vulkan_devices() {
  DeviceList list{std::string(vulkan::kVulkanBackendName), {}, {}};
  try {
    std::shared_ptr<Instance> instance = Instance::create();
    for (VkPhysicalDevice physical : vulkan::compute_devices(*instance))
      list.devices.push_back(vulkan::query_features(physical).name);
    if (list.devices.empty()) list.unavailable = "no Vulkan device with compute (Vulkan 1.1 or newer)";
  } catch (const std::runtime_error& error) {
    list.unavailable = fmt::format("no Vulkan device ({})", error.what());
  }
  return list;
}

}  // namespace rwkvc
