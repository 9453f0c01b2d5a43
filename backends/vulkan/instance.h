// The Vulkan instance, with the Khronos validation layer and a debug messenger when the
// environment asks for them (RWKVC_VULKAN_VALIDATION=1): every message the layer reports is
// recorded, so tests can fail on any.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <vulkan/vulkan.h>

namespace rwkvc::vulkan {

class Instance {
 public:
  // Throws std::runtime_error when there is no Vulkan driver, or validation was asked for and
  // the layer is not installed.
  static std::shared_ptr<Instance> create();
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  VkInstance handle() const { return instance_; }
  bool validating() const { return messenger_ != VK_NULL_HANDLE; }
  std::vector<VkPhysicalDevice> physical_devices() const;

 private:
  Instance() = default;
  VkInstance instance_ = VK_NULL_HANDLE;
  VkDebugUtilsMessengerEXT messenger_ = VK_NULL_HANDLE;
};

// Whether RWKVC_VULKAN_VALIDATION asks for the validation layer.
bool validation_requested();

// The validation messages (warnings and errors) reported since the last call, by any instance.
std::vector<std::string> take_validation_messages();

}  // namespace rwkvc::vulkan
