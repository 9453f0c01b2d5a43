// The optimisation flags every command that compiles a graph shares: -O0..-O2, --passes,
// --dtype, --print-ir-after and --stats.
#pragma once

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "ir/graph.h"

namespace rwkvc::cli {

struct PipelineOptions {
  int level = 2;
  std::string passes;          // overrides the level when given
  std::string print_ir_after;  // a pass name, or "all"
  bool stats = false;
  std::string dtype = "f32";  // f16 or bf16 add lower-precision=<dtype> to the pipeline
  std::FILE* report_to = stdout;  // where IR and stats go (generate keeps stdout for its text)
};

void add_pipeline_options(CLI::App& cmd, PipelineOptions& options);

// Runs the chosen pipeline over `graph`, printing IR after passes and stats (on stdout) as asked.
// Throws std::invalid_argument for a malformed pipeline or an unknown --print-ir-after name.
Graph apply_pipeline(Graph graph, const PipelineOptions& options);

}  // namespace rwkvc::cli
