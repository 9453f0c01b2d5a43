// The embedding gather, and the launch grid every one-invocation-per-element kernel shares.
#include <algorithm>

#include <fmt/format.h>

#include "backends/vulkan/glsl_builder.h"
#include "backends/vulkan/shaders/templates.h"

namespace rwkvc::vulkan {

std::uint32_t elementwise_groups(const DeviceFeatures& features, std::uint64_t count) {
  std::uint64_t groups = (count + kElementwiseGroupSize - 1) / kElementwiseGroupSize;
  return static_cast<std::uint32_t>(std::clamp<std::uint64_t>(groups, 1, features.max_workgroup_count_x));
}

KernelSource embedding_kernel(const DeviceFeatures& features, DType table_dtype, std::int64_t columns) {
  GlslBuilder shader(features, fmt::format("embedding {} C{}", dtype_name(table_dtype), columns));
  shader.buffer("table", table_dtype, Access::read);
  shader.buffer("tokens", DType::i32, Access::read);
  shader.buffer("out", DType::f32, Access::write);
  shader.push({"count"});
  shader.local_size(kElementwiseGroupSize);
  shader.define("C", fmt::format("{}u", columns));
  shader.code(
      "void main() {\n"
      "  for (uint i = gl_GlobalInvocationID.x; i < pc.count; i += gl_NumWorkGroups.x * gl_WorkGroupSize.x) {\n"
      "    uint t = i / C, c = i % C;\n"
      "    store_out(i, load_table(uint(load_tokens(t)) * C + c));\n"
      "  }\n"
      "}\n");
  return shader.finish();
}

}  // namespace rwkvc::vulkan
