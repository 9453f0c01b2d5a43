// rwkvc ir: prints a model's graph in the textual IR, or parses IR text and prints it back.
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "frontend/graph_builders.h"
#include "ir/text.h"
#include "tools/commands.h"
#include "tools/model_source.h"
#include "tools/pipeline_options.h"

namespace rwkvc::cli {

namespace {

struct IrOptions {
  std::string model;
  std::string parse;
  PipelineOptions pipeline;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument(fmt::format("cannot open '{}'", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void run_ir(const IrOptions& o) {
  if (!o.parse.empty()) {
    Graph graph;
    try {
      graph = parse_graph(read_text(o.parse));
    } catch (const std::exception& e) {
      throw std::invalid_argument(fmt::format("{}: {}", o.parse, e.what()));
    }
    fmt::print("{}", print_graph(apply_pipeline(std::move(graph), o.pipeline)));
    return;
  }
  fmt::print("{}", print_graph(apply_pipeline(build_graph(load_model_or_default(o.model).config), o.pipeline)));
}

}  // namespace

void add_ir_command(CLI::App& app) {
  auto options = std::make_shared<IrOptions>();
  CLI::App* cmd = app.add_subcommand("ir", "Print a model's graph as IR text, or parse IR text and print it back");
  cmd->add_option("--model", options->model, "Model file (default: the built-in default model)");
  cmd->add_option("--parse", options->parse, "IR text file to parse, verify and print");
  add_pipeline_options(*cmd, options->pipeline);
  cmd->callback([options] { run_ir(*options); });
}

}  // namespace rwkvc::cli
