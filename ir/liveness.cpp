#include "ir/liveness.h"

#include <algorithm>

namespace rwkvc {

bool is_plannable(const Graph&, const Op& op) { return op.kind != OpKind::reshape; }

std::vector<LiveRange> live_ranges(const Graph& graph) {
  std::vector<LiveRange> ranges(graph.values.size());
  // The value whose storage each value lives in: itself, or for a reshape its operand's.
  std::vector<ValueId> storage(graph.values.size());
  for (std::size_t id = 0; id < storage.size(); ++id) storage[id] = static_cast<ValueId>(id);
  auto extend = [&](ValueId id, std::size_t until) {
    LiveRange& range = ranges[static_cast<std::size_t>(storage[static_cast<std::size_t>(id)])];
    range.last = std::max(range.last, until);
  };
  for (std::size_t i = 0; i < graph.ops.size(); ++i) {
    const Op& op = graph.ops[i];
    for (ValueId operand : op.operands) extend(operand, i);
    for (ValueId result : op.results) {
      ranges[static_cast<std::size_t>(result)] = {true, i, i};
      if (op.kind == OpKind::reshape) storage[static_cast<std::size_t>(result)] = storage[static_cast<std::size_t>(op.operands[0])];
    }
  }
  if (graph.logits != kNoValue) extend(graph.logits, graph.ops.size());
  for (const StateDecl& s : graph.states)
    if (s.output != kNoValue) extend(s.output, graph.ops.size());
  return ranges;
}

}  // namespace rwkvc
