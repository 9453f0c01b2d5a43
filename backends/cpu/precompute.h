// Everything a forward call can compute before it sees a token (weights, constants, folded
// regions and the ops that read only those) is evaluated once, on the host, by the CPU
// interpreter. Every backend compiles what remains: one piece of code decides what is
// token-free, and the GPU backends only upload its results as weights.
#pragma once

#include <string>

#include "ir/graph.h"
#include "ir/tensor.h"

namespace rwkvc {

struct Precomputed {
  // The input graph without its token-free ops; each of their results that the rest still reads
  // is now a weight keyed kPrecomputedPrefix + the value's name, typed as before.
  Graph graph;
  // The input weights (shared, not copied) plus the precomputed values (f32, owned).
  WeightMap weights;
};

inline constexpr std::string_view kPrecomputedPrefix = "precomputed:";

// `graph` must be verified. Throws std::invalid_argument naming a missing or misshapen weight.
Precomputed precompute_token_free(const Graph& graph, const WeightMap& weights);

}  // namespace rwkvc
