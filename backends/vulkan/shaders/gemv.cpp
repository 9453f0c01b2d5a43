// GEMV for decode: weight bandwidth is everything, so every invocation keeps 16-byte loads in
// flight and a whole subgroup shares one output row, reduced with subgroupAdd.
#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

#include <fmt/format.h>

#include "backends/vulkan/elementwise_codegen.h"
#include "backends/vulkan/glsl_builder.h"
#include "backends/vulkan/shaders/gemv_batch.h"
#include "backends/vulkan/shaders/templates.h"

namespace rwkvc::vulkan {

namespace {

constexpr std::uint32_t kFallbackGroupSize = 64;  // one row per workgroup without subgroup arithmetic
constexpr std::uint32_t kColumnsPerGroup = 64, kSlices = 4;  // B [K, N]

// The dot product of a's row m with B's row `row`, split over `lanes` invocations, from the
// invocation's chunk `start`; wide: UNROLL 16-byte loads per invocation issued before any is
// used (addresses clamped into the row, the surplus products dropped), so a short row costs
// one memory latency.
std::string dot_loop(bool wide, std::string_view start = "lane") {
  return wide ?
      fmt::format(
      "  uint k8 = pc.K / 8u, a8 = (pc.a_offset + m * pc.K) / 8u;\n"
      "  for (uint i0 = {}; i0 < k8; i0 += lanes * UNROLL) {{\n"
      "    vec4 blo[UNROLL], bhi[UNROLL], alo[UNROLL], ahi[UNROLL];\n"
      "    [[unroll]] for (uint u = 0u; u < UNROLL; ++u) {{\n"
      "      uint i = min(i0 + u * lanes, k8 - 1u);\n"
      "      load8_b(row * k8 + i, blo[u], bhi[u]);\n"
      "      load8_a(a8 + i, alo[u], ahi[u]);\n"
      "    }}\n"
      "    [[unroll]] for (uint u = 0u; u < UNROLL; ++u)\n"
      "      if (i0 + u * lanes < k8) sum += dot(alo[u], blo[u]) + dot(ahi[u], bhi[u]);\n"
      "  }}\n", start) :
      "  uint a0 = pc.a_offset + m * pc.K;\n"
      "  for (uint k = lane; k < pc.K; k += lanes) sum += load_a(a0 + k) * load_b(row * pc.K + k);\n";
}

std::uint32_t tuning_value(std::string_view key, std::string_view text, std::uint32_t low, std::uint32_t high) {
  std::uint32_t value = 0;
  bool digits = !text.empty() && text.size() <= 6 &&
                std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (digits) value = static_cast<std::uint32_t>(std::stoul(std::string(text)));
  if (!digits || value < low || value > high)
    throw std::invalid_argument(
        fmt::format("RWKVC_VULKAN_GEMV: {}={} is not a whole number in {}..{}", key, text, low, high));
  return value;
}

// B is [N, K]: row n of B is output n's dot product.
void rows_of_b(GlslBuilder& shader, const GemvShape& shape) {
  const DeviceFeatures& features = shader.features();
  GemvTuning tuning = gemv_tuning();
  shader.define("UNROLL", fmt::format("{}u", tuning.unroll));
  std::string dot = dot_loop(shape.wide);
  if (features.subgroup_arithmetic) {
    shader.use_subgroups();
    std::uint32_t rows = gemv_rows_per_group(features, true);
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

// The folded GEMV's rows: each stored through the epilogue.
std::string row_loop(const std::string& first_dot, bool prefetch) {
  return fmt::format(
      "  for (uint first = gl_WorkGroupID.x * pc.R; first < pc.N; first += gl_NumWorkGroups.x * pc.R) {{\n"
      "    for (uint row = first + gl_SubgroupID; row < min(first + pc.R, pc.N); row += gl_NumSubgroups) {{\n"
      "      float dot_sum = subgroupAdd({});\n"
      "      if (subgroupElect()) store_out(row, epilogue(row, dot_sum));\n{}"
      "    }}\n"
      "  }}\n",
      first_dot, prefetch ? "      prefetched = false;\n" : "");
}

// The chained GEMV: the workgroup's block of rows (the grid has one block per workgroup) into
// shared memory (zero past the end), then its partial of the second product, CHAIN_ROWS rows of
// VT per output (16-byte loads when the outputs are a multiple of 8).
std::string chained_tail(const std::string& first_dot, bool prefetch, bool wide) {
  std::string sum = wide ?
      "  uint o8 = CHAIN_OUT / 8u;\n"
      "  for (uint c = gl_LocalInvocationIndex; c < o8; c += LANES) {\n"
      "    vec4 lo = vec4(0.0), hi = vec4(0.0);\n"
      "    for (uint r0 = 0u; r0 < CHAIN_ROWS; r0 += 8u) {\n"
      "      vec4 wl[8], wh[8];\n"
      "      [[unroll]] for (uint u = 0u; u < 8u; ++u)\n"
      "        load8_vt(min(first + r0 + u, pc.N - 1u) * o8 + c, wl[u], wh[u]);\n"
      "      [[unroll]] for (uint u = 0u; u < 8u; ++u) {\n"
      "        float v = chain_values[r0 + u];\n"
      "        lo += v * wl[u];\n"
      "        hi += v * wh[u];\n"
      "      }\n"
      "    }\n"
      "    uint at = gl_WorkGroupID.x * CHAIN_OUT + c * 8u;\n"
      "    [[unroll]] for (uint e = 0u; e < 4u; ++e) { store_partials(at + e, lo[e]); store_partials(at + 4u + e, hi[e]); }\n"
      "  }\n" :
      "  for (uint c = gl_LocalInvocationIndex; c < CHAIN_OUT; c += LANES) {\n"
      "    float s = 0.0;\n"
      "    for (uint r = 0u; r < CHAIN_ROWS; ++r) s += chain_values[r] * load_vt(min(first + r, pc.N - 1u) * CHAIN_OUT + c);\n"
      "    store_partials(gl_WorkGroupID.x * CHAIN_OUT + c, s);\n"
      "  }\n";
  return fmt::format(
      "  uint first = gl_WorkGroupID.x * pc.R;\n"
      "  for (uint r = gl_LocalInvocationIndex; r < CHAIN_ROWS; r += LANES) chain_values[r] = 0.0;\n"
      "  barrier();\n"
      "  for (uint row = first + gl_SubgroupID; row < min(first + pc.R, pc.N); row += gl_NumSubgroups) {{\n"
      "    float dot_sum = subgroupAdd({});\n"
      "    if (subgroupElect()) chain_values[row - first] = epilogue(row, dot_sum);\n{}"
      "  }}\n"
      "  barrier();\n"
      "{}",
      first_dot, prefetch ? "    prefetched = false;\n" : "", sum);
}

}  // namespace

GemvTuning gemv_tuning() {
  GemvTuning tuning;
  const char* env = std::getenv("RWKVC_VULKAN_GEMV");
  std::string_view list = env != nullptr ? std::string_view(env) : std::string_view();
  while (!list.empty()) {
    std::size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    std::size_t equals = item.find('=');
    std::string_view key = item.substr(0, equals), value = equals == std::string_view::npos ? "" : item.substr(equals + 1);
    if (key == "unroll") tuning.unroll = tuning_value(key, value, 1, 16);
    else if (key == "rows") tuning.rows = tuning_value(key, value, 1, 16);
    else if (key == "fold_subgroups") tuning.fold_subgroups = tuning_value(key, value, 1, 16);
    else if (key == "fold_groups") tuning.fold_groups = tuning_value(key, value, 1, 65535);
    else if (key == "fold_prefetch") tuning.fold_prefetch = tuning_value(key, value, 0, 1) == 1;
    else if (key == "batch_prefetch") tuning_value(key, value, 0, 1);  // read by gemv_batch_prefetch()
    else
      throw std::invalid_argument(fmt::format("RWKVC_VULKAN_GEMV: unknown setting '{}' (expected unroll, rows, "
                                              "fold_subgroups, fold_groups, fold_prefetch, batch_prefetch)", item));
  }
  return tuning;
}

std::uint32_t gemv_rows_per_group(const DeviceFeatures& features, bool transpose_b) {
  if (!transpose_b) return kColumnsPerGroup;
  if (!features.subgroup_arithmetic) return 1;
  std::uint32_t most = std::max<std::uint32_t>(1, features.max_workgroup_invocations / std::max<std::uint32_t>(features.subgroup_size, 1));
  return std::min(gemv_tuning().rows, most);
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
  return features.subgroup_arithmetic &&
         features.max_workgroup_invocations >= gemv_tuning().fold_subgroups * features.subgroup_size &&
         static_cast<std::uint64_t>(width) * 4 + 1024 <= features.shared_memory_bytes;
}

std::uint32_t gemv_norm_mix_rows(const DeviceFeatures& features, std::int64_t n) {
  // About fold_groups workgroups, each recomputing the row's statistics once for its rows; at
  // least a row per subgroup (the prefetch takes each subgroup's first row as its own).
  GemvTuning tuning = gemv_tuning();
  std::int64_t rows = tuning.fold_subgroups;
  while (rows * tuning.fold_groups < n && rows < 1024) rows *= 2;
  (void)features;
  return static_cast<std::uint32_t>(rows);
}

KernelSource gemv_norm_mix_kernel(const DeviceFeatures& features, const GemvShape& shape, const Epilogue& epilogue,
                                  const NormMixShape& mix, bool mix_softplus, std::size_t input, bool stores_last_rows,
                                  const GemvChain* chain) {
  bool wide = shape.wide;
  GemvTuning tuning = gemv_tuning();
  bool prefetch = wide && tuning.fold_prefetch;
  GlslBuilder shader(features, fmt::format("layer_norm + mix + gemv {} C{}{}{}{}{}", dtype_name(shape.b_dtype), mix.width,
                                           epilogue.empty() ? "" : " + epilogue", stores_last_rows ? " + last rows" : "",
                                           prefetch ? " + prefetch" : "",
                                           chain ? fmt::format(" + chained gemv {} O{}", dtype_name(chain->dtype), chain->outputs) : ""));
  shader.buffer("x", DType::f32, Access::read);
  shader.buffer("weight", mix.weight_dtype, Access::read);
  shader.buffer("bias", mix.weight_dtype, Access::read);
  for (std::size_t k = 0; k < mix.inputs.size(); ++k) shader.buffer(fmt::format("nm_in{}", k + 1), mix.inputs[k], Access::read);
  shader.buffer("b", shape.b_dtype, Access::read, wide);
  declare_epilogue(shader, epilogue);
  bool chain_wide = chain != nullptr && chain->outputs % 8 == 0;
  if (chain != nullptr) {
    shader.buffer("vt", chain->dtype, Access::read, chain_wide);
    shader.buffer("partials", DType::f32, Access::write);
    // CHAIN_ROWS: R rounded up to 8 (the wide loop's step); the surplus values are zero.
    shader.define("CHAIN_ROWS", fmt::format("{}u", (chain->rows + 7) / 8 * 8));
    shader.define("CHAIN_OUT", fmt::format("{}u", chain->outputs));
    shader.code("shared float chain_values[CHAIN_ROWS];\n");
  } else {
    shader.buffer("out", DType::f32, Access::write);
  }
  std::string last_rows;
  if (stores_last_rows)
    for (std::size_t k = 0; k < mix.outputs.size(); ++k)
      if (!mix.per_row[k]) {
        std::string name = fmt::format("last{}", k);
        shader.buffer(name, DType::f32, Access::write);
        last_rows += fmt::format("      store_{}(j, {}(j));\n", name, mix.outputs[k]);
      }
  shader.push({"M", "N", "K", "a_offset", "T", "R"});
  std::uint32_t lanes = tuning.fold_subgroups * features.subgroup_size;
  shader.local_size(lanes);
  shader.use_subgroups();
  shader.use_workgroup_sum();
  shader.define("C", fmt::format("{}u", mix.width));
  shader.define("LANES", fmt::format("{}u", lanes));
  shader.define("ITEMS", fmt::format("{}u", (mix.width + lanes - 1) / lanes));  // of x per invocation, kept in registers
  shader.define("EPS", glsl_float(mix.eps));
  shader.define("UNROLL", fmt::format("{}u", tuning.unroll));
  if (mix_softplus && epilogue.functions.find("softplus_log1p(float") == std::string::npos) shader.code(kSoftplusHelper);
  // One token (T = 1): the normalised row is row 0 and token_shift's previous row is the state.
  shader.code(norm_mix_row_declarations(wide));
  shader.code(mix.functions);
  // The prefetch: the weights of the subgroup's first row (its first UNROLL 16-byte chunks per
  // invocation) are loaded before the norm, which does not need them; that row's dot product
  // starts from these registers.
  std::string prefetch_code, prefetch_loads, first_dot = "row_dot(row, 0u, gl_SubgroupInvocationID, gl_SubgroupSize)";
  if (prefetch) {
    prefetch_code = fmt::format(
        "float row_dot_prefetched(uint row, uint lane, uint lanes, vec4 plo[UNROLL], vec4 phi[UNROLL]) {{\n"
        "  uint m = 0u;\n"
        "  float sum = 0.0;\n"
        "  [[unroll]] for (uint u = 0u; u < UNROLL; ++u)\n"
        "    if (lane + u * lanes < pc.K / 8u) {{\n"
        "      vec4 alo, ahi;\n"
        "      load8_a(lane + u * lanes, alo, ahi);\n"
        "      sum += dot(alo, plo[u]) + dot(ahi, phi[u]);\n"
        "    }}\n{}"
        "  return sum;\n"
        "}}\n",
        dot_loop(true, "lane + lanes * UNROLL"));
    prefetch_loads =
        "  vec4 pre_lo[UNROLL], pre_hi[UNROLL];\n"
        "  {\n"
        "    uint k8 = pc.K / 8u, pre_row = min(gl_WorkGroupID.x * pc.R + gl_SubgroupID, pc.N - 1u);\n"
        "    [[unroll]] for (uint u = 0u; u < UNROLL; ++u)\n"
        "      load8_b(pre_row * k8 + min(gl_SubgroupInvocationID + u * gl_SubgroupSize, k8 - 1u), pre_lo[u], pre_hi[u]);\n"
        "  }\n"
        "  bool prefetched = true;\n";
    first_dot = "(prefetched ? row_dot_prefetched(row, gl_SubgroupInvocationID, gl_SubgroupSize, pre_lo, pre_hi) : "
                "row_dot(row, 0u, gl_SubgroupInvocationID, gl_SubgroupSize))";
  }
  shader.code(fmt::format(
      "float row_dot(uint row, uint m, uint lane, uint lanes) {{\n"
      "  float sum = 0.0;\n{}"
      "  return sum;\n"
      "}}\n{}"
      "void main() {{\n"
      "  uint lid = gl_LocalInvocationIndex;\n{}{}"
      "  for (uint j = lid; j < C; j += LANES) set_a(j, {}(j));\n"
      "  if (gl_WorkGroupID.x == 0u)\n"
      "    for (uint j = lid; j < C; j += LANES) {{\n{}"
      "    }}\n"
      "  barrier();\n"
      "{}"
      "}}\n",
      dot_loop(wide), prefetch_code, prefetch_loads, norm_mix_row_statistics(), mix.outputs[input], last_rows,
      chain != nullptr ? chained_tail(first_dot, prefetch, chain_wide) : row_loop(first_dot, prefetch)));
  return shader.finish();
}

namespace {
constexpr std::uint32_t kSumColumns = 8, kSumSlices = 32;  // 32 B of a row per 8 invocations; G / 32 loads each
}  // namespace

std::uint32_t gemv_chain_sum_columns() { return kSumColumns; }

KernelSource gemv_chain_sum_kernel(const DeviceFeatures& features, const Epilogue& epilogue) {
  GlslBuilder shader(features, fmt::format("chained gemv sum{}", epilogue.empty() ? "" : " + epilogue"));
  shader.buffer("partials", DType::f32, Access::read);
  declare_epilogue(shader, epilogue);
  shader.buffer("out", DType::f32, Access::write);
  shader.push({"N", "G", "T"});
  shader.local_size(kSumColumns * kSumSlices);
  // Neighbouring invocations add neighbouring outputs (coalesced); the workgroups' partials are
  // dealt to slices, summed through shared memory in a fixed order.
  shader.code(fmt::format(
      "shared float slices[{1}][{0}];\n"
      "void main() {{\n"
      "  uint column = gl_LocalInvocationIndex % {0}u, slice = gl_LocalInvocationIndex / {0}u;\n"
      "  uint n = gl_WorkGroupID.x * {0}u + column;\n"
      "  float sum = 0.0;\n"
      "  if (n < pc.N)\n"
      "    for (uint g0 = slice; g0 < pc.G; g0 += 4u * {1}u) {{\n"
      "      float part[4];\n"
      "      [[unroll]] for (uint u = 0u; u < 4u; ++u) part[u] = load_partials(min(g0 + u * {1}u, pc.G - 1u) * pc.N + n);\n"
      "      [[unroll]] for (uint u = 0u; u < 4u; ++u) if (g0 + u * {1}u < pc.G) sum += part[u];\n"
      "    }}\n"
      "  slices[slice][column] = sum;\n"
      "  barrier();\n"
      "  if (slice == 0u && n < pc.N) {{\n"
      "    for (uint s = 1u; s < {1}u; ++s) sum += slices[s][column];\n"
      "    store_out(n, epilogue(n, sum));\n"
      "  }}\n"
      "}}\n",
      kSumColumns, kSumSlices));
  return shader.finish();
}

}  // namespace rwkvc::vulkan
