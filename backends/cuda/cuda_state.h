// The CUDA backend's state storage: every slot of one state in one device allocation, in the
// layout's slot order, so that cloning, import and export are one copy each.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "backends/backend.h"
#include "backends/cuda/cuda_device.h"

namespace rwkvc::cuda {

inline constexpr std::string_view kBackendName = "cuda";

// Where each slot starts, in floats from the allocation's start.
std::vector<std::size_t> slot_offsets(const StateLayout& layout);

class CudaStateStorage final : public StateStorage {
 public:
  // Uploads `host`, which must match `layout`.
  CudaStateStorage(int device, const StateLayout& layout, const HostState& host);

  std::unique_ptr<StateStorage> clone() const override;
  HostState to_host(const StateLayout& layout) const override;
  std::string_view backend() const override { return kBackendName; }

  int device() const { return device_; }
  float* slot(std::size_t index) const { return memory_.as<float>() + offsets_[index]; }
  std::size_t floats() const { return memory_.bytes() / sizeof(float); }

 private:
  CudaStateStorage(int device, std::vector<std::size_t> offsets, DeviceMemory memory)
      : device_(device), offsets_(std::move(offsets)), memory_(std::move(memory)) {}

  int device_;
  std::vector<std::size_t> offsets_;
  DeviceMemory memory_;
};

}  // namespace rwkvc::cuda
