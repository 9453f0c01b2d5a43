// Graph builders per RWKV version: the equations of docs/equations.md written as IR, with
// weights bound by their official checkpoint names.
#pragma once

#include "frontend/model_config.h"
#include "ir/graph.h"

namespace rwkvc {

Graph build_rwkv7_graph(const ModelConfig& config);
Graph build_rwkv4_graph(const ModelConfig& config);
// Dispatches on config.arch.
Graph build_graph(const ModelConfig& config);

}  // namespace rwkvc
