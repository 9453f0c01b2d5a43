// Where the Vulkan backend keeps what it compiled, between runs: SPIR-V modules keyed by a hash
// of their GLSL, and the driver's pipeline cache keyed by device and driver version. The files
// are read and written through backends/disk_cache.h.
#pragma once

#include <filesystem>

#include "backends/disk_cache.h"

namespace rwkvc::vulkan {

// $RWKVC_VULKAN_CACHE when set, else the shared cache's "vulkan" folder
// (rwkvc::cache_directory); empty when none can be named (then nothing is cached on disk).
std::filesystem::path cache_directory();

}  // namespace rwkvc::vulkan
