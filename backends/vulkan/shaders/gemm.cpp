// GEMM for prefill: TILE x TILE output tiles (64, or 128 for large products) staged through
// shared memory in steps of 16 along k, each invocation accumulating a PER x PER block (rows
// and columns 16 apart, so neighbouring invocations read neighbouring shared-memory words).
// The larger tile does 4x the multiply-adds per shared-memory read.
#include <fmt/format.h>

#include "backends/vulkan/glsl_builder.h"
#include "backends/vulkan/shaders/templates.h"

namespace rwkvc::vulkan {

std::uint32_t gemm_tile(std::int64_t m, std::int64_t n) { return m >= 128 && n >= 128 ? 128 : 64; }

KernelSource gemm_kernel(const DeviceFeatures& features, DType b_dtype, bool transpose_b, const Epilogue& epilogue,
                         std::uint32_t tile) {
  GlslBuilder shader(features, fmt::format("gemm{} {} {}{}", tile, dtype_name(b_dtype), transpose_b ? "B[N,K]" : "B[K,N]",
                                           epilogue.empty() ? "" : " + epilogue"));
  shader.buffer("a", DType::f32, Access::read);
  shader.buffer("b", b_dtype, Access::read);
  declare_epilogue(shader, epilogue);
  shader.buffer("out", DType::f32, Access::write);
  shader.push({"M", "N", "K", "T"});
  shader.local_size(256);
  shader.define("TILE", fmt::format("{}u", tile));
  shader.define("PER", fmt::format("{}u", tile / 16));
  std::string load_b = transpose_b ?
      "      uint nn = e / 16u, kk = e % 16u, gn = n0 + nn, gk = k0 + kk;\n"
      "      tile_b[kk][nn] = (gn < pc.N && gk < pc.K) ? load_b(gn * pc.K + gk) : 0.0;\n" :
      "      uint kk = e / TILE, nn = e % TILE, gn = n0 + nn, gk = k0 + kk;\n"
      "      tile_b[kk][nn] = (gn < pc.N && gk < pc.K) ? load_b(gk * pc.N + gn) : 0.0;\n";
  shader.code(fmt::format(
      "shared float tile_a[16][TILE];\n"
      "shared float tile_b[16][TILE];\n"
      "void main() {{\n"
      "  uint lid = gl_LocalInvocationIndex, tx = lid % 16u, ty = lid / 16u;\n"
      "  uint m0 = gl_WorkGroupID.y * TILE, n0 = gl_WorkGroupID.x * TILE;\n"
      "  float acc[PER][PER];\n"
      "  for (uint i = 0u; i < PER; ++i) for (uint j = 0u; j < PER; ++j) acc[i][j] = 0.0;\n"
      "  for (uint k0 = 0u; k0 < pc.K; k0 += 16u) {{\n"
      "    for (uint e = lid; e < 16u * TILE; e += 256u) {{\n"
      "      uint mm = e / 16u, kk = e % 16u, gm = m0 + mm, gk = k0 + kk;\n"
      "      tile_a[kk][mm] = (gm < pc.M && gk < pc.K) ? load_a(gm * pc.K + gk) : 0.0;\n"
      "    }}\n"
      "    for (uint e = lid; e < 16u * TILE; e += 256u) {{\n{}"
      "    }}\n"
      "    barrier();\n"
      "    for (uint kk = 0u; kk < 16u; ++kk) {{\n"
      "      float av[PER], bv[PER];\n"
      "      [[unroll]] for (uint i = 0u; i < PER; ++i) {{ av[i] = tile_a[kk][ty + 16u * i]; bv[i] = tile_b[kk][tx + 16u * i]; }}\n"
      "      [[unroll]] for (uint i = 0u; i < PER; ++i) [[unroll]] for (uint j = 0u; j < PER; ++j) acc[i][j] += av[i] * bv[j];\n"
      "    }}\n"
      "    barrier();\n"
      "  }}\n"
      "  for (uint i = 0u; i < PER; ++i) for (uint j = 0u; j < PER; ++j) {{\n"
      "    uint m = m0 + ty + 16u * i, n = n0 + tx + 16u * j;\n"
      "    if (m < pc.M && n < pc.N) store_out(m * pc.N + n, epilogue(m * pc.N + n, acc[i][j]));\n"
      "  }}\n"
      "}}\n",
      load_b));
  return shader.finish();
}

}  // namespace rwkvc::vulkan
