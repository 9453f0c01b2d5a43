// fuse-wkv: each wkv7/wkv4 and the per-token math around it (RWKV-7: decay, a-gating, kk
// normalisation, v mixing before; group norm, r*k*r_k bonus, output gate after) in one `region "wkv"`.
#include <algorithm>

#include "passes/fusion_support.h"
#include "passes/passes.h"

namespace rwkvc::passes {

namespace {

// Grows from the recurrence through fusable producers and readers until matmuls (and other
// kernels) bound it on every side.
std::vector<std::size_t> grow(const Graph& graph, const Uses& uses, std::size_t seed, const std::vector<bool>& taken) {
  std::vector<bool> member(graph.ops.size(), false);
  member[seed] = true;
  std::vector<std::size_t> members{seed};
  auto admit = [&](std::size_t op) {
    if (op == kNoOp || member[op] || taken[op] || !is_fusable(graph, graph.ops[op])) return;
    member[op] = true;
    members.push_back(op);
  };
  for (std::size_t next = 0; next < members.size(); ++next) {
    const Op& op = graph.ops[members[next]];
    for (ValueId v : op.operands) admit(uses.producer[static_cast<std::size_t>(v)]);
    for (ValueId r : op.results)
      for (std::size_t q : uses.readers[static_cast<std::size_t>(r)]) admit(q);
  }
  std::sort(members.begin(), members.end());
  return members;
}

}  // namespace

Graph fuse_wkv(const Graph& graph) {
  Uses uses = analyse_uses(graph);
  std::vector<bool> taken(graph.ops.size(), false);
  std::vector<std::vector<std::size_t>> groups;
  for (std::size_t i = 0; i < graph.ops.size(); ++i) {
    OpKind kind = graph.ops[i].kind;
    if (kind != OpKind::wkv7 && kind != OpKind::wkv4) continue;
    std::vector<std::size_t> group = grow(graph, uses, i, taken);
    if (!is_convex(graph, membership(graph.ops.size(), group))) group = {i};
    for (std::size_t m : group) taken[m] = true;
    groups.push_back(std::move(group));
  }
  return fuse_groups(graph, groups, "wkv");
}

}  // namespace rwkvc::passes
