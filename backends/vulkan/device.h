// One Vulkan device opened for compute: the physical device's capabilities as the kernels need
// them, the logical device with the features that exist enabled, its compute queue, and
// one-shot submissions for uploads and downloads.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <vulkan/vulkan.h>

#include "backends/vulkan/instance.h"

namespace rwkvc::vulkan {

// What the kernels adapt to: chosen from what the device reports, so one build runs on
// lavapipe (subgroup 8, 32 KiB shared memory) and NVIDIA (subgroup 32, 48 KiB+) alike.
struct DeviceFeatures {
  std::string name;
  std::uint32_t api_version = 0;
  std::uint32_t driver_version = 0;
  std::array<std::uint8_t, VK_UUID_SIZE> pipeline_cache_uuid{};  // what pipeline caches are compatible with
  std::uint32_t subgroup_size = 1;
  bool subgroup_arithmetic = false;  // subgroupAdd & co. in compute shaders
  bool subgroup_shuffle = false;     // subgroupShuffleXor (with subgroup_arithmetic's conditions)
  bool storage16 = false;            // 16-bit types in storage buffers (f16/bf16 weights read as such)
  bool float16 = false;              // f16 arithmetic (enabled when present; kernels accumulate in f32)
  // VK_NV_cooperative_matrix with 16 x 16 x 16 f16 products accumulated in f32 by a subgroup in
  // compute shaders, and the Vulkan memory model its shaders declare (both enabled when used).
  // Looked for only with RWKVC_VULKAN_COOPMAT=1.
  bool cooperative_matrix = false;
  std::uint32_t shared_memory_bytes = 16384;
  std::uint32_t max_workgroup_invocations = 128;
  std::uint32_t max_workgroup_count_x = 65535;
  std::uint64_t max_storage_buffer_range = 1u << 27;
  std::uint32_t max_storage_buffers = 4;  // bound to one kernel (per stage and per set)
  std::uint32_t timestamp_bits = 0;  // 0: the queue cannot time
  float timestamp_period_ns = 1.0f;
};

// The devices Vulkan can run compute on: API 1.1 or newer with a compute queue.
std::vector<VkPhysicalDevice> compute_devices(const Instance& instance);
DeviceFeatures query_features(VkPhysicalDevice physical);

class Device {
 public:
  // Throws std::runtime_error when `index` names no compute device.
  static std::shared_ptr<Device> open(std::shared_ptr<Instance> instance, int index);
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  VkDevice handle() const { return device_; }
  VkPhysicalDevice physical() const { return physical_; }
  VkQueue queue() const { return queue_; }
  std::uint32_t queue_family() const { return queue_family_; }
  VkCommandPool command_pool() const { return pool_; }
  const DeviceFeatures& features() const { return features_; }
  const Instance& instance() const { return *instance_; }

  // A memory type among `type_bits` with all of `required`, preferring one with `preferred` too.
  // Throws std::runtime_error when none has `required`.
  std::uint32_t memory_type(std::uint32_t type_bits, VkMemoryPropertyFlags required,
                            VkMemoryPropertyFlags preferred = 0) const;

  // Records `commands` into a fresh command buffer, submits it and waits for it to finish.
  void run_now(const std::function<void(VkCommandBuffer)>& commands) const;

 private:
  Device() = default;
  std::shared_ptr<Instance> instance_;
  VkPhysicalDevice physical_ = VK_NULL_HANDLE;
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  std::uint32_t queue_family_ = 0;
  VkCommandPool pool_ = VK_NULL_HANDLE;
  DeviceFeatures features_;
};

}  // namespace rwkvc::vulkan
