// Where a command's model comes from: a checkpoint file, or the built-in default (a tiny
// RWKV-7 with random weights, made in memory) so that everything runs with no download.
#pragma once

#include <string>

#include <memory>

#include "backends/backend.h"
#include "frontend/model.h"
#include "tools/pipeline_options.h"

namespace rwkvc::cli {

ModelConfig default_model_config();
inline constexpr std::uint64_t kDefaultModelSeed = 0;

// Loads `path`, or builds the default model when `path` is empty.
Model load_model_or_default(const std::string& path);

// Builds the model's graph, runs the pass pipeline and compiles it for `backend`; a weight the
// backend refuses (missing, misshapen) is reported with the model file named.
std::unique_ptr<Executable> compile_model(const Model& model, const std::string& backend,
                                          const PipelineOptions& pipeline);

// "tests/models/x.safetensors (rwkv7, 2 layers, embd 64, vocab 256)"
std::string describe(const Model& model);

}  // namespace rwkvc::cli
