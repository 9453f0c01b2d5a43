// fuse-token-shift: each token_shift, every lerp that reads its result (RWKV-7's six mixes), the
// last_row saving its input and the layer_norm producing it become one `region "token_shift_mix"`.
#include <algorithm>

#include "passes/fusion_support.h"
#include "passes/passes.h"

namespace rwkvc::passes {

namespace {

// The layer norm whose only readers are the group joins it: the kernel then reads the residual
// stream once and the normalised rows never reach memory.
void absorb_producing_norm(const Graph& graph, const Uses& uses, const Op& shift, const std::vector<bool>& taken,
                           std::vector<std::size_t>& group) {
  ValueId normed = shift.operands[0];
  std::size_t producer = uses.producer[static_cast<std::size_t>(normed)];
  if (producer == kNoOp || taken[producer] || graph.ops[producer].kind != OpKind::layer_norm) return;
  if (uses.graph_output[static_cast<std::size_t>(normed)]) return;
  for (std::size_t reader : uses.readers[static_cast<std::size_t>(normed)])
    if (std::find(group.begin(), group.end(), reader) == group.end()) return;
  group.push_back(producer);
}

}  // namespace

Graph fuse_token_shift(const Graph& graph) {
  Uses uses = analyse_uses(graph);
  std::vector<bool> taken(graph.ops.size(), false);
  std::vector<std::vector<std::size_t>> groups;
  for (std::size_t i = 0; i < graph.ops.size(); ++i) {
    const Op& shift = graph.ops[i];
    if (shift.kind != OpKind::token_shift || taken[i]) continue;
    std::vector<std::size_t> group{i};
    for (std::size_t q : uses.readers[static_cast<std::size_t>(shift.results[0])])
      if (graph.ops[q].kind == OpKind::lerp && !taken[q]) group.push_back(q);
    if (group.size() == 1) continue;
    for (std::size_t q : uses.readers[static_cast<std::size_t>(shift.operands[0])])
      if (graph.ops[q].kind == OpKind::last_row && !taken[q]) group.push_back(q);
    absorb_producing_norm(graph, uses, shift, taken, group);
    if (!is_convex(graph, membership(graph.ops.size(), group))) continue;
    for (std::size_t m : group) taken[m] = true;
    groups.push_back(std::move(group));
  }
  return fuse_groups(graph, groups, "token_shift_mix");
}

}  // namespace rwkvc::passes
