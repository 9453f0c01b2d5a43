// Checks a graph's invariants: SSA order, op arity, attributes, types (against the inferred
// ones), unique names, the interface (tokens i32[T], state slots paired in and out, logits).
#pragma once

#include <string>

#include "ir/graph.h"

namespace rwkvc {

// The first problem found, as a message naming the op ("op #12 matmul (%blocks.0.att.r): ...")
// or the declaration at fault; empty if the graph is well formed.
std::string verify_error(const Graph& graph);

// Throws IrError with verify_error's message if the graph is malformed.
void verify(const Graph& graph);

}  // namespace rwkvc
