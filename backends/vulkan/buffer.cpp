#include "backends/vulkan/buffer.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "backends/vulkan/vk_error.h"

namespace rwkvc::vulkan {

Buffer::Buffer(std::shared_ptr<const Device> device, std::size_t bytes, Memory memory) : device_(std::move(device)) {
  size_ = std::max<std::size_t>(16, (bytes + 15) / 16 * 16);
  VkBufferCreateInfo info{};
  info.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO;
  info.size = size_;
  info.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  info.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  VkDevice handle = device_->handle();
  check(vkCreateBuffer(handle, &info, nullptr, &buffer_), "vkCreateBuffer");

  VkMemoryRequirements needs;
  vkGetBufferMemoryRequirements(handle, buffer_, &needs);
  VkMemoryPropertyFlags required = 0, preferred = 0;
  switch (memory) {
    case Memory::device: required = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT; break;
    case Memory::upload:
      required = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
      break;
    case Memory::readback:
      required = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT;
      preferred = VK_MEMORY_PROPERTY_HOST_CACHED_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
      break;
  }
  VkMemoryAllocateInfo allocate{};
  allocate.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO;
  allocate.allocationSize = needs.size;
  allocate.memoryTypeIndex = device_->memory_type(needs.memoryTypeBits, required, preferred);
  VkResult result = vkAllocateMemory(handle, &allocate, nullptr, &memory_);
  if (result != VK_SUCCESS) {
    release();
    check(result, "vkAllocateMemory");
  }
  check(vkBindBufferMemory(handle, buffer_, memory_, 0), "vkBindBufferMemory");
  if (memory != Memory::device) {
    VkPhysicalDeviceMemoryProperties properties;
    vkGetPhysicalDeviceMemoryProperties(device_->physical(), &properties);
    coherent_ = properties.memoryTypes[allocate.memoryTypeIndex].propertyFlags & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    void* data = nullptr;
    check(vkMapMemory(handle, memory_, 0, VK_WHOLE_SIZE, 0, &data), "vkMapMemory");
    mapped_ = static_cast<std::byte*>(data);
  }
}

Buffer::~Buffer() { release(); }

Buffer::Buffer(Buffer&& other) noexcept { *this = std::move(other); }

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    release();
    device_ = std::move(other.device_);
    buffer_ = std::exchange(other.buffer_, VK_NULL_HANDLE);
    memory_ = std::exchange(other.memory_, VK_NULL_HANDLE);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, nullptr);
    coherent_ = other.coherent_;
  }
  return *this;
}

void Buffer::invalidate() const {
  if (coherent_ || mapped_ == nullptr) return;
  VkMappedMemoryRange range{};
  range.sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE;
  range.memory = memory_;
  range.size = VK_WHOLE_SIZE;
  check(vkInvalidateMappedMemoryRanges(device_->handle(), 1, &range), "vkInvalidateMappedMemoryRanges");
}

void Buffer::release() {
  if (!device_) return;
  VkDevice handle = device_->handle();
  if (buffer_ != VK_NULL_HANDLE) vkDestroyBuffer(handle, buffer_, nullptr);
  if (memory_ != VK_NULL_HANDLE) vkFreeMemory(handle, memory_, nullptr);  // unmaps too
  buffer_ = VK_NULL_HANDLE;
  memory_ = VK_NULL_HANDLE;
  mapped_ = nullptr;
}

Uploader::Uploader(std::shared_ptr<const Device> device, std::size_t staging_bytes)
    : device_(std::move(device)), staging_(device_, staging_bytes, Memory::upload) {}

void Uploader::add(const Buffer& target, std::span<const std::byte> bytes, std::size_t offset) {
  while (!bytes.empty()) {
    if (used_ == staging_.size()) flush();
    std::size_t size = std::min(bytes.size(), staging_.size() - used_);
    std::memcpy(staging_.mapped() + used_, bytes.data(), size);
    copies_.push_back({target.handle(), offset, used_, size});
    used_ = (used_ + size + 15) / 16 * 16;  // keep copies 16-byte aligned in the staging buffer
    used_ = std::min(used_, staging_.size());
    bytes = bytes.subspan(size);
    offset += size;
  }
}

void Uploader::flush() {
  if (copies_.empty()) return;
  device_->run_now([&](VkCommandBuffer commands) {
    for (const Copy& copy : copies_) {
      VkBufferCopy region{copy.staging_offset, copy.target_offset, copy.size};
      vkCmdCopyBuffer(commands, staging_.handle(), copy.target, 1, &region);
    }
    full_barrier(commands);
  });
  copies_.clear();
  used_ = 0;
}

void download(const std::shared_ptr<const Device>& device, const Buffer& source, std::span<std::byte> bytes) {
  if (bytes.empty()) return;
  Buffer readback(device, bytes.size(), Memory::readback);
  device->run_now([&](VkCommandBuffer commands) {
    full_barrier(commands);
    VkBufferCopy region{0, 0, bytes.size()};
    vkCmdCopyBuffer(commands, source.handle(), readback.handle(), 1, &region);
    VkMemoryBarrier to_host{};
    to_host.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER;
    to_host.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
    to_host.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
    vkCmdPipelineBarrier(commands, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &to_host, 0,
                         nullptr, 0, nullptr);
  });
  readback.invalidate();
  std::memcpy(bytes.data(), readback.mapped(), bytes.size());
}

void full_barrier(VkCommandBuffer commands) {
  VkMemoryBarrier barrier{};
  barrier.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER;
  barrier.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  barrier.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                          VK_ACCESS_TRANSFER_WRITE_BIT;
  VkPipelineStageFlags stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
  vkCmdPipelineBarrier(commands, stages, stages, 0, 1, &barrier, 0, nullptr, 0, nullptr);
}

}  // namespace rwkvc::vulkan
