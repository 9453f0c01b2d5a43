// The RWKV-7 recurrence: invocation i of a head's workgroup owns row i of its N x N state in
// registers for the whole sequence; only the token's r, w, k, a, b vectors are shared.
#include <fmt/format.h>

#include "backends/vulkan/glsl_builder.h"
#include "backends/vulkan/shaders/templates.h"

namespace rwkvc::vulkan {

KernelSource wkv7_kernel(const DeviceFeatures& features, std::int64_t heads, std::int64_t head_size) {
  GlslBuilder shader(features, fmt::format("wkv7 H{} N{}", heads, head_size));
  for (const char* name : {"r", "w", "k", "v", "a", "b", "state_in"}) shader.buffer(name, DType::f32, Access::read);
  shader.buffer("y", DType::f32, Access::write);
  shader.buffer("state_out", DType::f32, Access::write);
  shader.push({"T"});
  shader.local_size(static_cast<std::uint32_t>(head_size));
  shader.define("N", fmt::format("{}u", head_size));
  shader.define("C", fmt::format("{}u", heads * head_size));
  shader.code(
      "shared float r_[N], w_[N], k_[N], a_[N], b_[N];\n"
      "void main() {\n"
      "  uint h = gl_WorkGroupID.x, i = gl_LocalInvocationIndex;\n"
      "  uint row = h * N * N + i * N;\n"
      "  float s[N];\n"
      "  [[unroll]] for (uint j = 0u; j < N; ++j) s[j] = load_state_in(row + j);\n"
      "  for (uint t = 0u; t < pc.T; ++t) {\n"
      "    uint at = t * C + h * N + i;\n"
      "    barrier();\n"
      "    r_[i] = load_r(at); w_[i] = load_w(at); k_[i] = load_k(at); a_[i] = load_a(at); b_[i] = load_b(at);\n"
      "    float v = load_v(at);\n"
      "    barrier();\n"
      "    float sa = 0.0;\n"
      "    [[unroll]] for (uint j = 0u; j < N; ++j) sa += s[j] * a_[j];\n"
      "    float y = 0.0;\n"
      "    [[unroll]] for (uint j = 0u; j < N; ++j) {\n"
      "      s[j] = s[j] * w_[j] + sa * b_[j] + v * k_[j];\n"
      "      y += s[j] * r_[j];\n"
      "    }\n"
      "    store_y(at, y);\n"
      "  }\n"
      "  [[unroll]] for (uint j = 0u; j < N; ++j) store_state_out(row + j, s[j]);\n"
      "}\n");
  return shader.finish();
}

}  // namespace rwkvc::vulkan
