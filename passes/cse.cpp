// cse: an op equal to an earlier one (same kind, operands, attributes and region body) is
// dropped and its results replaced by the earlier op's, e.g. the per-layer constants 1 and -e^-0.5.
#include <map>
#include <tuple>

#include "passes/passes.h"

namespace rwkvc::passes {

Graph common_subexpressions(const Graph& graph) {
  std::vector<ValueId> replacement(graph.values.size());
  for (std::size_t id = 0; id < replacement.size(); ++id) replacement[id] = static_cast<ValueId>(id);
  auto replaced = [&](ValueId v) { return replacement[static_cast<std::size_t>(v)]; };

  Graph out = graph;
  out.ops.clear();
  // Candidates by (kind, operands); attributes and bodies are compared on a match.
  std::map<std::tuple<OpKind, std::vector<ValueId>>, std::vector<std::size_t>> seen;
  for (Op op : graph.ops) {
    for (ValueId& v : op.operands) v = replaced(v);
    std::vector<std::size_t>& candidates = seen[{op.kind, op.operands}];
    const Op* twin = nullptr;
    for (std::size_t c : candidates) {
      const Op& earlier = out.ops[c];
      bool same_body = earlier.region == op.region || (earlier.region && op.region && *earlier.region == *op.region);
      bool same_types = earlier.results.size() == op.results.size();
      for (std::size_t k = 0; same_types && k < op.results.size(); ++k)
        same_types = graph.type(earlier.results[k]) == graph.type(op.results[k]);
      if (earlier.attrs == op.attrs && same_body && same_types) twin = &earlier;
    }
    if (twin) {
      for (std::size_t k = 0; k < op.results.size(); ++k)
        replacement[static_cast<std::size_t>(op.results[k])] = twin->results[k];
      continue;
    }
    candidates.push_back(out.ops.size());
    out.ops.push_back(std::move(op));
  }
  if (out.logits != kNoValue) out.logits = replaced(out.logits);
  for (StateDecl& s : out.states)
    if (s.output != kNoValue) s.output = replaced(s.output);
  return out;
}

}  // namespace rwkvc::passes
