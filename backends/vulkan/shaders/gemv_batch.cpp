// The batched folded GEMV (gemv_batch.h). Every member's buffers, epilogue, dot product and
// row loop are its own functions (suffix j); main picks its member from the workgroup index,
// whose boundaries are compile-time constants, so a member's code is uniform per workgroup.
#include "backends/vulkan/shaders/gemv_batch.h"

#include <cstdlib>
#include <regex>
#include <string_view>

#include <fmt/format.h>

#include "backends/vulkan/elementwise_codegen.h"
#include "backends/vulkan/glsl_builder.h"

namespace rwkvc::vulkan {

namespace {

// Member j's epilogue functions, renamed so that several live in one shader: the generator
// names its values v<id> and its inputs load_in<k> (elementwise_codegen.cpp). The softplus
// helper is taken out (the kernel defines it once); `softplus` tells whether it was there.
std::string member_functions(const Epilogue& epilogue, std::size_t j, bool& softplus) {
  std::string code = epilogue.functions;
  for (std::size_t at = code.find(kSoftplusHelper); at != std::string::npos; at = code.find(kSoftplusHelper)) {
    code.erase(at, kSoftplusHelper.size());
    softplus = true;
  }
  static const std::regex value(R"(\bv(\d+)\b)"), input(R"(\bload_in(\d+)\b)");
  code = std::regex_replace(code, value, fmt::format("m{}_v$1", j));
  return std::regex_replace(code, input, fmt::format("load_m{}_in$1", j));
}

// Member j's dot product of B's row `row` with the mixed row in shared memory, from chunk
// `from` of the invocation's share: wide, UNROLL 16-byte loads of B in flight per invocation
// (addresses clamped into the row, the surplus products dropped).
std::string member_dot(std::size_t j, bool wide) {
  return wide ? fmt::format(
      "float dot{0}(uint row, uint from) {{\n"
      "  uint lanes = gl_SubgroupSize;\n"
      "  float sum = 0.0;\n"
      "  for (uint i0 = from; i0 < C / 8u; i0 += lanes * UNROLL) {{\n"
      "    vec4 blo[UNROLL], bhi[UNROLL];\n"
      "    [[unroll]] for (uint u = 0u; u < UNROLL; ++u)\n"
      "      load8_b{0}(row * (C / 8u) + min(i0 + u * lanes, C / 8u - 1u), blo[u], bhi[u]);\n"
      "    [[unroll]] for (uint u = 0u; u < UNROLL; ++u)\n"
      "      if (i0 + u * lanes < C / 8u) {{\n"
      "        vec4 alo, ahi;\n"
      "        load8_a(i0 + u * lanes, alo, ahi);\n"
      "        sum += dot(alo, blo[u]) + dot(ahi, bhi[u]);\n"
      "      }}\n"
      "  }}\n"
      "  return sum;\n"
      "}}\n", j) : fmt::format(
      "float dot{0}(uint row, uint from) {{\n"
      "  float sum = 0.0;\n"
      "  for (uint k = from; k < C; k += gl_SubgroupSize) sum += load_a(k) * load_b{0}(row * C + k);\n"
      "  return sum;\n"
      "}}\n", j);
}

// Member j's rows: R at a time per workgroup, a subgroup per row. With the prefetch, the
// subgroup's first row (the one its registers hold) starts from them.
std::string member_rows(std::size_t j, const GemvBatchMember& member, bool prefetch) {
  std::string prefetch_code, parameters, dot = "dot{0}(row, gl_SubgroupInvocationID)";
  if (prefetch) {
    prefetch_code = fmt::format(
        "void prefetch{0}(uint group, out vec4 plo[UNROLL], out vec4 phi[UNROLL]) {{\n"
        "  uint row = min(group * {1}u + gl_SubgroupID, {2}u - 1u), lane = gl_SubgroupInvocationID;\n"
        "  [[unroll]] for (uint u = 0u; u < UNROLL; ++u)\n"
        "    load8_b{0}(row * (C / 8u) + min(lane + u * gl_SubgroupSize, C / 8u - 1u), plo[u], phi[u]);\n"
        "}}\n",
        j, member.rows, member.n);
    parameters = ", vec4 plo[UNROLL], vec4 phi[UNROLL]";
    dot = "(row == group * {1}u + gl_SubgroupID ? dot_prefetched(plo, phi) + "
          "dot{0}(row, gl_SubgroupInvocationID + gl_SubgroupSize * UNROLL) : dot{0}(row, gl_SubgroupInvocationID))";
  }
  return prefetch_code + fmt::format(
      "void rows{0}(uint group{3}) {{\n"
      "  for (uint first = group * {1}u; first < {2}u; first += {4}u * {1}u)\n"
      "    for (uint row = first + gl_SubgroupID; row < min(first + {1}u, {2}u); row += gl_NumSubgroups) {{\n"
      "      float sum = subgroupAdd({5});\n"
      "      if (subgroupElect()) store_out{0}(row, epilogue{0}(row, sum));\n"
      "    }}\n"
      "}}\n",
      j, member.rows, member.n, parameters, member.groups, fmt::format(fmt::runtime(dot), j, member.rows));
}

}  // namespace

std::string norm_mix_row_declarations(bool wide) {
  // Wide: the low and the high halves of each group of 8 in two arrays, so neighbouring lanes
  // read neighbouring 16 bytes (no bank conflicts).
  std::string row = wide ? "shared vec4 a_lo[C / 8u], a_hi[C / 8u];\n"
                           "void set_a(uint j, float v) { if ((j & 4u) == 0u) a_lo[j >> 3][j & 3u] = v; else a_hi[j >> 3][j & 3u] = v; }\n"
                           "void load8_a(uint i8, out vec4 lo, out vec4 hi) { lo = a_lo[i8]; hi = a_hi[i8]; }\n"
                         : "shared float a_row[C];\n"
                           "void set_a(uint j, float v) { a_row[j] = v; }\n"
                           "float load_a(uint i) { return a_row[i]; }\n";
  return row +
         "float mean_cur, inv_cur;\n"
         "float load_nm_in0(uint i) { uint c = i % C; return (load_x(i) - mean_cur) * inv_cur * load_weight(c) + load_bias(c); }\n";
}

std::string norm_mix_row_statistics() {
  return
      "  float xs[ITEMS], sum = 0.0;\n"
      "  [[unroll]] for (uint u = 0u; u < ITEMS; ++u) {\n"
      "    uint j = gl_LocalInvocationIndex + u * LANES;\n"
      "    xs[u] = j < C ? load_x(j) : 0.0;\n"
      "    sum += xs[u];\n"
      "  }\n"
      "  mean_cur = workgroup_sum(sum) / float(C);\n"
      "  float squares = 0.0;\n"
      "  [[unroll]] for (uint u = 0u; u < ITEMS; ++u) {\n"
      "    float d = xs[u] - mean_cur;\n"
      "    if (gl_LocalInvocationIndex + u * LANES < C) squares += d * d;\n"
      "  }\n"
      "  inv_cur = 1.0 / sqrt(workgroup_sum(squares) / float(C) + EPS);\n";
}

std::size_t gemv_norm_mix_batch_bindings(const NormMixShape& mix, const std::vector<GemvBatchMember>& members,
                                         bool stores_last_rows) {
  std::size_t count = 3 + mix.inputs.size();
  for (const GemvBatchMember& member : members) count += 2 + member.epilogue.inputs.size();
  if (stores_last_rows)
    for (bool per_row : mix.per_row) count += per_row ? 0 : 1;
  return count;
}

bool gemv_batch_prefetch() {
  (void)gemv_tuning();  // refuses a malformed RWKVC_VULKAN_GEMV, batch_prefetch included
  const char* env = std::getenv("RWKVC_VULKAN_GEMV");
  std::string_view list = env != nullptr ? std::string_view(env) : std::string_view();
  bool prefetch = false;
  while (!list.empty()) {
    std::size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (item == "batch_prefetch=1") prefetch = true;
    if (item == "batch_prefetch=0") prefetch = false;
  }
  return prefetch;
}

KernelSource gemv_norm_mix_batch_kernel(const DeviceFeatures& features, const NormMixShape& mix, bool mix_softplus,
                                        const std::vector<GemvBatchMember>& members, bool stores_last_rows,
                                        bool prefetch) {
  bool wide = members.front().shape.wide;
  prefetch = prefetch && wide;
  GemvTuning tuning = gemv_tuning();
  // E.g. "layer_norm + mix + gemv batch C2048 f16 N 2048,2048,2048,96e,96,64,256e" (e: an epilogue).
  std::string label = fmt::format("layer_norm + mix + gemv batch C{} {} N", mix.width, dtype_name(members.front().shape.b_dtype));
  for (const GemvBatchMember& member : members)
    label += fmt::format("{}{}{}", &member == &members.front() ? " " : ",", member.n, member.epilogue.empty() ? "" : "e");
  GlslBuilder shader(features, label + (stores_last_rows ? " + last rows" : "") + (prefetch ? " + prefetch" : ""));
  shader.buffer("x", DType::f32, Access::read);
  shader.buffer("weight", mix.weight_dtype, Access::read);
  shader.buffer("bias", mix.weight_dtype, Access::read);
  for (std::size_t k = 0; k < mix.inputs.size(); ++k) shader.buffer(fmt::format("nm_in{}", k + 1), mix.inputs[k], Access::read);
  for (std::size_t j = 0; j < members.size(); ++j) {
    shader.buffer(fmt::format("b{}", j), members[j].shape.b_dtype, Access::read, wide);
    for (std::size_t k = 0; k < members[j].epilogue.inputs.size(); ++k)
      shader.buffer(fmt::format("m{}_in{}", j, k + 1), members[j].epilogue.inputs[k], Access::read);
  }
  for (std::size_t j = 0; j < members.size(); ++j) shader.buffer(fmt::format("out{}", j), DType::f32, Access::write);
  std::string last_rows;
  if (stores_last_rows)
    for (std::size_t k = 0; k < mix.outputs.size(); ++k)
      if (!mix.per_row[k]) {
        shader.buffer(fmt::format("last{}", k), DType::f32, Access::write);
        last_rows += fmt::format("      store_last{}(c, {}(c));\n", k, mix.outputs[k]);
      }
  shader.push({"T"});
  std::uint32_t lanes = tuning.fold_subgroups * features.subgroup_size;
  shader.local_size(lanes);
  shader.use_subgroups();
  shader.use_workgroup_sum();
  shader.define("C", fmt::format("{}u", mix.width));
  shader.define("LANES", fmt::format("{}u", lanes));
  shader.define("ITEMS", fmt::format("{}u", (mix.width + lanes - 1) / lanes));
  shader.define("EPS", glsl_float(mix.eps));
  shader.define("UNROLL", fmt::format("{}u", tuning.unroll));
  shader.code(norm_mix_row_declarations(wide));
  bool softplus = mix_softplus;
  std::string members_code;
  for (std::size_t j = 0; j < members.size(); ++j) {
    const GemvBatchMember& member = members[j];
    if (member.epilogue.empty()) {
      members_code += fmt::format("float epilogue{}(uint i, float product) {{ return product; }}\n", j);
    } else {
      members_code += fmt::format("float m{0}_product;\nfloat load_m{0}_in0(uint i) {{ return m{0}_product; }}\n", j);
      members_code += member_functions(member.epilogue, j, softplus);
      members_code += fmt::format("float epilogue{0}(uint i, float product) {{ m{0}_product = product; return m{0}_{1}(i); }}\n",
                                  j, member.epilogue.result);
    }
    members_code += member_dot(j, wide) + member_rows(j, member, prefetch);
  }
  if (softplus && mix.functions.find("softplus_log1p(float") == std::string::npos) shader.code(kSoftplusHelper);
  shader.code(mix.functions);
  if (prefetch)
    shader.code(
        "float dot_prefetched(vec4 plo[UNROLL], vec4 phi[UNROLL]) {\n"
        "  uint lane = gl_SubgroupInvocationID;\n"
        "  float sum = 0.0;\n"
        "  [[unroll]] for (uint u = 0u; u < UNROLL; ++u)\n"
        "    if (lane + u * gl_SubgroupSize < C / 8u) {\n"
        "      vec4 alo, ahi;\n"
        "      load8_a(lane + u * gl_SubgroupSize, alo, ahi);\n"
        "      sum += dot(alo, plo[u]) + dot(ahi, phi[u]);\n"
        "    }\n"
        "  return sum;\n"
        "}\n");
  shader.code(members_code);

  std::string firsts, member_of, prefetches, mixes, runs;
  std::uint32_t first = 0;
  for (std::size_t j = 0; j < members.size(); ++j) {
    firsts += fmt::format("{}{}u", j == 0 ? "" : ", ", first);
    if (j > 0) member_of += fmt::format(" + uint(g >= {}u)", first);
    first += members[j].groups;
    prefetches += fmt::format("    case {0}u: prefetch{0}(group, pre_lo, pre_hi); break;\n", j);
    mixes += fmt::format("    case {}u: for (uint c = lid; c < C; c += LANES) set_a(c, {}(c)); break;\n", j,
                         mix.outputs[members[j].input]);
    runs += fmt::format("    case {0}u: rows{0}(group{1}); break;\n", j, prefetch ? ", pre_lo, pre_hi" : "");
  }
  shader.code(fmt::format(
      "const uint FIRST_GROUP[{}] = uint[]({});\n"
      "void main() {{\n"
      "  uint g = gl_WorkGroupID.x, lid = gl_LocalInvocationIndex;\n"
      "  uint member = 0u{};\n"
      "  uint group = g - FIRST_GROUP[member];\n{}"
      "{}"
      "  switch (member) {{\n{}  }}\n"
      "  if (g == 0u)\n"
      "    for (uint c = lid; c < C; c += LANES) {{\n{}"
      "    }}\n"
      "  barrier();\n"
      "  switch (member) {{\n{}  }}\n"
      "}}\n",
      members.size(), firsts, member_of,
      prefetch ? fmt::format("  vec4 pre_lo[UNROLL], pre_hi[UNROLL];\n  switch (member) {{\n{}  }}\n", prefetches) : "",
      norm_mix_row_statistics(), mixes, last_rows, runs));
  return shader.finish();
}

}  // namespace rwkvc::vulkan
