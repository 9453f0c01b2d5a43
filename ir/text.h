// The textual form of a graph (`rwkvc ir`): print_graph's output parses back to an equal graph.
#pragma once

#include <string>
#include <string_view>

#include "ir/graph.h"

namespace rwkvc {

std::string print_graph(const Graph& graph);

// Parses and verifies; throws IrError with "line L, column C: message" on malformed text.
Graph parse_graph(std::string_view text);

}  // namespace rwkvc
