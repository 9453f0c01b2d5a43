// The one place that knows every backend of this build. The GPU backends are compiled in when
// their SDKs are found (RWKVC_HAVE_VULKAN, RWKVC_HAVE_CUDA) and find their devices at run time.
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"
#if RWKVC_HAVE_VULKAN
#include "backends/vulkan/vulkan_backend.h"
#endif
#if RWKVC_HAVE_CUDA
#include "backends/cuda/cuda_backend.h"
#endif

namespace rwkvc {

std::vector<std::string> backend_names() {
  std::vector<std::string> names{"cpu"};
#if RWKVC_HAVE_VULKAN
  names.emplace_back("vulkan");
#endif
#if RWKVC_HAVE_CUDA
  names.emplace_back("cuda");
#endif
  return names;
}

std::unique_ptr<Backend> make_backend(std::string_view name, const BackendOptions& options) {
  if (name == "cpu") {
    if (options.device != 0)
      throw std::runtime_error(fmt::format("the cpu backend has one device (0), not {}", options.device));
    return make_cpu_backend();
  }
#if RWKVC_HAVE_VULKAN
  if (name == "vulkan") return make_vulkan_backend(options);
#endif
#if RWKVC_HAVE_CUDA
  if (name == "cuda") return make_cuda_backend(options);
#endif
  throw std::invalid_argument(fmt::format("unknown backend '{}'; this build has: {}", name,
                                          fmt::join(backend_names(), ", ")));
}

std::vector<DeviceList> list_devices() {
  std::vector<DeviceList> lists{{"cpu", {make_cpu_backend()->device_name()}, {}}};
#if RWKVC_HAVE_VULKAN
  lists.push_back(list_vulkan_devices());
#endif
#if RWKVC_HAVE_CUDA
  lists.push_back(list_cuda_devices());
#endif
  return lists;
}

}  // namespace rwkvc
