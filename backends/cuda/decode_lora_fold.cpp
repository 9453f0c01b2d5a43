#include "backends/cuda/decode_lora_fold.h"

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

#include "backends/cuda/kernel_sources.h"

namespace rwkvc::cuda {

namespace {

bool switched_on(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr || std::string(value) != "0";
}

std::size_t dtype_bytes(DType dtype) { return dtype == DType::f32 ? 4 : 2; }

}  // namespace

bool lora_fold_enabled() { return switched_on("RWKVC_CUDA_FOLD_LORA_UP"); }

bool wkv_prefetch_enabled() { return switched_on("RWKVC_CUDA_WKV_PREFETCH"); }

std::vector<FoldedUp> fold_lora_ups(const Graph& graph, std::size_t region, std::optional<RecentGemvBatch>& recent,
                                    Program& program, Dim C) {
  if (!lora_fold_enabled() || !recent || recent->step + 1 != program.steps.size()) return {};
  const Op& wkv = graph.ops[region];
  std::vector<FoldedUp> ups;
  for (std::size_t m = 0; m < recent->members.size(); ++m) {
    const GemvMember& member = recent->members[m];
    const MatmulSpec& spec = member.spec;
    const Op& op = graph.ops[recent->ops[m]];
    if (!member.epilogue.empty() || op.kind != OpKind::matmul || op.results.size() != 1 || !spec.b_is_weight ||
        spec.N != C || spec.a_shape.numel(1) != spec.K)
      return {};
    ValueId product = op.results[0];
    if (product == graph.logits) return {};
    for (const StateDecl& decl : graph.states)
      if (decl.output == product) return {};
    // Read by the region alone (once or more), by nothing else.
    for (std::size_t i = 0; i < graph.ops.size(); ++i) {
      bool reads = std::find(graph.ops[i].operands.begin(), graph.ops[i].operands.end(), product) !=
                   graph.ops[i].operands.end();
      if (reads != (i == region)) return {};
    }
    if (std::find(wkv.operands.begin(), wkv.operands.end(), product) == wkv.operands.end()) return {};
    ups.push_back({spec.a, spec.b, spec.out, spec.K, spec.b_dtype});
  }
  if (ups.empty()) return {};
  // One-token calls get the ups from the wkv kernel; longer ones still run the batch.
  Step batch = std::move(program.steps[recent->step]);
  program.steps[recent->step] = [batch](RunContext& ctx) {
    if (ctx.T != 1) batch(ctx);
  };
  for (std::size_t op : recent->ops) program.runs_at[op] = region;
  program.module.include(kGemvSource);
  program.module.include(kDecodeLoraSource);
  recent.reset();
  return ups;
}

LoraFoldCode lora_fold_code(const std::vector<FoldedUp>& ups, Dim N, bool prefetch_state) {
  LoraFoldCode code;
  if (prefetch_state) code.before_wait += fmt::format("  prefetch_l2_block(s_in + (i64)h * {0} * {0}, {1});\n", N, N * N * 4);
  if (ups.empty()) return code;
  std::string calls;
  for (std::size_t u = 0; u < ups.size(); ++u) {
    const FoldedUp& up = ups[u];
    std::string type = device_type(up.dtype);
    code.params += fmt::format(", const float* u{0}_x, const {1}* u{0}_w, float* u{0}_y", u, type);
    if (prefetch_state)
      code.before_wait += fmt::format("  prefetch_l2_block(u{}_w + (i64)h * {} * {}, {});\n", u, N, up.D,
                                      static_cast<std::int64_t>(N * up.D * static_cast<Dim>(dtype_bytes(up.dtype))));
    calls += fmt::format("    {}if (m == {}) lora_up_quad<{}>(row, part, u{}_x, u{}_w, u{}_y, {});\n", u == 0 ? "" : "else ",
                         u, type, u, u, u, up.D);
  }
  // Quads of four lanes a row; a warp's eight quads work for one up (4 N is a multiple of 32).
  code.after_wait = fmt::format(
      "  for (int j = threadIdx.x; j < {0}; j += blockDim.x) {{\n"
      "    const int m = j / {1}, row = h * {2} + (j % {1}) / 4, part = j % 4;\n{3}"
      "  }}\n"
      "  __syncthreads();  // the head's LoRA ups are in memory for the pre-ops\n",
      static_cast<std::int64_t>(ups.size()) * 4 * N, 4 * N, N, calls);
  return code;
}

}  // namespace rwkvc::cuda
