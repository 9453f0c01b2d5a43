#include "backends/cuda/cuda_state.h"

#include "backends/cuda/cuda_check.h"

namespace rwkvc::cuda {

std::vector<std::size_t> slot_offsets(const StateLayout& layout) {
  std::vector<std::size_t> offsets;
  std::size_t at = 0;
  for (const StateSlot& slot : layout.slots) {
    offsets.push_back(at);
    at += static_cast<std::size_t>(slot.shape.numel());
  }
  offsets.push_back(at);
  return offsets;
}

CudaStateStorage::CudaStateStorage(int device, const StateLayout& layout, const HostState& host)
    : device_(device), offsets_(slot_offsets(layout)), memory_(device, offsets_.back() * sizeof(float)) {
  host.check_matches(layout);
  std::vector<float> packed(offsets_.back());
  for (std::size_t i = 0; i < host.slots.size(); ++i)
    std::copy(host.slots[i].begin(), host.slots[i].end(), packed.begin() + static_cast<std::ptrdiff_t>(offsets_[i]));
  if (!packed.empty())
    check(cudaMemcpy(memory_.get(), packed.data(), memory_.bytes(), cudaMemcpyHostToDevice), "state upload");
  // Executables run on streams of their own that do not wait for this copy's completion.
  check(cudaStreamSynchronize(nullptr), "state upload");
}

std::unique_ptr<StateStorage> CudaStateStorage::clone() const {
  DeviceMemory copy(device_, memory_.bytes());
  if (memory_.bytes() > 0)
    check(cudaMemcpy(copy.get(), memory_.get(), memory_.bytes(), cudaMemcpyDeviceToDevice), "state copy");
  check(cudaStreamSynchronize(nullptr), "state copy");
  return std::unique_ptr<StateStorage>(new CudaStateStorage(device_, offsets_, std::move(copy)));
}

HostState CudaStateStorage::to_host(const StateLayout& layout) const {
  use_device(device_);
  std::vector<float> packed(floats());
  // The default stream waits for the executable's stream (legacy default-stream semantics).
  if (!packed.empty())
    check(cudaMemcpy(packed.data(), memory_.get(), memory_.bytes(), cudaMemcpyDeviceToHost), "state download");
  HostState host{layout, {}};
  for (std::size_t i = 0; i < layout.slots.size(); ++i)
    host.slots.emplace_back(packed.begin() + static_cast<std::ptrdiff_t>(offsets_[i]),
                            packed.begin() + static_cast<std::ptrdiff_t>(offsets_[i + 1]));
  return host;
}

}  // namespace rwkvc::cuda
