#include "passes/graph_rewrite.h"

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <set>

#include "ir/text.h"

namespace rwkvc::passes {

namespace {

std::size_t at(ValueId id) { return static_cast<std::size_t>(id); }

// Kahn's algorithm, taking ready ops in their current order: a stable topological sort.
std::vector<Op> topological_order(std::vector<Op> ops, std::size_t value_count) {
  std::vector<std::size_t> producer(value_count, kNoOp);
  for (std::size_t i = 0; i < ops.size(); ++i)
    for (ValueId r : ops[i].results) producer[at(r)] = i;
  std::vector<std::size_t> waiting(ops.size(), 0);
  std::vector<std::vector<std::size_t>> dependents(ops.size());
  for (std::size_t i = 0; i < ops.size(); ++i) {
    std::set<std::size_t> deps;
    for (ValueId v : ops[i].operands)
      if (producer[at(v)] != kNoOp) deps.insert(producer[at(v)]);
    waiting[i] = deps.size();
    for (std::size_t d : deps) dependents[d].push_back(i);
  }
  std::priority_queue<std::size_t, std::vector<std::size_t>, std::greater<>> ready;
  for (std::size_t i = 0; i < ops.size(); ++i)
    if (waiting[i] == 0) ready.push(i);
  std::vector<Op> sorted;
  while (!ready.empty()) {
    std::size_t i = ready.top();
    ready.pop();
    sorted.push_back(std::move(ops[i]));
    for (std::size_t d : dependents[i])
      if (--waiting[d] == 0) ready.push(d);
  }
  return sorted;  // a cycle would drop ops; the verifier then names the value left undefined
}

Op make_region(const Graph& graph, const Uses& uses, const std::vector<std::size_t>& members,
               const std::vector<bool>& member, const std::string& kind) {
  auto region = std::make_shared<Region>();
  region->kind = kind;
  std::map<ValueId, ValueId> local;
  std::vector<ValueId> arguments;
  std::vector<std::size_t> copied_constants;
  for (std::size_t m : members)
    for (ValueId v : graph.ops[m].operands) {
      std::size_t p = uses.producer[at(v)];
      if (local.contains(v) || (p != kNoOp && member[p])) continue;
      if (p != kNoOp && graph.ops[p].kind == OpKind::constant) {
        if (std::find(copied_constants.begin(), copied_constants.end(), p) == copied_constants.end())
          copied_constants.push_back(p);
        continue;
      }
      local[v] = static_cast<ValueId>(arguments.size());
      arguments.push_back(v);
      region->values.push_back(graph.type(v));
    }
  region->arguments = arguments.size();
  auto define = [&](ValueId outer) {
    local[outer] = static_cast<ValueId>(region->values.size());
    region->values.push_back(graph.type(outer));
    return local[outer];
  };
  for (std::size_t c : copied_constants) {
    Op copy = graph.ops[c];
    copy.results = {define(copy.results[0])};
    region->ops.push_back(std::move(copy));
  }
  std::vector<ValueId> exported;
  for (std::size_t m : members) {
    Op inner = graph.ops[m];
    for (ValueId& v : inner.operands) v = local.at(v);
    for (ValueId& r : inner.results) {
      ValueId outer = r;
      r = define(outer);
      bool read_outside = uses.graph_output[at(outer)] ||
                          std::any_of(uses.readers[at(outer)].begin(), uses.readers[at(outer)].end(),
                                      [&](std::size_t q) { return !member[q]; });
      if (read_outside) {
        exported.push_back(outer);
        region->yields.push_back(r);
      }
    }
    region->ops.push_back(std::move(inner));
  }
  return Op{OpKind::region, std::move(arguments), std::move(exported), {}, std::move(region)};
}

}  // namespace

Uses analyse_uses(const Graph& graph) {
  Uses uses{std::vector<std::size_t>(graph.values.size(), kNoOp),
            std::vector<std::vector<std::size_t>>(graph.values.size()), std::vector<bool>(graph.values.size(), false)};
  for (std::size_t i = 0; i < graph.ops.size(); ++i) {
    for (ValueId r : graph.ops[i].results) uses.producer[at(r)] = i;
    for (ValueId v : graph.ops[i].operands) uses.readers[at(v)].push_back(i);
  }
  if (graph.logits != kNoValue) uses.graph_output[at(graph.logits)] = true;
  for (const StateDecl& s : graph.states)
    if (s.output != kNoValue) uses.graph_output[at(s.output)] = true;
  return uses;
}

std::vector<bool> weight_only_values(const Graph& graph) {
  std::vector<bool> known(graph.values.size(), false);
  for (const WeightDecl& w : graph.weights) known[at(w.value)] = true;
  for (const Op& op : graph.ops) {
    bool from_known = std::all_of(op.operands.begin(), op.operands.end(), [&](ValueId v) { return known[at(v)]; });
    bool fixed = std::none_of(op.results.begin(), op.results.end(),
                              [&](ValueId r) { return graph.type(r).shape.has_seq(); });
    if (from_known && fixed)
      for (ValueId r : op.results) known[at(r)] = true;
  }
  return known;
}

bool is_convex(const Graph& graph, const std::vector<bool>& member) {
  // downstream: produced by a member, or by an op that reads one (directly or not).
  std::vector<bool> from_member(graph.values.size(), false), downstream(graph.values.size(), false);
  for (std::size_t i = 0; i < graph.ops.size(); ++i) {
    const Op& op = graph.ops[i];
    if (member[i]) {
      for (ValueId v : op.operands)
        if (downstream[at(v)] && !from_member[at(v)]) return false;
      for (ValueId r : op.results) from_member[at(r)] = downstream[at(r)] = true;
    } else if (std::any_of(op.operands.begin(), op.operands.end(), [&](ValueId v) { return downstream[at(v)]; })) {
      for (ValueId r : op.results) downstream[at(r)] = true;
    }
  }
  return true;
}

Graph fuse_groups(const Graph& graph, const std::vector<std::vector<std::size_t>>& groups, const std::string& kind) {
  if (groups.empty()) return graph;
  Uses uses = analyse_uses(graph);
  std::vector<std::size_t> group_of(graph.ops.size(), kNoOp);
  std::vector<Op> regions;
  std::vector<std::size_t> placed_at;  // per group: its last op's index
  for (std::size_t g = 0; g < groups.size(); ++g) {
    std::vector<std::size_t> members = groups[g];
    std::sort(members.begin(), members.end());
    std::vector<bool> member(graph.ops.size(), false);
    for (std::size_t m : members) {
      member[m] = true;
      group_of[m] = g;
    }
    regions.push_back(make_region(graph, uses, members, member, kind));
    placed_at.push_back(members.back());
  }
  // A constant read only inside regions (which hold copies) is dropped.
  auto copied_away = [&](std::size_t i) {
    const Op& op = graph.ops[i];
    ValueId r = op.results[0];
    return op.kind == OpKind::constant && !uses.graph_output[at(r)] && !uses.readers[at(r)].empty() &&
           std::all_of(uses.readers[at(r)].begin(), uses.readers[at(r)].end(),
                       [&](std::size_t q) { return group_of[q] != kNoOp; });
  };
  std::vector<Op> ops;
  for (std::size_t i = 0; i < graph.ops.size(); ++i) {
    if (group_of[i] == kNoOp) {
      if (!copied_away(i)) ops.push_back(graph.ops[i]);
    } else if (placed_at[group_of[i]] == i) {
      ops.push_back(std::move(regions[group_of[i]]));
    }
  }
  Graph fused = graph;
  fused.ops = topological_order(std::move(ops), graph.values.size());
  return fused;
}

Graph canonicalize(const Graph& graph) { return parse_graph(print_graph(graph)); }

}  // namespace rwkvc::passes
