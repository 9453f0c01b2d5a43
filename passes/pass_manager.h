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
  Graph (*run)(const Graph&);
};

// Every pass, in the order -O2 runs them.
std::span<const Pass> all_passes();
// "dce, cse, ..." for messages.
std::string pass_names();

// Comma-separated pass names, blanks around names ignored; "" is the empty pipeline. Throws
// std::invalid_argument for an unknown name or an empty item, listing the valid names.
std::vector<const Pass*> parse_pipeline(std::string_view text);

// -O0: nothing; -O1: fold-constants,cse,dce; -O2: every pass. Throws std::invalid_argument
// for another level.
std::string preset_pipeline(int level);

// Called after each pass with the pass and its (verified) output, for --print-ir-after.
using PassObserver = std::function<void(const Pass&, const Graph&)>;

// Runs the passes in order; throws IrError "after pass 'NAME': ..." if a pass leaves a
// malformed graph.
Graph run_pipeline(Graph graph, const std::vector<const Pass*>& pipeline, const PassObserver& after_each = {});

}  // namespace rwkvc::passes
