// GEMV for decode: weight bandwidth is everything, so every invocation keeps 16-byte loads in
// flight and a whole subgroup shares one output row, reduced with subgroupAdd.
#include <fmt/format.h>

#include "backends/vulkan/elementwise_codegen.h"
#include "backends/vulkan/glsl_builder.h"
#include "backends/vulkan/shaders/templates.h"

namespace rwkvc::vulkan {

namespace {

constexpr std::uint32_t kSubgroupsPerGroup = 4;
constexpr std::uint32_t kFallbackGroupSize = 64;  // one row per workgroup without subgroup arithmetic
constexpr std::uint32_t kColumnsPerGroup = 64, kSlices = 4;  // B [K, N]
constexpr std::uint32_t kUnroll = 8;  // 16-byte loads in flight per invocation
// The GEMV with the layer norm + mix folded in: subgroups per workgroup, and about how many
// workgroups a product gets (each recomputes the row's statistics and mix, from cache).
constexpr std::uint32_t kFoldedSubgroups = 8, kFoldedGroups = 256;

// The dot product of a's row m with B's row `row`, split over `lanes` invocations; wide: UNROLL
// 16-byte loads per invocation issued before any is used (addresses clamped into the row, the
// surplus products dropped), so a short row costs one memory latency.
std::string dot_loop(bool wide) {
  return wide ?
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
}

// B is [N, K]: row n of B is output n's dot product.
void rows_of_b(GlslBuilder& shader, const GemvShape& shape) {
  const DeviceFeatures& features = shader.features();
  shader.define("UNROLL", fmt::format("{}u", kUnroll));
  std::string dot = dot_loop(shape.wide);
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
        rows, dot));
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
        kFallbackGroupSize, dot));
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

bool gemv_norm_mix_fits(const DeviceFeatures& features, std::int64_t width) {
  return features.subgroup_arithmetic && features.max_workgroup_invocations >= kFoldedSubgroups * features.subgroup_size &&
         static_cast<std::uint64_t>(width) * 4 + 1024 <= features.shared_memory_bytes;
}

std::uint32_t gemv_norm_mix_rows(const DeviceFeatures& features, std::int64_t n) {
  // About kFoldedGroups workgroups, each recomputing the row's statistics once for its rows.
  std::int64_t rows = kFoldedSubgroups;
  while (rows * kFoldedGroups < n && rows < 1024) rows *= 2;
  (void)features;
  return static_cast<std::uint32_t>(rows);
}

