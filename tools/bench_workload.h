// The work a compiled graph implies, read from the graph after its passes: the bytes of
// weights one decoded token must read and the matmul flops of a prefill. These are the
// numerators of the roofline fractions `rwkvc bench` reports, the same for every backend.
#pragma once

#include <cstdint>
#include <string>

#include "ir/graph.h"

namespace rwkvc::cli {

struct Workload {
  // Bytes a forward call reads from token-free tensors (weights, and what passes folded from
  // them), each once, in the dtype the graph declares; an embedding table counts one row.
  std::int64_t decode_bytes_per_token = 0;
  // Matmul weights' elements multiplied once per row: rows of T for the blocks, and one row
  // for the op producing the logits (only the last position's logits are wanted).
  std::int64_t matmul_params_per_row = 0;  // every matmul but the one producing the logits
  std::int64_t head_params = 0;            // the matmul producing the logits
  std::int64_t kernels = 0;                // the graph's own count (passes::graph_stats)
  std::string weight_dtypes;               // "f32", or "f16 matrices, f32 other"

  // 2 x params x T, plus the head once.
  double prefill_flops(std::int64_t tokens) const {
    return 2.0 * (static_cast<double>(matmul_params_per_row) * static_cast<double>(tokens) + static_cast<double>(head_params));
  }
};

Workload analyse_workload(const Graph& graph);

}  // namespace rwkvc::cli
