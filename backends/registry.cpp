// The one place that knows every backend of this build.
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"

namespace rwkvc {

std::vector<std::string> backend_names() { return {"cpu"}; }

std::unique_ptr<Backend> make_backend(std::string_view name) {
  if (name == "cpu") return make_cpu_backend();
  throw std::invalid_argument(fmt::format("unknown backend '{}'; this build has: {}", name,
                                          fmt::join(backend_names(), ", ")));
}

}  // namespace rwkvc
