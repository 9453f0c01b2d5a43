#include "tools/model_source.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include <stdexcept>

#include "frontend/graph_builders.h"
#include "frontend/random_model.h"

namespace rwkvc::cli {

ModelConfig default_model_config() { return standard_config(Arch::rwkv7, 2, 256, 65536, 64); }

Model load_model_or_default(const std::string& path) {
  if (!path.empty()) return load_model(path);
  Model model;
  model.path = "built-in default";
  model.config = default_model_config();
  model.weights = make_random_model(model.config, kDefaultModelSeed);
  return model;
}

std::unique_ptr<Executable> compile_model(const Model& model, const std::string& backend,
                                          const PipelineOptions& pipeline) {
  Graph graph = apply_pipeline(build_graph(model.config), pipeline);
  auto target = make_backend(backend);
  try {
    return target->compile(graph, model.weights);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(fmt::format("{}: {}", model.path, e.what()));
  }
}

std::string describe(const Model& model) {
  const ModelConfig& c = model.config;
  std::string sizes = fmt::format("{}, {} layers, embd {}, vocab {}", arch_name(c.arch), c.layers, c.embd, c.vocab);
  if (c.arch == Arch::rwkv7) sizes += fmt::format(", head size {}", c.head_size);
  return fmt::format("{} ({})", model.path, sizes);
}

}  // namespace rwkvc::cli
