// The pass manager: passes by name, pipelines as text ("fold-constants,cse,dce"), the -O0..-O2
// presets, and a run that canonicalises and verifies the graph after every pass.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ir/graph.h"

namespace rwkvc::passes {

struct Pass {
  std::string_view name;
  std::string_view summary;
  Graph (*run)(const Graph&, std::string_view argument);
  // For a pass that takes an argument (`lower-precision=bf16`): throws std::invalid_argument
  // for a bad one. Null for the others, which refuse any.
  void (*check_argument)(std::string_view argument) = nullptr;
};

// One item of a pipeline: the pass and the argument written after '=' (empty if none).
struct PipelineStep {
  const Pass* pass;
  std::string argument;
};

// Every pass, in the order -O2 runs them.
std::span<const Pass> all_passes();
// "dce, cse, ..." for messages.
std::string pass_names();

// Comma-separated pass names, each optionally `=argument`, blanks around items ignored; "" is
// the empty pipeline. Throws std::invalid_argument for an unknown name, an empty item or a bad
// argument, listing the valid names (or values).
std::vector<PipelineStep> parse_pipeline(std::string_view text);

// -O0: nothing; -O1: fold-constants,cse,dce; -O2: every optimisation (all but lower-precision,
// which changes results and is asked for by dtype). Throws std::invalid_argument for another level.
std::string preset_pipeline(int level);

// "lower-precision=f16" for f16 or bf16, "" for f32: what --dtype adds to a pipeline.
std::string precision_step(DType dtype);

// Called after each pass with the pass and its (verified) output, for --print-ir-after.
using PassObserver = std::function<void(const Pass&, const Graph&)>;

// Runs the passes in order; throws IrError "after pass 'NAME': ..." if a pass leaves a
// malformed graph.
Graph run_pipeline(Graph graph, const std::vector<PipelineStep>& pipeline, const PassObserver& after_each = {});

}  // namespace rwkvc::passes
