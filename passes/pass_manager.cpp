#include "passes/pass_manager.h"

#include <array>
#include <stdexcept>

#include <fmt/format.h>

#include "ir/error.h"
#include "passes/graph_rewrite.h"
#include "passes/passes.h"

namespace rwkvc::passes {

namespace {

// Passes that take no argument.
template <Graph (*pass)(const Graph&)>
Graph plain(const Graph& graph, std::string_view) {
  return pass(graph);
}

Graph lower_precision_to(const Graph& graph, std::string_view argument) {
  return lower_precision(graph, precision_argument(argument));
}

constexpr std::array kPasses = {
    Pass{"fold-constants", "scalar constant math, and weight-only subgraphs as regions evaluated once",
         plain<fold_constants>},
    Pass{"cse", "merge ops equal to an earlier op", plain<common_subexpressions>},
    Pass{"dce", "drop ops whose results reach no output", plain<dead_code_elimination>},
    Pass{"fuse-token-shift", "token shift and its mixes as one region", plain<fuse_token_shift>},
    Pass{"fuse-wkv", "the WKV recurrence and the per-token math around it as one region", plain<fuse_wkv>},
    Pass{"fuse-elementwise", "connected elementwise ops as one region; a matmul's elementwise tail as its epilogue",
         plain<fuse_elementwise>},
    Pass{"plan-memory", "liveness-based buffer reuse for the activations (run last)", plain<plan_memory>},
    Pass{"lower-precision", "matmul matrices and embedding tables to f16 or bf16 (=bf16); state and sums stay f32",
         lower_precision_to, [](std::string_view argument) { precision_argument(argument); }},
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::span<const Pass> all_passes() { return kPasses; }

std::string pass_names() {
  std::string names;
  for (const Pass& p : kPasses) names += fmt::format("{}{}", names.empty() ? "" : ", ", p.name);
  return names;
}

std::vector<PipelineStep> parse_pipeline(std::string_view text) {
  std::vector<PipelineStep> pipeline;
  if (trim(text).empty()) return pipeline;
  std::size_t begin = 0;
  for (std::size_t index = 0;; ++index) {
    std::size_t end = std::min(text.find(',', begin), text.size());
    std::string_view item = trim(text.substr(begin, end - begin));
    std::size_t equals = item.find('=');
    std::string_view name = trim(item.substr(0, equals));
    if (name.empty())
      throw std::invalid_argument(fmt::format("pipeline '{}': item {} is empty; valid passes: {}", text, index,
                                              pass_names()));
    const Pass* found = nullptr;
    for (const Pass& p : kPasses)
      if (p.name == name) found = &p;
    if (!found)
      throw std::invalid_argument(fmt::format("pipeline '{}': unknown pass '{}'; valid passes: {}", text, name,
                                              pass_names()));
    PipelineStep step{found, {}};
    if (equals != std::string_view::npos) {
      step.argument = trim(item.substr(equals + 1));
      if (!found->check_argument)
        throw std::invalid_argument(fmt::format("pipeline '{}': pass '{}' takes no argument", text, name));
      found->check_argument(step.argument);  // a bad value fails before any pass runs
    }
    pipeline.push_back(std::move(step));
    if (end == text.size()) return pipeline;
    begin = end + 1;
  }
}

std::string preset_pipeline(int level) {
  switch (level) {
    case 0: return "";
    case 1: return "fold-constants,cse,dce";
    case 2: return "fold-constants,cse,dce,fuse-token-shift,fuse-wkv,fuse-elementwise,plan-memory";
    default: throw std::invalid_argument(fmt::format("unknown optimisation level -O{}: use -O0, -O1 or -O2", level));
  }
}

std::string precision_step(DType dtype) {
  return dtype == DType::f32 ? "" : fmt::format("lower-precision={}", dtype_name(dtype));
}

Graph run_pipeline(Graph graph, const std::vector<PipelineStep>& pipeline, const PassObserver& after_each) {
  for (const PipelineStep& step : pipeline) {
    try {
      graph = canonicalize(step.pass->run(graph, step.argument));
    } catch (const IrError& e) {
      throw IrError(fmt::format("after pass '{}': {}", step.pass->name, e.what()));
    }
    if (after_each) after_each(*step.pass, graph);
  }
  return graph;
}

}  // namespace rwkvc::passes