KernelSource gemv_norm_mix_kernel(const DeviceFeatures& features, const GemvShape& shape, const Epilogue& epilogue,
                                  const NormMixShape& mix, bool mix_softplus, std::size_t input, bool stores_last_rows) {
  bool wide = shape.wide;
  GlslBuilder shader(features, fmt::format("layer_norm + mix + gemv {} C{}{}{}", dtype_name(shape.b_dtype), mix.width,
                                           epilogue.empty() ? "" : " + epilogue", stores_last_rows ? " + last rows" : ""));
  shader.buffer("x", DType::f32, Access::read);
  shader.buffer("weight", mix.weight_dtype, Access::read);
  shader.buffer("bias", mix.weight_dtype, Access::read);
  for (std::size_t k = 0; k < mix.inputs.size(); ++k) shader.buffer(fmt::format("nm_in{}", k + 1), mix.inputs[k], Access::read);
  shader.buffer("b", shape.b_dtype, Access::read, wide);
  declare_epilogue(shader, epilogue);
  shader.buffer("out", DType::f32, Access::write);
  std::string last_rows;
  if (stores_last_rows)
    for (std::size_t k = 0; k < mix.outputs.size(); ++k)
      if (!mix.per_row[k]) {
        std::string name = fmt::format("last{}", k);
        shader.buffer(name, DType::f32, Access::write);
        last_rows += fmt::format("      store_{}(j, {}(j));\n", name, mix.outputs[k]);
      }
  shader.push({"M", "N", "K", "a_offset", "T", "R"});
  std::uint32_t lanes = kFoldedSubgroups * features.subgroup_size;
  shader.local_size(lanes);
  shader.use_subgroups();
  shader.use_workgroup_sum();
  shader.define("C", fmt::format("{}u", mix.width));
  shader.define("LANES", fmt::format("{}u", lanes));
  shader.define("ITEMS", fmt::format("{}u", (mix.width + lanes - 1) / lanes));  // of x per invocation, kept in registers
  shader.define("EPS", glsl_float(mix.eps));
  shader.define("UNROLL", fmt::format("{}u", kUnroll));
  if (mix_softplus && epilogue.functions.find("softplus_log1p(float") == std::string::npos) shader.code(kSoftplusHelper);
  // One token (T = 1): the normalised row is row 0 and token_shift's previous row is the state.
  // The mixed row in shared memory: wide, as the low and the high halves of each group of 8
  // in two arrays, so neighbouring lanes read neighbouring 16 bytes (no bank conflicts).
  shader.code(wide ? "shared vec4 a_lo[C / 8u], a_hi[C / 8u];\n"
                     "void set_a(uint j, float v) { if ((j & 4u) == 0u) a_lo[j >> 3][j & 3u] = v; else a_hi[j >> 3][j & 3u] = v; }\n"
                     "void load8_a(uint i8, out vec4 lo, out vec4 hi) { lo = a_lo[i8]; hi = a_hi[i8]; }\n"
                   : "shared float a_row[C];\n"
                     "void set_a(uint j, float v) { a_row[j] = v; }\n"
                     "float load_a(uint i) { return a_row[i]; }\n");
  shader.code(
      "float mean_cur, inv_cur;\n"
      "float load_nm_in0(uint i) { uint c = i % C; return (load_x(i) - mean_cur) * inv_cur * load_weight(c) + load_bias(c); }\n");
  shader.code(mix.functions);
  shader.code(fmt::format(
      "float row_dot(uint row, uint m, uint lane, uint lanes) {{\n"
      "  float sum = 0.0;\n{}"
      "  return sum;\n"
      "}}\n"
      "void main() {{\n"
      "  uint lid = gl_LocalInvocationIndex;\n"
      "  float xs[ITEMS], sum = 0.0;\n"
      "  [[unroll]] for (uint u = 0u; u < ITEMS; ++u) {{\n"
      "    uint j = lid + u * LANES;\n"
      "    xs[u] = j < C ? load_x(j) : 0.0;\n"
      "    sum += xs[u];\n"
      "  }}\n"
      "  mean_cur = workgroup_sum(sum) / float(C);\n"
      "  float squares = 0.0;\n"
      "  [[unroll]] for (uint u = 0u; u < ITEMS; ++u) {{\n"
      "    float d = xs[u] - mean_cur;\n"
      "    if (lid + u * LANES < C) squares += d * d;\n"
      "  }}\n"
      "  inv_cur = 1.0 / sqrt(workgroup_sum(squares) / float(C) + EPS);\n"
      "  for (uint j = lid; j < C; j += LANES) set_a(j, {}(j));\n"
      "  if (gl_WorkGroupID.x == 0u)\n"
      "    for (uint j = lid; j < C; j += LANES) {{\n{}"
      "    }}\n"
      "  barrier();\n"
      "  for (uint first = gl_WorkGroupID.x * pc.R; first < pc.N; first += gl_NumWorkGroups.x * pc.R) {{\n"
      "    for (uint row = first + gl_SubgroupID; row < min(first + pc.R, pc.N); row += gl_NumSubgroups) {{\n"
      "      float dot_sum = subgroupAdd(row_dot(row, 0u, gl_SubgroupInvocationID, gl_SubgroupSize));\n"
      "      if (subgroupElect()) store_out(row, epilogue(row, dot_sum));\n"
      "    }}\n"
      "  }}\n"
      "}}\n",
      dot_loop(wide), mix.outputs[input], last_rows));
  return shader.finish();
}

}  // namespace rwkvc::vulkan
