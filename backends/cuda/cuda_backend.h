// The CUDA backend: kernels generated from the fused IR and hand-written templates, compiled
// at run time by NVRTC for the device's architecture, run through the static CUDA runtime.
// Nothing links the driver: without one, make_cuda_backend throws and the device list says why.
#pragma once

#include <memory>

#include "backends/backend.h"

namespace rwkvc {

// Throws std::runtime_error "no CUDA device: ..." when there is no driver or device, or
// `options.device` is out of range.
std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& options);

// Backend "cuda"; `unavailable` is "no CUDA device (<why>)" when none can be used.
DeviceList list_cuda_devices();

}  // namespace rwkvc
