#include "backends/vulkan/vk_error.h"

#include <stdexcept>

#include <fmt/format.h>

namespace rwkvc::vulkan {

std::string_view result_name(VkResult result) {
  switch (result) {
#define RWKVC_VK_RESULT(name) \
  case name: return #name;
    RWKVC_VK_RESULT(VK_SUCCESS)
    RWKVC_VK_RESULT(VK_NOT_READY)
    RWKVC_VK_RESULT(VK_TIMEOUT)
    RWKVC_VK_RESULT(VK_INCOMPLETE)
    RWKVC_VK_RESULT(VK_ERROR_OUT_OF_HOST_MEMORY)
    RWKVC_VK_RESULT(VK_ERROR_OUT_OF_DEVICE_MEMORY)
    RWKVC_VK_RESULT(VK_ERROR_INITIALIZATION_FAILED)
    RWKVC_VK_RESULT(VK_ERROR_DEVICE_LOST)
    RWKVC_VK_RESULT(VK_ERROR_MEMORY_MAP_FAILED)
    RWKVC_VK_RESULT(VK_ERROR_LAYER_NOT_PRESENT)
    RWKVC_VK_RESULT(VK_ERROR_EXTENSION_NOT_PRESENT)
    RWKVC_VK_RESULT(VK_ERROR_FEATURE_NOT_PRESENT)
    RWKVC_VK_RESULT(VK_ERROR_INCOMPATIBLE_DRIVER)
    RWKVC_VK_RESULT(VK_ERROR_TOO_MANY_OBJECTS)
    RWKVC_VK_RESULT(VK_ERROR_FORMAT_NOT_SUPPORTED)
    RWKVC_VK_RESULT(VK_ERROR_FRAGMENTED_POOL)
    RWKVC_VK_RESULT(VK_ERROR_OUT_OF_POOL_MEMORY)
    RWKVC_VK_RESULT(VK_ERROR_INVALID_EXTERNAL_HANDLE)
    RWKVC_VK_RESULT(VK_ERROR_FRAGMENTATION)
    RWKVC_VK_RESULT(VK_ERROR_UNKNOWN)
#undef RWKVC_VK_RESULT
    default: return "VkResult(unknown)";
  }
}

void check(VkResult result, std::string_view what) {
  if (result != VK_SUCCESS)
    throw std::runtime_error(fmt::format("{}: {} ({})", what, result_name(result), static_cast<int>(result)));
}

}  // namespace rwkvc::vulkan
