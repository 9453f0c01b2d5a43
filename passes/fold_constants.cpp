// fold-constants: scalar math on constants becomes a constant, and every connected weight-only
// subgraph (no token, state or T) becomes one `region "folded"`, evaluated once and cached on disk.
#include <cmath>
#include <numeric>
#include <optional>

#include "passes/graph_rewrite.h"
#include "passes/passes.h"

namespace rwkvc::passes {

namespace {

// The elementwise ops on scalars, in the CPU reference's precision (f32).
std::optional<double> evaluate_scalar(OpKind kind, const std::vector<float>& x) {
  switch (kind) {
    case OpKind::exp: return std::exp(x[0]);
    case OpKind::neg: return -x[0];
    case OpKind::sigmoid: return 1.0f / (1.0f + std::exp(-x[0]));
    case OpKind::tanh: return std::tanh(x[0]);
    case OpKind::softplus: return std::max(x[0], 0.0f) + std::log1p(std::exp(-std::abs(x[0])));
    case OpKind::relu: return std::max(x[0], 0.0f);
    case OpKind::square: return x[0] * x[0];
    case OpKind::add: return x[0] + x[1];
    case OpKind::sub: return x[0] - x[1];
    case OpKind::mul: return x[0] * x[1];
    case OpKind::div: return x[0] / x[1];
    case OpKind::lerp: return x[0] + (x[1] - x[0]) * x[2];
    default: return std::nullopt;
  }
}

Graph fold_scalars(Graph graph) {
  std::vector<std::optional<float>> value(graph.values.size());
  for (Op& op : graph.ops) {
    if (op.kind == OpKind::constant) {
      value[static_cast<std::size_t>(op.results[0])] = static_cast<float>(op.float_attr("value"));
      continue;
    }
    std::vector<float> inputs;
    for (ValueId v : op.operands)
      if (auto known = value[static_cast<std::size_t>(v)]) inputs.push_back(*known);
    if (op.operands.empty() || inputs.size() != op.operands.size() || op.results.size() != 1) continue;
    if (std::optional<double> folded = evaluate_scalar(op.kind, inputs)) {
      op = Op{OpKind::constant, {}, op.results, {{"value", *folded}}};
      value[static_cast<std::size_t>(op.results[0])] = static_cast<float>(*folded);
    }
  }
  return graph;
}

std::size_t find_root(std::vector<std::size_t>& parent, std::size_t i) {
  while (parent[i] != i) i = parent[i] = parent[parent[i]];
  return i;
}

}  // namespace

Graph fold_constants(const Graph& input) {
  Graph graph = fold_scalars(input);
  std::vector<bool> known = weight_only_values(graph);
  Uses uses = analyse_uses(graph);
  // Constants are copied into the regions that read them; regions are not nested.
  auto foldable = [&](std::size_t i) {
    const Op& op = graph.ops[i];
    return op.kind != OpKind::constant && op.kind != OpKind::region && !op.results.empty() &&
           known[static_cast<std::size_t>(op.results[0])];
  };
  std::vector<std::size_t> parent(graph.ops.size());
  std::iota(parent.begin(), parent.end(), 0);
  for (std::size_t i = 0; i < graph.ops.size(); ++i) {
    if (!foldable(i)) continue;
    for (ValueId v : graph.ops[i].operands) {
      std::size_t p = uses.producer[static_cast<std::size_t>(v)];
      if (p != kNoOp && foldable(p)) parent[find_root(parent, i)] = find_root(parent, p);
    }
  }
  std::vector<std::vector<std::size_t>> groups;
  std::vector<std::size_t> group_of_root(graph.ops.size(), kNoOp);
  for (std::size_t i = 0; i < graph.ops.size(); ++i) {
    if (!foldable(i)) continue;
    std::size_t root = find_root(parent, i);
    if (group_of_root[root] == kNoOp) {
      group_of_root[root] = groups.size();
      groups.emplace_back();
    }
    groups[group_of_root[root]].push_back(i);
  }
  // A group around an earlier folded region (fold-constants run twice) could close a cycle: skip it.
  std::erase_if(groups, [&](const std::vector<std::size_t>& group) {
    std::vector<bool> member(graph.ops.size(), false);
    for (std::size_t m : group) member[m] = true;
    return !is_convex(graph, member);
  });
  return fuse_groups(graph, groups, "folded");
}

}  // namespace rwkvc::passes
