// A state on a Vulkan device: one device buffer per slot, in the layout's order.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "backends/backend.h"
#include "backends/vulkan/buffer.h"

namespace rwkvc::vulkan {

inline constexpr std::string_view kVulkanBackendName = "vulkan";

class VulkanStateStorage final : public StateStorage {
 public:
  // Uploads `host` (already checked against its layout).
  VulkanStateStorage(std::shared_ptr<const Device> device, const HostState& host);

  std::unique_ptr<StateStorage> clone() const override;
  HostState to_host(const StateLayout& layout) const override;
  std::string_view backend() const override { return kVulkanBackendName; }

  const Device& device() const { return *device_; }
  const Buffer& slot(std::size_t index) const { return slots_[index]; }
  // Unique per storage (clones included): a command buffer recorded for one state is reused
  // only with the same state.
  std::uint64_t id() const { return id_; }

 private:
  explicit VulkanStateStorage(std::shared_ptr<const Device> device);
  std::shared_ptr<const Device> device_;
  std::vector<Buffer> slots_;
  std::vector<std::size_t> floats_;  // by slot
  std::uint64_t id_;
};

}  // namespace rwkvc::vulkan
