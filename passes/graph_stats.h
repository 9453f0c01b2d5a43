// What `--stats` reports about a graph: ops, kernels per layer, and the bytes of activations
// one token needs, in total and at the peak of a liveness-ordered execution.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "ir/graph.h"

namespace rwkvc::passes {

struct GraphStats {
  std::size_t ops = 0;      // top-level ops, regions counting once
  std::size_t kernels = 0;  // ops launched per forward call: not weight-only, constant or reshape
  std::map<std::string, std::size_t> kernels_per_layer;  // "blocks.0" -> count; "other" for the rest
  std::map<std::string, std::size_t> regions;            // region kind -> count
  std::int64_t activation_bytes_per_token = 0;  // every per-call result with T, at T = 1
  std::int64_t peak_activation_bytes_per_token = 0;  // the most of those alive at once, in op order
  // After plan-memory: how many buffers, and what they hold together (bytes per token for the
  // buffers that grow with T, plus bytes for the fixed ones).
  std::size_t planned_buffers = 0;
  std::int64_t planned_bytes_per_token = 0;
  std::int64_t planned_fixed_bytes = 0;
};

GraphStats graph_stats(const Graph& graph);
std::string format_stats(const GraphStats& stats);

}  // namespace rwkvc::passes
