#include "backends/cuda/cuda_backend.h"

#include <fmt/format.h>

#include "backends/cuda/cuda_device.h"
#include "backends/cuda/cuda_executable.h"
#include "backends/cuda/cuda_state.h"
#include "backends/cuda/roofline.h"

namespace rwkvc {

namespace {

std::string describe(const cuda::DeviceInfo& device) {
  return fmt::format("{} ({}, {} SMs)", device.name, device.arch(), device.multiprocessors);
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(cuda::DeviceInfo device) : device_(std::move(device)) {}

  std::string_view name() const override { return cuda::kBackendName; }
  std::string device_name() const override { return "cuda: " + describe(device_); }
  std::unique_ptr<Executable> compile(const Graph& graph, const WeightMap& weights) const override {
    return std::make_unique<cuda::CudaExecutable>(device_, graph, weights);
  }
  std::optional<DeviceCeilings> measure_ceilings() const override {
    cuda::use_device(device_.index);
    return DeviceCeilings{cuda::copy_bandwidth(device_.index), cuda::gemm_rate(device_.index),
                          "1 GiB device-to-device copy (read + write) and 8192^3 f16 cuBLAS GEMM with f32 "
                          "accumulation, medians of 20"};
  }

 private:
  cuda::DeviceInfo device_;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& options) {
  return std::make_unique<CudaBackend>(cuda::open_device(options.device));
}

DeviceList list_cuda_devices() {
  DeviceList list{std::string(cuda::kBackendName), {}, {}};
  std::string why;
  for (const cuda::DeviceInfo& device : cuda::find_devices(why)) list.devices.push_back(describe(device));
  if (list.devices.empty()) list.unavailable = fmt::format("no CUDA device ({})", why);
  return list;
}

}  // namespace rwkvc
