// When each value's storage must hold it: from the op that defines it to the last op reading it
// or a view of it (a reshape's result shares its operand's storage). Shared by plan-memory,
// which places values in buffers, and the verifier, which proves that placement safe.
#pragma once

#include <cstddef>
#include <vector>

#include "ir/graph.h"

namespace rwkvc {

struct LiveRange {
  bool from_op = false;   // defined by an op (weights, state inputs and tokens are not)
  std::size_t first = 0;  // index of the defining op
  std::size_t last = 0;   // index of the last reader; graph.ops.size() for the logits and new states
};

// By ValueId. Ranges are closed: an op's operands and results are alive together, so a
// result never shares storage with what the op reads.
std::vector<LiveRange> live_ranges(const Graph& graph);

// Whether plan-memory places `value` in a buffer: op results, except views (reshape).
bool is_plannable(const Graph& graph, const Op& op);

}  // namespace rwkvc
