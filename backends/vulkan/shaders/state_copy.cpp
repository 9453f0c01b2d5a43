// The new state into the state's own buffers at the end of a call: one kernel for many slots,
// since a transfer command per slot costs ~4 us on the H100's driver (run 4: 72 copies took
// 0.27 ms of a 2.25 ms 1.5B decode step).
#include <algorithm>

#include <fmt/format.h>

#include "backends/vulkan/glsl_builder.h"
#include "backends/vulkan/shaders/templates.h"

namespace rwkvc::vulkan {

namespace {
constexpr std::uint32_t kGroupSize = 256, kMaxGroupsPerSlot = 64;
}  // namespace

KernelSource state_copy_kernel(const DeviceFeatures& features, const std::vector<std::int64_t>& lengths) {
  GlslBuilder shader(features, fmt::format("state copy {} slots", lengths.size()));
  for (std::size_t k = 0; k < lengths.size(); ++k) shader.buffer(fmt::format("src{}", k), DType::f32, Access::read);
  for (std::size_t k = 0; k < lengths.size(); ++k) shader.buffer(fmt::format("dst{}", k), DType::f32, Access::write);
  shader.local_size(kGroupSize);
  // Workgroup row y copies slot y; its row's workgroups stride through the slot.
  std::string cases;
  for (std::size_t k = 0; k < lengths.size(); ++k)
    cases += fmt::format("    case {0}u: for (uint i = first; i < {1}u; i += stride) store_dst{0}(i, load_src{0}(i)); break;\n",
                         k, lengths[k]);
  shader.code(fmt::format(
      "void main() {{\n"
      "  uint first = gl_GlobalInvocationID.x, stride = gl_NumWorkGroups.x * {}u;\n"
      "  switch (gl_WorkGroupID.y) {{\n{}"
      "    default: break;\n"
      "  }}\n"
      "}}\n",
      kGroupSize, cases));
  return shader.finish();
}

std::uint32_t state_copy_groups(const std::vector<std::int64_t>& lengths) {
  std::int64_t longest = lengths.empty() ? 1 : *std::max_element(lengths.begin(), lengths.end());
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>((longest + kGroupSize - 1) / kGroupSize, 1, kMaxGroupsPerSlot));
}

}  // namespace rwkvc::vulkan
