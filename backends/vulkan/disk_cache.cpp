#include "backends/vulkan/disk_cache.h"

#include <cstdlib>

namespace rwkvc::vulkan {

std::filesystem::path cache_directory() {
  if (const char* explicit_dir = std::getenv("RWKVC_VULKAN_CACHE"); explicit_dir && *explicit_dir)
    return explicit_dir;
  return rwkvc::cache_directory("vulkan");
}

}  // namespace rwkvc::vulkan
