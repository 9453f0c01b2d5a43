#include "tools/model_source.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include <stdexcept>

#include "frontend/graph_builders.h"
#include "frontend/random_model.h"

namespace rwkvc::cli {

namespace {

// The reference's LoRA rank rule: max(32, round(factor * C^power / 32) * 32).
std::int64_t lora_rank(std::int64_t embd, double factor, double power) {
  auto rounded = static_cast<std::int64_t>(std::lround(factor * std::pow(static_cast<double>(embd), power) / 32.0)) * 32;
  return std::max<std::int64_t>(32, rounded);
}

}  // namespace

ModelConfig standard_config(Arch arch, std::int64_t layers, std::int64_t embd, std::int64_t vocab,
                            std::int64_t head_size) {
  ModelConfig config;
  config.arch = arch;
  config.layers = layers;
  config.embd = embd;
  config.vocab = vocab;
  config.ffn = 4 * embd;
  config.head_size = head_size;
  if (arch == Arch::rwkv7) {
    config.decay_lora = lora_rank(embd, 1.8, 0.5);
    config.aaa_lora = lora_rank(embd, 1.8, 0.5);
    config.mv_lora = layers > 1 ? lora_rank(embd, 1.3, 0.5) : 0;
    config.gate_lora = lora_rank(embd, 0.6, 0.8);
  }
  return config;
}

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
