// fuse-elementwise: maximal connected groups of per-token elementwise ops (unary, binary, lerp)
// become one `region "elementwise"`; a group that alone reads a matmul's result, element for
// element, joins it as its epilogue in one `region "matmul_epilogue"` (the matmul first).
#include <algorithm>

#include "passes/fusion_support.h"
#include "passes/passes.h"

namespace rwkvc::passes {

namespace {

// Connected groups of fusable elementwise ops, each convex; singletons included.
std::vector<std::vector<std::size_t>> elementwise_groups(const Graph& graph, const Uses& uses,
                                                         std::vector<std::size_t>& group_of) {
  group_of.assign(graph.ops.size(), kNoOp);
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
  return groups;
}

// The matmuls whose result only one elementwise group reads, with that group: the group's every
// op has the matmul's result shape, so each output element's epilogue needs only that element
// (and broadcast operands), which a GEMV or GEMM can apply as it stores.
std::vector<std::vector<std::size_t>> epilogues(const Graph& graph) {
  Uses uses = analyse_uses(graph);
  std::vector<std::size_t> group_of;
  std::vector<std::vector<std::size_t>> groups = elementwise_groups(graph, uses, group_of);
  std::vector<bool> taken(groups.size(), false);
  std::vector<std::vector<std::size_t>> fused;
  for (std::size_t i = 0; i < graph.ops.size(); ++i) {
    const Op& op = graph.ops[i];
    if (op.kind != OpKind::matmul || !graph.type(op.operands[0]).shape.has_seq()) continue;
    auto result = static_cast<std::size_t>(op.results[0]);
    const std::vector<std::size_t>& readers = uses.readers[result];
    if (readers.empty() || uses.graph_output[result] || group_of[readers[0]] == kNoOp) continue;
    std::size_t g = group_of[readers[0]];
    bool one_group = std::all_of(readers.begin(), readers.end(), [&](std::size_t r) { return group_of[r] == g; });
    bool same_shape = std::all_of(groups[g].begin(), groups[g].end(), [&](std::size_t m) {
      return graph.type(graph.ops[m].results[0]).shape == graph.type(op.results[0]).shape;
    });
    if (!one_group || !same_shape || taken[g]) continue;
    std::vector<std::size_t> members{i};
    members.insert(members.end(), groups[g].begin(), groups[g].end());
    if (!is_convex(graph, membership(graph.ops.size(), members))) continue;
    taken[g] = true;
    fused.push_back(std::move(members));
  }
  return fused;
}

}  // namespace

Graph fuse_elementwise(const Graph& graph) {
  Graph with_epilogues = canonicalize(fuse_groups(graph, epilogues(graph), "matmul_epilogue"));
  Uses uses = analyse_uses(with_epilogues);
  std::vector<std::size_t> group_of;
  std::vector<std::vector<std::size_t>> groups = elementwise_groups(with_epilogues, uses, group_of);
  std::erase_if(groups, [](const std::vector<std::size_t>& g) { return g.size() < 2; });
  return fuse_groups(with_epilogues, groups, "elementwise");
}

}  // namespace rwkvc::passes
