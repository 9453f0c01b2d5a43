// Vulkan buffers with their own memory: device-local storage for weights, activations and
// states, and host-visible ones for staging, tokens and logits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include <vulkan/vulkan.h>

#include "backends/vulkan/device.h"

namespace rwkvc::vulkan {

enum class Memory {
  device,    // device-local: what kernels read and write
  upload,    // host-visible, coherent: staging to the device, and per-call inputs (tokens)
  readback,  // host-visible, cached where possible: results copied back
};

class Buffer {
 public:
  Buffer() = default;
  // At least `bytes` (rounded up to 16, never 0, so every buffer can be read as vec4s).
  Buffer(std::shared_ptr<const Device> device, std::size_t bytes, Memory memory);
  ~Buffer();
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  VkBuffer handle() const { return buffer_; }
  std::size_t size() const { return size_; }
  explicit operator bool() const { return buffer_ != VK_NULL_HANDLE; }
  // The host mapping of an upload or readback buffer (null for device memory).
  std::byte* mapped() const { return mapped_; }
  // Makes device writes visible through mapped() (nothing to do for coherent memory).
  void invalidate() const;

 private:
  void release();
  std::shared_ptr<const Device> device_;
  VkBuffer buffer_ = VK_NULL_HANDLE;
  VkDeviceMemory memory_ = VK_NULL_HANDLE;
  std::size_t size_ = 0;
  std::byte* mapped_ = nullptr;
  bool coherent_ = true;
};

// Copies host bytes into device buffers through one staging buffer, in as few submissions as
// its size allows.
class Uploader {
 public:
  explicit Uploader(std::shared_ptr<const Device> device, std::size_t staging_bytes = std::size_t{64} << 20);
  // Copies `bytes` into the staging buffer now (flushing first when it is full); they reach
  // `target` at `offset` by the next flush().
  void add(const Buffer& target, std::span<const std::byte> bytes, std::size_t offset = 0);
  void flush();

 private:
  struct Copy {
    VkBuffer target;
    std::size_t target_offset, staging_offset, size;
  };
  std::shared_ptr<const Device> device_;
  Buffer staging_;
  std::size_t used_ = 0;
  std::vector<Copy> copies_;
};

// Copies `bytes.size()` bytes from the start of a device buffer into host memory.
void download(const std::shared_ptr<const Device>& device, const Buffer& source, std::span<std::byte> bytes);

// A barrier that makes every earlier compute write and transfer visible to every later compute
// read and transfer: the one dependency the executable records between its steps.
void full_barrier(VkCommandBuffer commands);

}  // namespace rwkvc::vulkan
