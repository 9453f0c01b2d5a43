#include "passes/pass_manager.h"

#include <array>
#include <stdexcept>

#include <fmt/format.h>

#include "ir/error.h"
#include "passes/graph_rewrite.h"
#include "passes/passes.h"

namespace rwkvc::passes {

namespace {

constexpr std::array kPasses = {
    Pass{"fold-constants", "scalar constant math, and weight-only subgraphs as regions evaluated once", fold_constants},
    Pass{"cse", "merge ops equal to an earlier op", common_subexpressions},
    Pass{"dce", "drop ops whose results reach no output", dead_code_elimination},
    Pass{"fuse-token-shift", "token shift and its mixes as one region", fuse_token_shift},
    Pass{"fuse-wkv", "the WKV recurrence and the per-token math around it as one region", fuse_wkv},
    Pass{"fuse-elementwise", "connected elementwise ops as one region", fuse_elementwise},
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

std::vector<const Pass*> parse_pipeline(std::string_view text) {
  std::vector<const Pass*> pipeline;
  if (trim(text).empty()) return pipeline;
  std::size_t begin = 0;
  for (std::size_t index = 0;; ++index) {
    std::size_t end = std::min(text.find(',', begin), text.size());
    std::string_view name = trim(text.substr(begin, end - begin));
    if (name.empty())
      throw std::invalid_argument(fmt::format("pipeline '{}': item {} is empty; valid passes: {}", text, index,
                                              pass_names()));
    const Pass* found = nullptr;
    for (const Pass& p : kPasses)
      if (p.name == name) found = &p;
    if (!found)
      throw std::invalid_argument(fmt::format("pipeline '{}': unknown pass '{}'; valid passes: {}", text, name,
                                              pass_names()));
    pipeline.push_back(found);
    if (end == text.size()) return pipeline;
    begin = end + 1;
  }
}

std::string preset_pipeline(int level) {
  switch (level) {
    case 0: return "";
    case 1: return "fold-constants,cse,dce";
    case 2: {
      std::string all;
      for (const Pass& p : kPasses) all += fmt::format("{}{}", all.empty() ? "" : ",", p.name);
      return all;
    }
    default: throw std::invalid_argument(fmt::format("unknown optimisation level -O{}: use -O0, -O1 or -O2", level));
  }
}

Graph run_pipeline(Graph graph, const std::vector<const Pass*>& pipeline, const PassObserver& after_each) {
  for (const Pass* pass : pipeline) {
    try {
      graph = canonicalize(pass->run(graph));
    } catch (const IrError& e) {
      throw IrError(fmt::format("after pass '{}': {}", pass->name, e.what()));
    }
    if (after_each) after_each(*pass, graph);
  }
  return graph;
}

}  // namespace rwkvc::passes
