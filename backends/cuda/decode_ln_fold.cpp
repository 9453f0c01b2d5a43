#include "backends/cuda/decode_ln_fold.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "backends/cuda/fused_codegen.h"
#include "ir/error.h"

namespace rwkvc::cuda {

namespace {

std::size_t at(ValueId id) { return static_cast<std::size_t>(id); }

// A dynamic shared-memory row of x beyond this needs an opt-in launch attribute.
constexpr std::int64_t kMaxSharedFloats = 48 * 1024 / 4;

// The statements that compute `outputs` of the region body at row 0 for every channel d1 < K,
// in a scope of their own (the row statistics' names may repeat in another).
std::string row_code(const ElementCode& code, std::int64_t K) {
  return fmt::format(
      "      {{\n        const i64 d0 = 0;\n{}"
      "        for (i64 d1 = threadIdx.x; d1 < {}; d1 += blockDim.x) {{\n{}        }}\n      }}\n",
      code.prologue, K, code.body);
}

}  // namespace

bool ln_fold_enabled() {
  const char* value = std::getenv("RWKVC_CUDA_FOLD_LN");
  return value != nullptr && std::string(value) == "1";
}

int folded_row_blocks() {
  const char* value = std::getenv("RWKVC_CUDA_FOLD_LN_ROW_BLOCKS");
  int blocks = value == nullptr ? 0 : std::atoi(value);
  return blocks > 0 ? blocks : kFoldedRowBlocks;
}

void fold_row_prologues(const Graph& graph, std::optional<RecentRegion>& recent, const std::vector<GemvMember*>& members,
                        const std::vector<std::size_t>& ops, std::size_t last, Program& program) {
  if (!ln_fold_enabled() || !recent || members.empty() || recent->step + 1 != program.steps.size()) return;
  const Op& region = graph.ops[recent->op];
  if (region.kind != OpKind::region || region.region->kind != "token_shift_mix") return;
  const Region& body = *region.region;
  for (const Op& inner : body.ops)
    if (!is_generatable(inner.kind)) return;
  auto yield_of = [&](std::size_t slot) -> std::optional<std::size_t> {
    for (std::size_t p = 0; p < region.results.size(); ++p)
      if (at(region.results[p]) == slot) return p;
    return std::nullopt;
  };

  // Every member reads a yield as its [1, K] x, and no yield otherwise (the epilogue's inputs).
  std::vector<std::size_t> positions;
  for (const GemvMember* member : members) {
    const MatmulSpec& spec = member->spec;
    std::optional<std::size_t> p = yield_of(spec.a);
    if (!p || spec.a_shape.numel(1) != spec.K || spec.K > kMaxSharedFloats) return;
    const Shape& shape = body.values[at(body.yields[*p])].shape;
    if (shape != Shape{kSeq, spec.K}) return;
    for (std::size_t slot : member->ins)
      if (yield_of(slot)) return;
    positions.push_back(*p);
  }
  const std::int64_t K = members[0]->spec.K;
  for (const GemvMember* member : members)
    if (member->spec.K != K) return;

  // Whether a region result is read by anything but this batch (a later op, the state, the logits).
  auto read_after = [&](ValueId result) {
    if (result == graph.logits) return true;
    for (const StateDecl& decl : graph.states)
      if (decl.output == result) return true;
    for (std::size_t i = 0; i < graph.ops.size(); ++i) {
      const std::vector<ValueId>& operands = graph.ops[i].operands;
      if (std::find(ops.begin(), ops.end(), i) == ops.end() &&
          std::find(operands.begin(), operands.end(), result) != operands.end())
        return true;
    }
    return false;
  };
  CodegenScope scope{body.values, std::vector<const Op*>(body.values.size(), nullptr)};
  for (const Op& inner : body.ops)
    for (ValueId id : inner.results) scope.producer[at(id)] = &inner;
  std::vector<bool> materialized(body.values.size(), false);
  for (std::size_t i = 0; i < body.arguments; ++i) materialized[i] = true;
  const Shape domain{kSeq, K};
  // The prologue's parameters for `code`: its first `outputs` outputs (in `out_slots`), then its inputs.
  auto parameters = [&](const std::string& prefix, const ElementCode& code, std::size_t outputs, std::string& params,
                        std::vector<std::size_t>& slots, const std::vector<std::size_t>& out_slots) {
    for (std::size_t o = 0; o < outputs; ++o) {
      params += fmt::format(", float* {}out{}", prefix, o);
      slots.push_back(out_slots[o]);
    }
    for (std::size_t i = 0; i < code.inputs.size(); ++i) {
      params += fmt::format(", const float* __restrict__ {}in{}", prefix, i);
      slots.push_back(at(region.operands[at(code.inputs[i])]));
    }
  };

  std::vector<GemvMember> folded;
  try {
    // Block 0 (member 0's first) stores the yields read after the batch (the new shift state).
    std::vector<ValueId> kept;
    std::vector<std::size_t> kept_slots;
    for (std::size_t p = 0; p < region.results.size(); ++p)
      if (read_after(region.results[p])) {
        kept.push_back(body.yields[p]);
        kept_slots.push_back(at(region.results[p]));
      }
    ElementCode all = generate_element_code(scope, kept, materialized, domain, "yall_", std::nullopt, true);
    for (std::size_t m = 0; m < members.size(); ++m) {
      std::string prefix = fmt::format("m{}_x", m);
      ValueId yield = body.yields[positions[m]];
      ElementCode code =
          generate_element_code(scope, std::span<const ValueId>(&yield, 1), materialized, domain, prefix, std::nullopt, true);
      GemvMember member = *members[m];
      member.prologue_params.clear();
      member.prologue_slots.clear();
      // The member's x goes to shared memory: its one output is gemv_x.
      member.prologue = fmt::format("      (void)x;\n      float* {}out0 = gemv_x;\n{}", prefix, row_code(code, K));
      parameters(prefix, code, 0, member.prologue_params, member.prologue_slots, {});
      if (m == 0 && !kept.empty()) {
        member.prologue += "      if (blockIdx.x == 0)\n" + row_code(all, K);
        parameters("yall_", all, kept.size(), member.prologue_params, member.prologue_slots, kept_slots);
      }
      member.prologue += "      __syncthreads();  // x is in shared memory for every warp\n      return gemv_x;\n";
      member.prologue_floats = K;
      member.row_blocks = folded_row_blocks();
      folded.push_back(std::move(member));
    }
  } catch (const IrError&) {
    return;  // a body the element code cannot express at one row: the region keeps its kernel
  }

  for (std::size_t m = 0; m < members.size(); ++m) *members[m] = folded[m];
  // The region runs only when the batch falls back to one launch a member (which reads x from
  // memory): unaligned slots, or more than one row.
  Step step = std::move(program.steps[recent->step]);
  program.steps[recent->step] = [step, folded](RunContext& ctx) {
    if (ctx.T == 1 && gemv_group_is_one_launch(folded, ctx)) return;
    step(ctx);
  };
  program.runs_at[recent->op] = std::max(program.runs_at[recent->op], last);
  recent.reset();
}

}  // namespace rwkvc::cuda
