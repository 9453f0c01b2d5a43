// Random models with every official tensor name and shape, at the scales of trained ones:
// tests and benchmarks get realistic numerics without downloading a checkpoint.
#pragma once

#include <cstdint>

#include "frontend/model_config.h"
#include "ir/tensor.h"

namespace rwkvc {

// Follows the released training inits (per-layer mix curves, decay speeds) with every matrix
// non-zero, as in a trained model. All tensors are f32. The values depend only on the config,
// the seed and the tensor's name: rwkvc's own generator, not <random>'s distributions, whose
// output differs between standard libraries.
// RWKV-7-only fields (head_size, LoRA ranks) are ignored for RWKV-4.
// Throws std::invalid_argument for a config no model can have.
WeightMap make_random_model(const ModelConfig& config, std::uint64_t seed);

}  // namespace rwkvc
