// fuse-token-shift: each token_shift, every lerp that reads its result (RWKV-7's six mixes) and
// the last_row saving its input become one `region "token_shift_mix"` producing every mixed input.
#include "passes/fusion_support.h"
#include "passes/passes.h"

namespace rwkvc::passes {

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
    if (!is_convex(graph, membership(graph.ops.size(), group))) continue;
    for (std::size_t m : group) taken[m] = true;
    groups.push_back(std::move(group));
  }
  return fuse_groups(graph, groups, "token_shift_mix");
}

}  // namespace rwkvc::passes
