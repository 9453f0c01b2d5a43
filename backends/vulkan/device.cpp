#include "backends/vulkan/device.h"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <stdexcept>
#include <vector>

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
  out.subgroup_shuffle = out.subgroup_arithmetic && (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT);
  out.storage16 = storage16.storageBuffer16BitAccess == VK_TRUE;
  out.float16 = float16.shaderFloat16 == VK_TRUE;
  out.shared_memory_bytes = limits.maxComputeSharedMemorySize;
  out.max_workgroup_invocations = limits.maxComputeWorkGroupInvocations;
  out.max_workgroup_count_x = limits.maxComputeWorkGroupCount[0];
  out.max_storage_buffer_range = limits.maxStorageBufferRange;
  out.max_storage_buffers = std::min(limits.maxPerStageDescriptorStorageBuffers, limits.maxDescriptorSetStorageBuffers);
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

bool has_extension(VkPhysicalDevice physical, std::string_view name) {
  std::uint32_t count = 0;
  vkEnumerateDeviceExtensionProperties(physical, nullptr, &count, nullptr);
  std::vector<VkExtensionProperties> extensions(count);
  vkEnumerateDeviceExtensionProperties(physical, nullptr, &count, extensions.data());
  for (const VkExtensionProperties& extension : extensions)
    if (name == extension.extensionName) return true;
  return false;
}

// Whether the device runs the cooperative-matrix GEMM: the extension and its feature, the
// memory model, f16 arithmetic, and a 16 x 16 x 16 f16 x f16 + f32 shape at subgroup scope.
bool cooperative_matrix_usable(const Instance& instance, VkPhysicalDevice physical, const DeviceFeatures& features) {
  if (features.api_version < VK_API_VERSION_1_2 || !features.float16 || !features.subgroup_arithmetic ||
      !has_extension(physical, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME))
    return false;
  VkPhysicalDeviceCooperativeMatrixFeaturesNV cooperative{};
  cooperative.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV;
  VkPhysicalDeviceVulkanMemoryModelFeatures memory_model{};
  memory_model.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES;
  memory_model.pNext = &cooperative;
  VkPhysicalDeviceFeatures2 all{};
  all.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2;
  all.pNext = &memory_model;
  vkGetPhysicalDeviceFeatures2(physical, &all);
  if (!cooperative.cooperativeMatrix || !memory_model.vulkanMemoryModel) return false;

  VkPhysicalDeviceCooperativeMatrixPropertiesNV stages{};
  stages.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_PROPERTIES_NV;
  VkPhysicalDeviceProperties2 properties{};
  properties.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2;
  properties.pNext = &stages;
  vkGetPhysicalDeviceProperties2(physical, &properties);
  if (!(stages.cooperativeMatrixSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT)) return false;

  auto shapes_of = reinterpret_cast<PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV>(
      vkGetInstanceProcAddr(instance.handle(), "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV"));
  if (shapes_of == nullptr) return false;
  std::uint32_t count = 0;
  if (shapes_of(physical, &count, nullptr) != VK_SUCCESS) return false;
  std::vector<VkCooperativeMatrixPropertiesNV> shapes(count);
  for (auto& shape : shapes) shape.sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
  if (shapes_of(physical, &count, shapes.data()) != VK_SUCCESS) return false;
  for (const auto& shape : shapes)
    if (shape.MSize == 16 && shape.NSize == 16 && shape.KSize == 16 && shape.AType == VK_COMPONENT_TYPE_FLOAT16_NV &&
        shape.BType == VK_COMPONENT_TYPE_FLOAT16_NV && shape.CType == VK_COMPONENT_TYPE_FLOAT32_NV &&
        shape.DType == VK_COMPONENT_TYPE_FLOAT32_NV && shape.scope == VK_SCOPE_SUBGROUP_NV)
      return true;
  return false;
}

// RWKVC_VULKAN_FEATURES_OFF=subgroups,storage16 runs the kernels' fallbacks on a device that
// has the features, so that one machine tests both paths.
void apply_feature_overrides(DeviceFeatures& features) {
  const char* off = std::getenv("RWKVC_VULKAN_FEATURES_OFF");
  if (off == nullptr) return;
  std::string_view list = off;
  if (list.find("subgroups") != std::string_view::npos) features.subgroup_arithmetic = features.subgroup_shuffle = false;
  if (list.find("storage16") != std::string_view::npos) features.storage16 = false;
  if (!features.subgroup_arithmetic) features.cooperative_matrix = false;
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
  // Opt-in: on the H100 the first cooperative-matrix GEMM was slower than the tiled one and
  // off by up to 4e-4 relative (bench/results/h100-vulkan, run 3).
  if (const char* on = std::getenv("RWKVC_VULKAN_COOPMAT"); on != nullptr && std::string_view(on) == "1")
    device->features_.cooperative_matrix = cooperative_matrix_usable(*device->instance_, device->physical_, device->features_);
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
  VkPhysicalDeviceVulkanMemoryModelFeatures memory_model{};
  memory_model.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES;
  VkPhysicalDeviceCooperativeMatrixFeaturesNV cooperative{};
  cooperative.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV;
  std::vector<const char*> extensions;
  if (device->features_.cooperative_matrix) {
    memory_model.vulkanMemoryModel = VK_TRUE;
    cooperative.cooperativeMatrix = VK_TRUE;
    memory_model.pNext = &cooperative;
    float16.pNext = &memory_model;
    extensions.push_back(VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
  }

  VkDeviceCreateInfo info{};
  info.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO;
  info.pNext = &storage16;
  info.queueCreateInfoCount = 1;
  info.pQueueCreateInfos = &queue;
  info.enabledExtensionCount = static_cast<std::uint32_t>(extensions.size());
  info.ppEnabledExtensionNames = extensions.empty() ? nullptr : extensions.data();
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
