#include "tools/pipeline_options.h"

#include <stdexcept>

#include <fmt/format.h>

#include "ir/text.h"
#include "passes/graph_stats.h"
#include "passes/pass_manager.h"

namespace rwkvc::cli {

void add_pipeline_options(CLI::App& cmd, PipelineOptions& options) {
  cmd.add_option("-O", options.level, "Optimisation level: -O0 (no passes), -O1 (fold-constants,cse,dce), -O2 (every optimisation; --dtype adds lower-precision)")
      ->capture_default_str();
  cmd.add_option("--passes", options.passes,
                 fmt::format("Comma-separated passes to run instead of the level's ({})", passes::pass_names()));
  cmd.add_option("--print-ir-after", options.print_ir_after, "Print the IR after this pass, or after every pass (all)");
  cmd.add_flag("--stats", options.stats, "Print ops, kernels per layer and activation bytes after the passes");
  cmd.add_option("--dtype", options.dtype, "Weights' precision: f32, or f16/bf16 (adds lower-precision to the pipeline)")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}))
      ->capture_default_str();
}

Graph apply_pipeline(Graph graph, const PipelineOptions& options) {
  std::string text = options.passes.empty() ? passes::preset_pipeline(options.level) : options.passes;
  std::string lowering = passes::precision_step(*parse_dtype(options.dtype));
  if (!lowering.empty()) text += (text.empty() ? "" : ",") + lowering;
  std::vector<passes::PipelineStep> pipeline = passes::parse_pipeline(text);
  const std::string& after = options.print_ir_after;
  if (!after.empty() && after != "all") passes::parse_pipeline(after);  // rejects an unknown name
  graph = passes::run_pipeline(std::move(graph), pipeline, [&](const passes::Pass& pass, const Graph& g) {
    if (after == "all" || after == pass.name) fmt::print(options.report_to, "// IR after {}\n{}", pass.name, print_graph(g));
  });
  if (options.stats) fmt::print(options.report_to, "{}", passes::format_stats(passes::graph_stats(graph)));
  return graph;
}

}  // namespace rwkvc::cli
