// The RWKV-4 recurrence: channels are independent, so one invocation per channel walks the
// tokens in order, with aa and bb kept scaled by e^-pp as on the CPU.
#include <fmt/format.h>

#include "backends/vulkan/glsl_builder.h"
#include "backends/vulkan/shaders/templates.h"

namespace rwkvc::vulkan {

KernelSource wkv4_kernel(const DeviceFeatures& features, std::int64_t channels) {
  GlslBuilder shader(features, fmt::format("wkv4 C{}", channels));
  for (const char* name : {"w", "u", "k", "v", "aa", "bb", "pp"}) shader.buffer(name, DType::f32, Access::read);
  for (const char* name : {"y", "aa_out", "bb_out", "pp_out"}) shader.buffer(name, DType::f32, Access::write);
  shader.push({"T"});
  shader.local_size(64);
  shader.define("C", fmt::format("{}u", channels));
  shader.code(
      "void main() {\n"
      "  uint c = gl_GlobalInvocationID.x;\n"
      "  if (c >= C) return;\n"
      "  float w = load_w(c), u = load_u(c), aa = load_aa(c), bb = load_bb(c), pp = load_pp(c);\n"
      "  for (uint t = 0u; t < pc.T; ++t) {\n"
      "    uint i = t * C + c;\n"
      "    float k = load_k(i), v = load_v(i);\n"
      "    float q = max(pp, u + k);\n"
      "    float e_state = exp(pp - q), e_token = exp(u + k - q);\n"
      "    store_y(i, (e_state * aa + e_token * v) / (e_state * bb + e_token));\n"
      "    float q_next = max(pp + w, k);\n"
      "    e_state = exp(pp + w - q_next);\n"
      "    e_token = exp(k - q_next);\n"
      "    aa = e_state * aa + e_token * v;\n"
      "    bb = e_state * bb + e_token;\n"
      "    pp = q_next;\n"
      "  }\n"
      "  store_aa_out(c, aa); store_bb_out(c, bb); store_pp_out(c, pp);\n"
      "}\n");
  return shader.finish();
}

}  // namespace rwkvc::vulkan
