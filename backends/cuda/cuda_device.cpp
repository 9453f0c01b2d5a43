#include "backends/cuda/cuda_device.h"

#include <dlfcn.h>

#include <stdexcept>

#include <fmt/format.h>

#include "backends/cuda/cuda_check.h"

namespace rwkvc::cuda {

namespace {

// The static runtime opens the driver itself; asking the dynamic loader first gives a clearer
// reason than "driver version is insufficient" on a machine that has no driver at all.
bool driver_library_present() {
  static const bool present = [] {
    void* handle = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
    return handle != nullptr;  // kept open: the runtime loads the same library
  }();
  return present;
}

}  // namespace

std::vector<DeviceInfo> find_devices(std::string& why) {
  why.clear();
  if (!driver_library_present()) {
    why = "libcuda.so.1 not found";
    return {};
  }
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    why = cudaGetErrorString(status);
    return {};
  }
  if (count == 0) {
    why = "the driver reports no device";
    return {};
  }
  std::vector<DeviceInfo> devices;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, i), "cudaGetDeviceProperties");
    devices.push_back({i, prop.name, prop.major, prop.minor, prop.multiProcessorCount});
  }
  return devices;
}

DeviceInfo open_device(int index) {
  std::string why;
  std::vector<DeviceInfo> devices = find_devices(why);
  if (devices.empty()) throw std::runtime_error(fmt::format("no CUDA device: {}", why));
  if (index < 0 || static_cast<std::size_t>(index) >= devices.size())
    throw std::runtime_error(fmt::format("no CUDA device: device {} asked for, but there are {} (0..{})", index,
                                         devices.size(), devices.size() - 1));
  use_device(index);
  return devices[static_cast<std::size_t>(index)];
}

void use_device(int index) { check(cudaSetDevice(index), "cudaSetDevice"); }

DeviceMemory::DeviceMemory(int device, std::size_t bytes) : bytes_(bytes), device_(device) {
  if (bytes == 0) return;
  use_device(device);
  check(cudaMalloc(&ptr_, bytes), fmt::format("cudaMalloc of {} bytes", bytes));
}

DeviceMemory::~DeviceMemory() {
  if (ptr_ == nullptr) return;
  cudaSetDevice(device_);
  cudaFree(ptr_);  // a destructor cannot throw; a failure here leaves nothing to recover
}

}  // namespace rwkvc::cuda
