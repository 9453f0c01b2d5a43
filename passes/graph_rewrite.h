// What the passes share: who produces and who reads each value, which values are known before
// any token, and the rewrite every fusion pass ends with: a set of ops becomes one kernel region.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace rwkvc::passes {

inline constexpr std::size_t kNoOp = static_cast<std::size_t>(-1);

struct Uses {
  std::vector<std::size_t> producer;             // by ValueId: the index of the op defining it, or kNoOp
  std::vector<std::vector<std::size_t>> readers;  // by ValueId: indices of the ops reading it
  std::vector<bool> graph_output;                 // by ValueId: the logits or a state's next value
};
Uses analyse_uses(const Graph& graph);

// By ValueId: computed from weights and constants alone (no tokens, no state, no T), so a
// backend can evaluate it once when it compiles the graph.
std::vector<bool> weight_only_values(const Graph& graph);

// Whether fusing the ops flagged in `member` (by op index) into one op keeps the graph acyclic:
// no path leaves the set and comes back into it.
bool is_convex(const Graph& graph, const std::vector<bool>& member);

// Replaces each group of op indices (disjoint, each convex) by one `region` op of kind `kind`.
// The region reads what its ops read from outside (constants are copied into the body instead)
// and returns, under their old value ids, the values read outside it or by the graph's outputs.
// Ops keep their order; a region sits where its last op was, and the ops that read its results
// move after it where needed.
Graph fuse_groups(const Graph& graph, const std::vector<std::vector<std::size_t>>& groups, const std::string& kind);

// The graph renumbered as its textual form numbers it (definition order), without values that
// nothing defines any more, and verified: every pass's output goes through it.
Graph canonicalize(const Graph& graph);

}  // namespace rwkvc::passes
