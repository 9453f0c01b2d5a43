// Every optimisation pass: Graph -> Graph over the IR of ir/, knowing nothing of any backend.
// The pass manager (pass_manager.h) runs them by name, canonicalising and verifying after each.
#pragma once

#include <string_view>

#include "ir/graph.h"

namespace rwkvc::passes {

Graph dead_code_elimination(const Graph& graph);      // dce.cpp
Graph common_subexpressions(const Graph& graph);      // cse.cpp
Graph fold_constants(const Graph& graph);             // fold_constants.cpp
Graph fuse_token_shift(const Graph& graph);           // fuse_token_shift.cpp
Graph fuse_wkv(const Graph& graph);                   // fuse_wkv.cpp
Graph fuse_elementwise(const Graph& graph);           // fuse_elementwise.cpp
Graph plan_memory(const Graph& graph);                // plan_memory.cpp
Graph lower_precision(const Graph& graph, DType to);  // lower_precision.cpp
// "f16" or "bf16" (empty: f16); throws std::invalid_argument naming the valid values.
DType precision_argument(std::string_view argument);  // lower_precision.cpp

}  // namespace rwkvc::passes
