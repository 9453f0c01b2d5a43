// dce: drops every op none of whose results reaches the logits or a state's next value.
// A region goes as a whole, when none of its results is needed.
#include <algorithm>

#include "passes/passes.h"

namespace rwkvc::passes {

Graph dead_code_elimination(const Graph& graph) {
  std::vector<bool> live(graph.values.size(), false);
  if (graph.logits != kNoValue) live[static_cast<std::size_t>(graph.logits)] = true;
  for (const StateDecl& s : graph.states)
    if (s.output != kNoValue) live[static_cast<std::size_t>(s.output)] = true;

  std::vector<bool> keep(graph.ops.size(), false);
  for (std::size_t i = graph.ops.size(); i-- > 0;) {
    const Op& op = graph.ops[i];
    keep[i] = std::any_of(op.results.begin(), op.results.end(), [&](ValueId r) { return live[static_cast<std::size_t>(r)]; });
    if (keep[i])
      for (ValueId v : op.operands) live[static_cast<std::size_t>(v)] = true;
  }
  Graph out = graph;
  out.ops.clear();
  for (std::size_t i = 0; i < graph.ops.size(); ++i)
    if (keep[i]) out.ops.push_back(graph.ops[i]);
  return out;
}

}  // namespace rwkvc::passes
