// The RWKV-7 recurrence: invocation i of a head's workgroup owns row i of its N x N state in
// registers for the whole sequence. The head's r, w, k, v, a, b for CHUNK tokens are staged in
// shared memory at once (every invocation loads its channel of each, all loads in flight
// together), so a long prompt pays one memory latency per chunk rather than per token.
#include <algorithm>

#include <fmt/format.h>

#include "backends/vulkan/glsl_builder.h"
#include "backends/vulkan/shaders/templates.h"

namespace rwkvc::vulkan {

namespace {

// Rows split over kSplit invocations (interleaved columns j = kSplit * jj + q, so the four read
// different banks), the row's sums closed with subgroup shuffles: a token's step is a chain of
// N / kSplit products instead of N, and a head has kSplit times the invocations to hide it.
constexpr std::int64_t kSplit = 4;

bool split_rows(const DeviceFeatures& features, std::int64_t head_size) {
  return features.subgroup_shuffle && features.subgroup_size % kSplit == 0 && head_size % kSplit == 0 &&
         head_size * kSplit <= static_cast<std::int64_t>(features.max_workgroup_invocations);
}

KernelSource wkv7_split_kernel(const DeviceFeatures& features, std::int64_t heads, std::int64_t head_size) {
  std::int64_t chunk = std::clamp<std::int64_t>(features.shared_memory_bytes / 2 / (6 * head_size * 4), 1, 16);
  GlslBuilder shader(features, fmt::format("wkv7 split H{} N{}", heads, head_size));
  for (const char* name : {"r", "w", "k", "v", "a", "b", "state_in"}) shader.buffer(name, DType::f32, Access::read);
  shader.buffer("y", DType::f32, Access::write);
  shader.buffer("state_out", DType::f32, Access::write);
  shader.push({"T"});
  shader.use_subgroups();
  shader.local_size(static_cast<std::uint32_t>(head_size * kSplit));
  shader.define("N", fmt::format("{}u", head_size));
  shader.define("C", fmt::format("{}u", heads * head_size));
  shader.define("CHUNK", fmt::format("{}u", chunk));
  shader.define("SPLIT", fmt::format("{}u", kSplit));
  shader.define("PART", fmt::format("{}u", head_size / kSplit));
  shader.extension("GL_KHR_shader_subgroup_shuffle");
  shader.code(
      "shared float r_[CHUNK][N], w_[CHUNK][N], k_[CHUNK][N], v_[CHUNK][N], a_[CHUNK][N], b_[CHUNK][N];\n"
      "float row_sum(float x) {\n"
      "  [[unroll]] for (uint m = 1u; m < SPLIT; m <<= 1) x += subgroupShuffleXor(x, m);\n"
      "  return x;\n"
      "}\n"
      "void main() {\n"
      "  uint h = gl_WorkGroupID.x, lid = gl_LocalInvocationIndex, i = lid / SPLIT, q = lid % SPLIT;\n"
      "  uint row = h * N * N + i * N;\n"
      "  float s[PART];\n"
      "  [[unroll]] for (uint jj = 0u; jj < PART; ++jj) s[jj] = load_state_in(row + jj * SPLIT + q);\n"
      "  for (uint t0 = 0u; t0 < pc.T; t0 += CHUNK) {\n"
      "    uint count = min(CHUNK, pc.T - t0);\n"
      "    barrier();\n"
      "    for (uint e = lid; e < count * N; e += N * SPLIT) {\n"
      "      uint u = e / N, c = e % N, at = (t0 + u) * C + h * N + c;\n"
      "      r_[u][c] = load_r(at); w_[u][c] = load_w(at); k_[u][c] = load_k(at);\n"
      "      v_[u][c] = load_v(at); a_[u][c] = load_a(at); b_[u][c] = load_b(at);\n"
      "    }\n"
      "    barrier();\n"
      "    for (uint u = 0u; u < count; ++u) {\n"
      "      float sa = 0.0;\n"
      "      [[unroll]] for (uint jj = 0u; jj < PART; ++jj) sa += s[jj] * a_[u][jj * SPLIT + q];\n"
      "      sa = row_sum(sa);\n"
      "      float v = v_[u][i], y = 0.0;\n"
      "      [[unroll]] for (uint jj = 0u; jj < PART; ++jj) {\n"
      "        uint j = jj * SPLIT + q;\n"
      "        s[jj] = s[jj] * w_[u][j] + sa * b_[u][j] + v * k_[u][j];\n"
      "        y += s[jj] * r_[u][j];\n"
      "      }\n"
      "      y = row_sum(y);\n"
      "      if (q == 0u) store_y((t0 + u) * C + h * N + i, y);\n"
      "    }\n"
      "  }\n"
      "  [[unroll]] for (uint jj = 0u; jj < PART; ++jj) store_state_out(row + jj * SPLIT + q, s[jj]);\n"
      "}\n");
  return shader.finish();
}

}  // namespace

KernelSource wkv7_kernel(const DeviceFeatures& features, std::int64_t heads, std::int64_t head_size) {
  if (split_rows(features, head_size)) return wkv7_split_kernel(features, heads, head_size);
  // Six vectors of N floats per staged token, in half the shared memory at most.
  std::int64_t chunk = std::clamp<std::int64_t>(features.shared_memory_bytes / 2 / (6 * head_size * 4), 1, 16);
  GlslBuilder shader(features, fmt::format("wkv7 H{} N{}", heads, head_size));
  for (const char* name : {"r", "w", "k", "v", "a", "b", "state_in"}) shader.buffer(name, DType::f32, Access::read);
  shader.buffer("y", DType::f32, Access::write);
  shader.buffer("state_out", DType::f32, Access::write);
  shader.push({"T"});
  shader.local_size(static_cast<std::uint32_t>(head_size));
  shader.define("N", fmt::format("{}u", head_size));
  shader.define("C", fmt::format("{}u", heads * head_size));
  shader.define("CHUNK", fmt::format("{}u", chunk));
  shader.code(
      "shared float r_[CHUNK][N], w_[CHUNK][N], k_[CHUNK][N], v_[CHUNK][N], a_[CHUNK][N], b_[CHUNK][N];\n"
      "void main() {\n"
      "  uint h = gl_WorkGroupID.x, i = gl_LocalInvocationIndex;\n"
      "  uint row = h * N * N + i * N;\n"
      "  float s[N];\n"
      "  [[unroll]] for (uint j = 0u; j < N; ++j) s[j] = load_state_in(row + j);\n"
      "  for (uint t0 = 0u; t0 < pc.T; t0 += CHUNK) {\n"
      "    uint count = min(CHUNK, pc.T - t0);\n"
      "    barrier();\n"
      "    for (uint u = 0u; u < count; ++u) {\n"
      "      uint at = (t0 + u) * C + h * N + i;\n"
      "      r_[u][i] = load_r(at); w_[u][i] = load_w(at); k_[u][i] = load_k(at);\n"
      "      v_[u][i] = load_v(at); a_[u][i] = load_a(at); b_[u][i] = load_b(at);\n"
      "    }\n"
      "    barrier();\n"
      "    for (uint u = 0u; u < count; ++u) {\n"
      "      float sa = 0.0;\n"
      "      [[unroll]] for (uint j = 0u; j < N; ++j) sa += s[j] * a_[u][j];\n"
      "      float v = v_[u][i], y = 0.0;\n"
      "      [[unroll]] for (uint j = 0u; j < N; ++j) {\n"
      "        s[j] = s[j] * w_[u][j] + sa * b_[u][j] + v * k_[u][j];\n"
      "        y += s[j] * r_[u][j];\n"
      "      }\n"
      "      store_y((t0 + u) * C + h * N + i, y);\n"
      "    }\n"
      "  }\n"
      "  [[unroll]] for (uint j = 0u; j < N; ++j) store_state_out(row + j, s[j]);\n"
      "}\n");
  return shader.finish();
}

}  // namespace rwkvc::vulkan
