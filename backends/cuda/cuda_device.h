// Finding CUDA devices without linking the driver, and device memory that frees itself.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace rwkvc::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int major = 0, minor = 0;  // compute capability
  int multiprocessors = 0;
  std::string arch() const { return "sm_" + std::to_string(major * 10 + minor); }
};

// The devices the driver reports, or an empty list and `why` says what is missing
// ("libcuda.so.1 not found", the runtime's message).
std::vector<DeviceInfo> find_devices(std::string& why);

// Makes `index` current for this thread; throws std::runtime_error "no CUDA device: ..." when
// there is no driver or device, or the index is out of range.
DeviceInfo open_device(int index);

// Makes the device current for the calling thread (each runtime call acts on the current one).
void use_device(int index);

// A device allocation; move-only. Zero bytes holds no allocation.
class DeviceMemory {
 public:
  DeviceMemory() = default;
  DeviceMemory(int device, std::size_t bytes);
  ~DeviceMemory();
  DeviceMemory(DeviceMemory&& other) noexcept { swap(other); }
  DeviceMemory& operator=(DeviceMemory&& other) noexcept {
    DeviceMemory(std::move(other)).swap(*this);
    return *this;
  }
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;

  void* get() const { return ptr_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  std::size_t bytes() const { return bytes_; }

 private:
  void swap(DeviceMemory& other) noexcept {
    std::swap(ptr_, other.ptr_);
    std::swap(bytes_, other.bytes_);
    std::swap(device_, other.device_);
  }
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
  int device_ = 0;
};

}  // namespace rwkvc::cuda
