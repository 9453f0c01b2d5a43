// A token_shift_mix region that starts with its layer norm: workgroup (b, t) reduces rows t and
// t-1 (the token shift reads one row back; every block of the row repeats the reduction, which
// reads the rows from cache) and evaluates the generated body, whose input 0 is the normalised
// value, for block b of the row's channels. The normalised rows never reach memory, and a
// decode step's one row still spreads over C / LANES workgroups.
#include <fmt/format.h>

#include "backends/vulkan/glsl_builder.h"
#include "backends/vulkan/shaders/templates.h"

namespace rwkvc::vulkan {

std::uint32_t norm_mix_lanes(std::int64_t width) { return width >= 1024 ? 256 : 64; }

KernelSource norm_mix_kernel(const DeviceFeatures& features, const NormMixShape& shape) {
  GlslBuilder shader(features, fmt::format("layer_norm + token_shift_mix C{} {} outputs", shape.width, shape.outputs.size()));
  shader.buffer("x", DType::f32, Access::read);
  shader.buffer("weight", shape.weight_dtype, Access::read);
  shader.buffer("bias", shape.weight_dtype, Access::read);
  for (std::size_t k = 0; k < shape.inputs.size(); ++k) shader.buffer(fmt::format("in{}", k + 1), shape.inputs[k], Access::read);
  for (std::size_t k = 0; k < shape.outputs.size(); ++k) shader.buffer(fmt::format("out{}", k), DType::f32, Access::write);
  shader.push({"T"});
  std::uint32_t lanes = norm_mix_lanes(shape.width);
  shader.local_size(lanes);
  shader.use_workgroup_sum();
  shader.define("C", fmt::format("{}u", shape.width));
  shader.define("LANES", fmt::format("{}u", lanes));
  shader.define("EPS", glsl_float(shape.eps));
  shader.code(
      "float mean_cur, inv_cur, mean_prev, inv_prev;\n"
      "uint row_cur;\n"
      "float load_in0(uint i) {\n"
      "  bool cur = i / C == row_cur;\n"
      "  uint c = i % C;\n"
      "  return (load_x(i) - (cur ? mean_cur : mean_prev)) * (cur ? inv_cur : inv_prev) * load_weight(c) + load_bias(c);\n"
      "}\n"
      "void row_stats(uint r, out float mean, out float inv_std) {\n"
      "  uint base = r * C;\n"
      "  float sum = 0.0;\n"
      "  for (uint j = gl_LocalInvocationIndex; j < C; j += LANES) sum += load_x(base + j);\n"
      "  mean = workgroup_sum(sum) / float(C);\n"
      "  float squares = 0.0;\n"
      "  for (uint j = gl_LocalInvocationIndex; j < C; j += LANES) { float d = load_x(base + j) - mean; squares += d * d; }\n"
      "  inv_std = 1.0 / sqrt(workgroup_sum(squares) / float(C) + EPS);\n"
      "}\n");
  shader.code(shape.functions);
  std::string stores;
  for (std::size_t k = 0; k < shape.outputs.size(); ++k)
    stores += shape.per_row[k] ? fmt::format("      store_out{0}(t * C + j, {1}(t * C + j));\n", k, shape.outputs[k])
                               : fmt::format("      if (t == pc.T - 1u) store_out{0}(j, {1}(j));\n", k, shape.outputs[k]);
  shader.code(fmt::format(
      "void main() {{\n"
      "  uint j = gl_WorkGroupID.x * LANES + gl_LocalInvocationIndex;\n"
      "  for (uint t = gl_WorkGroupID.y; t < pc.T; t += gl_NumWorkGroups.y) {{\n"
      "    row_cur = t;\n"
      "    row_stats(t, mean_cur, inv_cur);\n"
      "    if (t > 0u) row_stats(t - 1u, mean_prev, inv_prev);\n"
      "    if (j < C) {{\n"
      "{}"
      "    }}\n"
      "  }}\n"
      "}}\n",
      stores));
  return shader.finish();
}

}  // namespace rwkvc::vulkan
