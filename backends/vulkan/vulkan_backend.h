// The Vulkan compute backend: GLSL generated from the IR's kernel regions and hand-written
// templates (GEMV, GEMM, WKV, normalisations), compiled at run time with shaderc.
#pragma once

#include <memory>

#include "backends/backend.h"

namespace rwkvc {

// Throws std::runtime_error "no Vulkan device: ..." when there is none (no driver, no device
// with compute) or options.device is out of range.
std::unique_ptr<Backend> make_vulkan_backend(const BackendOptions& options);

// Backend "vulkan": the compute devices' names in index order, or `unavailable` saying why.
DeviceList list_vulkan_devices();

}  // namespace rwkvc
