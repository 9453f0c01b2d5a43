// GEMV for decode: weight bandwidth is everything, so every invocation keeps 16-byte loads in
// flight and a whole subgroup shares one output row, reduced with subgroupAdd.
#include <fmt/format.h>

#include "backends/vulkan/glsl_builder.h"
#include "backends/vulkan/shaders/templates.h"

namespace rwkvc::vulkan {

namespace {

constexpr std::uint32_t kSubgroupsPerGroup = 4;
constexpr std::uint32_t kFallbackGroupSize = 64;  // one row per workgroup without subgroup arithmetic
constexpr std::uint32_t kColumnsPerGroup = 64, kSlices = 4;  // B [K, N]
constexpr std::uint32_t kUnroll = 8;  // 16-byte loads in flight per invocation

// B is [N, K]: row n of B is output n's dot product.
void rows_of_b(GlslBuilder& shader, const GemvShape& shape) {
  const DeviceFeatures& features = shader.features();
  // Wide: UNROLL 16-byte loads per invocation issued before any is used (addresses clamped
  // into the row, the surplus products dropped), so a short row costs one memory latency.
  shader.define("UNROLL", fmt::format("{}u", kUnroll));
  std::string dot_loop = shape.wide ?
      "  uint k8 = pc.K / 8u, a8 = (pc.a_offset + m * pc.K) / 8u;\n"
      "  for (uint i0 = lane; i0 < k8; i0 += lanes * UNROLL) {\n"
      "    vec4 blo[UNROLL], bhi[UNROLL], alo[UNROLL], ahi[UNROLL];\n"
      "    [[unroll]] for (uint u = 0u; u < UNROLL; ++u) {\n"
      "      uint i = min(i0 + u * lanes, k8 - 1u);\n"
      "      load8_b(row * k8 + i, blo[u], bhi[u]);\n"
      "      load8_a(a8 + i, alo[u], ahi[u]);\n"
      "    }\n"
      "    [[unroll]] for (uint u = 0u; u < UNROLL; ++u)\n"
      "      if (i0 + u * lanes < k8) sum += dot(alo[u], blo[u]) + dot(ahi[u], bhi[u]);\n"
      "  }\n" :
      "  uint a0 = pc.a_offset + m * pc.K;\n"
      "  for (uint k = lane; k < pc.K; k += lanes) sum += load_a(a0 + k) * load_b(row * pc.K + k);\n";
  if (features.subgroup_arithmetic) {
    shader.use_subgroups();
    std::uint32_t rows = kSubgroupsPerGroup;
    shader.local_size(rows * features.subgroup_size);
    // Rows are dealt to subgroups by gl_SubgroupID, so a device whose subgroups differ from the
    // reported size still covers every row.
    shader.code(fmt::format(
        "float row_dot(uint row, uint m, uint lane, uint lanes) {{\n"
        "  float sum = 0.0;\n{1}"
        "  return sum;\n"
        "}}\n"
        "void main() {{\n"
        "  uint m = gl_WorkGroupID.y;\n"
        "  for (uint first = gl_WorkGroupID.x * {0}u; first < pc.N; first += gl_NumWorkGroups.x * {0}u) {{\n"
        "    for (uint row = first + gl_SubgroupID; row < min(first + {0}u, pc.N); row += gl_NumSubgroups) {{\n"
        "      float sum = subgroupAdd(row_dot(row, m, gl_SubgroupInvocationID, gl_SubgroupSize));\n"
        "      if (subgroupElect()) store_out(m * pc.N + row, epilogue(m * pc.N + row, sum));\n"
        "    }}\n"
        "  }}\n"
        "}}\n",
        rows, dot_loop));
  } else {
    shader.local_size(kFallbackGroupSize);
    shader.use_workgroup_sum();
    shader.code(fmt::format(
        "void main() {{\n"
        "  uint m = gl_WorkGroupID.y, lane = gl_LocalInvocationIndex, lanes = {}u;\n"
        "  for (uint row = gl_WorkGroupID.x; row < pc.N; row += gl_NumWorkGroups.x) {{\n"
        "    float sum = 0.0;\n{}"
        "    sum = workgroup_sum(sum);\n"
        "    if (lane == 0u) store_out(m * pc.N + row, epilogue(m * pc.N + row, sum));\n"
        "  }}\n"
        "}}\n",
        kFallbackGroupSize, dot_loop));
  }
}

// B is [K, N]: neighbouring invocations read neighbouring columns; k is split into slices
// summed through shared memory, so a long K does not serialise on one invocation.
void columns_of_b(GlslBuilder& shader) {
  shader.local_size(kColumnsPerGroup * kSlices);
  shader.code(fmt::format(
      "shared float slices[{1}][{0}];\n"
      "void main() {{\n"
      "  uint column = gl_LocalInvocationIndex % {0}u, slice = gl_LocalInvocationIndex / {0}u;\n"
      "  uint n = gl_WorkGroupID.x * {0}u + column, m = gl_WorkGroupID.y;\n"
      "  uint a0 = pc.a_offset + m * pc.K;\n"
      "  float sum = 0.0;\n"
      "  if (n < pc.N)\n"
      "    for (uint k = slice; k < pc.K; k += {1}u) sum += load_a(a0 + k) * load_b(k * pc.N + n);\n"
      "  slices[slice][column] = sum;\n"
      "  barrier();\n"
      "  if (slice == 0u && n < pc.N) {{\n"
      "    for (uint s = 1u; s < {1}u; ++s) sum += slices[s][column];\n"
      "    store_out(m * pc.N + n, epilogue(m * pc.N + n, sum));\n"
      "  }}\n"
      "}}\n",
      kColumnsPerGroup, kSlices));
}

}  // namespace

std::uint32_t gemv_rows_per_group(const DeviceFeatures& features, bool transpose_b) {
  if (!transpose_b) return kColumnsPerGroup;
  return features.subgroup_arithmetic ? kSubgroupsPerGroup : 1;
}

KernelSource gemv_kernel(const DeviceFeatures& features, const GemvShape& shape, const Epilogue& epilogue) {
  bool wide = shape.transpose_b && shape.wide;
  GlslBuilder shader(features, fmt::format("gemv {} {}{}{}", dtype_name(shape.b_dtype),
                                           shape.transpose_b ? "B[N,K]" : "B[K,N]", wide ? " wide" : "",
                                           epilogue.empty() ? "" : " + epilogue"));
  shader.buffer("a", DType::f32, Access::read, wide);
  shader.buffer("b", shape.b_dtype, Access::read, wide);
  declare_epilogue(shader, epilogue);
  shader.buffer("out", DType::f32, Access::write);
  shader.push({"M", "N", "K", "a_offset", "T"});
  if (shape.transpose_b)
    rows_of_b(shader, {shape.b_dtype, true, wide});
  else
    columns_of_b(shader);
  return shader.finish();
}

}  // namespace rwkvc::vulkan
