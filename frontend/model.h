// A model as loaded from a checkpoint file: its weights and the sizes inferred from them.
#pragma once

#include <map>
#include <string>

#include "frontend/model_config.h"
#include "ir/tensor.h"

namespace rwkvc {

struct Model {
  std::string path;  // where it came from, for messages
  ModelConfig config;
  WeightMap weights;
  std::map<std::string, std::string> metadata;
};

// Reads a checkpoint, recognising its format by its first bytes, and infers its config.
// Reads safetensors and PyTorch .pth zips. Throws std::invalid_argument naming the file.
Model load_model(const std::string& path);

}  // namespace rwkvc
