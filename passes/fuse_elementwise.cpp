// fuse-elementwise: maximal connected groups of per-token elementwise ops (unary, binary, lerp)
// become one `region "elementwise"` each; a lone op stays as it is.
#include "passes/fusion_support.h"
#include "passes/passes.h"

namespace rwkvc::passes {

Graph fuse_elementwise(const Graph& graph) {
  Uses uses = analyse_uses(graph);
  std::vector<std::size_t> group_of(graph.ops.size(), kNoOp);
  std::vector<std::vector<std::size_t>> groups;
  for (std::size_t i = 0; i < graph.ops.size(); ++i) {
    const Op& op = graph.ops[i];
    if (!is_elementwise(op.kind) || !is_fusable(graph, op)) continue;
    // Join the group of a producer, if the group stays convex with this op in it.
    for (ValueId v : op.operands) {
      std::size_t p = uses.producer[static_cast<std::size_t>(v)];
      if (p == kNoOp || group_of[p] == kNoOp || group_of[i] != kNoOp) continue;
      std::vector<std::size_t> candidate = groups[group_of[p]];
      candidate.push_back(i);
      if (!is_convex(graph, membership(graph.ops.size(), candidate))) continue;
      group_of[i] = group_of[p];
      groups[group_of[p]].push_back(i);
    }
    if (group_of[i] == kNoOp) {
      group_of[i] = groups.size();
      groups.push_back({i});
    }
  }
  std::erase_if(groups, [](const std::vector<std::size_t>& g) { return g.size() < 2; });
  return fuse_groups(graph, groups, "elementwise");
}

}  // namespace rwkvc::passes
