#include "backends/vulkan/device.h"

#include <cstdlib>
#include <optional>
#include <string_view>
#include <stdexcept>

#include <fmt/format.h>

#include "backends/vulkan/vk_error.h"

namespace rwkvc::vulkan {

namespace {

std::optional<std::uint32_t> compute_queue_family(VkPhysicalDevice physical) {
  std::uint32_t count = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(physical, &count, nullptr);
  std::vector<VkQueueFamilyProperties> families(count);
  vkGetPhysicalDeviceQueueFamilyProperties(physical, &count, families.data());
  for (std::uint32_t i = 0; i < count; ++i)
    if (families[i].queueFlags & VK_QUEUE_COMPUTE_BIT) return i;
  return std::nullopt;
}

}  // namespace

std::vector<VkPhysicalDevice> compute_devices(const Instance& instance) {
  std::vector<VkPhysicalDevice> usable;
  for (VkPhysicalDevice physical : instance.physical_devices()) {
    VkPhysicalDeviceProperties properties;
    vkGetPhysicalDeviceProperties(physical, &properties);
    if (properties.apiVersion >= VK_API_VERSION_1_1 && compute_queue_family(physical)) usable.push_back(physical);
  }
  return usable;
}

DeviceFeatures query_features(VkPhysicalDevice physical) {
  VkPhysicalDeviceSubgroupProperties subgroup{};
  subgroup.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES;
  VkPhysicalDeviceProperties2 properties{};
  properties.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2;
  properties.pNext = &subgroup;
  vkGetPhysicalDeviceProperties2(physical, &properties);
  const VkPhysicalDeviceLimits& limits = properties.properties.limits;

  VkPhysicalDevice16BitStorageFeatures storage16{};
  storage16.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES;
  VkPhysicalDeviceShaderFloat16Int8Features float16{};
  float16.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES;
  VkPhysicalDeviceFeatures2 features{};
  features.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2;
  features.pNext = &storage16;
  if (properties.properties.apiVersion >= VK_API_VERSION_1_2) storage16.pNext = &float16;
  vkGetPhysicalDeviceFeatures2(physical, &features);

  DeviceFeatures out;
  out.name = properties.properties.deviceName;
  out.api_version = properties.properties.apiVersion;
  out.driver_version = properties.properties.driverVersion;
  std::copy(std::begin(properties.properties.pipelineCacheUUID), std::end(properties.properties.pipelineCacheUUID),
            out.pipeline_cache_uuid.begin());
  out.subgroup_size = subgroup.subgroupSize;
  out.subgroup_arithmetic = (subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                            (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT) &&
                            (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) &&
                            subgroup.subgroupSize >= 4;
  out.storage16 = storage16.storageBuffer16BitAccess == VK_TRUE;
  out.float16 = float16.shaderFloat16 == VK_TRUE;
  out.shared_memory_bytes = limits.maxComputeSharedMemorySize;
  out.max_workgroup_invocations = limits.maxComputeWorkGroupInvocations;
  out.max_workgroup_count_x = limits.maxComputeWorkGroupCount[0];
  out.max_storage_buffer_range = limits.maxStorageBufferRange;
  out.timestamp_period_ns = limits.timestampPeriod;

  std::uint32_t count = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(physical, &count, nullptr);
  std::vector<VkQueueFamilyProperties> families(count);
  vkGetPhysicalDeviceQueueFamilyProperties(physical, &count, families.data());
  if (auto family = compute_queue_family(physical); family && limits.timestampComputeAndGraphics)
    out.timestamp_bits = families[*family].timestampValidBits;
  return out;
}

namespace {

// RWKVC_VULKAN_FEATURES_OFF=subgroups,storage16 runs the kernels' fallbacks on a device that
// has the features, so that one machine tests both paths.
void apply_feature_overrides(DeviceFeatures& features) {
  const char* off = std::getenv("RWKVC_VULKAN_FEATURES_OFF");
  if (off == nullptr) return;
  std::string_view list = off;
  if (list.find("subgroups") != std::string_view::npos) features.subgroup_arithmetic = false;
  if (list.find("storage16") != std::string_view::npos) features.storage16 = false;
}

}  // namespace

std::shared_ptr<Device> Device::open(std::shared_ptr<Instance> instance, int index) {
  std::vector<VkPhysicalDevice> devices = compute_devices(*instance);
  if (devices.empty()) throw std::runtime_error("no Vulkan device: no device with Vulkan 1.1 compute");
  if (index < 0 || static_cast<std::size_t>(index) >= devices.size())
    throw std::runtime_error(fmt::format("no Vulkan device {}: this machine has {} (0..{})", index, devices.size(),
                                         devices.size() - 1));

  std::shared_ptr<Device> device(new Device);
  device->instance_ = std::move(instance);
  device->physical_ = devices[static_cast<std::size_t>(index)];
  device->features_ = query_features(device->physical_);
  apply_feature_overrides(device->features_);
  device->queue_family_ = *compute_queue_family(device->physical_);

  float priority = 1.0f;
  VkDeviceQueueCreateInfo queue{};
  queue.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO;
  queue.queueFamilyIndex = device->queue_family_;
  queue.queueCount = 1;
  queue.pQueuePriorities = &priority;

  // Enable exactly what the kernels may use and the device has.
  VkPhysicalDevice16BitStorageFeatures storage16{};
  storage16.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES;
  storage16.storageBuffer16BitAccess = device->features_.storage16 ? VK_TRUE : VK_FALSE;
  VkPhysicalDeviceShaderFloat16Int8Features float16{};
  float16.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES;
  float16.shaderFloat16 = device->features_.float16 ? VK_TRUE : VK_FALSE;
  if (device->features_.float16) storage16.pNext = &float16;

  VkDeviceCreateInfo info{};
  info.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO;
  info.pNext = &storage16;
  info.queueCreateInfoCount = 1;
  info.pQueueCreateInfos = &queue;
  check(vkCreateDevice(device->physical_, &info, nullptr, &device->device_), "vkCreateDevice");
  vkGetDeviceQueue(device->device_, device->queue_family_, 0, &device->queue_);

  VkCommandPoolCreateInfo pool{};
  pool.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO;
  pool.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pool.queueFamilyIndex = device->queue_family_;
  check(vkCreateCommandPool(device->device_, &pool, nullptr, &device->pool_), "vkCreateCommandPool");
  return device;
}

Device::~Device() {
  if (device_ == VK_NULL_HANDLE) return;
  vkDeviceWaitIdle(device_);
  if (pool_ != VK_NULL_HANDLE) vkDestroyCommandPool(device_, pool_, nullptr);
  vkDestroyDevice(device_, nullptr);
}

std::uint32_t Device::memory_type(std::uint32_t type_bits, VkMemoryPropertyFlags required,
                                  VkMemoryPropertyFlags preferred) const {
  VkPhysicalDeviceMemoryProperties memory;
  vkGetPhysicalDeviceMemoryProperties(physical_, &memory);
  std::optional<std::uint32_t> fallback;
  for (std::uint32_t i = 0; i < memory.memoryTypeCount; ++i) {
    VkMemoryPropertyFlags flags = memory.memoryTypes[i].propertyFlags;
    if (!(type_bits & (1u << i)) || (flags & required) != required) continue;
    if ((flags & preferred) == preferred) return i;
    if (!fallback) fallback = i;
  }
  if (!fallback) throw std::runtime_error(fmt::format("{}: no memory type with properties {:#x}", features_.name, required));
  return *fallback;
}

void Device::run_now(const std::function<void(VkCommandBuffer)>& commands) const {
  VkCommandBufferAllocateInfo allocate{};
  allocate.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO;
  allocate.commandPool = pool_;
  allocate.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  allocate.commandBufferCount = 1;
  VkCommandBuffer buffer = VK_NULL_HANDLE;
  check(vkAllocateCommandBuffers(device_, &allocate, &buffer), "vkAllocateCommandBuffers");
  VkFenceCreateInfo fence_info{};
  fence_info.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO;
  VkFence fence = VK_NULL_HANDLE;
  VkResult result = vkCreateFence(device_, &fence_info, nullptr, &fence);
  if (result == VK_SUCCESS) {
    VkCommandBufferBeginInfo begin{};
    begin.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO;
    begin.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    result = vkBeginCommandBuffer(buffer, &begin);
    if (result == VK_SUCCESS) {
      commands(buffer);
      result = vkEndCommandBuffer(buffer);
    }
    if (result == VK_SUCCESS) {
      VkSubmitInfo submit{};
      submit.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO;
      submit.commandBufferCount = 1;
      submit.pCommandBuffers = &buffer;
      result = vkQueueSubmit(queue_, 1, &submit, fence);
      if (result == VK_SUCCESS) result = vkWaitForFences(device_, 1, &fence, VK_TRUE, UINT64_MAX);
    }
    vkDestroyFence(device_, fence, nullptr);
  }
  vkFreeCommandBuffers(device_, pool_, 1, &buffer);
  check(result, "one-shot submission");
}

}  // namespace rwkvc::vulkan
