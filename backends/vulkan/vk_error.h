// Vulkan results as exceptions: a failed call throws std::runtime_error naming the call and
// the VkResult, so "vkCreateDevice: VK_ERROR_INITIALIZATION_FAILED" reaches the user as is.
#pragma once

#include <string_view>

#include <vulkan/vulkan.h>

namespace rwkvc::vulkan {

std::string_view result_name(VkResult result);

// Throws std::runtime_error "<what>: <result name>" unless `result` is VK_SUCCESS.
void check(VkResult result, std::string_view what);

}  // namespace rwkvc::vulkan
