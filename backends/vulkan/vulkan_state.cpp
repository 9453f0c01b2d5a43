#include "backends/vulkan/vulkan_state.h"

#include <atomic>
#include <span>

namespace rwkvc::vulkan {

namespace {

std::uint64_t next_id() {
  static std::atomic<std::uint64_t> counter{1};
  return counter++;
}

}  // namespace

VulkanStateStorage::VulkanStateStorage(std::shared_ptr<const Device> device) : device_(std::move(device)), id_(next_id()) {}

VulkanStateStorage::VulkanStateStorage(std::shared_ptr<const Device> device, const HostState& host)
    : VulkanStateStorage(std::move(device)) {
  Uploader uploader(device_, std::max<std::size_t>(16, 4 * host.layout.total_floats()));
  for (const std::vector<float>& values : host.slots) {
    slots_.emplace_back(device_, values.size() * sizeof(float), Memory::device);
    floats_.push_back(values.size());
    uploader.add(slots_.back(), std::as_bytes(std::span(values)));
  }
  uploader.flush();
}

std::unique_ptr<StateStorage> VulkanStateStorage::clone() const {
  std::unique_ptr<VulkanStateStorage> copy(new VulkanStateStorage(device_));
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    copy->slots_.emplace_back(device_, floats_[i] * sizeof(float), Memory::device);
    copy->floats_.push_back(floats_[i]);
  }
  device_->run_now([&](VkCommandBuffer commands) {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      VkBufferCopy region{0, 0, slots_[i].size()};
      vkCmdCopyBuffer(commands, slots_[i].handle(), copy->slots_[i].handle(), 1, &region);
    }
    full_barrier(commands);
  });
  return copy;
}

HostState VulkanStateStorage::to_host(const StateLayout& layout) const {
  HostState host{layout, std::vector<std::vector<float>>(slots_.size())};
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    host.slots[i].resize(floats_[i]);
    download(device_, slots_[i], std::as_writable_bytes(std::span(host.slots[i])));
  }
  host.check_matches(layout);
  return host;
}

}  // namespace rwkvc::vulkan
