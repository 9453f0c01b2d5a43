// GEMM for prefill: 64 x 64 output tiles staged through shared memory in steps of 16 along k,
// each invocation accumulating a 4 x 4 block (rows and columns 16 apart, so neighbouring
// invocations read neighbouring shared-memory words).
#include <fmt/format.h>

#include "backends/vulkan/glsl_builder.h"
#include "backends/vulkan/shaders/templates.h"

namespace rwkvc::vulkan {

KernelSource gemm_kernel(const DeviceFeatures& features, DType b_dtype, bool transpose_b) {
  GlslBuilder shader(features, fmt::format("gemm {} {}", dtype_name(b_dtype), transpose_b ? "B[N,K]" : "B[K,N]"));
  shader.buffer("a", DType::f32, Access::read);
  shader.buffer("b", b_dtype, Access::read);
  shader.buffer("out", DType::f32, Access::write);
  shader.push({"M", "N", "K"});
  shader.local_size(256);
  std::string load_b = transpose_b ?
      "      uint nn = e / 16u, kk = e % 16u, gn = n0 + nn, gk = k0 + kk;\n"
      "      tile_b[kk][nn] = (gn < pc.N && gk < pc.K) ? load_b(gn * pc.K + gk) : 0.0;\n" :
      "      uint kk = e / 64u, nn = e % 64u, gn = n0 + nn, gk = k0 + kk;\n"
      "      tile_b[kk][nn] = (gn < pc.N && gk < pc.K) ? load_b(gk * pc.N + gn) : 0.0;\n";
  shader.code(fmt::format(
      "shared float tile_a[16][64];\n"
      "shared float tile_b[16][64];\n"
      "void main() {{\n"
      "  uint lid = gl_LocalInvocationIndex, tx = lid % 16u, ty = lid / 16u;\n"
      "  uint m0 = gl_WorkGroupID.y * 64u, n0 = gl_WorkGroupID.x * 64u;\n"
      "  float acc[4][4];\n"
      "  for (uint i = 0u; i < 4u; ++i) for (uint j = 0u; j < 4u; ++j) acc[i][j] = 0.0;\n"
      "  for (uint k0 = 0u; k0 < pc.K; k0 += 16u) {{\n"
      "    for (uint e = lid; e < 1024u; e += 256u) {{\n"
      "      uint mm = e / 16u, kk = e % 16u, gm = m0 + mm, gk = k0 + kk;\n"
      "      tile_a[kk][mm] = (gm < pc.M && gk < pc.K) ? load_a(gm * pc.K + gk) : 0.0;\n"
      "    }}\n"
      "    for (uint e = lid; e < 1024u; e += 256u) {{\n{}"
      "    }}\n"
      "    barrier();\n"
      "    for (uint kk = 0u; kk < 16u; ++kk) {{\n"
      "      float av[4], bv[4];\n"
      "      for (uint i = 0u; i < 4u; ++i) {{ av[i] = tile_a[kk][ty + 16u * i]; bv[i] = tile_b[kk][tx + 16u * i]; }}\n"
      "      for (uint i = 0u; i < 4u; ++i) for (uint j = 0u; j < 4u; ++j) acc[i][j] += av[i] * bv[j];\n"
      "    }}\n"
      "    barrier();\n"
      "  }}\n"
      "  for (uint i = 0u; i < 4u; ++i) for (uint j = 0u; j < 4u; ++j) {{\n"
      "    uint m = m0 + ty + 16u * i, n = n0 + tx + 16u * j;\n"
      "    if (m < pc.M && n < pc.N) store_out(m * pc.N + n, acc[i][j]);\n"
      "  }}\n"
      "}}\n",
      load_b));
  return shader.finish();
}

}  // namespace rwkvc::vulkan
