// The sizes that define an RWKV model; inferred from a checkpoint's tensor names and shapes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ir/tensor.h"

namespace rwkvc {

enum class Arch { rwkv4, rwkv7 };

std::string_view arch_name(Arch arch);  // "rwkv4", "rwkv7"

struct ModelConfig {
  Arch arch = Arch::rwkv7;
  std::int64_t layers = 0;
  std::int64_t embd = 0;   // C
  std::int64_t vocab = 0;  // V
  std::int64_t ffn = 0;    // channel-mix hidden width (4C in released models)
  // RWKV-7 only: head size N (H = C / N) and the LoRA ranks of w, a, v and g.
  std::int64_t head_size = 64;
  std::int64_t decay_lora = 0;
  std::int64_t aaa_lora = 0;
  std::int64_t mv_lora = 0;
  std::int64_t gate_lora = 0;

  std::int64_t heads() const { return embd / head_size; }
  bool operator==(const ModelConfig&) const = default;
};

// The sizes of a released-style model of this shape: FFN 4C and the LoRA ranks the RWKV-7
// reference derives from C (the shapes `rwkvc bench --shape` and `rwkvc init` make).
ModelConfig standard_config(Arch arch, std::int64_t layers, std::int64_t embd, std::int64_t vocab,
                            std::int64_t head_size = 64);

// Infers the architecture and sizes from tensor names and shapes (RWKV-7 by att.x_r / att.w0,
// RWKV-4 by att.time_first / att.time_mix_k). `origin` (a file name) prefixes every error.
// Throws std::invalid_argument naming the tensor when a required one is missing or misshapen.
ModelConfig infer_config(const WeightMap& weights, std::string_view origin);

}  // namespace rwkvc
