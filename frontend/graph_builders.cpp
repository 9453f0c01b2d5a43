#include "frontend/graph_builders.h"

#include <stdexcept>

#include <fmt/format.h>

namespace rwkvc {

Graph build_graph(const ModelConfig& config) {
  if (config.layers <= 0 || config.embd <= 0 || config.vocab <= 0 || config.ffn <= 0)
    throw std::invalid_argument(fmt::format("model sizes must be positive: layers {}, embd {}, vocab {}, ffn {}",
                                            config.layers, config.embd, config.vocab, config.ffn));
  switch (config.arch) {
    case Arch::rwkv4: return build_rwkv4_graph(config);
    case Arch::rwkv7:
      if (config.head_size <= 0 || config.embd % config.head_size != 0)
        throw std::invalid_argument(
            fmt::format("embedding width {} is not a multiple of the head size {}", config.embd, config.head_size));
      return build_rwkv7_graph(config);
  }
  throw std::invalid_argument("unknown architecture");
}

}  // namespace rwkvc
