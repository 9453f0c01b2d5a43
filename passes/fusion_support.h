// What the fusion passes agree on: which ops may join a fused kernel, and growing a group of
// ops while it stays convex (fusing it cannot create a cycle).
#pragma once

#include <vector>

#include "passes/graph_rewrite.h"

namespace rwkvc::passes {

inline bool is_elementwise(OpKind kind) {
  return is_unary_elementwise(kind) || is_binary_elementwise(kind) || kind == OpKind::lerp;
}

// Per-token work a fused kernel can absorb: elementwise math, norms, reductions and reshapes
// over values that depend on T. Weight-only ops are left to fold-constants, constants are
// copied into regions, and matmuls, recurrences and regions stay kernels of their own.
inline bool is_fusable(const Graph& graph, const Op& op) {
  bool per_token = !op.results.empty() && graph.type(op.results[0]).shape.has_seq();
  switch (op.kind) {
    case OpKind::l2_norm:
    case OpKind::group_norm:
    case OpKind::reduce_sum:
    case OpKind::reshape: return per_token;
    default: return per_token && is_elementwise(op.kind);
  }
}

inline std::vector<bool> membership(std::size_t op_count, const std::vector<std::size_t>& members) {
  std::vector<bool> member(op_count, false);
  for (std::size_t m : members) member[m] = true;
  return member;
}

}  // namespace rwkvc::passes
