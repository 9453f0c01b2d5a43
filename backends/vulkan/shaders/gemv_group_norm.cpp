#include "backends/vulkan/shaders/gemv_group_norm.h"

#include <fmt/format.h>

#include "backends/vulkan/elementwise_codegen.h"
#include "backends/vulkan/glsl_builder.h"

namespace rwkvc::vulkan {

KernelSource gemv_group_norm_kernel(const DeviceFeatures& features, const GemvShape& shape, const Epilogue& epilogue,
                                    const GroupNormPrologue& prologue) {
  bool wide = shape.wide;
  GemvTuning tuning = gemv_tuning();
  std::int64_t width = prologue.heads * prologue.head_size;
  GlslBuilder shader(features, fmt::format("group_norm + gate + gemv {} H{} N{}{}", dtype_name(shape.b_dtype),
                                           prologue.heads, prologue.head_size, epilogue.empty() ? "" : " + epilogue"));
  shader.buffer("y", DType::f32, Access::read);
  shader.buffer("bonus", DType::f32, Access::read);
  shader.buffer("gate", DType::f32, Access::read);
  shader.buffer("norm_weight", prologue.weight_dtype, Access::read);
  shader.buffer("norm_bias", prologue.weight_dtype, Access::read);
  shader.buffer("b", shape.b_dtype, Access::read, wide);
  declare_epilogue(shader, epilogue);
  shader.buffer("out", DType::f32, Access::write);
  shader.push({"M", "N", "K", "a_offset", "T", "R"});
  std::uint32_t lanes = tuning.fold_subgroups * features.subgroup_size;
  shader.local_size(lanes);
  shader.use_subgroups();
  shader.define("C", fmt::format("{}u", width));
  shader.define("HEADS", fmt::format("{}u", prologue.heads));
  shader.define("HEAD_SIZE", fmt::format("{}u", prologue.head_size));
  shader.define("EPS", glsl_float(prologue.eps));
  shader.define("UNROLL", fmt::format("{}u", tuning.unroll));
  // The gated row in shared memory; wide: the halves of each group of 8 in two arrays, so
  // neighbouring lanes read neighbouring 16 bytes.
  shader.code(wide ? "shared vec4 a_lo[C / 8u], a_hi[C / 8u];\n"
                     "void set_a(uint j, float v) { if ((j & 4u) == 0u) a_lo[j >> 3][j & 3u] = v; else a_hi[j >> 3][j & 3u] = v; }\n"
                   : "shared float a_row[C];\n"
                     "void set_a(uint j, float v) { a_row[j] = v; }\n");
  std::string dot = wide ?
      "  uint k8 = C / 8u;\n"
      "  for (uint i0 = lane; i0 < k8; i0 += lanes * UNROLL) {\n"
      "    vec4 blo[UNROLL], bhi[UNROLL];\n"
      "    [[unroll]] for (uint u = 0u; u < UNROLL; ++u) load8_b(row * k8 + min(i0 + u * lanes, k8 - 1u), blo[u], bhi[u]);\n"
      "    [[unroll]] for (uint u = 0u; u < UNROLL; ++u) {\n"
      "      uint i = i0 + u * lanes;\n"
      "      if (i < k8) sum += dot(a_lo[i], blo[u]) + dot(a_hi[i], bhi[u]);\n"
      "    }\n"
      "  }\n" :
      "  for (uint k = lane; k < C; k += lanes) sum += a_row[k] * load_b(row * C + k);\n";
  // A subgroup per head: the head's mean and variance (two passes over its values, from L2),
  // then (norm * weight + bias + bonus) * gate for each of its channels.
  shader.code(fmt::format(
      "float row_dot(uint row, uint lane, uint lanes) {{\n"
      "  float sum = 0.0;\n{}"
      "  return sum;\n"
      "}}\n"
      "void main() {{\n"
      "  uint lane = gl_SubgroupInvocationID, lanes = gl_SubgroupSize;\n"
      "  for (uint h = gl_SubgroupID; h < HEADS; h += gl_NumSubgroups) {{\n"
      "    uint c0 = h * HEAD_SIZE;\n"
      "    float s = 0.0;\n"
      "    for (uint j = lane; j < HEAD_SIZE; j += lanes) s += load_y(c0 + j);\n"
      "    float mean = subgroupAdd(s) / float(HEAD_SIZE);\n"
      "    float squares = 0.0;\n"
      "    for (uint j = lane; j < HEAD_SIZE; j += lanes) {{ float d = load_y(c0 + j) - mean; squares += d * d; }}\n"
      "    float inv = 1.0 / sqrt(subgroupAdd(squares) / float(HEAD_SIZE) + EPS);\n"
      "    for (uint j = lane; j < HEAD_SIZE; j += lanes) {{\n"
      "      uint c = c0 + j;\n"
      "      float normed = (load_y(c) - mean) * inv * load_norm_weight(c) + load_norm_bias(c);\n"
      "      set_a(c, (normed + load_bonus(c)) * load_gate(c));\n"
      "    }}\n"
      "  }}\n"
      "  barrier();\n"
      "  for (uint first = gl_WorkGroupID.x * pc.R; first < pc.N; first += gl_NumWorkGroups.x * pc.R) {{\n"
      "    for (uint row = first + gl_SubgroupID; row < min(first + pc.R, pc.N); row += gl_NumSubgroups) {{\n"
      "      float dot_sum = subgroupAdd(row_dot(row, lane, lanes));\n"
      "      if (subgroupElect()) store_out(row, epilogue(row, dot_sum));\n"
      "    }}\n"
      "  }}\n"
      "}}\n",
      dot));
  return shader.finish();
}

}  // namespace rwkvc::vulkan
